// The trainq API as the dashboard calls it: JSON in and out, errors as ApiError, and the
// API key sent as a header on every call. The key lives in this tab's sessionStorage, never
// in a cookie: a request another site makes the browser send carries no key.

export class ApiError extends Error {
  /** status 0: the API could not be reached. `fields`: [{field, message}] of a 4xx answer. */
  constructor(status, detail, fields = []) {
    super(detail);
    this.status = status;
    this.fields = fields;
  }
}

const KEY = "trainq.apiKey";
// fired when the API refuses the key (or there is none): the page asks for one
export const KEY_NEEDED = "trainq:key-needed";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

/** The API refused the key: forget it, and have the page ask for one. */
export function keyRefused() {
  sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent(KEY_NEEDED, { detail: { refused: true } }));
}

export function useApiKey(key) {
  sessionStorage.setItem(KEY, key.trim());
}

/** The key `trainq up` printed in the URL's fragment (#key=...), kept, and taken out of the
 * address bar and its history. True if there was one. */
export function takeKeyFromUrl() {
  const match = location.hash.match(/^#key=([^&?/]+)/);
  if (!match) return false;
  useApiKey(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return true;
}

/** The answer's JSON; with `blob`, its bytes as a Blob (a model's weights.bin). */
export async function api(path, { method = "GET", body, signal, blob = false } = {}) {
  const key = apiKey();
  if (!key) {
    window.dispatchEvent(new CustomEvent(KEY_NEEDED, { detail: { refused: false } }));
    throw new ApiError(401, "An API key is needed.");
  }
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The trainq API cannot be reached.");
  }
  if (blob && response.ok) return response.blob();
  const answer = await response.json().catch(() => null);
  if (response.status === 401) keyRefused();
  if (!response.ok) {
    const detail = answer?.detail ?? `The API answered ${response.status} ${response.statusText}.`;
    throw new ApiError(response.status, detail, answer?.errors ?? []);
  }
  return answer;
}

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
