// One sweep: its jobs ranked as the API ranks them (by the sweep's metric), one chart of
// every job's curve of a chosen log key, and a button that cancels the jobs left. While
// a job is queued or running it polls, reading each job's history only from the last
// epoch it has.

import { FINISHED, api } from "./api.js";
import { cancelAction } from "./cancel.js";
import { colour, curvesChart } from "./curves.js";
import { h, setChildren, setText, toggle } from "./dom.js";
import { detailFailure } from "./failure.js";
import { clock, number, progressBar, statusBadge } from "./format.js";
import { poll } from "./poll.js";
import { byLogKey, factGrid } from "./job.js";
import { countsBar, parameterNames, pointLabel, pointValue } from "./sweeps.js";

const HISTORIES_AT_ONCE = 6;  // history requests in flight per poll

export function sweepView(root, { id, live }) {
  const path = `/v1/sweeps/${encodeURIComponent(id)}`;
  const title = h("h1", {}, "Sweep");
  const cancelButton = h("button", { className: "button danger", hidden: true, onclick: () => cancel() }, "Cancel sweep");
  const summary = h("p", { className: "job-id-line" });
  const notice = h("div", { className: "banner", hidden: true });
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const counts = countsBar();
  const facts = factGrid(["Jobs", "Best", "Best point", "Ranked by", "Device", "Created"]);
  facts.cells.Jobs.replaceChildren(counts.element);
  facts.cells["Best point"].classList.add("point-values");

  const keyPicker = h("select", { id: "sweep-metric", "aria-label": "Plotted log key" });
  const logToggle = h("input", { type: "checkbox", id: "log-scale" });
  const chartBox = h("div", { className: "chart", id: "sweep-chart" });
  const chartEmpty = h("p", { className: "state" }, "No epoch finished yet: each job's curve starts with its first one.");
  const missingKey = h("p", { className: "muted", hidden: true });
  const head = h("tr");
  const body = h("tbody");
  const table = h("table", { className: "ranking" }, h("thead", {}, head), body);
  const rankedBy = h("span", { className: "muted" });

  const main = h("div", { className: "sweep", hidden: true },
    h("div", { className: "page-head" }, h("div", { className: "title" }, title), h("div", { className: "actions" }, cancelButton)),
    summary, notice, banner, facts.element,
    h("section", { className: "card" },
      h("div", { className: "card-head" }, h("h2", {}, "Curves"),
        h("div", { className: "chart-controls" },
          h("label", { className: "check" }, "plot ", keyPicker),
          h("label", { className: "check" }, logToggle, "log scale"))),
      missingKey, chartEmpty, chartBox),
    h("section", { className: "card" },
      h("div", { className: "card-head" }, h("h2", {}, "Ranking"), rankedBy),
      h("div", { className: "table-wrap" }, table)));
  const loading = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading the sweep…");
  setChildren(root, h("a", { className: "back", href: "#/sweeps" }, "← All sweeps"), loading, main);

  const chart = curvesChart(chartBox);
  let sweep = null;
  let names = {};  // parameter path -> its column's name
  let keys = [];  // log keys seen in any job's history
  let key = null;  // the plotted one
  let picked = false;  // whether someone chose it
  const epochsSeen = new Map();  // job id -> epochs read from its history
  const rows = new Map();  // job id -> table row

  keyPicker.addEventListener("change", () => {
    picked = true;
    showKey(keyPicker.value);
  });
  logToggle.addEventListener("change", () => chart.setLogScale(logToggle.checked));

  function showKey(chosen) {
    key = chosen;
    chart.setKey(key);
    if (keyPicker.value !== key) keyPicker.value = key;
  }

  function setKeys(found) {
    if (found.every((k) => keys.includes(k))) return;
    keys = [...new Set([...keys, ...found])].sort(byLogKey);
    // the sweep's metric absent from its jobs' logs (no validation split, say): plot what is there
    if (!picked && !keys.includes(key)) {
      setText(missingKey, `The jobs log no ${key}; showing ${keys[0]}.`);
      toggle(missingKey, true);
      showKey(keys[0]);
    }
    setChildren(keyPicker, keys.map((k) => h("option", { value: k, selected: k === key }, k)));
  }

  function start(first) {
    // once: the columns, the curves (in point order) and the key
    sweep = first;
    const paths = [...new Set(first.jobs.flatMap((entry) => Object.keys(entry.point)))];
    names = parameterNames(paths);
    setChildren(head, ["#", ...paths.map((p) => names[p]), "Status", "Epochs", `Final ${first.metric}`, "Job"]
      .map((text, i) => h("th", { scope: "col", title: paths[i - 1] ?? null }, text)));
    const byIndex = [...first.jobs].sort((a, b) => a.index - b.index);
    chart.setCurves(byIndex.map((entry) => pointLabel(entry.point, names)));
    // the sweep's metric until the logs say which keys there are
    setChildren(keyPicker, h("option", { value: first.metric }, first.metric));
    showKey(first.metric);
    setText(rankedBy, `by final ${first.metric}, ${first.goal === "min" ? "smallest" : "largest"} first`);
  }

  function render(next) {
    sweep = next;
    setText(title, next.name || "(unnamed sweep)");
    title.classList.toggle("unnamed", !next.name);
    document.title = `${next.name || "Sweep"} · trainq`;
    setText(summary, `id ${next.id} · ${describeSpace(next.space, next.jobs.length)}`);
    counts.update(next.counts, next.jobs.length);
    const best = next.jobs[0]?.rank === 1 ? next.jobs[0] : null;
    setText(facts.cells.Best, best ? number(best.value, 6) : "none yet");
    const shownBest = best ? JSON.stringify(best.point) : "";
    if (facts.cells["Best point"].dataset.point !== shownBest) {
      // a line per parameter: a long path=value wraps at its own edges
      setChildren(facts.cells["Best point"], best
        ? Object.entries(best.point).map(([path, value]) => h("span", {}, `${names[path] ?? path}=${pointValue(value)}`))
        : "–");
      facts.cells["Best point"].dataset.point = shownBest;
    }
    setText(facts.cells["Ranked by"], `${next.metric} (${next.goal})`);
    setText(facts.cells.Device, next.device);
    setText(facts.cells.Created, clock(next.createdAt));

    const open = next.jobs.filter((entry) => !FINISHED.has(entry.job.status));
    toggle(cancelButton, open.length > 0);
    const asked = open.length > 0 && open.every((entry) => entry.job.cancelRequested);
    cancelButton.disabled = asked;
    setText(cancelButton, asked ? "Cancelling…" : "Cancel sweep");
    toggle(notice, asked);
    setText(notice, asked ? "Cancel requested: its running jobs stop at their next epoch or heartbeat." : "");

    let previous = null;
    for (const entry of next.jobs) {
      if (!rows.has(entry.job.id)) rows.set(entry.job.id, rankRow(entry, names, chart));
      const row = rows.get(entry.job.id);
      row.update(entry);
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== row.element) body.insertBefore(row.element, expected);
      previous = row.element;
    }
  }

  /** Read the epochs each job recorded since the last poll: only from jobs that have new ones. */
  async function readHistories(entries, signal) {
    const behind = entries.filter((entry) => entry.job.progress.epoch > (epochsSeen.get(entry.job.id) ?? 0));
    for (let i = 0; i < behind.length; i += HISTORIES_AT_ONCE) {
      await Promise.all(behind.slice(i, i + HISTORIES_AT_ONCE).map(async (entry) => {
        const since = epochsSeen.get(entry.job.id) ?? 0;
        const { epochs } = await api(`/v1/jobs/${encodeURIComponent(entry.job.id)}/history?since=${since}`, { signal });
        if (epochs.length === 0) return;
        epochsSeen.set(entry.job.id, epochs[epochs.length - 1].epoch + 1);
        setKeys([...new Set(epochs.flatMap((row) => Object.keys(row.logs)))]);
        chart.append(entry.index, epochs);
      }));
    }
  }

  const cancel = cancelAction({ button: cancelButton, path, banner, render, refresh: () => view.refresh() });

  let poller = null;
  const begin = () => {
    poller = poll(async (signal) => {
      const next = await api(path, { signal });
      if (sweep === null) start(next);
      // the sweep first: its jobs' histories then hold at least the epochs they count
      await readHistories(next.jobs, signal);
      render(next);
      toggle(chartEmpty, chart.epochs === 0);
      toggle(loading, false);
      toggle(main, true);
      toggle(banner, false);
      live.ok();
      // every job finished and every epoch read: nothing changes any more
      return next.jobs.some((entry) => !FINISHED.has(entry.job.status));
    }, {
      interval: 1000,
      onError: detailFailure({
        what: "sweep", id, back: "#/sweeps", placeholder: loading, banner, live, shown: () => sweep !== null, stop: () => poller.stop(),
      }),
    });
  };
  begin();

  const view = {
    refresh() { poller.stop(); begin(); },
    stop() { poller.stop(); chart.destroy(); },
  };
  return view;
}

function rankRow(first, names, chart) {
  const rank = h("span", { className: "rank" });
  const swatch = h("span", { className: "swatch", "aria-hidden": "true" });
  swatch.style.backgroundColor = colour(first.index);  // the colour of its curve
  const status = h("td", { dataset: { label: "Status" } });
  const bar = progressBar();
  const value = h("td", { className: "num value", dataset: { label: "Final" } });
  const link = h("a", { href: `#/jobs/${encodeURIComponent(first.job.id)}`, className: "job-link" }, first.job.id.slice(0, 8));
  const element = h("tr", {
    dataset: { jobId: first.job.id, index: String(first.index) },
    // its curve stands out while the pointer is on its row
    onmouseenter: () => chart.focus(first.index),
    onmouseleave: () => chart.focus(null),
  },
  h("td", { className: "rank-cell", dataset: { label: "Rank" } }, swatch, rank),
  Object.entries(names).map(([path, name]) => h("td", { className: "num param", dataset: { label: name } },
    path in first.point ? pointValue(first.point[path]) : "–")),
  status,
  h("td", { className: "progress-cell", dataset: { label: "Epochs" } }, bar.element),
  value,
  h("td", { className: "link-cell", dataset: { label: "Job" } }, link));
  let shownStatus = null;
  return {
    element,
    update(entry) {
      setText(rank, entry.rank === null ? "–" : String(entry.rank));
      element.classList.toggle("best", entry.rank === 1);
      if (shownStatus !== entry.job.status) {
        setChildren(status, statusBadge(entry.job.status));
        shownStatus = entry.job.status;
      }
      status.title = entry.job.reason ?? "";
      bar.update(entry.job.progress, entry.job.status);
      setText(value, entry.value === null ? "–" : number(entry.value, 6));
    },
  };
}

function describeSpace(space, points) {
  const over = (paths) => paths.map((path) => path.split(".").pop()).join(", ");
  if (space.grid) return `grid of ${points} points over ${over(Object.keys(space.grid))}`;
  if (space.random) return `${points} random draws (seed ${space.random.seed ?? 0}) over ${over(Object.keys(space.random.ranges ?? {}))}`;
  return `${points} points`;
}
