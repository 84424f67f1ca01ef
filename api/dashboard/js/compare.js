// Jobs side by side: the curves of the jobs picked in the list (#/compare?jobs=ID,ID,...),
// one log key at a time, overlaid on one chart, as a sweep's page overlays its points.

import { api } from "./api.js";
import { spansDecades } from "./chart.js";
import { colour, curvesChart } from "./curves.js";
import { byLogKey } from "./job.js";
import { h, setChildren, setText, toggle } from "./dom.js";

export function compareView(root, { ids, live }) {
  const keyPicker = h("select", { id: "compare-key", "aria-label": "Log key" });
  const logToggle = h("input", { type: "checkbox", id: "log-scale" });
  const chartBox = h("div", { className: "chart", id: "compare-chart" });
  const legend = h("ul", { className: "compare-legend" });
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  setChildren(root,
    h("a", { className: "back", href: "#/" }, "← All jobs"),
    h("div", { className: "page-head" }, h("h1", {}, `Comparing ${ids.length} jobs`)),
    banner,
    h("section", { className: "card" },
      h("div", { className: "card-head" }, h("h2", {}, "Curves"),
        h("div", { className: "chart-controls" }, keyPicker, h("label", { className: "check" }, logToggle, "log scale"))),
      chartBox, legend));
  document.title = "Compare · trainq";

  const chart = curvesChart(chartBox);
  let stopped = false;
  logToggle.addEventListener("change", () => chart.setLogScale(logToggle.checked));

  (async () => {
    const jobs = await Promise.all(ids.map((id) => api(`/v1/jobs/${encodeURIComponent(id)}`)));
    const histories = await Promise.all(ids.map((id) => api(`/v1/jobs/${encodeURIComponent(id)}/history`)));
    if (stopped) return;
    const keys = [...new Set(histories.flatMap((history) => history.epochs.flatMap((row) => Object.keys(row.logs))))].sort(byLogKey);
    const key = keys.includes("loss") ? "loss" : keys[0];
    setChildren(keyPicker, keys.map((k) => h("option", { value: k, selected: k === key }, k)));
    keyPicker.addEventListener("change", () => chart.setKey(keyPicker.value));
    chart.setCurves(jobs.map((job) => job.name || job.id.slice(0, 8)));
    setChildren(legend, jobs.map((job, i) => {
      const swatch = h("span", { className: "swatch" });
      // through the CSSOM: the page's Content-Security-Policy refuses style attributes
      swatch.style.backgroundColor = colour(i);
      return h("li", {}, swatch,
        h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name || "(unnamed)"), " ", h("code", {}, job.id.slice(0, 8)));
    }));
    if (spansDecades(histories.flatMap((history) => history.epochs.map((row) => row.logs.loss)))) {
      logToggle.checked = true;
      chart.setLogScale(true);
    }
    chart.setKey(key);
    histories.forEach((history, i) => chart.append(i, history.epochs));
    live.ok();
  })().catch((error) => {
    toggle(banner, true);
    setText(banner, `The jobs cannot be compared: ${error.message}`);
  });

  return {
    refresh() {},
    stop() {
      stopped = true;
      chart.destroy();
    },
  };
}
