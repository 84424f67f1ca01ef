// The workers, their device, and the job each runs. From the workers registry
// (GET /v1/workers) where the API has one; from an API without it, the workers are
// known by the running jobs that name them, so an idle worker does not show.

import { ApiError, api } from "./api.js";
import { h, setChildren, setText, toggle } from "./dom.js";
import { ago, progressBar, statusBadge } from "./format.js";
import { poll } from "./poll.js";

export function workersView(root, { live }) {
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const source = h("p", { className: "muted" });
  const placeholder = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading workers…");
  const head = h("tr");
  const body = h("tbody");
  const table = h("table", { className: "workers", hidden: true }, h("thead", {}, head), body);
  setChildren(root, h("div", { className: "page-head" }, h("h1", {}, "Workers")), source, banner, placeholder,
    h("div", { className: "table-wrap" }, table));

  let registry = true;  // until the API says it has none
  const poller = poll(async (signal) => {
    const { items: running } = await api("/v1/jobs?status=running&limit=200", { signal });
    let workers = null;
    if (registry) {
      try {
        workers = (await api("/v1/workers", { signal })).items;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        registry = false;
      }
    }
    const rows = workers ? registryRows(workers, running) : derivedRows(running);
    setText(source, workers
      ? "Every worker that recorded itself: online ones first, lost ones when their heartbeat stopped."
      : "Workers running a job now, from the jobs they hold; an idle worker is not listed.");
    setChildren(head, (workers ? ["Worker", "Status", "Device", "Library", "Jobs", "Heartbeat"] : ["Worker", "Device", "Jobs", "Since"])
      .map((title) => h("th", { scope: "col" }, title)));
    setChildren(body, rows);
    toggle(table, rows.length > 0);
    toggle(placeholder, rows.length === 0);
    if (rows.length === 0) {
      setChildren(placeholder, h("div", { className: "empty" },
        h("strong", {}, workers ? "No worker has recorded itself yet." : "No worker is running a job."),
        h("p", {}, "Workers show up here once started, e.g. with "), h("code", {}, "trainq worker")));
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

function registryRows(workers, running) {
  const jobs = new Map(running.map((job) => [job.id, job]));
  return workers.map((worker) => h("tr", { dataset: { worker: worker.name } },
    h("td", { className: "worker", dataset: { label: "Worker" } }, worker.name, h("div", { className: "muted" }, `${worker.host} · pid ${worker.pid}`)),
    h("td", { dataset: { label: "Status" } }, statusBadge(worker.status)),
    h("td", { dataset: { label: "Device" } }, worker.deviceKind, h("div", { className: "muted" }, worker.deviceName)),
    h("td", { dataset: { label: "Library" } }, worker.arrayLibrary),
    h("td", { className: "jobs-cell", dataset: { label: "Jobs" } },
      worker.currentJobs.length ? worker.currentJobs.map((id) => jobLine(jobs.get(id) ?? { id })) : h("span", { className: "muted" }, "idle")),
    h("td", { dataset: { label: "Heartbeat" } }, ago(worker.heartbeatAt))));
}

function derivedRows(running) {
  const byWorker = new Map();
  for (const job of running) {
    const name = job.worker ?? "(unknown)";
    byWorker.set(name, [...(byWorker.get(name) ?? []), job]);
  }
  return [...byWorker.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([worker, jobs]) => h("tr", { dataset: { worker } },
    h("td", { className: "worker", dataset: { label: "Worker" } }, worker),
    h("td", { dataset: { label: "Device" } }, jobs[0].device),
    h("td", { className: "jobs-cell", dataset: { label: "Jobs" } }, jobs.map(jobLine)),
    h("td", { dataset: { label: "Since" } }, ago(jobs[0].startedAt))));
}

function jobLine(job) {
  const line = h("div", { className: "job-line" },
    h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name || job.id.slice(0, 8)));
  if (job.progress) {
    const bar = progressBar();
    bar.update(job.progress, job.status);
    line.append(bar.element);
  }
  return line;
}
