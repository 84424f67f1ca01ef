"""The seed job on PostgreSQL and Redis: queued, running, succeeded; history, weights, queries."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import check_trained_line, check_went_through_running, seed_spec, submit, watch_until_finished

pytestmark = pytest.mark.e2e


def test_seed_job_runs_to_succeeded_and_answers_queries_like_the_engine(stack: Stack) -> None:
    spec = seed_spec()
    with stack.client() as client:
        # a fresh broker with no worker yet is reachable all the same
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"database": "ok", "broker": "ok"}), ready.text
        # no worker yet: the job must wait in the queue
        job = submit(client, spec)
        assert job["attempt"] == 0 and job["worker"] is None and job["progress"] == {"epoch": 0, "epochs": 200}
        assert client.get(f"/v1/jobs/{job['id']}/weights").status_code == 409

        # watched from before the worker starts, so that no state can pass unseen
        worker = stack.worker("seed", wait=False)
        seen, final = watch_until_finished(client, job["id"], timeout=60, processes=stack.processes)

        check_went_through_running(seen, final)
        assert final["worker"] is not None and worker.name in final["worker"]
        check_trained_line(client, final, spec)
