// The jobs table: newest first, filtered by status, refreshed in place every second.

import { api } from "./api.js";
import { h, setChildren, setText, toggle } from "./dom.js";
import { ago, clock, duration, jobSeconds, number, progressBar, statusBadge } from "./format.js";
import { poll } from "./poll.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const PAGE = 50;
const MOST = 200;  // the API's largest page

export function jobsView(root, { params, live }) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  let limit = PAGE;

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
    h("thead", {}, h("tr", {}, ["Name", "Status", "Progress", "Loss", "Val loss", "Device", "Worker", "Created", "Duration"]
      .map((title) => h("th", { scope: "col" }, title)))),
    body);
  const more = h("button", { className: "button secondary", hidden: true, onclick: () => showOlder() }, "Show older jobs");
  const footer = h("p", { className: "muted footnote" });

  setChildren(root,
    h("div", { className: "page-head" }, h("h1", {}, "Jobs"), filters),
    banner, placeholder, h("div", { className: "table-wrap" }, table), h("div", { className: "more" }, more, footer));

  const rows = new Map();  // job id -> row

  function render(page) {
    const seen = new Set();
    let previous = null;
    for (const job of page.items) {
      seen.add(job.id);
      let row = rows.get(job.id);
      if (!row) {
        row = jobRow();
        rows.set(job.id, row);
      }
      row.update(job);
      // move a row only when it is out of place: moving nodes that stay put would flicker
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== row.element) body.insertBefore(row.element, expected);
      previous = row.element;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.element.remove();
        rows.delete(id);
      }
    }
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
    toggle(more, Boolean(page.nextCursor) && limit < MOST);
    setText(footer, empty ? "" : `${page.items.length} job${page.items.length === 1 ? "" : "s"}${page.nextCursor ? ", newest first" : ""}`);
  }

  let poller = null;
  function start() {
    poller = poll(async (signal) => {
      const query = new URLSearchParams({ limit: String(limit) });
      if (status) query.set("status", status);
      render(await api(`/v1/jobs?${query}`, { signal }));
      toggle(banner, false);
      live.ok();
    }, {
      interval: 1000,
      onError(error) {
        live.failed(error);
        if (rows.size === 0) {
          toggle(placeholder, true);
          setChildren(placeholder, h("div", { className: "empty error" },
            h("strong", {}, "The jobs cannot be loaded."), h("p", {}, error.message), h("p", { className: "muted" }, "Retrying every second.")));
        } else {
          setText(banner, `${error.message} Showing the jobs as of the last answer; retrying.`);
          toggle(banner, true);
        }
      },
    });
  }
  function showOlder() {
    limit = Math.min(limit + PAGE, MOST);
    poller.stop();
    start();
  }
  start();
  return { stop: () => poller.stop() };
}

function jobRow() {
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
    h("td", { className: "name-cell", dataset: { label: "Name" } }, link, id),
    status,
    h("td", { className: "progress-cell", dataset: { label: "Progress" } }, bar.element),
    cells.loss, cells.valLoss, cells.device, cells.worker, cells.created, cells.duration);
  let shownStatus = null;

  return {
    element,
    update(job) {
      element.dataset.jobId = job.id;
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
