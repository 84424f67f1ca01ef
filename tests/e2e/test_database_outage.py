"""While PostgreSQL is stopped: the API answers 503 with Retry-After naming the database,
on connections that stay usable; idle workers leave the queue's messages where they are
(each holds at most the one it took, waiting for the database); once PostgreSQL is back
the queued jobs start within seconds, each once, without waiting for the requeue sweep."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.conftest import Broker
from tests.e2e.conftest import Stack
from tests.e2e.jobs import FINISHED, get_job, seed_spec, submit, wait_for_status
from tests.support.processes import wait_for
from trainq.services.queue import RUN_JOB, create_celery, messages_waiting
from trainq.services.settings import Settings

pytestmark = pytest.mark.e2e

JOBS = 12
WORKERS = 2
# the sweep cannot be what rescues the jobs: it would come only after minutes
NO_SWEEP = {"TRAINQ_REQUEUE_AFTER_SECONDS": "600", "TRAINQ_LEASE_SECONDS": "60", "TRAINQ_HEARTBEAT_SECONDS": "5"}
OUTAGE_SECONDS = 8.0
START_AFTER_RETURN_BOUND_SECONDS = 10.0


def registered(client: httpx.Client) -> set[str]:
    """The names of the workers the registry lists (none while the API answers 503)."""
    answer = client.get("/v1/workers")
    return {worker["name"] for worker in answer.json()["items"]} if answer.status_code == 200 else set()


def waiting(stack: Stack) -> int:
    return messages_waiting(create_celery(Settings(REDIS_URL=stack.redis.url)), "trainq")


def test_a_database_outage_is_503_on_live_connections_and_leaves_the_queue_intact(outage_stack: Stack) -> None:
    stack = outage_stack
    assert stack.postgres is not None
    with stack.client() as client:
        jobs = [submit(client, seed_spec(epochs=3, samples=40, seed=i)) for i in range(JOBS)]
        # the submits' messages, taken off the broker to be put back while the database is down
        assert len(Broker(stack.redis.url).take_all()) == JOBS
        workers = [stack.worker(f"idle{i}", NO_SWEEP) for i in range(WORKERS)]

        stack.postgres.stop()
        down_at = time.monotonic()
        app = stack.celery()
        for job in jobs:
            app.send_task(RUN_JOB, args=[job["id"]], queue="trainq")

        # the API: 503 with Retry-After naming the database, and the same connection answers on
        assert stack.api is not None
        with stack.api.client(timeout=30) as same_connection:
            for _ in range(3):
                answer = same_connection.get("/v1/jobs")
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"] and answer.json()["errors"][0]["field"] == "database"
                assert same_connection.get("/healthz").status_code == 200
            submitted = same_connection.post("/v1/jobs", json=seed_spec(epochs=1, samples=20))
            assert submitted.status_code == 503 and submitted.headers["retry-after"]

        # the workers each hold at most the one message they took; the rest stay queued
        wait_for(
            lambda: time.monotonic() - down_at >= OUTAGE_SECONDS,
            timeout=OUTAGE_SECONDS + 5,
            what="the outage lasted its time",
            interval=0.5,
        )
        left = waiting(stack)
        assert left >= JOBS - WORKERS, f"only {left} of {JOBS} messages left on the queue: the workers drained it"

        stack.postgres.start()
        back_at = time.monotonic()
        first = wait_for(
            lambda: next((j for j in (get_job(client, job["id"]) for job in jobs) if j["status"] != "queued"), None),
            timeout=START_AFTER_RETURN_BOUND_SECONDS,
            what="a queued job starts after the database is back",
            processes=stack.processes,
        )
        started_after = time.monotonic() - back_at
        wait_for(
            lambda: all(get_job(client, job["id"])["status"] == "succeeded" for job in jobs),
            timeout=120,
            what="every job succeeded",
            processes=stack.processes,
            state=lambda: [get_job(client, job["id"])["status"] for job in jobs],
            interval=0.5,
        )
        all_after = time.monotonic() - back_at
        print(
            f"\ndatabase outage: {left}/{JOBS} messages still queued after {OUTAGE_SECONDS:.0f}s down; "
            f"first job {first['id'][:8]} started {started_after:.2f}s after the database returned, "
            f"all {JOBS} succeeded after {all_after:.2f}s"
        )
        assert all(get_job(client, job["id"])["attempt"] == 1 for job in jobs)
        rows = stack.query("SELECT job_id, count(*), count(DISTINCT epoch) FROM epochs GROUP BY job_id")
        assert sorted(rows) == sorted((job["id"], 3, 3) for job in jobs)
        assert all(worker.running() for worker in workers)


# a sweep every second and jobs stranded after two: once the database is back, the sweep is
# what sends the job whose message was lost
QUICK_SWEEP = {"TRAINQ_REQUEUE_AFTER_SECONDS": "2", "TRAINQ_WORKER_HEARTBEAT_SECONDS": "1"}
DOWN_BEFORE_RETURN_SECONDS = 4.0


def test_a_worker_started_while_the_database_is_down_registers_and_sweeps_once_it_is_back(outage_stack: Stack) -> None:
    stack = outage_stack
    assert stack.postgres is not None
    with stack.client() as client:
        job = submit(client, seed_spec(epochs=3, samples=40))
        # its message is lost: only a requeue sweep can send the job again
        assert len(Broker(stack.redis.url).take_all()) == 1

        stack.postgres.stop()
        worker = stack.worker("born-in-outage", QUICK_SWEEP)
        answered_at = time.monotonic()
        # the worker's start (its registration, its sweep's first rounds) meets the outage
        wait_for(
            lambda: time.monotonic() - answered_at >= DOWN_BEFORE_RETURN_SECONDS,
            timeout=DOWN_BEFORE_RETURN_SECONDS + 5,
            what="the worker ran a while with the database down",
            interval=0.5,
        )
        assert worker.running()

        stack.postgres.start()
        back_at = time.monotonic()
        wait_for(
            lambda: f"{worker.name}@e2e" in registered(client),
            timeout=START_AFTER_RETURN_BOUND_SECONDS,
            what="the worker registered after the database came back",
            processes=stack.processes,
        )
        registered_after = time.monotonic() - back_at
        done = wait_for_status(
            client, job["id"], FINISHED, timeout=START_AFTER_RETURN_BOUND_SECONDS, processes=stack.processes
        )
        assert done["status"] == "succeeded", done
        swept_after = time.monotonic() - back_at
        print(
            f"\nworker started during the outage: registered {registered_after:.2f}s and the stranded job "
            f"succeeded {swept_after:.2f}s after the database returned"
        )
