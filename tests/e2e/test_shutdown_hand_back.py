"""A worker stopped with SIGTERM (a warm shutdown, as Ctrl-C of `trainq up` sends) hands its
running job back at once: queued again with its attempt, resumed by another worker within
seconds from its last checkpoint, ending as an uninterrupted fit would. The stopped worker
exits promptly instead of training the job to its end."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, long_spec, submit, wait_for_status, weights
from tests.support.processes import wait_for
from trainq.services.engine import fit
from trainq.services.spec import JobSpec

pytestmark = pytest.mark.e2e

EPOCHS = 1000
# a lease far longer than the test: a resume within seconds can only be the hand-back
LONG_LEASE = {
    "TRAINQ_LEASE_SECONDS": "300",
    "TRAINQ_HEARTBEAT_SECONDS": "5",
    "TRAINQ_REQUEUE_AFTER_SECONDS": "300",
    "TRAINQ_CHECKPOINT_INTERVAL_SECONDS": "1",
}
HAND_BACK_BOUND_SECONDS = 10.0


def test_sigterm_hands_the_running_job_back_and_another_worker_resumes_it_within_seconds(stack: Stack) -> None:
    spec = long_spec(epochs=EPOCHS, samples=1000)
    stopped = stack.worker("stopped", LONG_LEASE)
    with stack.client() as client:
        job = submit(client, spec)
        survivor = stack.worker("survivor", LONG_LEASE, wait=False)
        wait_for(
            lambda: get_job(client, job["id"])["progress"]["epoch"] >= 5,
            timeout=60,
            what="the job has finished 5 epochs on the worker to be stopped",
            processes=stack.processes,
            state=lambda: get_job(client, job["id"]),
        )
        stack.wait_for_workers([survivor])
        assert get_job(client, job["id"])["status"] == "running", "the job ended before the SIGTERM: make it longer"

        signalled = time.monotonic()
        stopped.terminate()  # SIGTERM to the worker's main process: Celery's warm shutdown
        resumed = wait_for(
            lambda: (lambda j: j if j["attempt"] == 2 else None)(get_job(client, job["id"])),
            timeout=HAND_BACK_BOUND_SECONDS,
            what="another worker claimed the handed-back job",
            processes=stack.processes,
            state=lambda: get_job(client, job["id"]),
        )
        resumed_after = time.monotonic() - signalled
        stopped.popen.wait(HAND_BACK_BOUND_SECONDS)
        exited_after = time.monotonic() - signalled
        print(f"\nSIGTERM: worker exited after {exited_after:.2f}s, job resumed after {resumed_after:.2f}s")
        assert survivor.name in resumed["worker"]
        assert "handed back at shutdown" in stopped.log()

        done = wait_for_status(
            client, job["id"], ("succeeded", "failed", "cancelled"), timeout=180, processes=stack.processes
        )
        assert done["status"] == "succeeded" and done["attempt"] == 2, done
        rows = history(client, job["id"])
        assert [row["epoch"] for row in rows] == list(range(EPOCHS))
        final = weights(client, job["id"])

    parsed = JobSpec.model_validate({k: v for k, v in spec.items() if k != "name"})
    x, y, _ = parsed.arrays()
    uninterrupted = fit(parsed.to_training_config(), x, y)
    for got, expected in zip(final, uninterrupted.weights, strict=True):
        np.testing.assert_array_equal(got, expected)
