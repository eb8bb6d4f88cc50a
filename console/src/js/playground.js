// The Playground: a conversation, candidate models and cost_weight in; the router's decision
// (POST /v1/router, execute: false) out, live; "Run it" streams the routed answer.

import { ApiError, call, stream } from "./api.js";
import { QualityCostChart } from "./charts.js";
import { $, $$, debounce, fill, h, int, labelCells, ms, pct, usd } from "./dom.js";

const SWEEP = Array.from({ length: 11 }, (_, i) => i / 10); // the path: cost_weight 0, 0.1, ... 1
const SAMPLE = "Write a Python function that merges two sorted lists into one sorted list.";

let chart;
let models = []; // [{id, owned_by}] from GET /v1/models
let turnSerial = 0;
let seq = 0; // the newest decision asked for; older answers are dropped
const decisions = new Map(); // `${signature}@${weight}` -> decision
const sweeps = new Map(); // signature -> Map(weight -> selected model)
let running = null; // AbortController of the run in progress

const weightInput = () => $("#cost-weight");
const weight = () => Number(weightInput().value);

// -- the request ------------------------------------------------------------------------------

function messages() {
  return $$("#turns li").map((li) => ({ role: $("select", li).value, content: $("textarea", li).value }));
}

/** The checked models, or undefined when all are checked (auto mode). */
function chosenModels() {
  const boxes = $$("#model-choices input");
  const checked = boxes.filter((b) => b.checked).map((b) => b.value);
  return checked.length === boxes.length ? undefined : checked;
}

/** Why no decision can be asked for yet, or null. */
function problem() {
  const turns = messages();
  if (!turns.some((m) => m.role === "user" && m.content.trim())) return "Type a prompt (a user message) to see the decision.";
  const list = chosenModels();
  if (list && !list.length) return "No model is selected: check at least one candidate model to see the decision.";
  return null;
}

function signature() {
  return JSON.stringify([messages(), chosenModels() ?? null]);
}

async function decide(sig, w) {
  const slot = `${sig}@${w}`;
  if (decisions.size > 2000) decisions.clear(); // a long session of edits
  if (!decisions.has(slot)) {
    const body = { messages: messages(), cost_weight: w, execute: false };
    const list = chosenModels();
    if (list) body.models = list;
    decisions.set(slot, call("v1/router", { method: "POST", body }));
  }
  try {
    return await decisions.get(slot);
  } catch (exc) {
    decisions.delete(slot); // retry next time
    throw exc;
  }
}

// -- rendering ----------------------------------------------------------------------------------

function status(text, busy = false) {
  $("#decision-status").textContent = text;
  $("#decision").setAttribute("aria-busy", busy ? "true" : "false");
}

function renderDecision(d, sig) {
  $("#chosen-model").textContent = d.selected_model;
  $("#confidence-meter").value = d.confidence;
  $("#confidence").textContent = pct(d.confidence);
  $("#complexity-meter").value = d.complexity;
  $("#complexity").textContent = d.complexity.toFixed(2);
  $("#reasoning").textContent = d.reasoning;
  const caps = Object.entries(d.capabilities).sort((a, b) => b[1] - a[1]);
  fill(
    $("#capabilities"),
    caps.map(([name, value], i) =>
      h("li", {},
        h("span", { id: `cap-${i}`, class: "bar-name" }, name),
        h("meter", { min: 0, max: 1, value, "aria-labelledby": `cap-${i}` }),
        h("span", { class: "num" }, pct(value))),
    ),
  );
  // The ranked candidates, then those the gateway left out of this decision ("eligible": false,
  // with why: no provider, no price, a feature the request needs...).
  const ranked = d.candidates.filter((c) => c.eligible !== false);
  const left = d.candidates.filter((c) => c.eligible === false);
  fill(
    $("#candidates-table tbody"),
    ranked.map((c) =>
      h("tr", { class: c.model === d.selected_model ? "chosen" : null, dataset: { model: c.model } },
        h("th", { scope: "row" }, c.model, c.model === d.selected_model ? h("span", { class: "tag" }, "chosen") : null),
        h("td", { class: "num" }, c.quality.toFixed(3)),
        h("td", { class: "num" }, usd(c.cost_usd)),
        h("td", { class: "num" }, c.utility.toFixed(4)),
        h("td", {}, c.quality_source)),
    ),
    left.map((c) =>
      h("tr", { class: "left-out", dataset: { model: c.model, reason: c.reason ?? "" } },
        h("th", { scope: "row" }, c.model),
        h("td", { colspan: 4, class: "hint" }, `Left out: ${c.detail ?? c.reason ?? "not eligible"}`)),
    ),
  );
  labelCells($("#candidates-table"));
  const path = sweeps.get(sig) ?? new Map();
  path.set(d.cost_weight, d.selected_model);
  chart.update(ranked, d.selected_model, [...path.values()]);
  $("#path-summary").textContent = describePath(path);
  $("#decision").dataset.costWeight = String(d.cost_weight);
}

/** No decision stands (no prompt, no model checked): nothing of the last one stays on screen. */
function clearDecision() {
  $("#chosen-model").textContent = "—";
  for (const name of ["confidence", "complexity"]) {
    $(`#${name}-meter`).value = 0;
    $(`#${name}`).textContent = "—";
  }
  $("#reasoning").textContent = "";
  fill($("#capabilities"));
  fill($("#candidates-table tbody"), h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No candidates.")));
  chart.clear("No decision to draw.");
  $("#path-summary").textContent = "";
  delete $("#decision").dataset.costWeight;
}

/** "cost_weight 0–0.3: gpt-4o · 0.4–1: gpt-4o-mini" from weight -> model. */
function describePath(path) {
  const points = [...path.entries()].sort((a, b) => a[0] - b[0]);
  if (points.length < 2) return "";
  const runs = [];
  for (const [w, model] of points) {
    const last = runs[runs.length - 1];
    if (last && last.model === model) last.to = w;
    else runs.push({ model, from: w, to: w });
  }
  const span = (r) => (r.from === r.to ? `${r.from}` : `${r.from}–${r.to}`);
  return `The choice along cost_weight: ${runs.map((r) => `${span(r)}: ${r.model}`).join(" · ")}.`;
}

// -- live updates ---------------------------------------------------------------------------------

async function refresh() {
  const why = problem();
  if (why) {
    seq++; // an answer still on its way is for an older state
    clearDecision();
    status(why);
    return;
  }
  const mine = ++seq;
  const sig = signature();
  const w = weight();
  status("Updating the decision…", true);
  try {
    const d = await decide(sig, w);
    if (mine !== seq) return;
    renderDecision(d, sig);
    if (!sweeps.has(sig)) await sweep(sig, mine);
    if (mine === seq) status(`Decision for cost_weight ${w.toFixed(2)}: ${d.selected_model}.`);
  } catch (exc) {
    if (mine === seq) status(`No decision: ${exc.message}`);
  }
}

/** The choice at each SWEEP weight: the path drawn on the chart. */
async function sweep(sig, mine) {
  const results = await Promise.all(SWEEP.map((w) => decide(sig, w)));
  const path = new Map(results.map((d) => [d.cost_weight, d.selected_model]));
  sweeps.set(sig, path);
  if (mine !== seq) return;
  const current = await decide(sig, weight());
  if (mine === seq) renderDecision(current, sig);
}

const later = debounce(refresh, 300);
const soon = debounce(refresh, 60);

/** Typing waits for a pause; the slider answers at once. Either way the panel is busy (stale)
 * from the first change until the newest decision is drawn. */
function refreshSoon() {
  stale();
  later();
}

function refreshNow() {
  stale();
  soon();
}

/** Answers to calls made before this change are dropped, and the panel says it is updating. */
function stale() {
  seq++;
  $("#decision").setAttribute("aria-busy", "true");
}

// -- the conversation editor -------------------------------------------------------------------

function renumber() {
  $$("#turns li").forEach((li, i) => {
    $(".turn-label", li).textContent = `Message ${i + 1}`;
    $(".role-label", li).textContent = `Role of message ${i + 1}`;
    $(".remove", li).setAttribute("aria-label", `Remove message ${i + 1}`);
    $(".remove", li).hidden = $$("#turns li").length === 1;
  });
}

function addTurn(role = "user", content = "") {
  const n = ++turnSerial;
  const select = h("select", { id: `turn-role-${n}`, onchange: refreshSoon },
    ["user", "assistant", "system"].map((r) => h("option", { value: r, selected: r === role }, r)));
  const text = h("textarea", { id: `turn-text-${n}`, rows: 3, oninput: refreshSoon, spellcheck: "true" });
  text.value = content;
  const li = h("li", { class: "turn" },
    h("div", { class: "turn-head" },
      h("label", { for: text.id, class: "turn-label" }),
      h("label", { for: select.id, class: "role-label visually-hidden" }),
      select,
      h("button", { type: "button", class: "quiet remove", onclick: () => removeTurn(li) }, "Remove")),
    text);
  $("#turns").append(li);
  renumber();
  return text;
}

function removeTurn(li) {
  const next = li.nextElementSibling ?? li.previousElementSibling;
  li.remove();
  renumber();
  $("textarea", next)?.focus();
  refreshSoon();
}

// -- running it ---------------------------------------------------------------------------------

function usageFacts(facts) {
  fill(
    $("#run-usage"),
    facts.map(([name, value]) => h("div", { class: "fact" }, h("dt", {}, name), h("dd", { dataset: { fact: name } }, value))),
  );
}

async function run() {
  const why = problem();
  if (why) {
    $("#run-status").textContent = why;
    return;
  }
  const body = { messages: messages(), cost_weight: weight(), execute: true, stream: true };
  const list = chosenModels();
  if (list) body.models = list;
  const max = $("#max-tokens").value;
  if (max) body.max_tokens = Number(max);
  running = new AbortController();
  const answer = $("#answer");
  answer.textContent = "";
  answer.setAttribute("aria-busy", "true");
  usageFacts([]);
  $("#run").disabled = true;
  $("#stop").hidden = false;
  $("#run-status").textContent = "Routing…";
  let model = null;
  let provider = null;
  let usage = null;
  try {
    const events = stream("v1/router", body, {
      signal: running.signal,
      onOpen: (response) => {
        provider = response.headers.get("x-pureai-provider");
      },
    });
    for await (const event of events) {
      if (event.routing) {
        model = event.routing.selected_model;
        $("#run-status").textContent = `Streaming from ${model}…`;
      }
      for (const choice of event.choices ?? []) answer.append(choice.delta?.content ?? "");
      if (event.usage) usage = event.usage;
    }
    answer.normalize();
    $("#run-status").textContent = `Done: ${model ?? "the model"} answered.`;
    if (usage) {
      usageFacts([
        ["Model", model ?? "—"],
        ["Provider", provider ?? "—"],
        ["Prompt tokens", int(usage.prompt_tokens)],
        ["Completion tokens", int(usage.completion_tokens)],
        ["Input cost", usd(usage.input_cost_usd)],
        ["Output cost", usd(usage.output_cost_usd)],
        ["Total cost", usd(usage.total_cost_usd)],
        ["Latency", ms(usage.latency_ms)],
        ["Time to first token", ms(usage.ttft_ms)],
      ]);
    }
  } catch (exc) {
    const stopped = exc.name === "AbortError";
    $("#run-status").textContent = stopped ? "Stopped." : `Failed: ${exc.message}`;
    if (!(exc instanceof ApiError) && !stopped) throw exc;
  } finally {
    answer.setAttribute("aria-busy", "false");
    $("#run").disabled = false;
    $("#stop").hidden = true;
    running = null;
  }
}

// -- set-up -------------------------------------------------------------------------------------

function setModels(list) {
  models = list;
  fill(
    $("#model-choices"),
    models.map((m, i) =>
      h("li", {},
        h("input", { type: "checkbox", id: `model-${i}`, value: m.id, checked: true, onchange: refreshSoon }),
        h("label", { for: `model-${i}` }, m.id, h("span", { class: "owner" }, ` ${m.owned_by}`)))),
  );
}

export async function init() {
  chart = new QualityCostChart($("#qc-chart"), { note: $("#qc-note") });
  addTurn("user", SAMPLE);
  $("#add-turn").addEventListener("click", () => {
    const last = messages().at(-1);
    addTurn(last?.role === "user" ? "assistant" : "user").focus();
    refreshSoon();
  });
  $("#models-all").addEventListener("click", () => {
    $$("#model-choices input").forEach((b) => (b.checked = true));
    refreshSoon();
  });
  $("#models-none").addEventListener("click", () => {
    $$("#model-choices input").forEach((b) => (b.checked = false));
    refreshSoon();
  });
  weightInput().addEventListener("input", () => {
    const w = weight();
    $("#cost-weight-value").textContent = w.toFixed(2);
    weightInput().setAttribute("aria-valuetext", `${w.toFixed(2)}${w === 0 ? ", best quality" : w === 1 ? ", cheapest" : ""}`);
    refreshNow();
  });
  $("#route-form").addEventListener("submit", (e) => e.preventDefault());
  $("#run").addEventListener("click", run);
  $("#stop").addEventListener("click", () => running?.abort());
  status("Loading the models…", true);
  try {
    setModels((await call("v1/models")).data);
  } catch (exc) {
    status(`Could not list the models: ${exc.message}`);
    return;
  }
  await refresh();
}

export function show() {}
