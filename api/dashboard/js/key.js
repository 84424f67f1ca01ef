// The page shown without an API key, or once the API refused the one given: it asks for one.

import { useApiKey } from "./api.js";
import { h, setChildren } from "./dom.js";

/** `refused`: a key was given before and the API answered 401; `done`: called with a key kept. */
export function keyView(root, { refused, done }) {
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "api-key",
    autocomplete: "off",
    placeholder: "tq_…",
    required: true,
  });
  function submit(event) {
    event.preventDefault();
    if (!input.value.trim()) return;
    useApiKey(input.value);
    done();
  }
  setChildren(root, h("div", { className: "empty key" },
    h("strong", {}, "An API key is needed."),
    refused ? h("p", { className: "refused" }, "The API refused the key this page had (not valid, or revoked).") : null,
    h("p", {}, "Open the dashboard URL that ", h("code", {}, "trainq up"), " printed, or paste a key: ",
      "the one in ", h("code", {}, ".trainq/api-key"), ", or one from ", h("code", {}, "trainq keys create --tenant NAME"), "."),
    h("form", { className: "query", onsubmit: submit },
      h("label", {}, h("span", {}, "API key"), input),
      h("div", { className: "actions" }, h("button", { type: "submit", className: "button" }, "Use this key"))),
    h("p", { className: "muted" }, "The key is kept for this tab only and sent as a header, never as a cookie.")));
  input.focus();
}
