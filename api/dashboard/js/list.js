// A list page (the jobs, the sweeps): its newest items polled in place, older ones on
// demand up to the API's largest page; a failure in place of the list or over it.

import { api } from "./api.js";
import { toggle } from "./dom.js";
import { showFailure } from "./failure.js";
import { poll } from "./poll.js";

const PAGE = 50;
const MOST = 200;  // the API's largest page

/** `path`: "/v1/jobs"; `more`: the "Show older" button; `shown()`: a row is on the page. */
export function pollList({ path, query = {}, what, render, more, placeholder, banner, live, shown, interval, retrying }) {
  let limit = PAGE;
  let poller = null;
  function start() {
    poller = poll(async (signal) => {
      const page = await api(`${path}?${new URLSearchParams({ limit: String(limit), ...query })}`, { signal });
      render(page);
      toggle(more, Boolean(page.nextCursor) && limit < MOST);
      toggle(banner, false);
      live.ok();
    }, {
      interval,
      onError(error) {
        live.failed(error);
        showFailure(error, { what, shown: shown(), placeholder, banner, retrying });
      },
    });
  }
  more.addEventListener("click", () => {
    limit = Math.min(limit + PAGE, MOST);
    poller.stop();
    start();
  });
  start();
  return { stop: () => poller.stop() };
}

/** The page's items in order in `body`, a row each (`rows`: id -> row, made by `makeRow`
 * the first time and updated in place); the rows of items no longer listed go. */
export function placeRows(body, rows, items, makeRow) {
  const seen = new Set();
  let previous = null;
  for (const item of items) {
    seen.add(item.id);
    let row = rows.get(item.id);
    if (!row) {
      row = makeRow();
      rows.set(item.id, row);
    }
    row.update(item);
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
}
