"""How fast the service is end to end, on PostgreSQL and Redis with two workers.

    .venv/bin/python -m bench.service [--jobs 200] [--evaluations 1000]

Starts a throwaway PostgreSQL and Redis (the test harness's, in temp folders on free
ports), migrates with `trainq db upgrade`, starts the API and two Celery workers (one pool
process each), then measures:

- tiny jobs finished per second: the seed case (5 points of y = 2x + 1, 5 epochs), submitted
  as fast as 4 client threads can; from the first `createdAt` to the last `finishedAt`
  (and the rate the API accepted the submits at: when the latency stays low, the workers
  keep up and that rate is the bound);
- the latency from submit to `succeeded`: `finishedAt − createdAt`, both stamped by
  trainq itself (p50, p99);
- per epoch, the worker's time training against its time reporting: the worker stamps each
  epoch's `wallTime` as the fit's own time for that epoch (the clock restarts after the
  report); the report's time is the gap between two consecutive epochs' `recorded_at` in
  the database minus the later epoch's `wallTime`;
- evaluate requests per second on one finished job, from 4 client threads.

The PostgreSQL runs with fsync off (the test harness's setting): disk-bound figures would be
lower. Not run in CI.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import make_url

from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import BIN, Processes, process_env, wait_for
from tests.support.redis import RedisServer
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE

TINY_JOB = {**SEED_EXAMPLE, "fit": {**SEED_EXAMPLE["fit"], "epochs": 5}}
CLIENT_THREADS = 4


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--evaluations", type=int, default=1000)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="trainq-bench-"))
    processes = Processes(folder / "logs")
    with PostgresServer() as postgres:
        redis = RedisServer().start()
        try:
            database_url = make_url(postgres.create_database("bench")).set(drivername="postgresql")
            env = {
                "DATABASE_URL": database_url.render_as_string(hide_password=False),
                "REDIS_URL": redis.url,
                "TRAINQ_HOME": str(folder / "home"),
            }
            migrated = subprocess.run(
                [str(BIN / "trainq"), "db", "upgrade"], env=process_env(env), capture_output=True, text=True
            )
            if migrated.returncode != 0:
                raise SystemExit(f"trainq db upgrade failed:\n{migrated.stdout}{migrated.stderr}")
            keys.grant_in(Settings(DATABASE_URL=env["DATABASE_URL"]))
            api = processes.api(env)
            for name in ("one", "two"):
                processes.worker(env, name=f"bench-{name}")
            rows = run(api.base_url, env["DATABASE_URL"], processes, args.jobs, args.evaluations)
        finally:
            processes.stop_all()
            redis.close()
    width = max(len(name) for name, _ in rows)
    print(f"trainq service benchmark: PostgreSQL + Redis, 2 workers (-c 1), {args.jobs} tiny jobs")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def run(base_url: str, database_url: str, processes: Processes, jobs: int, evaluations: int) -> list[tuple[str, str]]:
    with httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as client:
        # a first job warms both the API's and a worker's imports and connections
        warm = client.post("/v1/jobs", json=TINY_JOB).json()["id"]
        wait_until_finished(client, [warm], processes)

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            ids = list(pool.map(lambda _: submit(base_url), range(jobs)))
        wait_until_finished(client, ids, processes)
        listed = [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
        assert all(job["status"] == "succeeded" for job in listed), {job["status"] for job in listed}

        first_created = min(parse_time(job["createdAt"]) for job in listed)
        submit_span = (max(parse_time(job["createdAt"]) for job in listed) - first_created).total_seconds()
        last_finished = max(parse_time(job["finishedAt"]) for job in listed)
        span = (last_finished - first_created).total_seconds()
        latencies = [(parse_time(j["finishedAt"]) - parse_time(j["createdAt"])).total_seconds() for j in listed]

        training, reporting = epoch_times(database_url, ids)

        x_test = [[0.3], [0.7], [1.1]]
        y_test = [[1.6], [2.4], [3.2]]
        evaluate_latencies: list[float] = []

        def evaluate(_: int) -> None:
            with httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as own:
                for _ in range(evaluations // CLIENT_THREADS):
                    t0 = time.perf_counter()
                    answer = own.post(f"/v1/jobs/{warm}/evaluate", json={"x": x_test, "y": y_test})
                    evaluate_latencies.append(time.perf_counter() - t0)
                    assert answer.status_code == 200, answer.text

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(evaluate, range(CLIENT_THREADS)))
        evaluate_span = time.perf_counter() - t0

    return [
        ("tiny jobs finished per second", f"{jobs / span:8.1f} /s   ({jobs} jobs in {span:.2f} s)"),
        (
            "submits accepted per second",
            f"{jobs / submit_span:8.1f} /s   ({CLIENT_THREADS} client threads; the bound when latency stays low)",
        ),
        ("submit -> succeeded p50", f"{percentile(latencies, 50) * 1000:8.1f} ms"),
        ("submit -> succeeded p99", f"{percentile(latencies, 99) * 1000:8.1f} ms"),
        ("per epoch: training (wallTime) mean", f"{statistics.fmean(training) * 1000:8.2f} ms"),
        ("per epoch: reporting mean", f"{statistics.fmean(reporting) * 1000:8.2f} ms"),
        ("per epoch: reporting p99", f"{percentile(reporting, 99) * 1000:8.2f} ms"),
        (
            "evaluate requests per second",
            f"{len(evaluate_latencies) / evaluate_span:8.1f} /s   "
            f"(p50 {percentile(evaluate_latencies, 50) * 1000:.1f} ms, "
            f"{CLIENT_THREADS} client threads)",
        ),
    ]


def submit(base_url: str) -> str:
    answer = httpx.post(f"{base_url}/v1/jobs", json=TINY_JOB, headers=keys.HEADERS, timeout=60)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def wait_until_finished(client: httpx.Client, ids: list[str], processes: Processes) -> None:
    remaining = set(ids)

    def finished() -> bool:
        for status in ("succeeded", "failed", "cancelled"):
            cursor = None
            while True:
                page = client.get(
                    "/v1/jobs", params={"status": status, "limit": 200, **({"cursor": cursor} if cursor else {})}
                ).json()
                remaining.difference_update(job["id"] for job in page["items"])
                cursor = page["nextCursor"]
                if not cursor or not remaining:
                    break
        return not remaining

    wait_for(
        finished,
        timeout=600,
        what=f"{len(ids)} jobs finish",
        processes=processes,
        state=lambda: f"{len(remaining)} not finished",
        interval=0.2,
    )


def epoch_times(database_url: str, ids: list[str]) -> tuple[list[float], list[float]]:
    """Training seconds (wallTime) and reporting seconds (the gap between consecutive
    epochs' recorded_at, less the later epoch's training) of every epoch after the first."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT job_id, epoch, wall_time, recorded_at FROM epochs WHERE job_id = ANY(%s) ORDER BY job_id, epoch",
            (ids,),
        ).fetchall()
    training: list[float] = []
    reporting: list[float] = []
    previous: tuple[str, datetime] | None = None
    for job_id, _epoch, wall_time, recorded_at in rows:
        training.append(wall_time)
        if previous is not None and previous[0] == job_id:
            reporting.append((recorded_at - previous[1]).total_seconds() - wall_time)
        previous = (job_id, recorded_at)
    return training, reporting


if __name__ == "__main__":
    main()
