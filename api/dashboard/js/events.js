// A job's event stream (GET /v1/jobs/{id}/events, Server-Sent Events) read with fetch()
// and a stream reader rather than EventSource: EventSource cannot send headers, and the
// API's keys travel in an Authorization header. A dropped stream is taken up again after
// the last event received (Last-Event-ID), so no event is missed or seen twice; the
// stream ends for good once the job has ended.

import { ApiError, KEY_NEEDED, apiKey, keyRefused } from "./api.js";

const RETRY_MS = 1000;

export function follow(path, { onEvent, onOpen, onError }) {
  const controller = new AbortController();
  let lastEventId = null;
  let timer = null;
  let ended = false;  // the caller saw the job's final state: the stream's close is its end

  async function connect() {
    try {
      const key = apiKey();
      if (!key) {
        window.dispatchEvent(new CustomEvent(KEY_NEEDED, { detail: { refused: false } }));
        throw new ApiError(401, "An API key is needed.");
      }
      const headers = { Accept: "text/event-stream", Authorization: `Bearer ${key}` };
      if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(path, { headers, signal: controller.signal });
      if (response.status === 401) keyRefused();
      if (!response.ok) {
        const answer = await response.json().catch(() => null);
        const detail = answer?.detail ?? `The API answered ${response.status} ${response.statusText}.`;
        throw new ApiError(response.status, detail, answer?.errors ?? []);
      }
      onOpen?.();
      await read(response.body, (event) => {
        if (event.id !== null) lastEventId = event.id;
        onEvent(event);
      });
      // the server ends the stream after the job's final state; anything else is a drop
      if (!ended) retry();
    } catch (error) {
      if (error.name === "AbortError") return;
      const failure = error instanceof ApiError ? error : new ApiError(0, "The trainq API cannot be reached.");
      onError?.(failure);
      // a 4xx (no such job) will not mend itself; the network or a 5xx may
      if (failure.status === 0 || failure.status >= 500) retry();
    }
  }

  function retry() {
    timer = setTimeout(connect, document.hidden ? RETRY_MS * 5 : RETRY_MS);
  }

  connect();
  return {
    end() { ended = true; },
    stop() {
      clearTimeout(timer);
      controller.abort();
    },
  };
}

// The text/event-stream format: lines of `field: value`, an event per blank line, comment
// lines (the server's pings) starting with a colon. Lines are split at \n with a trailing
// \r dropped (sse-starlette ends them with \r\n), so a chunk cut between the two is whole.
async function read(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = blank();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        if (event.data.length) dispatch({ ...event, data: event.data.join("\n") });
        event = blank();
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const text = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = text;
      else if (field === "data") event.data.push(text);
      else if (field === "id") event.id = text;
    }
  }
}

function blank() {
  return { type: "message", data: [], id: null };
}
