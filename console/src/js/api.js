// Calls to the gateway's documented HTTP API, with the admin key in the x-api-key header.
//
// The key lives in sessionStorage (this tab only, gone when it closes); it is never put in a URL,
// a form submission or a log line.

const KEY_SLOT = "pureai.console.key";

// The gateway's root, relative to the console's own address (/ui/ -> /), so a proxy prefix works.
const ROOT = new URL("../", document.baseURI);

export function storedKey() {
  return sessionStorage.getItem(KEY_SLOT);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_SLOT, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_SLOT);
}

/** An error answer: `status`, and the OpenAI-shaped `error` object when the body had one. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the gateway answered ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.type = error?.type ?? null;
    this.code = error?.code ?? null;
    this.param = error?.param ?? null;
  }
}

const listeners = new Set();

/** Call `fn(error)` whenever the gateway refuses the stored key (401). */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), ROOT);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(name, String(value));
  }
  return u;
}

function headers(key, json) {
  const h = { "x-api-key": key ?? storedKey() ?? "" };
  if (json) h["content-type"] = "application/json";
  return h;
}

async function refused(response) {
  let error = null;
  try {
    error = (await response.json())?.error ?? null;
  } catch {
    // not JSON: the status says enough
  }
  const exc = new ApiError(response.status, error);
  if (response.status === 401) for (const fn of listeners) fn(exc);
  return exc;
}

/**
 * One JSON call. `options`: method, query, body (sent as JSON), signal, key (instead of the
 * stored one, to check a key before keeping it). Resolves to the parsed body; rejects with
 * ApiError for an error answer.
 */
export async function call(path, options = {}) {
  const { method = "GET", query, body, signal, key } = options;
  const response = await fetch(url(path, query), {
    method,
    headers: headers(key, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw await refused(response);
  return response.status === 204 ? null : response.json();
}

/**
 * A streamed call (SSE). Yields each `data:` event's parsed JSON until `[DONE]`; an event
 * carrying `error` (a stream that broke after it began) rejects with an ApiError. `onOpen` gets
 * the Response once its headers are in.
 */
export async function* stream(path, body, { signal, onOpen } = {}) {
  const response = await fetch(url(path), {
    method: "POST",
    headers: headers(undefined, true),
    body: JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw await refused(response);
  onOpen?.(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (!data) continue; // a comment or a keep-alive
        if (data === "[DONE]") return;
        const event = JSON.parse(data);
        if (event.error) throw new ApiError(event.error.status ?? 502, event.error);
        yield event;
      }
    }
  } finally {
    reader.cancel().catch(() => {}); // closes the connection when the reader stops early
  }
  throw new ApiError(502, { message: "the stream ended without [DONE]", code: "stream_incomplete" });
}
