"""A job delivered twice runs once: the claim in the database, not the broker, decides."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import history, seed_spec, submit, wait_for_status
from tests.support.processes import wait_for
from trainq.services.queue import QUEUE, RUN_JOB, messages_waiting

pytestmark = pytest.mark.e2e


def test_a_job_sent_twice_runs_once(stack: Stack) -> None:
    redis = stack.redis.client()
    with stack.client() as client:
        job = submit(client, seed_spec(epochs=300))
        # the API's message, and a second one from an app of our own on the same broker
        stack.celery().send_task(RUN_JOB, args=[job["id"]], queue=QUEUE)
        assert messages_waiting(stack.celery(), QUEUE) == 2

        # two workers: the two deliveries can reach the job at the same moment
        stack.wait_for_workers([stack.worker("left", wait=False), stack.worker("right", wait=False)])
        done = wait_for_status(
            client, job["id"], ("succeeded", "failed", "cancelled"), timeout=60, processes=stack.processes
        )

        # both messages were taken and acknowledged (none waits, none is held unacknowledged)
        wait_for(
            lambda: messages_waiting(stack.celery(), QUEUE) == 0 and redis.hlen("unacked") == 0,
            timeout=30,
            what="both messages are consumed and acknowledged",
            processes=stack.processes,
            state=lambda: {"queued": messages_waiting(stack.celery(), QUEUE), "unacked": redis.hlen("unacked")},
        )
        assert done["status"] == "succeeded" and done["attempt"] == 1, done
        assert [row["epoch"] for row in history(client, job["id"])] == list(range(300))
    assert stack.query("SELECT attempt, status FROM jobs WHERE id = %s", job["id"]) == [(1, "succeeded")]
