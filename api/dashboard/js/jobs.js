// The jobs table: newest first, filtered by status, refreshed in place every second.

import { h, setChildren, setText, toggle } from "./dom.js";
import { ago, clock, duration, jobSeconds, number, progressBar, statusBadge } from "./format.js";
import { placeRows, pollList } from "./list.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];

export function jobsView(root, { params, live }) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";

  const filters = h("div", { className: "filters", role: "group", "aria-label": "Filter by status" },
    ["", ...STATUSES].map((value) => h("a", {
      href: value ? `#/?status=${value}` : "#/",
      className: `chip${value === status ? " active" : ""}`,
      "aria-current": value === status ? "true" : null,
    }, value || "all")));
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const placeholder = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading jobs…");
  const body = h("tbody");
  const table = h("table", { className: "jobs", hidden: true },
    h("thead", {}, h("tr", {}, ["", "Name", "Status", "Progress", "Loss", "Val loss", "Device", "Worker", "Created", "Duration"]
      .map((title) => h("th", { scope: "col" }, title)))),
    body);
  const more = h("button", { className: "button secondary", hidden: true }, "Show older jobs");
  // jobs ticked in the list are compared on one chart
  const picked = new Set();
  const compare = h("a", { className: "button", id: "compare-jobs", hidden: true }, "Compare");
  function pick(jobId, on) {
    on ? picked.add(jobId) : picked.delete(jobId);
    toggle(compare, picked.size >= 2);
    compare.href = `#/compare?jobs=${[...picked].map(encodeURIComponent).join(",")}`;
    setText(compare, `Compare ${picked.size} jobs`);
  }
  const footer = h("p", { className: "muted footnote" });

  setChildren(root,
    h("div", { className: "page-head" }, h("h1", {}, "Jobs"), filters, compare),
    banner, placeholder, h("div", { className: "table-wrap" }, table), h("div", { className: "more" }, more, footer));

  const rows = new Map();  // job id -> row

  function render(page) {
    placeRows(body, rows, page.items, () => jobRow(pick));
    const empty = page.items.length === 0;
    toggle(table, !empty);
    toggle(placeholder, empty);
    if (empty) {
      setChildren(placeholder, h("div", { className: "empty" },
        h("strong", {}, status ? `No ${status} jobs.` : "No jobs yet."),
        h("p", {}, status
          ? "Jobs show up here as soon as one is in this state."
          : "Submit one and it shows up here by itself: "),
        status ? null : h("code", {}, "trainq submit spec.json --watch"),
        status ? null : h("p", { className: "muted" }, "or POST a job spec to /v1/jobs (see ", h("a", { href: "/docs" }, "the API reference"), ").")));
    }
    setText(footer, empty ? "" : `${page.items.length} job${page.items.length === 1 ? "" : "s"}${page.nextCursor ? ", newest first" : ""}`);
  }

  return pollList({
    path: "/v1/jobs", query: status ? { status } : {}, what: "jobs", render, more, placeholder, banner, live,
    shown: () => rows.size > 0, interval: 1000,
  });
}

function jobRow(pick) {
  const tick = h("input", { type: "checkbox", className: "pick", "aria-label": "Compare this job" });
  tick.addEventListener("change", () => pick(tick.value, tick.checked));
  const link = h("a", { className: "job-name" });
  const id = h("span", { className: "job-id" });
  const status = h("td", { dataset: { label: "Status" } });
  const bar = progressBar();
  const cells = {
    loss: h("td", { className: "num", dataset: { label: "Loss" } }),
    valLoss: h("td", { className: "num", dataset: { label: "Val loss" } }),
    device: h("td", { dataset: { label: "Device" } }),
    worker: h("td", { className: "worker", dataset: { label: "Worker" } }),
    created: h("td", { dataset: { label: "Created" } }),
    duration: h("td", { className: "num", dataset: { label: "Duration" } }),
  };
  const element = h("tr", {},
    h("td", { className: "pick-cell" }, tick),
    h("td", { className: "name-cell", dataset: { label: "Name" } }, link, id),
    status,
    h("td", { className: "progress-cell", dataset: { label: "Progress" } }, bar.element),
    cells.loss, cells.valLoss, cells.device, cells.worker, cells.created, cells.duration);
  let shownStatus = null;

  return {
    element,
    update(job) {
      element.dataset.jobId = job.id;
      tick.value = job.id;
      link.href = `#/jobs/${encodeURIComponent(job.id)}`;
      setText(link, job.name || "(unnamed)");
      link.classList.toggle("unnamed", !job.name);
      setText(id, job.id.slice(0, 8));
      status.title = job.reason ?? "";  // why a queued job waits
      if (shownStatus !== job.status) {
        setChildren(status, statusBadge(job.status));
        shownStatus = job.status;
      }
      bar.update(job.progress, job.status);
      setText(cells.loss, number(job.metrics?.loss));
      setText(cells.valLoss, number(job.metrics?.val_loss));
      setText(cells.device, job.device);
      setText(cells.worker, job.worker ?? "–");
      setText(cells.created, ago(job.createdAt));
      cells.created.title = clock(job.createdAt);
      setText(cells.duration, duration(jobSeconds(job)));
    },
  };
}
