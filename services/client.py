"""A Python client for trainq's HTTP API, over httpx: what the `trainq` command uses, and
what a user imports to script it.

    from trainq.services.client import TrainqClient

    with TrainqClient("http://127.0.0.1:8000") as trainq:  # the key: TRAINQ_API_KEY, else TRAINQ_HOME/api-key
        job = trainq.submit(spec)
        for job, epochs in trainq.watch(job.id):
            print(job.progress.epoch, epochs[-1].logs if epochs else None)
        print(trainq.evaluate(job.id, x, y).loss)
        trainq.export(job.id, Path("model"))           # model.json + weights.bin for tf.js
        stored = trainq.import_model(Path("saved/model.json"))  # what tf.js's model.save wrote

Every 4xx or 5xx answer raises an `ApiError` carrying the API's detail and field errors:

    ClientError
     ├── Unreachable            the server could not be reached or did not answer in time
     └── ApiError               the server answered an error (status_code, detail, errors)
          ├── NotAuthenticated  401  no API key, or one not valid or revoked
          ├── JobNotFound       404  (a model's too)
          ├── Conflict          409  no weights yet, a finished job cancelled
          ├── InvalidRequest    413, 415, 422 and any other 4xx: `errors` names each field
          └── ServerError       5xx
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


DEFAULT_URL = "http://127.0.0.1:8000"
# a whole id (a UUID); anything shorter is taken as a prefix of one
ID_LENGTH = 36
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
# a watch whose stream drops takes it up again this many times in a row, this long apart
RECONNECTS = 5
RECONNECT_SECONDS = 1.0

Matrix = Sequence[Sequence[float]] | Sequence[float]


class ClientError(Exception):
    """Anything that kept a request from getting the answer it asked for."""


class Unreachable(ClientError):
    pass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ApiError(ClientError):
    def __init__(self, status_code: int, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = list(errors)

    def __str__(self) -> str:
        fields = "; ".join(f"{error.field}: {error.message}" for error in self.errors)
        return f"{self.detail} ({fields})" if fields and len(self.errors) > 1 else self.detail


class NotAuthenticated(ApiError):
    HINT = "Set TRAINQ_API_KEY, or TRAINQ_HOME to the folder whose api-key `trainq up` wrote."

    def __str__(self) -> str:
        return f"{self.detail} {self.HINT}"


class JobNotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class InvalidRequest(ApiError):
    pass


class ServerError(ApiError):
    pass


@dataclass(frozen=True)
class Progress:
    epoch: int
    epochs: int


@dataclass(frozen=True)
class Job:
    id: str
    name: str | None
    status: str
    device: str
    attempt: int
    worker: str | None
    progress: Progress
    metrics: dict[str, float | None] | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # why a queued job waits (no online worker can take it); None otherwise
    reason: str | None
    # the API's answer as it came, for machine output (`trainq show --json`)
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to now, while it runs); None before it starts."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(self.started_at.tzinfo)
        return max((end - self.started_at).total_seconds(), 0.0)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Job:
        return cls(
            id=raw["id"],
            name=raw["name"],
            status=raw["status"],
            device=raw["device"],
            attempt=raw["attempt"],
            worker=raw["worker"],
            progress=Progress(raw["progress"]["epoch"], raw["progress"]["epochs"]),
            metrics=raw["metrics"],
            error=raw["error"],
            cancel_requested=raw["cancelRequested"],
            created_at=datetime.fromisoformat(raw["createdAt"]),
            started_at=_time(raw["startedAt"]),
            finished_at=_time(raw["finishedAt"]),
            reason=raw.get("reason"),
            raw=raw,
        )


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class Epoch:
    epoch: int
    logs: dict[str, float | None]
    wall_time: float


@dataclass(frozen=True)
class WeightArray:
    shape: list[int]
    values: list[Any]


@dataclass(frozen=True)
class Evaluation:
    loss: float | None
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class StoredModel:
    """A model kept to start jobs from: `{"model": {"from": id}}` in a job spec."""

    id: str
    name: str | None
    layers: list[dict[str, Any]]
    compile: dict[str, Any] | None
    parameters: int
    source_job_id: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> StoredModel:
        return cls(
            id=raw["id"],
            name=raw["name"],
            layers=raw["layers"],
            compile=raw["compile"],
            parameters=raw["parameters"],
            source_job_id=raw["sourceJobId"],
            created_at=_time(raw["createdAt"]),
        )


@dataclass(frozen=True)
class Export:
    """The files `export` wrote, and the epoch of the job's model they hold."""

    model_json: Path
    weights_bin: Path
    epoch: int


class TrainqClient:
    """One connection pool to one trainq server; use it as a context manager or `close()` it."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`api_key`: default TRAINQ_API_KEY, else the key `trainq up` saved in TRAINQ_HOME/api-key."""
        # imported here, not at the top: `trainq --help` need not load httpx (0.1-0.3 s)
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=auth_headers(api_key)
        )

    def __enter__(self) -> TrainqClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- jobs ---------------------------------------------------------------------

    def submit(
        self,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        device: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job spec (model, compile, fit, data; optionally name and device)."""
        body = dict(spec)
        if name is not None:
            body["name"] = name
        if device is not None:
            body["device"] = device
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return Job.of(self._request("POST", "/v1/jobs", json=body, headers=headers))

    def jobs(self, *, status: str | None = None, cursor: str | None = None, limit: int = 50) -> JobPage:
        """One page of jobs, newest first."""
        items, next_cursor = self._page("jobs", limit=limit, cursor=cursor, status=status)
        return JobPage([Job.of(item) for item in items], next_cursor)

    def job(self, job_id: str) -> Job:
        return Job.of(self._request("GET", f"/v1/jobs/{job_id}"))

    def spec(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/spec")

    def history(self, job_id: str, since: int = 0) -> list[Epoch]:
        """The recorded epochs from `since` (0-based) on."""
        body = self._request("GET", f"/v1/jobs/{job_id}/history", params={"since": since})
        return [Epoch(row["epoch"], row["logs"], row["wallTime"]) for row in body["epochs"]]

    def weights(self, job_id: str) -> list[WeightArray]:
        """The final weights in getWeights() order; `Conflict` until the job succeeded."""
        body = self._request("GET", f"/v1/jobs/{job_id}/weights")
        return [WeightArray(w["shape"], w["values"]) for w in body["weights"]]

    def evaluate(self, job_id: str, x: Matrix, y: Matrix, *, batch_size: int | None = None) -> Evaluation:
        body: dict[str, Any] = {"x": x, "y": y}
        if batch_size is not None:
            body["batchSize"] = batch_size
        answer = self._request("POST", f"/v1/jobs/{job_id}/evaluate", json=body)
        return Evaluation(answer["loss"], answer["metrics"])

    def predict(self, job_id: str, x: Matrix, *, batch_size: int | None = None) -> list[list[float | None]]:
        body: dict[str, Any] = {"x": x}
        if batch_size is not None:
            body["batchSize"] = batch_size
        return self._request("POST", f"/v1/jobs/{job_id}/predict", json=body)["predictions"]

    def cancel(self, job_id: str) -> Job:
        """Ask to cancel: a queued job ends cancelled at once, a running one within a batch."""
        return Job.of(self._request("POST", f"/v1/jobs/{job_id}/cancel"))

    def watch(self, job_id: str) -> Iterator[tuple[Job, list[Epoch]]]:
        """Follow a job's event stream (GET /v1/jobs/{id}/events) until it finishes: yields
        the job as it stands and the epochs that came with the event (none repeated, none
        skipped); the last job yielded is finished. A dropped connection is taken up again
        after the last event received (Last-Event-ID)."""
        import httpx
        from httpx_sse import connect_sse

        job: Job | None = None
        held: list[Epoch] = []
        last_event_id: str | None = None
        failures = 0
        while job is None or not job.finished:
            headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
            try:
                with connect_sse(self._http, "GET", f"/v1/jobs/{job_id}/events", headers=headers) as source:
                    if not source.response.is_success:
                        source.response.read()
                        raise _api_error(source.response)
                    for event in source.iter_sse():
                        failures = 0
                        last_event_id = event.id or last_event_id
                        if event.event == "status":
                            job = Job.of(json.loads(event.data))
                            yield job, held
                            held = []
                        elif event.event == "epoch":
                            row = json.loads(event.data)
                            epoch = Epoch(row["epoch"], row["logs"], row["wallTime"])
                            if job is None:
                                # an ended job's stream tells its state after its epochs
                                held.append(epoch)
                                continue
                            job = replace(
                                job, progress=Progress(epoch.epoch + 1, job.progress.epochs), metrics=epoch.logs
                            )
                            yield job, [epoch]
            except httpx.TransportError as error:
                failures += 1
                if failures > RECONNECTS:
                    raise Unreachable(f"trainq at {self.url} stopped answering: {error}") from error
                time.sleep(RECONNECT_SECONDS)

    # --- models: TensorFlow.js in and out -------------------------------------------

    def export(self, job_id: str, directory: Path) -> Export:
        """Write the job's model as tf.js loads it, `model.json` and `weights.bin`, into
        `directory` (made if missing): the final weights, or a running, cancelled or failed
        job's last checkpoint (`Export.epoch` says which epoch)."""
        model_json = self._response("GET", f"/v1/jobs/{job_id}/model.json")
        weights = self._response("GET", f"/v1/jobs/{job_id}/weights.bin")
        directory.mkdir(parents=True, exist_ok=True)
        paths = Export(directory / "model.json", directory / "weights.bin", int(weights.headers["X-Trainq-Epoch"]))
        paths.model_json.write_bytes(model_json.content)
        paths.weights_bin.write_bytes(weights.content)
        return paths

    def import_model(self, model_json: Path, *, name: str | None = None) -> StoredModel:
        """Store a model saved by tf.js (`model.json` and the weight files its manifest names,
        beside it), sent as `tf.io.http` sends one."""
        document = json.loads(model_json.read_bytes())
        paths = [path for group in document.get("weightsManifest") or [] for path in group.get("paths", [])]
        weights = b"".join((model_json.parent / path).read_bytes() for path in paths)
        files = {
            "model.json": ("model.json", model_json.read_bytes(), "application/json"),
            "model.weights.bin": ("model.weights.bin", weights, "application/octet-stream"),
        }
        params = {"name": name} if name is not None else None
        return StoredModel.of(self._request("POST", "/v1/models", files=files, params=params))

    def save_model(self, job_id: str, *, name: str | None = None) -> StoredModel:
        """Keep a job's model to start other jobs from."""
        params = {"name": name} if name is not None else None
        return StoredModel.of(self._request("POST", f"/v1/jobs/{job_id}/model", params=params))

    def models(self, *, cursor: str | None = None, limit: int = 50) -> tuple[list[StoredModel], str | None]:
        """One page of stored models, newest first, and the next page's cursor."""
        items, next_cursor = self._page("models", limit=limit, cursor=cursor)
        return [StoredModel.of(item) for item in items], next_cursor

    def model(self, model_id: str) -> StoredModel:
        return StoredModel.of(self._request("GET", f"/v1/models/{model_id}"))

    def delete_model(self, model_id: str) -> None:
        self._response("DELETE", f"/v1/models/{model_id}")

    # --- sweeps, workers, datasets ---------------------------------------------------

    def delete_job(self, job_id: str) -> None:
        """Delete an ended job with its history, weights and evaluations (Conflict while it runs)."""
        self._response("DELETE", f"/v1/jobs/{job_id}")

    def sweeps(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest sweeps, as the API answers them (points, jobs by status, best value)."""
        return self._page("sweeps", limit=limit)[0]

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """A sweep with its jobs ranked."""
        return self._request("GET", f"/v1/sweeps/{sweep_id}")

    def delete_sweep(self, sweep_id: str) -> None:
        self._response("DELETE", f"/v1/sweeps/{sweep_id}")

    def workers(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/workers")["items"]

    def datasets(self, *, limit: int = 50) -> list[dict[str, Any]]:
        return self._page("datasets", limit=limit)[0]

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/datasets/{dataset_id}")

    def delete_dataset(self, dataset_id: str) -> None:
        self._response("DELETE", f"/v1/datasets/{dataset_id}")

    def full_id(self, kind: str, given: str) -> str:
        """The whole id of the one job, sweep or dataset (`kind`: "jobs", "sweeps",
        "datasets") whose id starts with `given`, as the short ids shown by the CLI and the
        dashboard do; a whole id is returned as it is, unasked."""
        if len(given) >= ID_LENGTH:
            return given
        ids = [item["id"] for item in self._page(kind, limit=2, idPrefix=given)[0]]
        what = kind.removesuffix("s")
        if not ids:
            raise JobNotFound(404, f"no {what} id starts with {given!r}", [FieldError("id", "matches nothing")])
        if len(ids) > 1:
            message = f"starts the ids of several {kind}; give more of it"
            raise InvalidRequest(422, f"{given!r} {message}", [FieldError("id", message)])
        return str(ids[0])

    # --- transport ----------------------------------------------------------------

    def _page(self, kind: str, *, limit: int, **query: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a list (`kind`: "jobs", "models", "sweeps", "datasets"), newest first,
        and the next page's cursor; a query parameter given None (or "") is left out."""
        params: dict[str, Any] = {"limit": limit} | {key: value for key, value in query.items() if value}
        page = self._request("GET", f"/v1/{kind}", params=params)
        return page["items"], page["nextCursor"]

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._response(method, path, **kwargs).json()

    def _response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(f"trainq at {self.url} cannot be reached: {error}") from error
        if response.is_success:
            return response
        raise _api_error(response)


def auth_headers(api_key: str | None = None) -> dict[str, str]:
    """The Authorization header of `api_key`, else of TRAINQ_API_KEY, else of TRAINQ_HOME/api-key."""
    # imported here: the settings (pydantic) are read when a request needs a key, not by `trainq --help`
    from trainq.services.settings import get_settings

    api_key = api_key or get_settings().local_api_key()
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        detail = str(body["detail"])
        errors = [FieldError(str(e["field"]), str(e["message"])) for e in body.get("errors", [])]
    except (ValueError, KeyError, TypeError):
        detail = f"HTTP {response.status_code}: {response.text[:200] or response.reason_phrase}"
        errors = []
    code = response.status_code
    kinds: dict[int, type[ApiError]] = {401: NotAuthenticated, 404: JobNotFound, 409: Conflict}
    kind = kinds.get(code) or (ServerError if code >= 500 else InvalidRequest)
    return kind(code, detail, errors)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
