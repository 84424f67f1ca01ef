// "Download for TensorFlow.js": the job's model.json and weights.bin as files, and the
// lines of JavaScript that load the model straight from trainq with tf.loadLayersModel.

import { api } from "./api.js";
import { h, setChildren, setText, toggle } from "./dom.js";

export function tfjsCard(path) {
  const url = `${location.origin}${path}/model.json`;
  const status = h("p", { className: "muted" });
  const button = h("button", { className: "button", onclick: () => download() }, "Download for TensorFlow.js");
  const code = h("pre", { className: "tfjs-code" },
    "import * as tf from '@tensorflow/tfjs';\n",
    `const model = await tf.loadLayersModel('${url}', {requestInit: {headers: {Authorization: 'Bearer <your API key>'}}});`);
  const element = h("section", { className: "card tfjs" },
    h("h2", {}, "TensorFlow.js"),
    h("p", {}, "Load the trained model in a browser or in Node, compiled as it was trained:"),
    code,
    h("div", { className: "actions" }, button),
    status);

  async function download() {
    button.disabled = true;
    setText(status, "Downloading…");
    try {
      const model = await api(`${path}/model.json`);
      const weights = await api(`${path}/weights.bin`, { blob: true });
      save(new Blob([JSON.stringify(model)], { type: "application/json" }), "model.json");
      save(weights, "weights.bin");
      const { epoch, final } = model.userDefinedMetadata?.trainq ?? {};
      setText(status, `model.json and weights.bin saved (epoch ${epoch}${final ? ", final" : ", its last checkpoint"}): ` +
        "serve them together and tf.loadLayersModel('model.json') loads them.");
    } catch (error) {
      setText(status, error.message);
    } finally {
      button.disabled = false;
    }
  }

  return {
    element,
    update(job) {
      // a job has a model once an epoch was checkpointed; a queued one has none yet
      toggle(element, job.status !== "queued");
    },
  };
}

function save(blob, name) {
  const link = h("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
