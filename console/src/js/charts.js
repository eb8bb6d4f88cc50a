// The console's charts, drawn by uPlot (vendor/uplot: MIT, ~50 kB, no dependencies).
//
// Every chart has its figures in a table or a list beside it: the canvas is for the eye, the
// tables are for screen readers and for copying.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { usd } from "./dom.js";

// Line colours with at least 3:1 contrast on white (WCAG 1.4.11), told apart by dash as well.
export const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf", "#374151"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];
const INK = "#1f2937";
const GRID = "#e5e7eb";
const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

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

/** Powers of ten from `min` to `max`, with 2 and 5 times them when few decades share a wide axis. */
function decades(min, max, width) {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const steps = (hi - lo) * 3 * 70 <= width ? [1, 2, 5] : [1];
  const out = [];
  for (let e = lo; e <= hi; e++) for (const m of steps) {
    const v = m * 10 ** e;
    if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
  }
  return out;
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
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.labels = [];
    follow(el, () => chartHeight(el), () => this.plot);
  }

  /** `candidates`: [{model, quality, cost_usd}]; `chosen`: a model; `path`: the models chosen
   * at some cost_weight (any order). */
  update(candidates, chosen, path) {
    const sorted = [...candidates].sort((a, b) => a.cost_usd - b.cost_usd || b.quality - a.quality);
    const onPath = new Set(path);
    this.labels = sorted.map((c) => c.model);
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

  /** Model names beside their points, nudged down when they would overlap. */
  drawLabels(u) {
    const ctx = u.ctx;
    const px = uPlot.pxRatio;
    ctx.save();
    ctx.font = FONT.replace("12px", `${12 * px}px`);
    ctx.textBaseline = "middle";
    ctx.textAlign = "left"; // uPlot leaves the axes' alignment behind
    const placed = [];
    const [xs, ys] = u.data;
    const right = u.bbox.left + u.bbox.width;
    for (let i = 0; i < xs.length; i++) {
      const x = u.valToPos(xs[i], "x", true);
      const y = u.valToPos(ys[i], "y", true);
      const text = this.labels[i];
      const width = ctx.measureText(text).width;
      const line = 14 * px;
      const gap = 13 * px; // clear of the chosen point's ring
      let left = x + gap + width > right ? x - gap - width : x + gap;
      left = Math.max(u.bbox.left + 2 * px, Math.min(left, right - width - 2 * px));
      let top = y - line / 2;
      for (let tries = 0; tries < 4 && placed.some((r) => r.l < left + width && left < r.l + r.w && r.t < top + line && top < r.t + line); tries++) {
        top += line;
      }
      placed.push({ l: left, t: top, w: width });
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(left - 2 * px, top, width + 4 * px, line);
      ctx.fillStyle = INK;
      ctx.fillText(text, left, top + line / 2);
    }
    ctx.restore();
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
