"""Evaluations on workers take effect once, whatever the broker does: a message delivered
twice runs one evaluation, and one whose message was lost is re-sent by the requeue sweep
(last in this module: it restarts the stack's Redis empty)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import submit, wait_for_status
from tests.support.processes import wait_for
from trainq.services.queue import QUEUE, RUN_EVALUATION, messages_waiting

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(5)
X = RNG.uniform(-1, 1, size=(40, 2)).astype(np.float32)
Y = (X @ np.array([[0.5], [-1.0]], dtype=np.float32) + 0.1).astype(np.float32)
# queued evaluations not picked up within this long are sent again by the worker's sweep
SWEEP = {"TRAINQ_REQUEUE_AFTER_SECONDS": "1"}


@pytest.fixture(scope="module")
def trained(stack: Stack) -> Iterator[tuple[str, str]]:
    """(job id, dataset id): a job trained on an uploaded dataset, and no worker left running."""
    npz = io.BytesIO()
    np.savez(npz, x=X, y=Y)
    with stack.client() as client:
        dataset = client.post("/v1/datasets", params={"format": "npz"}, content=npz.getvalue())
        assert dataset.status_code == 201, dataset.text
        job = submit(
            client,
            {
                "model": {"layers": [{"units": 1, "inputShape": [2]}]},
                "compile": {
                    "optimizer": {"name": "sgd", "learningRate": 0.1},
                    "loss": "meanSquaredError",
                    "metrics": ["mae"],
                },
                "fit": {"epochs": 3, "batchSize": 8, "seed": 2},
                "data": {"datasetId": dataset.json()["id"]},
            },
        )
        stack.worker("trainer")
        wait_for_status(client, job["id"], "succeeded", timeout=60, processes=stack.processes)
    stack.stop_workers()
    yield job["id"], dataset.json()["id"]


def ask(client: httpx.Client, job_id: str, dataset_id: str) -> dict[str, Any]:
    answer = client.post(f"/v1/jobs/{job_id}/evaluations", json={"datasetId": dataset_id})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued" and answer.json()["attempt"] == 0
    return answer.json()


def finished(stack: Stack, client: httpx.Client, evaluation_id: str) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def ended() -> dict[str, Any] | None:
        last.update(client.get(f"/v1/evaluations/{evaluation_id}").json())
        return dict(last) if last["status"] in ("succeeded", "failed") else None

    return wait_for(
        ended, timeout=30, what=f"evaluation {evaluation_id} finishes", processes=stack.processes, state=lambda: last
    )


def in_the_api(client: httpx.Client, job_id: str, dataset_id: str) -> dict[str, Any]:
    """The same evaluation computed in the API process: the numbers a worker must store."""
    answer = client.post(f"/v1/jobs/{job_id}/evaluate", json={"datasetId": dataset_id})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_evaluation_sent_twice_runs_once(stack: Stack, trained: tuple[str, str]) -> None:
    job_id, dataset_id = trained
    redis = stack.redis.client()
    with stack.client() as client:
        evaluation = ask(client, job_id, dataset_id)
        # the API's message, and a second one from an app of our own on the same broker
        ours = stack.celery()
        ours.send_task(RUN_EVALUATION, args=[evaluation["id"]], queue=QUEUE)
        # counted over every priority of the queue: Redis keeps each priority in a list of its own
        assert messages_waiting(ours, QUEUE) == 2

        # two workers: the two deliveries can reach the evaluation at the same moment
        stack.wait_for_workers([stack.worker("left", wait=False), stack.worker("right", wait=False)])
        done = finished(stack, client, evaluation["id"])
        wait_for(
            lambda: messages_waiting(ours, QUEUE) == 0 and redis.hlen("unacked") == 0,
            timeout=30,
            what="both messages are consumed and acknowledged",
            processes=stack.processes,
            state=lambda: {"queued": messages_waiting(ours, QUEUE), "unacked": redis.hlen("unacked")},
        )
        assert done["status"] == "succeeded" and done["attempt"] == 1, done
        assert client.get(f"/v1/evaluations/{evaluation['id']}").json() == done
    assert stack.query("SELECT attempt, status FROM evaluations WHERE id = %s", evaluation["id"]) == [(1, "succeeded")]


def test_an_evaluation_whose_message_was_lost_still_runs(stack: Stack, trained: tuple[str, str]) -> None:
    job_id, dataset_id = trained
    with stack.client() as client:
        evaluation = ask(client, job_id, dataset_id)
        assert messages_waiting(stack.celery(), QUEUE) == 1
        stack.redis.restart_empty()
        assert messages_waiting(stack.celery(), QUEUE) == 0

        # not pinged: this test's pings would read a connection the restart closed
        stack.worker("sweeper", SWEEP, wait=False)
        done = finished(stack, client, evaluation["id"])
        assert done["status"] == "succeeded" and done["attempt"] == 1, done
        expected = in_the_api(client, job_id, dataset_id)
        assert (done["loss"], done["metrics"]) == (expected["loss"], expected["metrics"])
