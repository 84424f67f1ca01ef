// The sweeps: newest first, each with its jobs by status and its best value so far;
// refreshed in place. Also how a sweep's points and counts read, for the sweep page.

import { h, setChildren, setText, toggle } from "./dom.js";
import { ago, clock, number } from "./format.js";
import { placeRows, pollList } from "./list.js";

const ORDER = ["succeeded", "failed", "cancelled", "running", "queued"];

/** Short names for a sweep's parameter paths: the last segment, unless two share it. */
export function parameterNames(paths) {
  const last = (path) => path.split(".").pop();
  return Object.fromEntries(paths.map((path) => [path, paths.filter((p) => last(p) === last(path)).length > 1 ? path : last(path)]));
}

export function pointValue(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** "learningRate=0.1, batchSize=16" */
export function pointLabel(point, names = parameterNames(Object.keys(point))) {
  return Object.entries(point).map(([path, value]) => `${names[path]}=${pointValue(value)}`).join(", ");
}

/** A sweep's jobs by status: a bar in the statuses' colours and the counts in words. */
export function countsBar() {
  const track = h("span", { className: "segments" });
  const label = h("span", { className: "bar-label" });
  const words = h("span", { className: "counts-words" });
  const element = h("span", { className: "counts" }, h("span", { className: "bar" }, track, label), words);
  let shown = null;
  return {
    element,
    update(counts, total) {
      const key = JSON.stringify([counts, total]);
      if (key === shown) return;
      shown = key;
      const finished = ["succeeded", "failed", "cancelled"].reduce((sum, status) => sum + (counts[status] ?? 0), 0);
      setChildren(track, ORDER.filter((status) => counts[status]).map((status) => {
        const segment = h("span", { className: `segment segment-${status}`, title: `${counts[status]} ${status}` });
        // through the CSSOM: the page's policy refuses style attributes
        segment.style.width = `${((counts[status] / Math.max(total, 1)) * 100).toFixed(2)}%`;
        return segment;
      }));
      setText(label, `${finished} / ${total}`);
      setText(words, ORDER.filter((status) => counts[status]).map((status) => `${counts[status]} ${status}`).join(" · "));
    },
  };
}

export function sweepsView(root, { live }) {
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const placeholder = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading sweeps…");
  const body = h("tbody");
  const table = h("table", { className: "sweeps", hidden: true },
    h("thead", {}, h("tr", {}, ["Name", "Jobs", "Best", "Points", "Created"].map((title) => h("th", { scope: "col" }, title)))),
    body);
  const more = h("button", { className: "button secondary", hidden: true }, "Show older sweeps");
  const footer = h("p", { className: "muted footnote" });
  setChildren(root,
    h("div", { className: "page-head" }, h("h1", {}, "Sweeps")),
    banner, placeholder, h("div", { className: "table-wrap" }, table), h("div", { className: "more" }, more, footer));

  const rows = new Map();  // sweep id -> row

  function render(page) {
    placeRows(body, rows, page.items, sweepRow);
    const empty = page.items.length === 0;
    toggle(table, !empty);
    toggle(placeholder, empty);
    if (empty) {
      setChildren(placeholder, h("div", { className: "empty" },
        h("strong", {}, "No sweeps yet."),
        h("p", {}, "A sweep trains one job per point of a grid (or of random draws) and ranks them. POST a base job spec and a grid to /v1/sweeps:"),
        h("code", {}, '{"base": {…}, "grid": {"fit.batchSize": [16, 64]}}'),
        h("p", { className: "muted" }, "See ", h("a", { href: "/docs" }, "the API reference"), ".")));
    }
    setText(footer, empty ? "" : `${page.items.length} sweep${page.items.length === 1 ? "" : "s"}, newest first`);
  }

  return pollList({
    path: "/v1/sweeps", what: "sweeps", render, more, placeholder, banner, live,
    shown: () => rows.size > 0, interval: 2000, retrying: "Retrying.",
  });
}

function sweepRow() {
  const link = h("a", { className: "job-name" });
  const id = h("span", { className: "job-id" });
  const counts = countsBar();
  const bestValue = h("span", { className: "best-value" });
  const bestPoint = h("span", { className: "best-point" });
  const points = h("td", { className: "num", dataset: { label: "Points" } });
  const created = h("td", { dataset: { label: "Created" } });
  const element = h("tr", {},
    h("td", { className: "name-cell", dataset: { label: "Name" } }, link, id),
    h("td", { className: "progress-cell", dataset: { label: "Jobs" } }, counts.element),
    h("td", { className: "best-cell", dataset: { label: "Best" } }, bestValue, bestPoint),
    points, created);
  return {
    element,
    update(sweep) {
      element.dataset.sweepId = sweep.id;
      link.href = `#/sweeps/${encodeURIComponent(sweep.id)}`;
      setText(link, sweep.name || "(unnamed sweep)");
      link.classList.toggle("unnamed", !sweep.name);
      setText(id, sweep.id.slice(0, 8));
      counts.update(sweep.counts, sweep.points);
      setText(bestValue, sweep.best ? `${sweep.metric} ${number(sweep.best.value)}` : `${sweep.metric}: none yet`);
      bestValue.classList.toggle("muted", !sweep.best);
      setText(bestPoint, sweep.best ? pointLabel(sweep.best.point) : "");
      setText(points, String(sweep.points));
      setText(created, ago(sweep.createdAt));
      created.title = clock(sweep.createdAt);
    },
  };
}
