// The console's charts, drawn by uPlot (vendor/uplot: MIT, ~50 kB, no dependencies).
//
// Every chart has its figures in a table or a list beside it: the canvas is for the eye, the
// tables are for screen readers and for copying.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h, usd } from "./dom.js";

// Line colours with at least 3:1 contrast on white (WCAG 1.4.11), told apart by dash as well.
export const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf", "#374151"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];
const INK = "#1f2937";
const GRID = "#e5e7eb";
const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const LABEL_CUTS = [150, 96, 64]; // CSS px: a model name too long for its room is cut to one of these with "…"

function axis(label, values) {
  return {
    label,
    values,
    stroke: INK,
    font: FONT,
    labelFont: FONT,
    grid: { stroke: GRID, width: 1 },
    ticks: { stroke: GRID, width: 1 },
  };
}

/** Re-size `plot()` to its container whenever the container's width changes. */
function follow(el, height, plot) {
  let width = -1;
  new ResizeObserver(() => {
    const next = el.clientWidth;
    const chart = plot();
    if (chart && next > 0 && next !== width) {
      width = next;
      chart.setSize({ width: next, height: height() });
    }
  }).observe(el);
}

const TICK_ROOM = 70; // CSS px a cost tick's label ("$0.00001") needs on the x axis

/** Powers of ten from `min` to `max`, with 2 and 5 times them when few decades share a wide axis,
 * and only every second (third…) decade when a narrow axis has no room for each one's label. */
export function decades(min, max, width) {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const steps = (hi - lo) * 3 * TICK_ROOM <= width ? [1, 2, 5] : [1];
  const out = [];
  for (let e = lo; e <= hi; e++) for (const m of steps) {
    const v = m * 10 ** e;
    if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
  }
  const every = Math.max(1, Math.ceil((out.length * TICK_ROOM) / Math.max(width, 1)));
  return out.filter((_, i) => i % every === 0);
}

const overlap = (a, b) => a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;

/**
 * Where each label goes, or null where it has no room: beside its point (right, left, above,
 * below, then the corners), inside `area`, clear of every label placed before it and of every
 * point. `labels` are [{x, y, widths, height, gap}] in priority order (the first is never moved
 * for a later one); `widths` are the label's widths from its full text to its shortest cut, the
 * first that has a place wins. `points` are [{x, y, r}]; all in one unit (canvas pixels). The
 * result: [{left, top, width, height, cut}] (`cut`: the index into `widths`) or null, per label.
 */
export function placeLabels(labels, area, points) {
  const placed = [];
  const blocks = points.map((p) => ({ left: p.x - p.r, top: p.y - p.r, width: 2 * p.r, height: 2 * p.r }));
  const right = area.left + area.width;
  const inside = (b) => b.left >= area.left && b.top >= area.top && b.left + b.width <= right && b.top + b.height <= area.top + area.height;
  const free = (b) => inside(b) && !placed.some((o) => overlap(o, b)) && !blocks.some((o) => overlap(o, b));
  return labels.map(({ x, y, widths, height: h, gap: g }) => {
    for (const [cut, w] of widths.entries()) {
      const centred = Math.min(Math.max(x - w / 2, area.left), right - w); // above or below, kept inside
      const spots = [
        [x + g, y - h / 2], [x - g - w, y - h / 2], [centred, y - g - h], [centred, y + g],
        [x + g, y - h - 1], [x + g, y + 1], [x - g - w, y - h - 1], [x - g - w, y + 1],
      ];
      for (const [left, top] of spots) {
        const box = { left, top, width: w, height: h, cut };
        if (free(box)) {
          placed.push(box);
          return box;
        }
      }
    }
    return null;
  });
}

/** `text`, cut to `max` wide (in `ctx`'s font) with an ellipsis. */
function fitText(ctx, text, max) {
  if (ctx.measureText(text).width <= max) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= max) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

/** "$0.0001": a tick needs no trailing zeros. */
export function tickUsd(v) {
  return v === null || v === undefined ? "" : `$${+v.toPrecision(2)}`;
}

/** The widest of an axis's tick labels, in CSS pixels, plus room for the ticks and the label. */
function axisSize(u, values) {
  const longest = Math.max(0, ...(values ?? []).map((v) => String(v).length));
  return Math.max(48, longest * 7.5 + 36);
}

function chartHeight(el) {
  return el.clientWidth < 480 ? 220 : 280;
}

/**
 * Predicted quality (y) against expected cost (x, log) of every candidate, with the chosen one
 * marked and the path the choice takes as cost_weight goes from 0 to 1.
 */
export class QualityCostChart {
  /** `note`: an element told which candidates' names had no room beside their points. */
  constructor(el, { note = null } = {}) {
    this.el = el;
    this.note = note;
    this.plot = null;
    this.labels = []; // the candidates' names, cheapest first
    this.quality = []; // their predicted quality, in the same order
    this.chosen = null;
    this.path = new Set();
    this.shown = []; // the labels drawn: [{model, text, left, top, width, height}], CSS pixels in the canvas
    this.leftOut = []; // the models whose label had no room
    follow(el, () => chartHeight(el), () => this.plot);
  }

  /** No decision to show: an empty chart until the next `update`. */
  clear(text = "") {
    this.plot?.destroy();
    this.plot = null;
    this.shown = [];
    this.leftOut = [];
    this.el.replaceChildren(text ? h("p", { class: "empty" }, text) : "");
    if (this.note) this.note.textContent = "";
  }

  /** `candidates`: [{model, quality, cost_usd}]; `chosen`: a model; `path`: the models chosen
   * at some cost_weight (any order). */
  update(candidates, chosen, path) {
    const sorted = [...candidates].sort((a, b) => a.cost_usd - b.cost_usd || b.quality - a.quality);
    const onPath = new Set(path);
    this.labels = sorted.map((c) => c.model);
    this.quality = sorted.map((c) => c.quality);
    this.chosen = chosen;
    this.path = onPath;
    const data = [
      sorted.map((c) => Math.max(c.cost_usd, 1e-9)),
      sorted.map((c) => c.quality),
      sorted.map((c) => (onPath.has(c.model) ? c.quality : null)),
      sorted.map((c) => (c.model === chosen ? c.quality : null)),
    ];
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.el.replaceChildren();
    const labels = this;
    this.plot = new uPlot(
      {
        width: Math.max(this.el.clientWidth, 200),
        height: chartHeight(this.el),
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: false, distr: 3, log: 10 },
          y: {
            range: (u, min, max) => [Math.max(0, Math.floor((min - 0.03) * 20) / 20), Math.min(1, Math.ceil((max + 0.03) * 20) / 20)],
          },
        },
        axes: [
          {
            ...axis("Expected cost per request (USD, log scale)", (u, splits) => splits.map(tickUsd)),
            splits: (u, i, min, max) => decades(min, max, u.bbox.width / uPlot.pxRatio),
          },
          { ...axis("Predicted quality", (u, splits) => splits.map((v) => v.toFixed(2))), size: 64 },
        ],
        series: [
          {},
          { label: "candidate", stroke: "#4b5563", paths: () => null, points: { show: true, size: 9, fill: "#ffffff", width: 2 } },
          { label: "path", stroke: "#b45309", width: 2.5, dash: [7, 4], spanGaps: true, points: { show: false } },
          { label: "chosen", stroke: "#1d4ed8", paths: () => null, points: { show: true, size: 17, fill: "#1d4ed8", width: 3 } },
        ],
        hooks: { draw: [(u) => labels.drawLabels(u)] },
      },
      data,
      this.el,
    );
  }

  /** Model names beside their points where they fit without touching another name or point:
   * the chosen model's first, then those on the path, then by quality. A name is cut with "…" to
   * the longest of LABEL_CUTS that has room; one with none is left out (the table lists them all). */
  drawLabels(u) {
    const ctx = u.ctx;
    const px = uPlot.pxRatio;
    ctx.save();
    ctx.font = FONT.replace("12px", `${12 * px}px`);
    ctx.textBaseline = "middle";
    ctx.textAlign = "left"; // uPlot leaves the axes' alignment behind
    const [xs, ys] = u.data;
    const rank = (i) => (this.labels[i] === this.chosen ? 0 : this.path.has(this.labels[i]) ? 1 : 2);
    const order = xs.map((_, i) => i).sort((a, b) => rank(a) - rank(b) || this.quality[b] - this.quality[a]);
    const at = (i) => ({ x: u.valToPos(xs[i], "x", true), y: u.valToPos(ys[i], "y", true) });
    const cuts = order.map((i) => [...new Set(LABEL_CUTS.map((max) => fitText(ctx, this.labels[i], max * px)))]);
    const pad = 2 * px;
    const boxes = placeLabels(
      order.map((i, k) => ({
        ...at(i),
        widths: cuts[k].map((text) => ctx.measureText(text).width + 2 * pad),
        height: 15 * px,
        gap: (this.labels[i] === this.chosen ? 11 : 7) * px, // clear of the chosen point's ring
      })),
      // the plot and the margins above and right of it, never over the axes' figures
      { left: u.bbox.left, top: 0, width: ctx.canvas.width - u.bbox.left, height: u.bbox.top + u.bbox.height },
      xs.map((_, i) => ({ ...at(i), r: (this.labels[i] === this.chosen ? 9 : 5) * px })),
    );
    this.shown = [];
    this.leftOut = [];
    order.forEach((i, k) => {
      const box = boxes[k];
      if (!box) {
        this.leftOut.push(this.labels[i]);
        return;
      }
      const text = cuts[k][box.cut];
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(box.left, box.top, box.width, box.height);
      ctx.fillStyle = INK;
      ctx.fillText(text, box.left + pad, box.top + box.height / 2);
      const css = (v) => v / px;
      this.shown.push({ model: this.labels[i], text, left: css(box.left), top: css(box.top), width: css(box.width), height: css(box.height) });
    });
    ctx.restore();
    if (this.note) {
      const n = this.leftOut.length;
      this.note.textContent = n
        ? `${n} ${n === 1 ? "name" : "names"} left off the chart where ${n === 1 ? "it" : "they"} would overlap (${this.leftOut.join(", ")}); the table below lists every candidate.`
        : "";
    }
  }
}

/**
 * Values over time, one line per group. `update(xs, groups)` with xs in unix seconds and groups
 * [{label, values}]; `format` renders the y values.
 */
export class TimeChart {
  constructor(el, { yLabel, format, tick = format }) {
    this.el = el;
    this.yLabel = yLabel;
    this.format = format;
    this.tick = tick;
    this.plot = null;
    this.key = "";
    follow(el, () => chartHeight(el), () => this.plot);
  }

  update(xs, groups, empty = "Nothing in this range.") {
    const key = groups.map((g) => g.label).join("\u0000");
    if (!xs.length || !groups.length) {
      this.plot?.destroy();
      this.plot = null;
      this.key = "";
      this.el.replaceChildren(Object.assign(document.createElement("p"), { className: "empty", textContent: empty }));
      return;
    }
    const data = [xs, ...groups.map((g) => g.values)];
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.el.replaceChildren();
    this.key = key;
    const format = this.format;
    const tick = this.tick;
    this.plot = new uPlot(
      {
        width: Math.max(this.el.clientWidth, 200),
        height: chartHeight(this.el),
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        axes: [axis(null), { ...axis(this.yLabel, (u, splits) => splits.map(tick)), size: axisSize }],
        scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [
          { label: "time" },
          ...groups.map((g, i) => ({
            label: g.label,
            stroke: PALETTE[i % PALETTE.length],
            dash: DASHES[i % DASHES.length],
            width: 2,
            value: (u, v) => (v === null || v === undefined ? "—" : format(v)),
            points: { show: true, size: 6 },
          })),
        ],
      },
      data,
      this.el,
    );
  }
}
