// Custom deployments: those registered through the admin API (POST/GET /v1/admin/deployments,
// DELETE /v1/admin/deployments/{id}) and the catalogue file's pureai/ models, listed together; a
// form registers a new one, a button removes one. GET /v1/admin/deployments lists the catalogue
// file's with "source": "catalogue" (base URL, prices, context); a gateway that lists only the
// registered ones leaves the others to GET /v1/models and /v1/providers (their providers only).

import { call } from "./api.js";
import { $, $$, confirmed, fill, h, int, labelCells } from "./dom.js";

let backupSerial = 0;
let onChange = () => {}; // told after a deployment is registered or removed (the key form's models)

// The form's field for each `param` the gateway may name in a 400 (providers[i].x: backup row i).
const FIELDS = {
  id: "#deploy-id",
  api_base: "#deploy-base",
  api_key: "#deploy-key",
  input_per_mtok: "#deploy-in",
  output_per_mtok: "#deploy-out",
  context_window: "#deploy-context",
  quality_priors: "#deploy-quality",
  free: "#deploy-free",
};
const BACKUP_PARTS = { id: "id", api_base: "base", api_key: "key" };

function price(value) {
  return value === 0 ? "0" : String(Number(value.toPrecision(4)));
}

/** "0.1 / 0.2" (USD per 1M tokens in / out), "free" or "unpriced". */
function prices(d) {
  if (d.free) return "free";
  if (d.priced === false) return "unpriced";
  return `${price(d.input_per_mtok)} / ${price(d.output_per_mtok)}`;
}

function keyText(d) {
  return d.api_key_set ? "set" : d.api_key_env ? `from ${d.api_key_env}` : "none";
}

function providersText(providers) {
  return providers.map((p) => `${p.id} (${p.type}${p.enabled ? "" : ", disabled"})`).join(", ");
}

function row({ model, source, base, providers, prices, context, key, remove }) {
  return h("tr", { dataset: { model, source } },
    h("th", { scope: "row" }, model),
    h("td", {}, source),
    h("td", { class: "url" }, base ?? "—"),
    h("td", {}, providers),
    h("td", { class: "num" }, prices ?? "—"),
    h("td", { class: "num" }, context ?? "—"),
    h("td", {}, key),
    h("td", { class: "actions" }, remove ? h("button", { type: "button", class: "danger small", "aria-label": `Remove ${model}`, onclick: remove }, "Remove") : null));
}

/** Re-read both kinds; `note` goes before the count in the status line. */
export async function load(note = "") {
  let registered = [];
  let models = [];
  try {
    [registered, models] = await Promise.all([
      call("v1/admin/deployments").then((r) => r.data),
      call("v1/models").then((r) => r.data),
    ]);
  } catch (exc) {
    $("#deployments-status").textContent = `${note}Could not list the deployments: ${exc.message}`;
    return;
  }
  const fromFile = registered.filter((d) => d.source === "catalogue");
  registered = registered.filter((d) => d.source !== "catalogue");
  const known = new Set([...registered, ...fromFile].map((d) => d.model));
  const unlisted = models.filter((m) => m.id.startsWith("pureai/") && !known.has(m.id));
  const listed = await Promise.all(
    unlisted.map(async (m) => {
      try {
        return { model: m.id, providers: providersText((await call("v1/providers", { query: { model: m.id } })).providers) };
      } catch (exc) {
        return { model: m.id, providers: exc.message };
      }
    }),
  );
  const shown = (d, source, remove) =>
    row({
      model: d.model,
      source,
      base: d.api_base,
      providers: providersText(d.providers),
      prices: prices(d),
      context: int(d.context_window),
      key: keyText(d),
      remove,
    });
  const rows = [
    ...registered.map((d) => shown(d, "registered", () => remove(d))),
    ...fromFile.map((d) => shown(d, "catalogue file", null)),
    ...listed.map(({ model, providers }) => row({ model, source: "catalogue file", providers, key: "—" })),
  ];
  fill(
    $("#deployments-table tbody"),
    rows.length ? rows : h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No pureai/ deployments yet.")),
  );
  labelCells($("#deployments-table"));
  const n = registered.length;
  const m = fromFile.length + listed.length;
  $("#deployments-status").textContent = `${note}${n} registered ${n === 1 ? "deployment" : "deployments"}, ${m} from the catalogue file.`;
}

// -- the form -----------------------------------------------------------------------------------

function backupRow() {
  const n = ++backupSerial;
  const field = (name, label, attrs = {}) =>
    h("div", { class: "field" },
      h("label", { for: `backup-${name}-${n}` }, label),
      h("input", { id: `backup-${name}-${n}`, autocomplete: "off", spellcheck: "false", dataset: { part: name },
        "aria-describedby": `backup-${name}-${n}-error`, ...attrs }),
      h("p", { class: "error", id: `backup-${name}-${n}-error`, role: "alert" }));
  const li = h("li", { class: "backup" },
    field("id", "Provider id", { placeholder: "backup-host", required: true }),
    field("base", "Base URL", { type: "url", placeholder: "https://other-host.example/v1" }),
    field("key", "API key", { type: "password" }),
    h("button", { type: "button", class: "quiet", onclick: () => { li.remove(); $("#add-backup").focus(); } }, "Remove this provider"));
  $("#deploy-backups").append(li);
  $("input", li).focus();
}

function text(selector, root) {
  return $(selector, root).value.trim();
}

/** The request body, with only what was filled in (the gateway has a default for the rest). */
function body() {
  const out = { id: text("#deploy-id"), api_base: text("#deploy-base") };
  const key = $("#deploy-key").value;
  if (key) out.api_key = key;
  if ($("#deploy-free").checked) out.free = true; // its price fields are empty then
  for (const [field, selector] of [["input_per_mtok", "#deploy-in"], ["output_per_mtok", "#deploy-out"], ["context_window", "#deploy-context"]]) {
    if (text(selector) !== "") out[field] = Number(text(selector));
  }
  if (text("#deploy-quality") !== "") out.quality_priors = { default: Number(text("#deploy-quality")) };
  const backups = $$("#deploy-backups li").map((li) => {
    const b = { id: text('[data-part="id"]', li) };
    if (text('[data-part="base"]', li)) b.api_base = text('[data-part="base"]', li);
    if ($('[data-part="key"]', li).value) b.api_key = $('[data-part="key"]', li).value;
    return b;
  });
  if (backups.length) out.providers = backups;
  return out;
}

/** The field a gateway's `param` names, if the form has it. */
function fieldOf(param) {
  if (!param) return null;
  const backup = /^providers\[(\d+)\]\.(\w+)/.exec(param);
  if (backup) {
    const li = $$("#deploy-backups li")[Number(backup[1])];
    return li ? $(`[data-part="${BACKUP_PARTS[backup[2]] ?? "id"}"]`, li) : null;
  }
  const selector = FIELDS[param.split(".")[0]];
  return selector ? $(selector) : null; // a field the form does not have: said at its foot
}

/** Show `message` at `field` (in its own error line, just below it), or at the foot of the form
 * when no field is at fault. */
function problem(message, field) {
  const slot = field ? document.getElementById(`${field.id}-error`) : null;
  if (!slot) {
    $("#deploy-error").textContent = message;
    field?.focus();
    return;
  }
  slot.textContent = message;
  field.setAttribute("aria-invalid", "true");
  field.setAttribute("aria-errormessage", slot.id);
  field.focus();
}

function clearProblems() {
  for (const el of $$("#deploy-form [aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
  for (const el of $$("#deploy-form .error")) el.textContent = "";
}

/** What is wrong with `el` before the gateway is asked, or null (said at the field, so without
 * its name). */
function invalid(el) {
  if (el.validity.valueMissing && (el.id === "deploy-in" || el.id === "deploy-out")) {
    return "Give the price, or check “Free” for a deployment that costs nothing.";
  }
  return el.checkValidity() ? null : el.validationMessage;
}

/** "Free" leaves no prices to give: the price fields are cleared and set aside. */
function freeChanged() {
  const free = $("#deploy-free").checked;
  for (const el of [$("#deploy-in"), $("#deploy-out")]) {
    el.disabled = free;
    el.required = !free;
    if (free) el.value = "";
  }
}

async function register(event) {
  event.preventDefault();
  clearProblems();
  for (const el of $$("#deploy-form input")) {
    const why = invalid(el);
    if (why) return problem(why, el);
  }
  let made;
  try {
    made = await call("v1/admin/deployments", { method: "POST", body: body() });
  } catch (exc) {
    return problem(`The deployment was not registered: ${exc.message}`, fieldOf(exc.param));
  }
  $("#deploy-form").reset();
  freeChanged();
  fill($("#deploy-backups"));
  await load(`Registered ${made.model}. `);
  onChange();
  $("#deployments-title").focus();
}

async function remove(deployment) {
  $("#remove-deployment-text").textContent =
    `Requests for ${deployment.model} will be refused from now on (404). Its settings and key are deleted.`;
  if (!(await confirmed($("#remove-deployment-dialog"), "remove"))) return;
  let note;
  try {
    await call(`v1/admin/deployments/${encodeURIComponent(deployment.id)}`, { method: "DELETE" });
    note = `Removed ${deployment.model}. `;
  } catch (exc) {
    note = `Could not remove ${deployment.model}: ${exc.message}. `;
  }
  await load(note);
  onChange();
  $("#deployments-title").focus();
}

/** `changed` is called after each registration or removal. */
export function init(changed) {
  onChange = changed;
  $("#deploy-form").addEventListener("submit", register);
  $("#deploy-free").addEventListener("change", freeChanged);
  $("#add-backup").addEventListener("click", backupRow);
}
