// The trainq dashboard: views chosen by the URL's hash, each polling the API.
//   #key=KEY           the API key (`trainq up` prints this URL): kept for the tab, then #/
//   #/ (?status=...)   the jobs table
//   #/jobs/ID          one job
//   #/workers          the workers running jobs
//   #/sweeps           the sweeps
//   #/sweeps/ID        one sweep: its ranking and its curves

import { KEY_NEEDED, apiKey, takeKeyFromUrl } from "./api.js";
import { h, setChildren, setText } from "./dom.js";
import { compareView } from "./compare.js";
import { keyView } from "./key.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { sweepView } from "./sweep.js";
import { sweepsView } from "./sweeps.js";
import { workersView } from "./workers.js";

const root = document.getElementById("view");
const indicator = document.getElementById("live");

// the header's indicator: when the API last answered, or that it does not
const live = {
  ok() {
    indicator.className = "live ok";
    setText(indicator, `live · ${new Date().toLocaleTimeString()}`);
  },
  failed() {
    indicator.className = "live down";
    setText(indicator, "API unreachable · retrying");
  },
};

let current = null;

function route() {
  current?.stop();
  if (!apiKey()) {
    askForKey({ refused: false });
    return;
  }
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  let section = "jobs";
  if (parts[0] === "jobs" && parts[1]) {
    current = jobView(root, { id: decodeURIComponent(parts[1]), params, live });
  } else if (parts[0] === "sweeps") {
    section = "sweeps";
    if (parts[1]) {
      current = sweepView(root, { id: decodeURIComponent(parts[1]), live });
    } else {
      document.title = "Sweeps · trainq";
      current = sweepsView(root, { live });
    }
  } else if (parts[0] === "compare") {
    const ids = (params.get("jobs") || "").split(",").filter(Boolean);
    current = compareView(root, { ids, live });
  } else if (parts[0] === "workers") {
    section = "workers";
    current = workersView(root, { live });
  } else if (parts.length === 0 || parts[0] === "jobs") {
    document.title = "Jobs · trainq";
    current = jobsView(root, { params, live });
  } else {
    current = null;
    setChildren(root, h("div", { className: "empty" }, h("strong", {}, "Nothing here."), h("a", { href: "#/" }, "Back to all jobs")));
  }
  if (section === "workers") document.title = "Workers · trainq";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === section);
  }
  window.scrollTo(0, 0);
}

/** `refused`: the API answered 401 to the key the page had. */
function askForKey({ refused }) {
  current?.stop();
  current = null;
  document.title = "API key · trainq";
  indicator.className = "live";
  setText(indicator, "");
  keyView(root, { refused, done: route });
}

window.addEventListener(KEY_NEEDED, (event) => askForKey(event.detail));
window.addEventListener("hashchange", () => {
  if (!takeKeyFromUrl()) route();
});
takeKeyFromUrl();
route();
