"""A job whose worker died resumes within lease + 15 s even with 300 jobs queued since it
started: the requeue sweep sends it again ahead of that backlog (services.placement)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, long_spec, seed_spec, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

BACKLOG = 300
LEASE_SECONDS = 3.0
SETTINGS = {
    "TRAINQ_LEASE_SECONDS": str(LEASE_SECONDS),
    "TRAINQ_HEARTBEAT_SECONDS": "0.5",
    "TRAINQ_REQUEUE_AFTER_SECONDS": "2",
    "TRAINQ_CHECKPOINT_INTERVAL_SECONDS": "1",
}
RESUME_BOUND_SECONDS = LEASE_SECONDS + 15


@pytest.mark.timeout(600)
def test_a_dead_workers_job_resumes_within_lease_plus_15s_ahead_of_300_queued_jobs(stack: Stack) -> None:
    victim = stack.worker("victim", SETTINGS)
    with stack.client() as client:
        # long enough (a minute or more) to still run after the backlog's 300 submits and
        # the survivor's start: 2,000 epochs ended first once reporting got cheap
        job = submit(client, long_spec(epochs=20000, samples=1000))
        wait_for(
            lambda: get_job(client, job["id"])["status"] == "running",
            timeout=60,
            what="the long job runs on the victim",
            processes=stack.processes,
        )
        # each about 0.15 s: sent to the back of the queue, the resumed job would wait 40 s or more
        backlog = [submit(client, seed_spec(epochs=1000, samples=20, seed=i))["id"] for i in range(BACKLOG)]
        survivor = stack.worker("survivor", SETTINGS)

        assert get_job(client, job["id"])["status"] == "running"
        victim.kill(signal.SIGKILL)
        killed = time.monotonic()
        resumed = wait_for(
            lambda: (lambda j: j if j["attempt"] >= 2 else None)(get_job(client, job["id"])),
            timeout=RESUME_BOUND_SECONDS + 60,
            what="the survivor resumed the dead worker's job",
            processes=stack.processes,
            state=lambda: get_job(client, job["id"]),
            interval=0.2,
        )
        latency = time.monotonic() - killed
        done_before = stack.query("SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status = 'succeeded'", backlog)
        print(
            f"\nbehind {BACKLOG} queued jobs: resumed {latency:.1f}s after the kill "
            f"(lease {LEASE_SECONDS:.0f}s), {done_before[0][0]} of the backlog ran before it"
        )
        assert survivor.name in resumed["worker"]
        assert latency <= RESUME_BOUND_SECONDS, f"resumed {latency:.1f}s after the kill"
