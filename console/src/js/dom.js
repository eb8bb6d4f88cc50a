// Small DOM and formatting helpers shared by the pages.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/**
 * h("td", {class: "num", dataset: {model: "x"}}, "text", child) — an element with attributes
 * (`on*` functions become listeners, `dataset` fills data-*) and children (strings become text).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Give each body cell of `table` its column's heading as data-label, which a narrow screen shows
 * beside the value when the table reflows (app.css, `table.reflow`). Cells spanning columns and
 * columns whose heading is only for screen readers get none. */
export function labelCells(table) {
  const headings = $$("thead th", table).map((th) => (th.querySelector(".visually-hidden") ? "" : th.textContent.trim()));
  for (const tr of $$("tbody tr", table)) {
    [...tr.children].forEach((cell, i) => {
      if (cell.tagName === "TD" && !cell.hasAttribute("colspan") && headings[i]) cell.dataset.label = headings[i];
    });
  }
}

export function usd(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value === 0) return "$0";
  const abs = Math.abs(value);
  if (abs >= 1) return `$${value.toFixed(2)}`;
  if (abs >= 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toPrecision(3)}`;
}

export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

export function pct(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${(value * 100).toFixed(digits)}%`;
}

export function int(value) {
  return value === null || value === undefined ? "—" : Math.round(value).toLocaleString("en-US");
}

export function when(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Put `text` on the clipboard; when the browser refuses (plain http on a LAN address), select
 * the text of `fallback` so that Ctrl+C copies it. Resolves to the message to show. */
export async function copy(text, fallback) {
  try {
    await navigator.clipboard.writeText(text);
    return "Copied.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(fallback);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

/** Show the modal `dialog`; resolves to whether it was closed with its button of value `value`. */
export async function confirmed(dialog, value) {
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  return dialog.returnValue === value;
}

/** `fn` called at most once per `wait` ms of quiet. */
export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
