"""Cancelling: a queued job never starts; a running one stops within seconds, keeping its epochs."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, long_spec, seed_spec, submit, wait_for_epoch, wait_for_status
from trainq.services.queue import QUEUE, messages_waiting

pytestmark = pytest.mark.e2e

# the worker reads the cancel flag on its heartbeat; the engine stops within one batch after
HEARTBEAT = {"TRAINQ_HEARTBEAT_SECONDS": "0.2"}
CANCEL_DEADLINE_SECONDS = 5.0


def test_a_cancelled_queued_job_never_starts(stack: Stack) -> None:
    with stack.client() as client:
        cancelled = submit(client, seed_spec(epochs=5))
        answer = client.post(f"/v1/jobs/{cancelled['id']}/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "cancelled"

        # its message is still in the queue, ahead of the next job's: once the next job has
        # run, the worker has been handed the cancelled one and must have refused it
        stack.worker("after-cancel", HEARTBEAT)
        later = submit(client, seed_spec(epochs=5))
        wait_for_status(client, later["id"], "succeeded", timeout=30, processes=stack.processes)

        job = get_job(client, cancelled["id"])
        assert job["status"] == "cancelled" and job["attempt"] == 0, job
        assert job["startedAt"] is None and job["worker"] is None and job["finishedAt"] is not None
        assert history(client, cancelled["id"]) == []
        assert client.get(f"/v1/jobs/{cancelled['id']}/weights").status_code == 409
        # cancelling again changes nothing (the job service makes it a no-op, not a conflict)
        again = client.post(f"/v1/jobs/{cancelled['id']}/cancel")
        assert (again.status_code, again.json()["status"]) == (202, "cancelled"), again.text
        assert messages_waiting(stack.celery(), QUEUE) == 0


def test_a_cancelled_running_job_stops_within_seconds_and_keeps_its_epochs(stack: Stack) -> None:
    first, second = stack.worker("a", HEARTBEAT, wait=False), stack.worker("b", HEARTBEAT, wait=False)
    stack.wait_for_workers([first, second])
    with stack.client() as client:
        endless = submit(client, long_spec(epochs=100_000))
        bystander = submit(client, seed_spec(epochs=400))
        wait_for_epoch(client, endless["id"], 3, timeout=30, processes=stack.processes)

        asked = time.monotonic()
        answer = client.post(f"/v1/jobs/{endless['id']}/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "running" and answer.json()["cancelRequested"] is True
        job = wait_for_status(
            client, endless["id"], "cancelled", timeout=CANCEL_DEADLINE_SECONDS, processes=stack.processes
        )
        assert time.monotonic() - asked < CANCEL_DEADLINE_SECONDS

        kept = history(client, endless["id"])
        assert len(kept) >= 3 and [row["epoch"] for row in kept] == list(range(len(kept)))
        assert job["progress"] == {"epoch": len(kept), "epochs": 100_000}, job
        assert job["attempt"] == 1 and job["finishedAt"] is not None and job["error"] is None
        assert client.get(f"/v1/jobs/{endless['id']}/weights").status_code == 409

        other = wait_for_status(
            client, bystander["id"], ("succeeded", "failed", "cancelled"), timeout=60, processes=stack.processes
        )
        assert other["status"] == "succeeded" and other["attempt"] == 1 and not other["cancelRequested"], other
        assert len(history(client, bystander["id"])) == 400
