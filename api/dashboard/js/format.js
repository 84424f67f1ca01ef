// Numbers, times and statuses as people read them.

import { h } from "./dom.js";

export function number(value, digits = 4) {
  if (value === undefined) return "–";
  if (value === null) return "n/a";  // not finite: the API sends null for NaN and infinity
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e5) return String(Number(value.toPrecision(digits)));
  return value.toExponential(digits - 1);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Seconds the job ran: start to finish, or to now while it runs. */
export function jobSeconds(job, now = Date.now()) {
  if (!job.startedAt) return null;
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
  return Math.max(0, (end - Date.parse(job.startedAt)) / 1000);
}

export function clock(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "–";
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function statusBadge(status) {
  return h("span", { className: `badge status-${status}` }, status);
}

/** A progress bar: epochs finished of the epochs to run. */
export function progressBar() {
  const fill = h("span", { className: "bar-fill" });
  const label = h("span", { className: "bar-label" });
  const element = h("span", { className: "bar", role: "progressbar", "aria-valuemin": 0 }, h("span", { className: "bar-track" }, fill), label);
  return {
    element,
    update(progress, status) {
      const share = progress.epochs ? progress.epoch / progress.epochs : 0;
      const width = `${(share * 100).toFixed(1)}%`;
      if (fill.style.width !== width) fill.style.width = width;
      element.dataset.status = status;
      element.setAttribute("aria-valuenow", String(progress.epoch));
      element.setAttribute("aria-valuemax", String(progress.epochs));
      const text = `${progress.epoch} / ${progress.epochs}`;
      if (label.textContent !== text) label.textContent = text;
    },
  };
}
