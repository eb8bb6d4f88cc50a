// Keys and deployments: the admin API (POST/GET /v1/admin/keys, DELETE /v1/admin/keys/{id}),
// the catalogue's pureai/ deployments (GET /v1/models, GET /v1/providers) and a form writing the
// catalogue snippet that registers a new one (the catalogue is a file: there is no API for it).

import { call } from "./api.js";
import { $, $$, copy, fill, h, int, usd, when } from "./dom.js";
import { snippet } from "./toml.js";

let keys = [];
let backupSerial = 0;
let touched = false; // the deployment form's problems show once someone has typed in it

// -- keys -----------------------------------------------------------------------------------------

function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function renderKeys() {
  const all = $("#show-revoked").checked;
  const list = keys.filter((k) => all || k.revoked === null);
  fill(
    $("#keys-table tbody"),
    list.length
      ? list.map((k) =>
          h("tr", { dataset: { key: k.id }, class: k.revoked ? "revoked" : null },
            h("th", { scope: "row" }, k.name || "(no name)", k.admin ? h("span", { class: "tag" }, "admin") : null),
            h("td", {}, h("code", {}, k.id)),
            h("td", {}, k.tenant),
            h("td", {}, k.models ? k.models.join(", ") : "all"),
            h("td", { class: "num" }, k.rpm === null ? "—" : int(k.rpm)),
            h("td", { class: "num" }, k.tpm === null ? "—" : int(k.tpm)),
            h("td", { class: "num" }, k.budget_usd === null ? "—" : usd(k.budget_usd)),
            h("td", {}, when(k.created)),
            h("td", { class: "key-status" }, k.revoked ? `revoked ${when(k.revoked)}` : "active"),
            h("td", {},
              k.revoked
                ? null
                : h("button", { type: "button", class: "danger small", "aria-label": `Revoke ${k.name || k.id}`, onclick: () => revoke(k) }, "Revoke"))))
      : h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No keys yet.")),
  );
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
  const dialog = $("#revoke-dialog");
  $("#revoke-dialog-text").textContent =
    `Requests with “${key.name || key.id}” (${key.id}, tenant ${key.tenant}) will be refused from now on. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "revoke") return;
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

// -- deployments --------------------------------------------------------------------------------

async function loadDeployments(models) {
  const custom = models.filter((m) => m.id.startsWith("pureai/"));
  const rows = await Promise.all(
    custom.map(async (m) => {
      try {
        return { model: m, providers: (await call("v1/providers", { query: { model: m.id } })).providers };
      } catch (exc) {
        return { model: m, providers: [], error: exc.message };
      }
    }),
  );
  fill(
    $("#deployments-table tbody"),
    rows.length
      ? rows.map(({ model, providers, error }) =>
          h("tr", { dataset: { model: model.id } },
            h("th", { scope: "row" }, model.id),
            h("td", {}, model.owned_by),
            h("td", {}, error ?? providers.map((p) => `${p.id} (${p.type}${p.enabled ? "" : ", disabled"})`).join(", "))))
      : h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No pureai/ deployments in this gateway's catalogue.")),
  );
}

function backupRow() {
  const n = ++backupSerial;
  const field = (name, label, attrs = {}) =>
    h("div", { class: "field" },
      h("label", { for: `backup-${name}-${n}` }, label),
      h("input", { id: `backup-${name}-${n}`, autocomplete: "off", spellcheck: "false", dataset: { part: name }, oninput: renderSnippet, ...attrs }));
  const li = h("li", { class: "backup" },
    field("id", "Provider id", { placeholder: "backup-host" }),
    field("base", "Base URL", { type: "url", placeholder: "https://other-host.example/v1" }),
    field("env", "API key environment variable", { placeholder: "OTHER_HOST_KEY" }),
    h("button", { type: "button", class: "quiet", onclick: () => { li.remove(); renderSnippet(); } }, "Remove this provider"));
  $("#deploy-backups").append(li);
  $("input", li).focus();
}

function renderSnippet() {
  const backups = $$("#deploy-backups li").map((li) => ({
    id: $('[data-part="id"]', li).value.trim(),
    api_base: $('[data-part="base"]', li).value.trim(),
    api_key_env: $('[data-part="env"]', li).value.trim(),
  }));
  const { text, errors } = snippet({
    id: $("#deploy-id").value.trim(),
    api_base: $("#deploy-base").value.trim(),
    api_key_env: $("#deploy-key-env").value.trim(),
    input_per_mtok: $("#deploy-in").value,
    output_per_mtok: $("#deploy-out").value,
    context_window: $("#deploy-context").value,
    quality: $("#deploy-quality").value,
    backups,
  });
  $("#deploy-toml").textContent = text;
  $("#deploy-error").textContent = touched ? errors.join(" ") : "";
  $("#copy-toml").disabled = errors.length > 0;
}

// -- set-up -------------------------------------------------------------------------------------

export async function init() {
  $("#key-form").addEventListener("submit", create);
  $("#show-revoked").addEventListener("change", renderKeys);
  $("#copy-key").addEventListener("click", async () => {
    $("#copy-key-status").textContent = await copy($("#new-key-secret").textContent, $("#new-key-secret"));
  });
  $("#deploy-form").addEventListener("input", () => {
    touched = true;
    renderSnippet();
  });
  $("#deploy-form").addEventListener("submit", (e) => e.preventDefault());
  $("#add-backup").addEventListener("click", () => {
    backupRow();
    renderSnippet();
  });
  $("#copy-toml").addEventListener("click", async () => {
    $("#copy-toml-status").textContent = await copy($("#deploy-toml").textContent, $("#deploy-toml"));
  });
  renderSnippet();
  let models = [];
  try {
    models = (await call("v1/models")).data;
  } catch (exc) {
    $("#keys-status").textContent = `Could not list the models: ${exc.message}`;
  }
  fill(
    $("#key-models"),
    models.map((m, i) =>
      h("li", {},
        h("input", { type: "checkbox", id: `key-model-${i}`, value: m.id }),
        h("label", { for: `key-model-${i}` }, m.id))),
  );
  await loadDeployments(models);
}

/** Each visit re-reads the keys. */
export async function show() {
  await loadKeys();
}
