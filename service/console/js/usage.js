// Usage: the ledger (GET /v1/usage) over a time range, for every key or one, as charts, tables
// and CSV.

import { call } from "./api.js";
import { TimeChart, tickUsd } from "./charts.js";
import { $, fill, h, int, ms, pct, usd, when } from "./dom.js";
import * as stats from "./stats.js";

const LIMIT = 100000; // the most rows GET /v1/usage returns at once

let charts = null;
let rows = [];
let shown = { start: 0, end: 0 };
let names = new Map(); // key id -> name
let known = new Set(); // the model ids of GET /v1/models: the catalogue's and the registered deployments'

function keyLabel(id) {
  const name = names.get(id);
  return name ? `${name} (${id})` : id;
}

/** The chosen range in unix seconds, or an error message. */
function chosenRange() {
  const choice = $("#usage-range").value;
  if (choice !== "custom") {
    const end = Date.now() / 1000 + 1; // the ledger's end is exclusive: include this second
    return { start: end - Number(choice), end };
  }
  const start = Date.parse($("#usage-start").value) / 1000;
  const end = Date.parse($("#usage-end").value) / 1000;
  if (Number.isNaN(start) || Number.isNaN(end)) return { error: "Choose both ends of the custom range." };
  if (end <= start) return { error: "The end of the range must come after its start." };
  return { start, end };
}

async function loadKeys() {
  const select = $("#usage-key");
  const keep = select.value;
  const keys = (await call("v1/admin/keys")).data;
  names = new Map(keys.map((k) => [k.id, k.name]));
  names.set("admin-env", names.get("admin-env") ?? "PUREAI_ADMIN_KEY");
  fill(
    select,
    h("option", { value: "" }, "All keys"),
    [...names.keys()].map((id) => h("option", { value: id, selected: id === keep }, keyLabel(id))),
  );
}

async function loadModels() {
  known = new Set((await call("v1/models")).data.map((m) => m.id));
}

function setStatus(text) {
  $("#usage-status").textContent = text;
}

async function load() {
  const range = chosenRange();
  if (range.error) {
    setStatus(range.error);
    return;
  }
  setStatus("Loading the ledger…");
  $("#page-usage").setAttribute("aria-busy", "true");
  try {
    const query = { start: range.start.toFixed(3), end: range.end.toFixed(3), limit: LIMIT, key_id: $("#usage-key").value };
    rows = (await call("v1/usage", { query })).data;
    shown = range;
    render();
    await loadVersions(range);
    const capped = rows.length === LIMIT ? ` (the newest ${int(LIMIT)})` : "";
    setStatus(`${int(rows.length)} ledger rows${capped} from ${when(range.start)} to ${when(range.end)}.`);
  } catch (exc) {
    setStatus(`Could not read the ledger: ${exc.message}`);
  } finally {
    $("#page-usage").setAttribute("aria-busy", "false");
  }
}

/** Per router version and model: routed requests, share, mean feedback (GET /v1/admin/router/stats),
 * and the quality shift feedback taught the version in service (GET /v1/admin/router). */
async function loadVersions(range) {
  const status = $("#versions-status");
  try {
    const query = { start: range.start.toFixed(3), end: range.end.toFixed(3) };
    const [stats, router] = await Promise.all([call("v1/admin/router/stats", { query }), call("v1/admin/router")]);
    const learning = router.learning ?? {};
    const shift = (row) => {
      const learned = row.version === stats.current ? learning[row.model] : undefined;
      return learned ? (learned.quality_shift >= 0 ? "+" : "") + learned.quality_shift.toFixed(3) : "—";
    };
    fill(
      $("#router-versions tbody"),
      stats.data.length
        ? stats.data.map((row) =>
            h("tr", { dataset: { version: row.version ?? "", model: row.model ?? "" } },
              h("td", {}, row.version ?? "(not recorded)", row.version === stats.current ? h("span", { class: "hint" }, " in service") : null),
              h("th", { scope: "row" }, row.model ?? "—"),
              h("td", { class: "num" }, int(row.requests)),
              h("td", { class: "num" }, pct(row.share)),
              h("td", { class: "num" }, int(row.feedback_count)),
              h("td", { class: "num" }, row.mean_score === null ? "—" : row.mean_score.toFixed(2)),
              h("td", { class: "num", dataset: { shift: "" } }, shift(row))))
        : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No routed requests in this range.")),
    );
    status.textContent = "";
  } catch (exc) {
    status.textContent = `Could not read the router statistics: ${exc.message}`;
  }
}

/** A figure; `wide` for one of several values ("p50 / p95 / p99"), which takes two columns' room to
 * stay on one line. */
function tile(name, value, hint, wide = false) {
  return h("div", { class: wide ? "tile wide" : "tile" }, h("dt", {}, name), h("dd", { dataset: { tile: name } }, value), hint ? h("dd", { class: "hint" }, hint) : null);
}

const triple = (values, fmt) => values.map(fmt).join(" / ");

function render() {
  const t = stats.totals(rows);
  fill(
    $("#usage-tiles"),
    tile("Requests", int(t.requests), `${int(t.decisions)} decisions only`),
    tile("Spend", usd(t.spend)),
    tile("Error rate", pct(t.errorRate, 1)),
    tile("Fallback rate", pct(t.fallbackRate, 1), "answered after a failover"),
    tile("Tokens in / out", `${int(t.promptTokens)} / ${int(t.completionTokens)}`, null, true),
    tile("Latency p50 / p95 / p99", triple(t.latency, ms), null, true),
    tile("TTFT p50 / p95 / p99", triple(t.ttft, ms), "streamed requests", true),
  );

  const notDecision = (r) => stats.kind(r) !== "decision";
  const spendModel = stats.overTime(rows, shown.start, shown.end, stats.spendSeries(known), (r) => r.total_cost_usd);
  charts.spendModel.update(spendModel.xs, spendModel.groups);
  const spendKey = stats.overTime(rows, shown.start, shown.end, (r) => (notDecision(r) ? keyLabel(r.key_id) : null), (r) => r.total_cost_usd);
  charts.spendKey.update(spendKey.xs, spendKey.groups);
  const labels = { executed: "executed", error: "errors", decision: "decisions only" };
  const requests = stats.overTime(rows, shown.start, shown.end, (r) => labels[stats.kind(r)], () => 1);
  charts.requests.update(requests.xs, requests.groups);

  const share = stats.routerShare(rows);
  fill(
    $("#router-share"),
    share.length
      ? share.map((s, i) =>
          h("li", {},
            h("span", { id: `share-${i}`, class: "bar-name" }, s.model),
            h("meter", { min: 0, max: 1, value: s.share, "aria-labelledby": `share-${i}` }),
            h("span", { class: "num" }, `${pct(s.share)} · ${int(s.sent)} sent`, s.decided ? `, ${int(s.decided)} decided` : "")))
      : h("li", { class: "empty" }, "No routed requests in this range."),
  );

  fill(
    $("#usage-models tbody"),
    stats.perModel(rows).map((m) =>
      h("tr", { dataset: { model: m.model } },
        h("th", { scope: "row" }, m.model),
        h("td", { class: "num" }, int(m.requests)),
        h("td", { class: "num" }, pct(m.errorRate, 1)),
        h("td", { class: "num" }, pct(m.fallbackRate, 1)),
        h("td", { class: "num" }, usd(m.spend)),
        h("td", { class: "num" }, triple(m.latency, ms)),
        h("td", { class: "num" }, triple(m.ttft, ms)))),
  );
  fill(
    $("#usage-keys tbody"),
    stats.perKey(rows).map((k) =>
      h("tr", { dataset: { key: k.key } },
        h("th", { scope: "row" }, keyLabel(k.key)),
        h("td", { class: "num" }, int(k.requests)),
        h("td", { class: "num" }, `${int(k.promptTokens)} / ${int(k.completionTokens)}`),
        h("td", { class: "num" }, usd(k.spend)))),
  );
  fill(
    $("#usage-recent tbody"),
    rows
      .filter((r) => $("#recent-decisions").checked || stats.kind(r) !== "decision")
      .slice(0, 25)
      .map((r) =>
        h("tr", { dataset: { request: r.request_id } },
          h("td", {}, when(r.created)),
          h("td", {}, keyLabel(r.key_id)),
          h("td", {}, r.endpoint + (stats.kind(r) === "decision" ? " (decision)" : "")),
          h("td", {}, r.model ?? "—"),
          h("td", { class: "num" }, String(r.status), r.error ? h("span", { class: "hint" }, ` ${r.error}`) : null),
          h("td", { class: "num" }, `${int(r.prompt_tokens)} / ${int(r.completion_tokens)}`),
          h("td", { class: "num" }, usd(r.total_cost_usd)),
          h("td", { class: "num" }, ms(r.latency_ms)),
          h("td", { class: "num" }, ms(r.ttft_ms)))),
  );
}

function download() {
  const blob = new Blob([stats.csv(rows)], { type: "text/csv" });
  const link = h("a", { href: URL.createObjectURL(blob), download: `pureai-usage-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export async function init() {
  charts = {
    spendModel: new TimeChart($("#chart-spend-model"), { yLabel: "USD", format: usd, tick: tickUsd }),
    spendKey: new TimeChart($("#chart-spend-key"), { yLabel: "USD", format: usd, tick: tickUsd }),
    requests: new TimeChart($("#chart-requests"), { yLabel: "requests", format: (v) => int(v) }),
  };
  $("#usage-range").addEventListener("change", () => {
    const custom = $("#usage-range").value === "custom";
    for (const el of document.querySelectorAll("#usage-filters [data-custom]")) el.hidden = !custom;
    if (custom && !$("#usage-start").value) {
      const local = (s) => new Date(s * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      $("#usage-end").value = local(Date.now() / 1000 + 60);
      $("#usage-start").value = local(Date.now() / 1000 - 86400);
    }
    if (!custom) load();
  });
  $("#usage-key").addEventListener("change", load);
  $("#usage-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  $("#usage-csv").addEventListener("click", download);
  $("#recent-decisions").addEventListener("change", render);
}

/** Each visit re-reads the keys and the ledger. */
export async function show() {
  try {
    await Promise.all([loadKeys(), loadModels()]);
  } catch (exc) {
    setStatus(`Could not list the keys and models: ${exc.message}`);
  }
  await load();
}
