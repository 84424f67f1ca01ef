"""Malformed requests over real HTTP: each is answered 4xx (never 500) naming the field at
fault, and a rejected submit leaves every table of the database as it was."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec, submit, wait_for_status

pytestmark = pytest.mark.e2e

UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Jobs:
    finished: str  # succeeded, so it has weights
    queued: str  # no worker runs in this module after setup, so it never gets weights


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> Iterator[Jobs]:
    with stack.client() as client:
        worker = stack.worker("setup")
        finished = submit(client, seed_spec(epochs=5))["id"]
        wait_for_status(client, finished, "succeeded", timeout=30, processes=stack.processes)
        worker.stop()
        queued = submit(client, seed_spec(epochs=5))["id"]
    yield Jobs(finished, queued)


def spec(**changes: Any) -> dict[str, Any]:
    """The seed spec with dotted-path changes: spec(**{"fit.epochs": -1})."""
    document = copy.deepcopy(seed_spec(epochs=5, samples=10, batch_size=4))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return document


DELETE = object()


def raw(document: dict[str, Any], old: str, new: str) -> bytes:
    """The JSON text of `document` with one literal replaced: for NaN and Infinity, which no
    JSON encoder writes but a client can send."""
    text = json.dumps(document)
    assert old in text
    return text.replace(old, new, 1).encode()


@dataclass(frozen=True)
class Bad:
    name: str
    method: str
    path: str  # {finished}, {queued}, {unknown} are filled in
    status: int
    field: str | None  # must appear in errors[].field; None where no request field is at fault
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    before: Callable[[httpx.Client], None] | None = None


SUBMIT = "/v1/jobs"
NAN_SPEC = spec()
NAN_SPEC["data"]["x"][2] = [123.25]
BIG = (
    b'{"model": {"layers": [{"units": 1, "inputShape": [1]}]}, "compile": {"optimizer": "sgd", "loss": "mse"}, '
    b'"data": {"x": [' + b"[0.5]," * (50 * 1024 * 1024 // 6) + b'[0.5]], "y": [[1]]}}'
)


def _first_use_of_key(client: httpx.Client) -> None:
    answer = client.post(SUBMIT, json=spec(), headers={"Idempotency-Key": "reused-key"})
    assert answer.status_code in (200, 201), answer.text


CASES = [
    # the job spec: types, names and ranges
    Bad("epochs of the wrong type", "POST", SUBMIT, 422, "fit.epochs", json=spec(**{"fit.epochs": "ten"})),
    Bad(
        "units of the wrong type",
        "POST",
        SUBMIT,
        422,
        "model.layers[0].units",
        json=spec(**{"model.layers.0.units": [1]}),
    ),
    Bad("x of the wrong type", "POST", SUBMIT, 422, "data.x", json=spec(**{"data.x": "0.1, 0.2"})),
    Bad("unknown loss", "POST", SUBMIT, 422, "compile.loss", json=spec(**{"compile.loss": "meanSquaredErr"})),
    Bad("unknown optimizer", "POST", SUBMIT, 422, "compile.optimizer", json=spec(**{"compile.optimizer": "sgdd"})),
    Bad(
        "unknown optimizer in an object",
        "POST",
        SUBMIT,
        422,
        "compile.optimizer",
        json=spec(**{"compile.optimizer": {"name": "lbfgs"}}),
    ),
    Bad(
        "negative learning rate",
        "POST",
        SUBMIT,
        422,
        "compile.optimizer.learningRate",
        json=spec(**{"compile.optimizer": {"name": "sgd", "learningRate": -0.1}}),
    ),
    Bad(
        "unknown activation",
        "POST",
        SUBMIT,
        422,
        "model.layers[0].activation",
        json=spec(**{"model.layers.0.activation": "swishy"}),
    ),
    Bad(
        "unknown initializer",
        "POST",
        SUBMIT,
        422,
        "model.layers[0].kernelInitializer",
        json=spec(**{"model.layers.0.kernelInitializer": "glorotWhatever"}),
    ),
    Bad("unknown metric", "POST", SUBMIT, 422, "compile.metrics[0]", json=spec(**{"compile.metrics": ["f1"]})),
    Bad("negative epochs", "POST", SUBMIT, 422, "fit.epochs", json=spec(**{"fit.epochs": -3})),
    Bad("zero batch size", "POST", SUBMIT, 422, "fit.batchSize", json=spec(**{"fit.batchSize": 0})),
    Bad("validation split 1.5", "POST", SUBMIT, 422, "fit.validationSplit", json=spec(**{"fit.validationSplit": 1.5})),
    Bad("no layers", "POST", SUBMIT, 422, "model.layers", json=spec(**{"model.layers": []})),
    # the data
    Bad("x and y of different lengths", "POST", SUBMIT, 422, "data.y", json=spec(**{"data.y": [[1.0], [2.0], [3.0]]})),
    Bad("ragged rows", "POST", SUBMIT, 422, "data.x[1]", json=spec(**{"data.x.1": [0.5, 0.7]})),
    Bad(
        "NaN in x",
        "POST",
        SUBMIT,
        422,
        "data.x[2][0]",
        content=raw(NAN_SPEC, "123.25", "NaN"),
        headers={"Content-Type": "application/json"},
    ),
    Bad(
        "-Infinity in x",
        "POST",
        SUBMIT,
        422,
        "data.x[2][0]",
        content=raw(NAN_SPEC, "123.25", "-Infinity"),
        headers={"Content-Type": "application/json"},
    ),
    Bad("a value too big for float32", "POST", SUBMIT, 422, "data.x[2][0]", json=spec(**{"data.x.2": [1e39]})),
    Bad("no rows", "POST", SUBMIT, 422, "data.x", json=spec(**{"data.x": [], "data.y": []})),
    Bad("inputShape not matching x", "POST", SUBMIT, 422, "data.x", json=spec(**{"model.layers.0.inputShape": [2]})),
    Bad("y wider than the output layer", "POST", SUBMIT, 422, "data.y", json=spec(**{"data.y": [[1.0, 2.0]] * 10})),
    Bad(
        "initial weights of the wrong shape",
        "POST",
        SUBMIT,
        422,
        "model.weights[0]",
        json=spec(**{"model.weights": [[[1.0, 2.0]], [0.0]]}),
    ),
    # the document as a whole
    Bad("unknown top-level field", "POST", SUBMIT, 422, "colour", json=spec(colour="blue")),
    Bad("missing compile", "POST", SUBMIT, 422, "compile", json=spec(compile=DELETE)),
    Bad("device tpu", "POST", SUBMIT, 422, "device", json=spec(device="tpu")),
    Bad("name too long", "POST", SUBMIT, 422, "name", json=spec(name="n" * 201)),
    Bad(
        "invalid JSON",
        "POST",
        SUBMIT,
        422,
        "body",
        content=b'{"model": {"layers": [',
        headers={"Content-Type": "application/json"},
    ),
    Bad("empty body", "POST", SUBMIT, 422, "body", content=b"", headers={"Content-Type": "application/json"}),
    Bad("a JSON list for a body", "POST", SUBMIT, 422, "body", json=[1, 2, 3]),
    Bad("a 50 MB body", "POST", SUBMIT, 413, "body", content=BIG, headers={"Content-Type": "application/json"}),
    Bad(
        "a wrong content type",
        "POST",
        SUBMIT,
        415,
        "header.Content-Type",
        content=json.dumps(spec()).encode(),
        headers={"Content-Type": "text/plain"},
    ),
    Bad("no content type", "POST", SUBMIT, 415, "header.Content-Type", content=json.dumps(spec()).encode()),
    Bad(
        "an Idempotency-Key reused with another body",
        "POST",
        SUBMIT,
        409,
        "header.Idempotency-Key",
        json=spec(**{"fit.epochs": 6}),
        headers={"Idempotency-Key": "reused-key"},
        before=_first_use_of_key,
    ),
    # unknown jobs
    Bad("get an unknown job", "GET", "/v1/jobs/{unknown}", 404, "path.job_id"),
    Bad("history of an unknown job", "GET", "/v1/jobs/{unknown}/history", 404, "path.job_id"),
    Bad("weights of an unknown job", "GET", "/v1/jobs/{unknown}/weights", 404, "path.job_id"),
    Bad(
        "evaluate an unknown job",
        "POST",
        "/v1/jobs/{unknown}/evaluate",
        404,
        "path.job_id",
        json={"x": [[1.0]], "y": [[3.0]]},
    ),
    Bad("predict with an unknown job", "POST", "/v1/jobs/{unknown}/predict", 404, "path.job_id", json={"x": [[1.0]]}),
    Bad("cancel an unknown job", "POST", "/v1/jobs/{unknown}/cancel", 404, "path.job_id"),
    # jobs in the wrong state
    Bad("weights before the job has any", "GET", "/v1/jobs/{queued}/weights", 409, "path.job_id"),
    Bad(
        "evaluate before the job has weights",
        "POST",
        "/v1/jobs/{queued}/evaluate",
        409,
        "path.job_id",
        json={"x": [[1.0]], "y": [[3.0]]},
    ),
    Bad(
        "predict before the job has weights",
        "POST",
        "/v1/jobs/{queued}/predict",
        409,
        "path.job_id",
        json={"x": [[1.0]]},
    ),
    Bad("cancel a finished job", "POST", "/v1/jobs/{finished}/cancel", 409, "path.job_id"),
    # queries on a trained model
    Bad(
        "evaluate with x not matching inputShape",
        "POST",
        "/v1/jobs/{finished}/evaluate",
        422,
        "x",
        json={"x": [[1.0, 2.0]], "y": [[3.0]]},
    ),
    Bad(
        "evaluate with x and y of different lengths",
        "POST",
        "/v1/jobs/{finished}/evaluate",
        422,
        "y",
        json={"x": [[1.0], [2.0]], "y": [[3.0]]},
    ),
    Bad("evaluate without y", "POST", "/v1/jobs/{finished}/evaluate", 422, "y", json={"x": [[1.0]]}),
    Bad(
        "predict with ragged rows", "POST", "/v1/jobs/{finished}/predict", 422, "x[1]", json={"x": [[1.0], [1.0, 2.0]]}
    ),
    Bad(
        "predict with a zero batch size",
        "POST",
        "/v1/jobs/{finished}/predict",
        422,
        "batchSize",
        json={"x": [[1.0]], "batchSize": 0},
    ),
    # listing and history queries
    Bad("limit 0", "GET", "/v1/jobs", 422, "query.limit", params={"limit": "0"}),
    Bad("limit 100000", "GET", "/v1/jobs", 422, "query.limit", params={"limit": "100000"}),
    Bad("a bad cursor", "GET", "/v1/jobs", 422, "query.cursor", params={"cursor": "not-a-cursor"}),
    Bad("an unknown status", "GET", "/v1/jobs", 422, "query.status", params={"status": "sleeping"}),
    Bad("a non-numeric since", "GET", "/v1/jobs/{finished}/history", 422, "query.since", params={"since": "abc"}),
    Bad("a negative since", "GET", "/v1/jobs/{finished}/history", 422, "query.since", params={"since": "-1"}),
    Bad(
        "a since beyond any epoch",
        "GET",
        "/v1/jobs/{finished}/history",
        422,
        "query.since",
        params={"since": "9223372036854775808"},
    ),
    # what PostgreSQL refuses to store although SQLite would
    Bad("a NUL character in a job id", "GET", "/v1/jobs/a%00b", 422, "path"),
    Bad("a NUL character in a name", "POST", SUBMIT, 422, "body", json=spec(name="a\u0000b")),
    Bad("a NUL character in a cursor", "GET", "/v1/jobs", 422, "query.cursor", params={"cursor": "a\x00b"}),
    Bad(
        "a NUL character in a dataset's name",
        "POST",
        "/v1/datasets",
        422,
        "query.name",
        content=b"a,target\n1,2\n3,4\n",
        headers={"Content-Type": "text/csv"},
        params={"name": "a\x00b"},
    ),
]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_malformed_request_is_refused_naming_its_field(case: Bad, stack: Stack, jobs: Jobs) -> None:
    path = case.path.format(finished=jobs.finished, queued=jobs.queued, unknown=UNKNOWN_JOB)
    with stack.client() as client:
        if case.before is not None:
            case.before(client)
        rows_before = stack.row_counts()
        answer = client.request(
            case.method, path, json=case.json, content=case.content, headers=case.headers, params=case.params
        )
        rows_after = stack.row_counts()

    assert answer.status_code == case.status, answer.text[:2000]
    body = answer.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    fields = [error["field"] for error in body["errors"]]
    assert all(error["message"] for error in body["errors"]), body
    if case.field is not None:
        assert case.field in fields, body
    else:
        # a conflict names the job, not a field of the request
        assert path.split("/")[3] in body["detail"], body
    # nothing was stored, nothing was changed
    assert rows_after == rows_before
