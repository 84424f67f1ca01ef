// The workers online, their device, and the job each runs. This API has no workers
// registry yet: a worker is known by the running jobs that name it, so an idle worker
// does not show. (When GET /v1/workers exists, this view should read it instead.)

import { api } from "./api.js";
import { h, setChildren, setText, toggle } from "./dom.js";
import { ago, progressBar, statusBadge } from "./format.js";
import { poll } from "./poll.js";

export function workersView(root, { live }) {
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const placeholder = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading workers…");
  const body = h("tbody");
  const table = h("table", { className: "workers", hidden: true },
    h("thead", {}, h("tr", {}, ["Worker", "Device", "Job", "Progress", "Since"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  setChildren(root,
    h("div", { className: "page-head" }, h("h1", {}, "Workers")),
    h("p", { className: "muted" }, "Workers running a job now, from the jobs they hold; an idle worker is not listed."),
    banner, placeholder, h("div", { className: "table-wrap" }, table));

  const poller = poll(async (signal) => {
    const { items } = await api("/v1/jobs?status=running&limit=200", { signal });
    const byWorker = new Map();
    for (const job of items) {
      const name = job.worker ?? "(unknown)";
      byWorker.set(name, [...(byWorker.get(name) ?? []), job]);
    }
    const rows = [...byWorker.entries()].sort(([a], [b]) => a.localeCompare(b))
      .flatMap(([worker, jobs]) => jobs.map((job, i) => workerRow(worker, job, i === 0)));
    setChildren(body, rows);
    toggle(table, rows.length > 0);
    toggle(placeholder, rows.length === 0);
    if (rows.length === 0) {
      setChildren(placeholder, h("div", { className: "empty" }, h("strong", {}, "No worker is running a job."),
        h("p", {}, "Workers show up here while they train; start one with "), h("code", {}, "trainq worker")));
    }
    toggle(banner, false);
    live.ok();
  }, {
    interval: 2000,
    onError(error) {
      live.failed(error);
      setText(banner, `${error.message} Retrying.`);
      toggle(banner, true);
    },
  });
  return { stop: () => poller.stop() };
}

function workerRow(worker, job, first) {
  const bar = progressBar();
  bar.update(job.progress, job.status);
  return h("tr", { dataset: { worker } },
    h("td", { className: "worker", dataset: { label: "Worker" } }, first ? worker : ""),
    h("td", { dataset: { label: "Device" } }, job.device),
    h("td", { dataset: { label: "Job" } }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name || job.id.slice(0, 8)), " ", statusBadge(job.status)),
    h("td", { className: "progress-cell", dataset: { label: "Progress" } }, bar.element),
    h("td", { dataset: { label: "Since" } }, ago(job.startedAt)));
}
