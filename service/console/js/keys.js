// Keys and deployments: the admin API for keys (POST/GET /v1/admin/keys, DELETE
// /v1/admin/keys/{id}); the deployments section is deployments.js.

import { call } from "./api.js";
import * as deployments from "./deployments.js";
import { $, $$, confirmed, copy, fill, h, int, labelCells, usd, when } from "./dom.js";

let keys = [];

// -- keys -----------------------------------------------------------------------------------------

function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

/** The models a key may use: "all", the one model, or a count that opens the list in a row of its
 * own below (a long list never widens the table). */
function modelsCell(k, listId) {
  if (!k.models) return h("td", {}, "all");
  if (k.models.length === 1) return h("td", {}, h("span", { class: "one-model", title: k.models[0] }, k.models[0]));
  const toggle = h("button", {
    type: "button",
    class: "link",
    title: k.models.join(", "),
    "aria-expanded": "false",
    "aria-controls": listId,
    "aria-label": `${k.models.length} models for ${k.name || k.id}`, // aria-expanded says if they show
    onclick: () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      $(`#${listId}`).hidden = !open;
    },
  }, `${k.models.length} models`);
  return h("td", {}, toggle);
}

const COLUMNS = 8;

/** "2025-06-01", never broken at its hyphens. */
const day = (unixSeconds) => h("span", { class: "nowrap" }, when(unixSeconds).slice(0, 10));

function keyRows(k) {
  const listId = `key-models-${k.id}`;
  const row = h("tr", { dataset: { key: k.id }, class: k.revoked ? "revoked" : null },
    h("th", { scope: "row" },
      k.name || "(no name)", k.admin ? h("span", { class: "tag" }, "admin") : null,
      h("code", { class: "key-id" }, k.id)),
    h("td", {}, k.tenant),
    modelsCell(k, listId),
    h("td", { class: "num" }, k.rpm === null ? "—" : int(k.rpm)),
    h("td", { class: "num" }, k.tpm === null ? "—" : int(k.tpm)),
    h("td", { class: "num" }, k.budget_usd === null ? "—" : usd(k.budget_usd)),
    h("td", {},
      h("span", { class: "key-status" }, k.revoked ? "revoked" : "active"),
      k.revoked
        ? h("span", { class: "since", title: `revoked ${when(k.revoked)}, created ${when(k.created)}` }, day(k.revoked))
        : h("span", { class: "since", title: `created ${when(k.created)}` }, "since ", day(k.created))),
    h("td", { class: "actions" },
      k.revoked
        ? null
        : h("button", { type: "button", class: "danger small", "aria-label": `Revoke ${k.name || k.id}`, onclick: () => revoke(k) }, "Revoke")));
  if (!k.models || k.models.length < 2) return [row];
  const list = h("tr", { id: listId, class: "models-row", hidden: true, dataset: { modelsOf: k.id } },
    h("td", { colspan: COLUMNS }, h("span", { class: "hint" }, "Allowed models: "), k.models.join(", ")));
  return [row, list];
}

function renderKeys() {
  const all = $("#show-revoked").checked;
  const list = keys.filter((k) => all || k.revoked === null);
  fill(
    $("#keys-table tbody"),
    list.length ? list.flatMap(keyRows) : h("tr", {}, h("td", { colspan: COLUMNS, class: "empty" }, "No keys yet.")),
  );
  labelCells($("#keys-table"));
}

/** Re-read the keys; `note` goes before the count in the status line. */
async function loadKeys(note = "") {
  try {
    keys = (await call("v1/admin/keys")).data.sort((a, b) => b.created - a.created || a.id.localeCompare(b.id));
    const active = keys.filter((k) => !k.revoked).length;
    $("#keys-status").textContent = `${note}${active} active ${active === 1 ? "key" : "keys"}.`;
    renderKeys();
  } catch (exc) {
    $("#keys-status").textContent = `Could not list the keys: ${exc.message}`;
  }
}

async function create(event) {
  event.preventDefault();
  const error = $("#key-form-error");
  error.textContent = "";
  const body = { tenant: $("#key-tenant").value.trim(), name: $("#key-name").value.trim() };
  const allowed = $$("#key-models input").filter((b) => b.checked).map((b) => b.value);
  if (allowed.length) body.models = allowed;
  for (const [field, id] of [["rpm", "#key-rpm"], ["tpm", "#key-tpm"], ["budget_usd", "#key-budget"]]) {
    const value = numberOrNull(id);
    if (value !== null) body[field] = value;
  }
  if ($("#key-admin").checked) body.admin = true;
  if (!body.tenant) {
    error.textContent = "The tenant is required.";
    $("#key-tenant").focus();
    return;
  }
  for (const id of ["#key-rpm", "#key-tpm", "#key-budget"]) {
    if (!$(id).checkValidity()) {
      error.textContent = `${$(`label[for="${id.slice(1)}"]`).textContent}: ${$(id).validationMessage}`;
      $(id).focus();
      return;
    }
  }
  try {
    const made = await call("v1/admin/keys", { method: "POST", body });
    $("#new-key-secret").textContent = made.key;
    $("#copy-key-status").textContent = "";
    const panel = $("#new-key");
    panel.hidden = false;
    panel.dataset.key = made.id;
    panel.focus();
    $("#key-form").reset();
    await loadKeys();
  } catch (exc) {
    error.textContent = `The key was not created: ${exc.message}`;
  }
}

async function revoke(key) {
  $("#revoke-dialog-text").textContent =
    `Requests with “${key.name || key.id}” (${key.id}, tenant ${key.tenant}) will be refused from now on. This cannot be undone.`;
  if (!(await confirmed($("#revoke-dialog"), "revoke"))) return;
  let note;
  try {
    await call(`v1/admin/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
    note = `Revoked ${key.name || key.id}. `;
  } catch (exc) {
    note = `Could not revoke ${key.id}: ${exc.message}. `;
  }
  await loadKeys(note);
  $("#keys-list-title").focus?.();
}

// -- set-up -------------------------------------------------------------------------------------

/** The models a new key may be limited to (GET /v1/models), re-read after a deployment changes. */
async function loadModels() {
  let models = [];
  try {
    models = (await call("v1/models")).data;
  } catch (exc) {
    $("#keys-status").textContent = `Could not list the models: ${exc.message}`;
  }
  const checked = new Set($$("#key-models input").filter((b) => b.checked).map((b) => b.value));
  fill(
    $("#key-models"),
    models.map((m, i) =>
      h("li", {},
        h("input", { type: "checkbox", id: `key-model-${i}`, value: m.id, checked: checked.has(m.id) }),
        h("label", { for: `key-model-${i}` }, m.id))),
  );
}

export async function init() {
  $("#key-form").addEventListener("submit", create);
  $("#show-revoked").addEventListener("change", renderKeys);
  $("#copy-key").addEventListener("click", async () => {
    $("#copy-key-status").textContent = await copy($("#new-key-secret").textContent, $("#new-key-secret"));
  });
  deployments.init(loadModels);
  await loadModels();
}

/** Each visit re-reads the keys and the deployments. */
export async function show() {
  await Promise.all([loadKeys(), deployments.load()]);
}
