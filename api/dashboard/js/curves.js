// A sweep's chart: one uPlot curve per job of one log key per epoch, linear or log scale.
// Curves keep the sweep's point order (and their colour) whatever the ranking does.

import { epochAxis, fittedPlot, legendValue, tick } from "./chart.js";

const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4f46e5", "#65a30d"];
const HEIGHT = 340;
const MOST_IN_LEGEND = 24;  // past this many curves the table beside the chart names them

/** The colour of the curve of the sweep's `index`-th point. */
export function colour(index) {
  if (index < PALETTE.length) return PALETTE[index];
  // then hues a golden angle apart: neighbours stay far apart however many points
  return `hsl(${Math.round((index * 137.508) % 360)}, 65%, 45%)`;
}

export function curvesChart(container) {
  const frame = fittedPlot(container, HEIGHT, build);
  let curves = [];  // per point, in point order: {label, logs: [logs of epoch 0, 1, ...]}
  let key = null;

  function data() {
    const epochs = Math.max(0, ...curves.map((curve) => curve.logs.length));
    // epochs numbered from 0, as the API numbers them
    const x = Array.from({ length: epochs }, (_, i) => i);
    return [x, ...curves.map((curve) => x.map((_, i) => frame.plotted(curve.logs[i]?.[key])))];
  }

  function build() {
    frame.clear();
    container.replaceChildren();
    if (!key || curves.length === 0) return;
    frame.make({
      axes: [
        epochAxis(),
        {
          label: key, stroke: "#64748b", size: 64, values: (u, splits) => splits.map(tick),
          // (an undefined filter would replace uPlot's default, not leave it)
          grid: { stroke: "#e2e8f0", ...(frame.logScale && { filter: decadesWhenMany }) },
          ticks: frame.logScale ? { filter: decadesWhenMany } : {},
        },
      ],
      series: [
        { label: "epoch" },
        ...curves.map((curve, i) => ({
          label: curve.label,
          stroke: colour(i),
          width: 2,
          points: { size: 4 },
          value: legendValue,
        })),
      ],
      legend: { show: curves.length <= MOST_IN_LEGEND },
      // the curve nearest the cursor stands out, the others fade
      focus: { alpha: 0.25 },
      cursor: { focus: { prox: 24 }, drag: { x: true, y: false } },
    }, data());
  }

  return {
    /** One curve per point, in point order, named by the point's values. */
    setCurves(labels) {
      curves = labels.map((label) => ({ label, logs: [] }));
      build();
    },
    /** Add the epochs newly recorded for the `index`-th point. */
    append(index, rows) {
      if (rows.length === 0) return;
      for (const row of rows) curves[index].logs[row.epoch] = row.logs;
      frame.plot?.setData(data());
    },
    setKey(chosen) {
      key = chosen;
      build();
    },
    setLogScale: frame.setLogScale,
    /** Make the `index`-th curve stand out (null: none). */
    focus(index) {
      if (frame.plot?.series.length > 1) frame.plot.setSeries(index === null ? null : index + 1, { focus: true });
    },
    get epochs() {
      return Math.max(0, ...curves.map((curve) => curve.logs.length));
    },
    destroy: frame.destroy,
  };
}

/** On a log scale over many decades, a grid line per decade: one per multiple is a smear. */
function decadesWhenMany(u, splits) {
  const decade = (v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
  return splits.filter(decade).length >= 3 ? splits.map((v) => (decade(v) ? v : null)) : splits;
}
