// The trainq API as the dashboard calls it: JSON in and out, errors as ApiError.

export class ApiError extends Error {
  /** status 0: the API could not be reached. `fields`: [{field, message}] of a 4xx answer. */
  constructor(status, detail, fields = []) {
    super(detail);
    this.status = status;
    this.fields = fields;
  }
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The trainq API cannot be reached.");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = answer?.detail ?? `The API answered ${response.status} ${response.statusText}.`;
    throw new ApiError(response.status, detail, answer?.errors ?? []);
  }
  return answer;
}

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
