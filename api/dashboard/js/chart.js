// The loss curve: one uPlot chart of the chosen log keys per epoch, linear or log scale.
// uPlot (vendored, MIT) is loaded by index.html as the global `uPlot`.

import { h, setChildren } from "./dom.js";

const COLOURS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"];
const HEIGHT = 300;

export function lossChart(container) {
  const frame = fittedPlot(container, HEIGHT, build);
  let epochs = [];  // [{epoch, logs}]
  let keys = [];

  function data() {
    // epochs numbered from 0, as the API numbers them
    return [epochs.map((row) => row.epoch), ...keys.map((key) => epochs.map((row) => frame.plotted(row.logs[key])))];
  }

  function build() {
    frame.clear();
    if (keys.length === 0) {
      setChildren(container, h("p", { className: "state" }, "Choose a series to plot."));
      return;
    }
    container.replaceChildren();
    const many = epochs.length > 60;
    frame.make({
      axes: [
        epochAxis(),
        { stroke: "#64748b", grid: { stroke: "#e2e8f0" }, size: 64, values: (u, splits) => splits.map(tick) },
      ],
      series: [
        { label: "epoch" },
        ...keys.map((key, i) => ({
          label: key,
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          dash: key.startsWith("val_") ? [6, 4] : undefined,
          points: { show: !many, size: 5 },
          value: legendValue,
        })),
      ],
      cursor: { drag: { x: true, y: false } },
    }, data());
  }

  return {
    /** Add newly recorded epochs (in order, none repeated). */
    append(rows) {
      if (rows.length === 0) return;
      const hadPoints = epochs.length <= 60;
      epochs = epochs.concat(rows);
      // past 60 epochs the point markers give way to the line alone: a new chart, once
      if (!frame.plot || hadPoints !== epochs.length <= 60) build();
      else frame.plot.setData(data());
    },
    setSeries(chosen) {
      keys = chosen;
      build();
    },
    setLogScale: frame.setLogScale,
    get points() {
      return epochs.length;
    },
    destroy: frame.destroy,
  };
}

/** The one uPlot of a chart: as wide as its container whatever the window does, on a
 * linear or log scale, made anew (by `build`) when what it plots changes. */
export function fittedPlot(container, height, build) {
  let plot = null;
  let logScale = false;
  const resize = new ResizeObserver(() => {
    if (plot && container.clientWidth > 0 && Math.abs(plot.width - container.clientWidth) > 1) {
      plot.setSize({ width: container.clientWidth, height });
    }
  });
  resize.observe(container);
  return {
    get plot() {
      return plot;
    },
    get logScale() {
      return logScale;
    },
    setLogScale(on) {
      logScale = on;
      build();
    },
    /** A value as plotted: none where the epoch logged none or a log scale cannot show it. */
    plotted(v) {
      return v === null || v === undefined || (logScale && v <= 0) ? null : v;
    },
    make(options, data) {
      const scales = { x: { time: false }, y: { distr: logScale ? 3 : 1 } };
      plot = new uPlot({ width: Math.max(container.clientWidth, 200), height, scales, ...options }, data, container);
      // the page's tests read the plotted points through this handle
      window.trainqChart = plot;
    },
    clear() {
      plot?.destroy();
      plot = null;
    },
    destroy() {
      resize.disconnect();
      plot?.destroy();
      if (window.trainqChart === plot) window.trainqChart = undefined;
    },
  };
}

// epochs are whole: ticks 1, 2, 5, 10, 20, 50... apart, never a fraction
const EPOCH_STEPS = [1, 2, 5].flatMap((step) => [1, 10, 100, 1000, 10000, 100000].map((scale) => step * scale)).sort((a, b) => a - b);

/** The x axis of a chart of epochs: whole-number ticks only. */
export function epochAxis() {
  return { label: "epoch", stroke: "#64748b", grid: { stroke: "#e2e8f0" }, incrs: EPOCH_STEPS, values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : "")) };
}

/** Whether values span more than two decades: a loss falling from 10 to 1e-6 is flat on
 * a linear scale after its first epochs, so such a chart opens on a log scale. */
export function spansDecades(values, decades = 2) {
  const positive = values.filter((v) => typeof v === "number" && v > 0);
  if (positive.length < 2) return false;
  return Math.log10(Math.max(...positive) / Math.min(...positive)) > decades;
}

/** A legend's value: five significant digits, a dash where an epoch has none. */
export function legendValue(u, v) {
  return v === null || v === undefined ? "–" : Number(v.toPrecision(5)).toString();
}

/** An axis label: short, exponent form far from 1. */
export function tick(value) {
  if (value === null) return "";
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5) ? value.toExponential(0) : String(Number(value.toPrecision(3)));
}
