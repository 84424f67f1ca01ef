"""A worker stopped with SIGTERM (a warm shutdown, as Ctrl-C of `trainq up` sends) hands its
running job back at once: queued again with its attempt, resumed by another worker within
seconds from its last checkpoint, ending as an uninterrupted fit would. The stopped worker
exits promptly instead of training the job to its end. When the job cannot be handed back
(here: its row is locked, so its reports and its hand-back wait), a second SIGTERM, or
TRAINQ_HAND_BACK_SECONDS, still ends the worker within seconds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, long_spec, submit, wait_for_epoch, wait_for_status, weights
from tests.support.processes import Process, wait_for
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
# how long a worker whose job cannot be handed back is seen still running after one SIGTERM
STUCK_SECONDS = 3.0
HAND_BACK_TIMEOUT_SECONDS = 3.0


@contextmanager
def locked_job_row(stack: Stack, job_id: str) -> Iterator[None]:
    """Hold the job's row locked (SELECT ... FOR UPDATE): every write of the worker to it
    (its epoch reports, its lease, its hand-back) waits until the block ends."""
    with psycopg.connect(stack.database_url) as connection:
        connection.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
        try:
            yield
        finally:
            connection.rollback()


def start_a_long_job(stack: Stack, env: dict[str, str]) -> tuple[Process, str]:
    """A worker running a long job, seen past a few epochs (the job's row is to be locked
    next: it runs a few seconds in all)."""
    worker = stack.worker("stuck", env)
    with stack.client() as client:
        job = submit(client, long_spec(epochs=EPOCHS, samples=1000))
        wait_for_epoch(client, job["id"], 3, timeout=60, processes=stack.processes)
    return worker, job["id"]


def test_sigterm_hands_the_running_job_back_and_another_worker_resumes_it_within_seconds(stack: Stack) -> None:
    spec = long_spec(epochs=EPOCHS, samples=1000)
    stopped = stack.worker("stopped", LONG_LEASE)
    with stack.client() as client:
        job = submit(client, spec)
        survivor = stack.worker("survivor", LONG_LEASE, wait=False)
        wait_for_epoch(client, job["id"], 5, timeout=60, processes=stack.processes)
        # the job waits on its locked row while the survivor starts, however slowly: a job of a
        # few seconds would otherwise end before the SIGTERM
        with locked_job_row(stack, job["id"]):
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


def job_status(stack: Stack, job_id: str) -> str:
    """Read beside the lock: a plain SELECT does not wait on it."""
    return str(stack.query("SELECT status FROM jobs WHERE id = %s", job_id)[0][0])


def exits_within(worker: Process, seconds: float, after: str) -> None:
    try:
        worker.popen.wait(seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker still runs {seconds:.0f}s after {after}:\n{worker.describe()}")


def still_running_after(worker: Process, seconds: float) -> bool:
    try:
        worker.popen.wait(seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_a_second_sigterm_ends_a_worker_whose_job_cannot_be_handed_back_within_seconds(stack: Stack) -> None:
    worker, job_id = start_a_long_job(stack, LONG_LEASE)
    with locked_job_row(stack, job_id):
        assert job_status(stack, job_id) == "running"
        worker.terminate()
        assert still_running_after(worker, STUCK_SECONDS), (
            "one SIGTERM ended the worker although its job's row is locked:\n" + worker.describe()
        )
        signalled = time.monotonic()
        worker.terminate()
        exits_within(worker, HAND_BACK_BOUND_SECONDS, "a second SIGTERM")
        print(f"\nsecond SIGTERM: the worker exited after {time.monotonic() - signalled:.2f}s")
    assert "a second signal; terminating the pool processes" in worker.log()


def test_a_worker_whose_job_cannot_be_handed_back_exits_once_the_hand_back_time_is_up(stack: Stack) -> None:
    env = {**LONG_LEASE, "TRAINQ_HAND_BACK_SECONDS": f"{HAND_BACK_TIMEOUT_SECONDS:g}"}
    worker, job_id = start_a_long_job(stack, env)
    with locked_job_row(stack, job_id):
        assert job_status(stack, job_id) == "running"
        signalled = time.monotonic()
        worker.terminate()
        exits_within(worker, HAND_BACK_TIMEOUT_SECONDS + HAND_BACK_BOUND_SECONDS, "SIGTERM")
        exited_after = time.monotonic() - signalled
        print(
            f"\none SIGTERM, {HAND_BACK_TIMEOUT_SECONDS:g}s to hand back: the worker exited after {exited_after:.2f}s"
        )
    assert exited_after >= HAND_BACK_TIMEOUT_SECONDS, "the worker exited before its hand-back time was up"
    assert f"{HAND_BACK_TIMEOUT_SECONDS:g}s passed; terminating the pool processes" in worker.log()
