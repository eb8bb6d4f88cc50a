// The catalogue snippet (TOML) that registers a pureai/<id> deployment, checked as the catalogue
// loader checks it (models_registry/_validate.py), so that a snippet shown without errors loads.

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROVIDER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A TOML basic string. */
export function str(value) {
  const escaped = value.replace(/[\\"\u0000-\u001f\u007f]/g, (c) => {
    const named = { "\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" }[c];
    return named ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return `"${escaped}"`;
}

function isUrl(value) {
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && u.host !== "";
  } catch {
    return false;
  }
}

function number(raw, name, errors, { min = 0, max = Infinity, integer = false } = {}) {
  if (raw === "" || raw === null || raw === undefined) return null;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    errors.push(`${name} must be ${integer ? "a whole number" : "a number"} of at least ${min}${max < Infinity ? ` and at most ${max}` : ""}.`);
    return null;
  }
  return n;
}

/**
 * `spec`: {id (after "pureai/"), api_base, api_key_env, input_per_mtok, output_per_mtok,
 * context_window, quality, backups: [{id, api_base, api_key_env}]}. Returns {text, errors}.
 */
export function snippet(spec) {
  const errors = [];
  const name = spec.id.replace(/^pureai\//, "");
  if (!name) errors.push("Give the deployment a model id.");
  else if (/\s/.test(name)) errors.push("The model id cannot contain spaces.");
  if (!isUrl(spec.api_base)) errors.push("The base URL must be an http:// or https:// URL.");
  if (spec.api_key_env && !ENV_NAME.test(spec.api_key_env)) errors.push("The API key variable must be a NAME such as MY_DEPLOYMENT_KEY.");
  const input = number(spec.input_per_mtok, "The input price", errors);
  const output = number(spec.output_per_mtok, "The output price", errors);
  const context = number(spec.context_window, "The context window", errors, { min: 1, integer: true });
  const quality = number(spec.quality, "The quality prior", errors, { max: 1 }) ?? 0.5;

  const lines = [
    "[[models]]",
    `id = ${str(`pureai/${name}`)}`,
    'owned_by = "pureai"',
  ];
  if (input !== null) lines.push(`input_per_mtok = ${input}`);
  if (output !== null) lines.push(`output_per_mtok = ${output}`);
  if (context !== null) lines.push(`context_window = ${context}`);
  lines.push(`api_base = ${str(spec.api_base)}`);
  if (spec.api_key_env) lines.push(`api_key_env = ${str(spec.api_key_env)}`);
  lines.push(`quality_priors = { default = ${quality} }`, "", "[[models.providers]]", 'id = "pureai"', 'type = "primary"');

  const seen = new Set(["pureai"]);
  (spec.backups || []).forEach((b, i) => {
    const which = `Backup provider ${i + 1}`;
    if (!PROVIDER_ID.test(b.id)) errors.push(`${which}: give it an id of letters, digits, ".", "_" or "-".`);
    else if (seen.has(b.id)) errors.push(`${which}: the id ${b.id} is used twice.`);
    seen.add(b.id);
    if (!isUrl(b.api_base)) errors.push(`${which}: the base URL must be an http:// or https:// URL.`);
    if (b.api_key_env && !ENV_NAME.test(b.api_key_env)) errors.push(`${which}: the API key variable must be a NAME.`);
    lines.push("", "[[models.providers]]", `id = ${str(b.id)}`, 'type = "backup"', `api_base = ${str(b.api_base)}`);
    if (b.api_key_env) lines.push(`api_key_env = ${str(b.api_key_env)}`);
  });
  return { text: lines.join("\n") + "\n", errors };
}
