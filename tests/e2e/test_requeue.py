"""The database decides what runs: a queued job whose broker message was lost still runs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import history, seed_spec, submit, wait_for_status
from trainq.services.queue import QUEUE, messages_waiting

pytestmark = pytest.mark.e2e

# queued jobs not picked up within this long are sent again by the worker's sweep
SWEEP = {"TRAINQ_REQUEUE_AFTER_SECONDS": "1"}


def test_a_queued_job_whose_message_was_lost_still_runs(stack: Stack) -> None:
    with stack.client() as client:
        lost = submit(client, seed_spec(epochs=20))
        assert messages_waiting(stack.celery(), QUEUE) == 1
        stack.redis.restart_empty()
        assert messages_waiting(stack.celery(), QUEUE) == 0

        stack.worker("sweeper", SWEEP)
        job = wait_for_status(
            client, lost["id"], ("succeeded", "failed", "cancelled"), timeout=30, processes=stack.processes
        )
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        assert len(history(client, lost["id"])) == 20

        # the API reconnects to the restarted broker: a new job goes through the ordinary way
        fresh = submit(client, seed_spec(epochs=20))
        assert (
            wait_for_status(client, fresh["id"], ("succeeded", "failed"), timeout=30, processes=stack.processes)[
                "status"
            ]
            == "succeeded"
        )
