"""Jobs as the end-to-end tests submit and watch them, over real HTTP.

The seed job fits `y = 2x + 1`: one Dense unit, mean squared error, plain SGD. With x
drawn uniformly from [-1, 1] the loss is a quadratic bowl whose curvature is 2·E[x²] = 2/3
in the kernel and 2 in the bias, so each SGD step at learning rate 0.1 shrinks the kernel's
error by about 1 − 0.1·2/3 ≈ 0.93 and the bias's by 0.8: after 200 epochs of 5 batches
(1000 steps) both errors are far below float32's resolution around 2, and a tolerance of
1e-3 leaves room for float32 rounding while still failing for a model that did not learn.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import numpy as np
from httpx_sse import ServerSentEvent, connect_sse

from tests.support.processes import Processes, wait_for
from trainq.services.engine import Model
from trainq.services.spec import JobSpec

FINISHED = ("succeeded", "failed", "cancelled")
KERNEL, BIAS = 2.0, 1.0
WEIGHT_TOLERANCE = 1e-3


def line(samples: int, seed: int) -> tuple[list[list[float]], list[list[float]]]:
    """x uniform in [-1, 1] and y = 2x + 1, as float32-exact JSON numbers."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(samples, 1)).astype(np.float32)
    y = (KERNEL * x + BIAS).astype(np.float32)
    return x.tolist(), y.tolist()


def seed_spec(
    *, epochs: int = 200, samples: int = 200, batch_size: int = 40, seed: int = 7, metrics: tuple[str, ...] = ("mae",)
) -> dict[str, Any]:
    x, y = line(samples, seed)
    return {
        "name": "y = 2x + 1",
        "model": {"layers": [{"units": 1, "inputShape": [1]}]},
        "compile": {
            "optimizer": {"name": "sgd", "learningRate": 0.1},
            "loss": "meanSquaredError",
            "metrics": list(metrics),
        },
        "fit": {"epochs": epochs, "batchSize": batch_size, "validationSplit": 0.2, "seed": seed},
        "data": {"x": x, "y": y},
    }


def long_spec(*, epochs: int, samples: int = 2000, batch_size: int = 8, seed: int = 11) -> dict[str, Any]:
    """A job that takes a while: many small batches per epoch (a small learning rate keeps it finite)."""
    x, y = line(samples, seed)
    return {
        "name": "long",
        "model": {"layers": [{"units": 4, "inputShape": [1], "activation": "tanh"}, {"units": 1}]},
        "compile": {"optimizer": {"name": "sgd", "learningRate": 0.001}, "loss": "meanSquaredError"},
        "fit": {"epochs": epochs, "batchSize": batch_size, "seed": seed},
        "data": {"x": x, "y": y},
    }


def submit(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "queued", job
    return job


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def history(client: httpx.Client, job_id: str, since: int = 0) -> list[dict[str, Any]]:
    response = client.get(f"/v1/jobs/{job_id}/history", params={"since": since})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jobId"] == job_id
    return body["epochs"]


def weights(client: httpx.Client, job_id: str) -> list[np.ndarray]:
    response = client.get(f"/v1/jobs/{job_id}/weights")
    assert response.status_code == 200, response.text
    return [np.asarray(w["values"], dtype=np.float32).reshape(w["shape"]) for w in response.json()["weights"]]


def wait_for_status(
    client: httpx.Client, job_id: str, statuses: tuple[str, ...] | str, *, timeout: float, processes: Processes
) -> dict[str, Any]:
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        last.update(get_job(client, job_id))
        return dict(last) if last["status"] in statuses else None

    return wait_for(
        reached,
        timeout=timeout,
        what=f"job {job_id} is {' or '.join(statuses)}",
        processes=processes,
        state=lambda: last,
    )


def wait_for_epoch(
    client: httpx.Client, job_id: str, epoch: int, *, timeout: float, processes: Processes
) -> dict[str, Any]:
    """Until the job has finished `epoch` epochs (its progress, as GET /v1/jobs/{id} shows it)."""
    return wait_for(
        lambda: (lambda job: job if job["progress"]["epoch"] >= epoch else None)(get_job(client, job_id)),
        timeout=timeout,
        what=f"job {job_id} has finished {epoch} epochs",
        processes=processes,
        state=lambda: get_job(client, job_id),
    )


def watch_until_finished(
    client: httpx.Client, job_id: str, *, timeout: float, processes: Processes
) -> tuple[list[str], dict[str, Any]]:
    """Poll the job as fast as the API answers; the distinct statuses seen, in order, and the last job."""
    seen: list[str] = []
    last: dict[str, Any] = {}

    def finished() -> bool:
        last.update(get_job(client, job_id))
        if not seen or seen[-1] != last["status"]:
            seen.append(last["status"])
        return last["status"] in FINISHED

    wait_for(
        finished,
        timeout=timeout,
        what=f"job {job_id} finishes",
        processes=processes,
        state=lambda: {"seen": seen, "job": last},
        interval=0.005,
    )
    return seen, dict(last)


def check_went_through_running(seen: list[str], job: dict[str, Any]) -> None:
    """The states a poll saw come in their order and end succeeded, and the job ran on a
    worker. A poll cannot promise to see `running`: a small job now runs for less than one
    poll's round trip; its start time and worker prove it ran."""
    order = ["queued", "running", "succeeded"]
    assert seen[-1] == "succeeded" and seen == [state for state in order if state in seen], seen
    assert job["worker"] is not None and job["attempt"] == 1, job
    created, started, finished = (datetime.fromisoformat(job[key]) for key in ("createdAt", "startedAt", "finishedAt"))
    assert created <= started <= finished, job


def check_trained_line(client: httpx.Client, job: dict[str, Any], spec: dict[str, Any]) -> None:
    """What a succeeded seed job must show: per-epoch history with a falling loss, weights near
    (2, 1), and evaluate and predict that agree with the engine on the same weights."""
    job_id = job["id"]
    epochs = spec["fit"]["epochs"]
    assert job["status"] == "succeeded", job
    assert job["attempt"] == 1, job
    assert job["progress"] == {"epoch": epochs, "epochs": epochs}, job
    assert job["error"] is None
    assert job["startedAt"] and job["finishedAt"] and job["createdAt"] <= job["startedAt"] <= job["finishedAt"]

    rows = history(client, job_id)
    assert [row["epoch"] for row in rows] == list(range(epochs))
    losses = [row["logs"]["loss"] for row in rows]
    assert all("val_loss" in row["logs"] and "mae" in row["logs"] for row in rows), rows[0]
    assert all(row["wallTime"] >= 0 for row in rows)
    assert losses[-1] < losses[0] / 1000, (losses[0], losses[-1])
    assert job["metrics"] == rows[-1]["logs"]
    assert [row["epoch"] for row in history(client, job_id, since=epochs - 3)] == list(range(epochs - 3, epochs))

    kernel, bias = weights(client, job_id)
    assert kernel.shape == (1, 1) and bias.shape == (1,)
    assert abs(float(kernel[0, 0]) - KERNEL) < WEIGHT_TOLERANCE, kernel
    assert abs(float(bias[0]) - BIAS) < WEIGHT_TOLERANCE, bias

    config = JobSpec.model_validate({k: v for k, v in spec.items() if k != "name"}).to_training_config()
    model = Model.from_weights(config.model, config.compile, [kernel, bias])
    x_test, y_test = line(50, seed=1234)
    answer = client.post(f"/v1/jobs/{job_id}/evaluate", json={"x": x_test, "y": y_test})
    assert answer.status_code == 200, answer.text
    expected = model.evaluate(np.asarray(x_test, np.float32), np.asarray(y_test, np.float32))
    # the API runs the same engine on the same float32 weights and data: the same numbers, not close ones
    assert answer.json() == {"loss": expected["loss"], "metrics": {"mae": expected["mae"]}}
    assert answer.json()["loss"] < 1e-5

    answer = client.post(f"/v1/jobs/{job_id}/predict", json={"x": x_test})
    assert answer.status_code == 200, answer.text
    predictions = np.asarray(answer.json()["predictions"], np.float32)
    np.testing.assert_array_equal(predictions, model.predict(np.asarray(x_test, np.float32)))
    np.testing.assert_allclose(predictions, np.asarray(y_test, np.float32), atol=WEIGHT_TOLERANCE * 3)


# --- the event stream (GET /v1/jobs/{id}/events) ---


def stream(
    client: httpx.Client, job_id: str, last_event_id: str | None = None, stop_after: int | None = None
) -> list[ServerSentEvent]:
    """The job's events until the stream ends (or `stop_after` epoch events, then hang up)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    seen: list[ServerSentEvent] = []
    with connect_sse(client, "GET", f"/v1/jobs/{job_id}/events", headers=headers) as source:
        assert source.response.status_code == 200, source.response.read()
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            seen.append(event)
            if stop_after is not None and sum(e.event == "epoch" for e in seen) >= stop_after:
                break
    return seen


def epochs_of(events: list[ServerSentEvent]) -> list[int]:
    return [json.loads(e.data)["epoch"] for e in events if e.event == "epoch"]


def statuses_of(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(e.data)["status"] for e in events if e.event == "status"]


def check_complete(events: list[ServerSentEvent], epochs: int, logs: list[dict[str, Any]]) -> None:
    assert epochs_of(events) == list(range(epochs))
    assert [json.loads(e.data)["logs"] for e in events if e.event == "epoch"] == logs
    assert events[-1].event == "status" and json.loads(events[-1].data)["status"] == "succeeded"
    ids = [e.id for e in events]
    assert all(ids) and len(set(ids)) == len(ids), ids
