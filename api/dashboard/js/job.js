// One job: its status, progress, speed and ETA, a live loss curve (on a log scale by
// default when the loss spans more than two decades; the choice kept in the URL as
// ?log=1 or ?log=0), its history as CSV, the final weights, a cancel button, a form to
// evaluate or predict on pasted data, the model for TensorFlow.js, its spec and its error.

import { ApiError, FINISHED, api } from "./api.js";
import { lossChart, spansDecades } from "./chart.js";
import { cancelAction } from "./cancel.js";
import { h, setChildren, setText, toggle } from "./dom.js";
import { detailFailure } from "./failure.js";
import { clock, duration, jobSeconds, number, progressBar, statusBadge } from "./format.js";
import { follow } from "./events.js";
import { tfjsCard } from "./tfjs.js";

const DEFAULT_SERIES = ["loss", "val_loss"];
const SHOWN_WEIGHTS = 12;  // rows and columns of a weight array shown; the rest is counted
const SAMPLE_ROWS = 5;

export function jobView(root, { id, params, live }) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const title = h("h1", {}, "Job");
  const badge = h("span");
  const cancelButton = h("button", { className: "button danger", hidden: true, onclick: () => cancel() }, "Cancel job");
  const notice = h("div", { className: "banner", hidden: true });
  const banner = h("div", { className: "banner error", role: "alert", hidden: true });
  const errorBox = h("section", { className: "card failure", hidden: true }, h("h2", {}, "Why it failed"), h("pre", { className: "error-text" }));
  const bar = progressBar();
  const facts = factGrid(["Progress", "Loss", "Val loss", "Speed", "ETA", "Device", "Worker", "Attempt", "Created", "Started", "Duration"]);
  facts.cells.Progress.replaceChildren(bar.element);

  const seriesPicker = h("div", { className: "series", role: "group", "aria-label": "Series" });
  const logToggle = h("input", { type: "checkbox", id: "log-scale" });
  const csvLink = h("a", { className: "button", id: "history-csv", href: "#", download: `job-${id}-history.csv`, hidden: true }, "History CSV");
  const chartBox = h("div", { className: "chart", id: "loss-chart" });
  const chartEmpty = h("p", { className: "state" }, "No epoch finished yet: the curve starts with the first one.");
  const weightsBox = h("div", { className: "weights" }, h("p", { className: "muted" }, "The final weights appear here once the job has succeeded."));
  const specBox = h("pre", { className: "spec" }, "Loading…");
  const dataSummary = h("p", { className: "muted" });
  const sweepLink = h("a", { className: "sweep-link" }, "its sweep");
  const sweepLine = h("span", { hidden: true }, " · a point of ", sweepLink);
  const form = queryForm(path);
  const clone = cloneEditor();
  const cloneButton = h("button", { className: "button secondary", id: "clone-job", disabled: true, onclick: () => clone.open(job) }, "Clone");
  const tfjs = tfjsCard(path);

  const main = h("div", { className: "job", hidden: true },
    h("div", { className: "page-head" },
      h("div", { className: "title" }, title, badge),
      h("div", { className: "actions" }, cloneButton, cancelButton)),
    h("p", { className: "job-id-line" }, "id ", h("code", {}, id), sweepLine),
    notice, banner, errorBox, facts.element,
    h("section", { className: "card" },
      h("div", { className: "card-head" }, h("h2", {}, "Loss curve"),
        h("div", { className: "chart-controls" }, seriesPicker,
          h("label", { className: "check" }, logToggle, "log scale"), csvLink)),
      chartEmpty, chartBox),
    h("div", { className: "columns" },
      h("section", { className: "card" }, h("h2", {}, "Evaluate or predict"), form.element),
      h("section", { className: "card" }, h("h2", {}, "Final weights"), weightsBox)),
    tfjs.element,
    clone.element,
    h("section", { className: "card" }, h("h2", {}, "Spec"), dataSummary, specBox));
  const loading = h("div", { className: "state" }, h("span", { className: "spinner" }), "Loading the job…");
  setChildren(root, h("a", { className: "back", href: "#/" }, "← All jobs"), loading, main);

  const chart = lossChart(chartBox);
  let keys = [];
  let chosen = new Set(DEFAULT_SERIES);
  let job = null;
  let weightsShown = false;

  const recorded = [];  // every epoch shown, for the CSV
  // the person's choice, from the URL or the checkbox; null: decided by the loss's span
  let logChosen = params.get("log") === "1" ? true : params.get("log") === "0" ? false : null;
  if (logChosen) {
    logToggle.checked = true;
    chart.setLogScale(true);
  }
  logToggle.addEventListener("change", () => {
    logChosen = logToggle.checked;
    keepInUrl("log", logChosen ? "1" : "0");
    chart.setLogScale(logChosen);
  });
  csvLink.addEventListener("click", () => {
    const old = csvLink.href;
    csvLink.href = URL.createObjectURL(new Blob([historyCsv(recorded)], { type: "text/csv" }));
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  });

  function logScaleByDefault() {
    if (logChosen !== null || logToggle.checked) return;
    if (spansDecades(recorded.map((row) => row.logs.loss))) {
      logToggle.checked = true;
      chart.setLogScale(true);
    }
  }

  function showSeries(rows) {
    const found = [...new Set(rows.flatMap((row) => Object.keys(row.logs)))];
    if (found.every((key) => keys.includes(key))) return;
    keys = [...keys, ...found.filter((key) => !keys.includes(key))].sort(byLogKey);
    if (![...chosen].some((key) => keys.includes(key))) chosen = new Set(keys.slice(0, 1));
    setChildren(seriesPicker, keys.map((key) => {
      const box = h("input", { type: "checkbox", checked: chosen.has(key), value: key });
      box.addEventListener("change", () => {
        box.checked ? chosen.add(key) : chosen.delete(key);
        chart.setSeries(keys.filter((k) => chosen.has(k)));
      });
      return h("label", { className: "check" }, box, key);
    }));
    chart.setSeries(keys.filter((k) => chosen.has(k)));
  }

  function render(next) {
    job = next;
    setText(title, job.name || "(unnamed job)");
    title.classList.toggle("unnamed", !job.name);
    document.title = `${job.name || job.id} · trainq`;
    if (badge.dataset.status !== job.status) {
      setChildren(badge, statusBadge(job.status));
      badge.dataset.status = job.status;
    }
    bar.update(job.progress, job.status);
    toggle(sweepLine, Boolean(job.sweepId));
    if (job.sweepId) sweepLink.href = `#/sweeps/${encodeURIComponent(job.sweepId)}`;
    setText(facts.cells.Loss, number(job.metrics?.loss));
    setText(facts.cells["Val loss"], number(job.metrics?.val_loss));
    setText(facts.cells.Device, job.device);
    setText(facts.cells.Worker, job.worker ?? "–");
    setText(facts.cells.Attempt, String(job.attempt));
    setText(facts.cells.Created, clock(job.createdAt));
    setText(facts.cells.Started, clock(job.startedAt));
    setText(facts.cells.Duration, duration(jobSeconds(job)));
    const speed = epochsPerSecond(job);
    setText(facts.cells.Speed, speed === null ? "–" : `${number(speed, 3)} epochs/s`);
    const left = job.progress.epochs - job.progress.epoch;
    setText(facts.cells.ETA, job.status !== "running" || !speed ? "–" : left === 0 ? "finishing" : duration(left / speed));
    const cancellable = !FINISHED.has(job.status);
    toggle(cancelButton, cancellable);
    cancelButton.disabled = job.cancelRequested;
    setText(cancelButton, job.cancelRequested ? "Cancelling…" : "Cancel job");
    // why a queued job waits (no worker of its device online), or that a cancel is under way
    const why = job.cancelRequested ? "Cancel requested: the worker stops the job at its next epoch or heartbeat."
      : job.status === "queued" && job.reason ? `Waiting: ${job.reason}` : "";
    toggle(notice, cancellable && Boolean(why));
    setText(notice, why);
    toggle(errorBox, Boolean(job.error));
    setText(errorBox.querySelector("pre"), job.error ?? "");
    form.enable(job.status === "succeeded", job.status);
    tfjs.update(job);
  }

  async function showWeights() {
    const { weights } = await api(`${path}/weights`);
    setChildren(weightsBox, weightTables(weights));
    weightsShown = true;
  }

  const cancel = cancelAction({ button: cancelButton, path, banner, render, refresh: () => view.refresh() });

  // the job's state and its epochs come from its event stream: a `status` event at each
  // change of state, an `epoch` event per epoch as it is recorded
  let stream = null;
  let epochs = 0;
  let pending = [];
  let plotTimer = null;
  const failed = detailFailure({
    what: "job", id, back: "#/", placeholder: loading, banner, live, shown: () => job !== null, stop: () => stream?.stop(),
  });

  function shown() {
    toggle(loading, false);
    toggle(main, true);
    toggle(banner, false);
    live.ok();
  }

  // epochs arrive a report at a time (hundreds at once for a fast job): plotted together
  function plotPending() {
    plotTimer = null;
    if (!pending.length) return;
    recorded.push(...pending);
    showSeries(pending);
    chart.append(pending);
    logScaleByDefault();
    pending = [];
    toggle(chartEmpty, epochs === 0);
    toggle(csvLink, recorded.length > 0);
    if (job) render(job);
  }

  function onEvent(event) {
    const data = JSON.parse(event.data);
    if (event.type === "status") {
      plotPending();
      render({ ...data, reason: data.reason ?? job?.reason });
      shown();
      if (FINISHED.has(data.status)) stream.end();
      if (data.status === "succeeded" && !weightsShown) showWeights().catch(failed);
    } else if (event.type === "epoch") {
      epochs += 1;
      pending.push(data);
      // an ended job's stream tells its state after its epochs: until then, only the curve moves
      if (job) job = { ...job, progress: { ...job.progress, epoch: data.epoch + 1 }, metrics: data.logs };
      plotTimer ??= setTimeout(plotPending, 50);
    }
  }

  const start = () => {
    stream = follow(`${path}/events`, { onEvent, onOpen: () => toggle(banner, false), onError: failed });
  };
  start();

  api(`${path}/spec`).then((spec) => {
    // in the order people write a spec (the database may keep its keys in another)
    const { model, compile, fit, data, ...rest } = spec;
    setText(specBox, JSON.stringify({ model, compile, fit, ...rest }, null, 2));
    setText(dataSummary, describeData(data));
    form.prefill(data);
    clone.prefill({ model, compile, fit, data, ...rest });
    cloneButton.disabled = false;
  }, (error) => setText(specBox, `The spec cannot be loaded: ${error.message}`));

  const view = {
    // after a cancel: the flag is not a change of state, so the job is read once
    refresh() { api(path).then(render, failed); },
    stop() { stream.stop(); clearTimeout(plotTimer); chart.destroy(); },
  };
  return view;
}

/** loss first, then each metric; each validation key right after its training key. */
export function byLogKey(a, b) {
  const rank = (key) => {
    const base = key.replace(/^val_/, "");
    return [base === "loss" ? "" : base, key.startsWith("val_") ? 1 : 0];
  };
  const [baseA, valA] = rank(a);
  const [baseB, valB] = rank(b);
  return baseA === baseB ? valA - valB : baseA.localeCompare(baseB);
}

export function factGrid(names) {
  const cells = {};
  const element = h("dl", { className: "facts" }, names.map((name) => {
    cells[name] = h("dd", {}, "–");
    return h("div", {}, h("dt", {}, name), cells[name]);
  }));
  return { element, cells };
}

function describeData(data) {
  if (!data || !Array.isArray(data.x)) return "";
  const shape = (rows) => `${rows.length} rows × ${Array.isArray(rows[0]) ? rows[0].length : 1}`;
  const parts = [`x: ${shape(data.x)}`];
  if (Array.isArray(data.y)) parts.push(`y: ${shape(data.y)}`);
  return `Training data: ${parts.join(", ")} (not shown).`;
}

function weightTables(weights) {
  let layer = 0;
  return weights.map((array) => {
    // getWeights() order: each Dense layer's kernel (2-D), then its bias (1-D)
    const kernel = array.shape.length === 2;
    if (kernel) layer += 1;
    const rows = kernel ? array.values : [array.values];
    const shownRows = rows.slice(0, SHOWN_WEIGHTS);
    const columns = rows[0]?.length ?? 0;
    const hidden = [];
    if (rows.length > SHOWN_WEIGHTS) hidden.push(`${rows.length - SHOWN_WEIGHTS} more rows`);
    if (columns > SHOWN_WEIGHTS) hidden.push(`${columns - SHOWN_WEIGHTS} more columns`);
    return h("figure", { className: "weight" },
      h("figcaption", {}, `Layer ${layer} ${kernel ? "kernel" : "bias"} `, h("span", { className: "muted" }, array.shape.join(" × "))),
      h("div", { className: "table-wrap" }, h("table", { className: "matrix" },
        h("tbody", {}, shownRows.map((row) => h("tr", {}, row.slice(0, SHOWN_WEIGHTS).map((v) => h("td", {}, number(v, 6)))))))),
      hidden.length ? h("p", { className: "muted" }, `… and ${hidden.join(", ")}`) : null);
  });
}

function queryForm(path) {
  const x = h("textarea", { name: "x", rows: 5, spellcheck: "false", placeholder: "[[0.5], [1.5]]" });
  const y = h("textarea", { name: "y", rows: 5, spellcheck: "false", placeholder: "[[2.0], [4.0]]" });
  const hint = h("p", { className: "muted" });
  const answer = h("div", { className: "answer", "aria-live": "polite" });
  const evaluateButton = h("button", { type: "submit", className: "button", value: "evaluate" }, "Evaluate");
  const predictButton = h("button", { type: "submit", className: "button secondary", value: "predict" }, "Predict");
  const fieldset = h("fieldset", { disabled: true },
    h("label", {}, h("span", {}, "x: inputs, one JSON row per sample"), x),
    h("label", {}, h("span", {}, "y: targets (for evaluate)"), y),
    h("div", { className: "actions" }, evaluateButton, predictButton));
  const element = h("form", { className: "query", onsubmit: submit }, hint, fieldset, answer);

  async function submit(event) {
    event.preventDefault();
    const action = event.submitter?.value ?? "evaluate";
    const body = {};
    try {
      body.x = parse(x.value, "x");
      if (action === "evaluate") body.y = parse(y.value, "y");
    } catch (error) {
      setChildren(answer, failure(error));
      return;
    }
    setChildren(answer, h("p", { className: "muted" }, h("span", { className: "spinner" }), `${action === "evaluate" ? "Evaluating" : "Predicting"}…`));
    try {
      const result = await api(`${path}/${action}`, { method: "POST", body });
      setChildren(answer, action === "evaluate" ? evaluation(result) : predictions(result.predictions));
    } catch (error) {
      setChildren(answer, failure(error));
    }
  }

  return {
    element,
    enable(on, status) {
      fieldset.disabled = !on;
      setText(hint, on ? "Paste rows as JSON; the answer comes from the trained model."
        : `Available once the job has succeeded (it is ${status}).`);
    },
    prefill(data) {
      // the first training rows, so the form answers something at once
      if (!x.value && Array.isArray(data?.x)) x.value = JSON.stringify(data.x.slice(0, SAMPLE_ROWS));
      if (!y.value && Array.isArray(data?.y)) y.value = JSON.stringify(data.y.slice(0, SAMPLE_ROWS));
    },
  };
}

function parse(text, field) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(422, `${field} is not valid JSON.`, [{ field, message: error.message }]);
  }
}

function evaluation(result) {
  const rows = [["loss", result.loss], ...Object.entries(result.metrics)];
  return h("table", { className: "result" }, h("caption", {}, "Evaluation"),
    h("tbody", {}, rows.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", { className: "num" }, number(value, 6))))));
}

function predictions(rows) {
  return h("table", { className: "result" }, h("caption", {}, `Predictions (${rows.length})`),
    h("tbody", {}, rows.map((row, i) => h("tr", {}, h("th", { scope: "row" }, String(i)),
      row.map((value) => h("td", { className: "num" }, number(value, 6)))))));
}

function failure(error) {
  // a one-error answer's detail is already "field: message": each message is said once
  const more = (error.fields ?? []).filter((f) => !error.message.includes(f.message));
  return h("div", { className: "banner error", role: "alert" }, h("strong", {}, error.message),
    more.length ? h("ul", {}, more.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.message))) : null);
}

/** Epochs finished per second of the job's run so far (null before its first). */
export function epochsPerSecond(job, now = Date.now()) {
  const seconds = jobSeconds(job, now);
  return seconds && job.progress.epoch > 0 ? job.progress.epoch / seconds : null;
}

/** The history as CSV, as `trainq history --csv` writes it: epoch, each log key, wallTime. */
export function historyCsv(rows) {
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row.logs)))].sort(byLogKey);
  const lines = [["epoch", ...keys, "wallTime"].join(",")];
  for (const row of rows) {
    lines.push([row.epoch, ...keys.map((key) => row.logs[key] ?? ""), row.wallTime].join(","));
  }
  return lines.join("\n") + "\n";
}

/** Set one parameter of the page's URL without leaving the page (no hashchange). */
function keepInUrl(name, value) {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  params.set(name, value);
  history.replaceState(null, "", `#${path}?${params}`);
}

/** "Clone": the job's spec in an editor, submitted as a new job; the API's errors are
 * listed under the editor, each with the dotted path of its field. */
function cloneEditor() {
  const editor = h("textarea", { id: "clone-spec", rows: 16, spellcheck: "false", "aria-label": "Job spec (JSON)" });
  const errors = h("ul", { className: "field-errors", id: "clone-errors", role: "alert" });
  const submit = h("button", { type: "submit", className: "button" }, "Submit as a new job");
  const cancel = h("button", { type: "button", className: "button secondary", onclick: () => toggle(element, false) }, "Close");
  const element = h("section", { className: "card clone", hidden: true },
    h("h2", {}, "Clone this job"),
    h("p", { className: "muted" }, "Change what you like and submit: the same checks as POST /v1/jobs."),
    h("form", { onsubmit: send }, editor, errors, h("div", { className: "actions" }, submit, cancel)));

  async function send(event) {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(editor.value);
    } catch (error) {
      showErrors([{ field: "body", message: `is not valid JSON (${error.message})` }]);
      return;
    }
    submit.disabled = true;
    try {
      const created = await api("/v1/jobs", { method: "POST", body });
      location.hash = `#/jobs/${encodeURIComponent(created.id)}`;
    } catch (error) {
      showErrors(error.fields?.length ? error.fields : [{ field: "body", message: error.message }]);
    } finally {
      submit.disabled = false;
    }
  }

  function showErrors(fields) {
    setChildren(errors, fields.map((f) => h("li", { dataset: { field: f.field } }, h("code", {}, f.field), ": ", f.message)));
  }

  let spec = null;
  return {
    element,
    prefill(loaded) {
      spec = loaded;
    },
    /** The editor, holding `job`'s spec with its name and device (as they stand when opened). */
    open(job) {
      const name = job?.name ? `${job.name} (clone)` : undefined;
      editor.value = JSON.stringify({ name, device: job?.device, ...spec }, null, 2);
      toggle(element, true);
      setChildren(errors);
      editor.focus();
    },
  };
}
