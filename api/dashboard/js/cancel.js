// The cancel button of a job's or a sweep's page: the API's answer shown at once and
// polling begun afresh; a failure said in the page's banner, the button pressable again.

import { api } from "./api.js";
import { setText, toggle } from "./dom.js";

export function cancelAction({ button, path, banner, render, refresh }) {
  return async () => {
    button.disabled = true;
    try {
      render(await api(`${path}/cancel`, { method: "POST" }));
      refresh();
    } catch (error) {
      button.disabled = false;
      setText(banner, `Cancelling failed: ${error.message}`);
      toggle(banner, true);
    }
  };
}
