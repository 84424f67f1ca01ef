"""Two workers drain fifty jobs: each runs exactly once, and both workers take part."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, seed_spec, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

JOBS = 50
EPOCHS = 5


def test_fifty_jobs_on_two_workers_each_succeed_exactly_once(stack: Stack) -> None:
    first, second = stack.worker("one", wait=False), stack.worker("two", wait=False)
    # both must be consuming before the jobs arrive, or the first one up could drain them all
    stack.wait_for_workers([first, second])
    spec = seed_spec(epochs=EPOCHS, samples=20, batch_size=8)
    with stack.client() as client:
        ids = [submit(client, spec)["id"] for _ in range(JOBS)]

        def all_finished() -> bool:
            return (
                stack.query(
                    "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status IN ('succeeded', 'failed', 'cancelled')",
                    ids,
                )[0][0]
                == JOBS
            )

        wait_for(
            all_finished,
            timeout=120,
            what=f"all {JOBS} jobs finish",
            processes=stack.processes,
            state=lambda: stack.query("SELECT status, count(*) FROM jobs GROUP BY status"),
        )
        jobs = [get_job(client, job_id) for job_id in ids]
        assert Counter(job["status"] for job in jobs) == {"succeeded": JOBS}
        # one claim each: a second claim would have raised the attempt
        assert Counter(job["attempt"] for job in jobs) == {1: JOBS}
        for job_id in ids:
            assert [row["epoch"] for row in history(client, job_id)] == list(range(EPOCHS))
        by_worker = Counter(job["worker"] for job in jobs)
        assert len(by_worker) == 2, by_worker
        assert {first.name, second.name} == {name.split("@")[0] for name in by_worker}, by_worker
    assert stack.query("SELECT count(*) FROM jobs WHERE status = 'queued'") == [(0,)]
    assert stack.query("SELECT count(*) FROM epochs WHERE job_id = ANY(%s)", ids) == [(JOBS * EPOCHS,)]
