// How a page says the API did not answer: in place of its content while none is shown
// yet, else in a banner over the last answer, which stays; and that a job or sweep is not there.

import { ApiError } from "./api.js";
import { h, setChildren, setText, toggle } from "./dom.js";

/** `what` reads in the page's words ("jobs", "sweep"); `shown`: an answer is on the page. */
export function showFailure(error, { what, shown, placeholder, banner, retrying = "Retrying every second." }) {
  if (shown) {
    setText(banner, `${error.message} Showing the ${what} as of the last answer; retrying.`);
    toggle(banner, true);
    return;
  }
  toggle(placeholder, true);
  setChildren(placeholder, h("div", { className: "empty error" },
    h("strong", {}, `The ${what} cannot be loaded.`), h("p", {}, error.message), h("p", { className: "muted" }, retrying)));
}

/** A job's or a sweep's page: a 404 is for good (polling stops, a link leads back to the
 * list); any other failure is retried. */
export function detailFailure({ what, id, back, placeholder, banner, live, shown, stop }) {
  return (error) => {
    if (error instanceof ApiError && error.status === 404) {
      stop();
      setChildren(placeholder, h("div", { className: "empty" }, h("strong", {}, `No such ${what}.`),
        h("p", {}, `There is no ${what} with the id ${id}.`), h("a", { href: back }, `Back to all ${what}s`)));
      return;
    }
    live.failed(error);
    showFailure(error, { what, shown: shown(), placeholder, banner });
  };
}
