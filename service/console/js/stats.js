// Figures of the Usage page, computed from GET /v1/usage's ledger rows. Pure functions.

/** "decision" (a /v1/router call with execute: false), "error" (status >= 400) or "executed". */
export function kind(row) {
  if (row.status >= 400) return "error";
  if (row.endpoint === "router" && row.attempts === 0) return "decision";
  return "executed";
}

/** The p-th percentile (0-100) of `values` by linear interpolation; null when empty. */
export function percentile(values, p) {
  const v = values.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const rank = (p / 100) * (v.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

const STEPS = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400];

/** A bucket width (seconds) giving at most ~60 buckets over `span` seconds. */
export function bucketWidth(span) {
  return STEPS.find((s) => span / s <= 60) ?? 86400;
}

/**
 * Sums per time bucket and group: `xs` (bucket starts, unix seconds) and [{label, values}],
 * biggest total first. `group(row)` names a row's group (null leaves the row out); `value(row)`
 * is what it adds.
 */
export function overTime(rows, start, end, group, value) {
  const width = bucketWidth(end - start);
  const first = Math.floor(start / width) * width;
  const n = Math.max(1, Math.ceil((end - first) / width));
  const xs = Array.from({ length: n }, (_, i) => first + i * width);
  const sums = new Map();
  for (const row of rows) {
    const name = group(row);
    if (name === null || name === undefined) continue;
    const i = Math.min(n - 1, Math.max(0, Math.floor((row.created - first) / width)));
    if (!sums.has(name)) sums.set(name, new Array(n).fill(0));
    sums.get(name)[i] += value(row);
  }
  const groups = [...sums.entries()]
    .map(([label, values]) => ({ label, values, total: values.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
  return { xs, groups, width };
}

export const OTHER_MODELS = "other models";

/**
 * The "Spend per model" series of a row: its model when `known` (a Set of the catalogue's and
 * the registered deployments' ids) has it; "other models" for spend on any other (a deployment
 * removed since); null, left out, for a decision-only call or a request that cost nothing
 * naming a model the gateway does not have (a client's typo is not a series).
 */
export function spendSeries(known) {
  return (row) => {
    if (kind(row) === "decision") return null;
    if (row.model !== null && known.has(row.model)) return row.model;
    return row.total_cost_usd > 0 ? OTHER_MODELS : null;
  };
}

function rates(rows) {
  const errors = rows.filter((r) => r.status >= 400).length;
  const reached = rows.filter((r) => r.attempts >= 1);
  const fallbacks = reached.filter((r) => r.attempts > 1).length;
  return {
    errorRate: rows.length ? errors / rows.length : null,
    fallbackRate: reached.length ? fallbacks / reached.length : null,
  };
}

/** The page's headline figures. Decisions-only calls count apart from requests. */
export function totals(rows) {
  const requests = rows.filter((r) => kind(r) !== "decision");
  const executed = rows.filter((r) => kind(r) === "executed");
  const latency = executed.map((r) => r.latency_ms);
  const ttft = executed.filter((r) => r.stream).map((r) => r.ttft_ms);
  return {
    requests: requests.length,
    decisions: rows.length - requests.length,
    spend: rows.reduce((a, r) => a + r.total_cost_usd, 0),
    promptTokens: rows.reduce((a, r) => a + r.prompt_tokens, 0),
    completionTokens: rows.reduce((a, r) => a + r.completion_tokens, 0),
    ...rates(requests),
    latency: [50, 95, 99].map((p) => percentile(latency, p)),
    ttft: [50, 95, 99].map((p) => percentile(ttft, p)),
  };
}

/** Per model: requests, error and fallback rates, spend, latency and TTFT percentiles. */
export function perModel(rows) {
  const by = new Map();
  for (const row of rows) {
    if (kind(row) === "decision") continue;
    const name = row.model ?? "(none)";
    if (!by.has(name)) by.set(name, []);
    by.get(name).push(row);
  }
  return [...by.entries()]
    .map(([model, list]) => {
      const ok = list.filter((r) => kind(r) === "executed");
      return {
        model,
        requests: list.length,
        ...rates(list),
        spend: list.reduce((a, r) => a + r.total_cost_usd, 0),
        latency: [50, 95, 99].map((p) => percentile(ok.map((r) => r.latency_ms), p)),
        ttft: [50, 95, 99].map((p) => percentile(ok.filter((r) => r.stream).map((r) => r.ttft_ms), p)),
      };
    })
    .sort((a, b) => b.requests - a.requests || a.model.localeCompare(b.model));
}

/** Per key: requests, tokens and spend. */
export function perKey(rows) {
  const by = new Map();
  for (const row of rows) {
    if (kind(row) === "decision") continue;
    const t = by.get(row.key_id) ?? { key: row.key_id, requests: 0, promptTokens: 0, completionTokens: 0, spend: 0 };
    t.requests += 1;
    t.promptTokens += row.prompt_tokens;
    t.completionTokens += row.completion_tokens;
    t.spend += row.total_cost_usd;
    by.set(row.key_id, t);
  }
  return [...by.values()].sort((a, b) => b.spend - a.spend || b.requests - a.requests);
}

/** Where /v1/router sent the traffic it executed: [{model, sent, share, decided}], most first. */
export function routerShare(rows) {
  const by = new Map();
  let sent = 0;
  for (const row of rows) {
    if (!row.routed || !row.model) continue;
    const t = by.get(row.model) ?? { model: row.model, sent: 0, decided: 0 };
    const k = kind(row);
    if (k === "executed") {
      t.sent += 1;
      sent += 1;
    } else if (k === "decision") {
      t.decided += 1;
    }
    by.set(row.model, t);
  }
  return [...by.values()]
    .map((t) => ({ ...t, share: sent ? t.sent / sent : 0 }))
    .sort((a, b) => b.sent - a.sent || b.decided - a.decided || a.model.localeCompare(b.model));
}

export const CSV_COLUMNS = [
  "request_id", "created", "key_id", "tenant", "endpoint", "model", "provider", "status", "stream",
  "routed", "attempts", "prompt_tokens", "completion_tokens", "cached_tokens", "input_cost_usd",
  "output_cost_usd", "cache_input_cost_usd", "total_cost_usd", "latency_ms", "ttft_ms", "error",
];

function cell(value) {
  if (value === null || value === undefined) return "";
  const text = String(value);
  // Quote what CSV needs quoted; defuse spreadsheet formulas in text cells.
  const safe = /^[=+\-@\t\r]/.test(text) && typeof value === "string" ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The rows as CSV (RFC 4180, CRLF), `created` as ISO 8601 UTC. */
export function csv(rows) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const row of rows) {
    lines.push(
      CSV_COLUMNS.map((c) => cell(c === "created" ? new Date(row.created * 1000).toISOString() : row[c])).join(","),
    );
  }
  return lines.join("\r\n") + "\r\n";
}
