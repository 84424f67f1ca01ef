// Polling: call `tick` now and then every `interval` ms until stopped; a failing tick is
// retried at the same pace (the view shows the error, and clears it when a tick succeeds).

export function poll(tick, { interval = 1000, onError } = {}) {
  let timer = null;
  let stopped = false;
  const controller = new AbortController();

  async function run() {
    if (stopped) return;
    let again = true;
    try {
      again = (await tick(controller.signal)) !== false;
    } catch (error) {
      // stopped meanwhile (another page, or one asking for a key): nothing to show
      if (error.name === "AbortError" || stopped) return;
      onError?.(error);
    }
    if (!stopped && again) timer = setTimeout(run, document.hidden ? interval * 5 : interval);
  }

  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      controller.abort();
    },
  };
}
