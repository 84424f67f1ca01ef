"""How fast the service is end to end, against raw Celery on the same Redis.

    .venv/bin/python -m bench.service [--jobs 400] [--tasks 2000] [--long-epochs 20000]

Starts a throwaway PostgreSQL and Redis (the test harness's, in temp folders on free
ports), then, in this order:

- raw Celery: two workers (one prefork process each) of `bench/noop.py`, trainq's Celery
  settings (JSON, acks_late, prefetch 1), draining `--tasks` no-op tasks sent by 16 client
  threads, from the first send until no message is queued or unacknowledged;
- the floor (`bench/floor.py`, in a database of its own): the smallest FastAPI + SQLAlchemy +
  Celery service of trainq's shape and settings, with none of its features, its API under
  uvicorn's defaults (as `trainq api`) and two workers of one prefork process each (as
  `trainq worker`): `--jobs` tiny jobs submitted and waited for as trainq's are below, their
  rate (first `created_at` to last `finished_at`) against raw Celery's, the CPU each part spent
  per job;
- trainq on PostgreSQL + Redis (migrated with `trainq db upgrade`; the API and two workers
  of one pool process each): tiny jobs (the seed case, 5 epochs) submitted by 16 client
  threads (each keeping its HTTP connection, as the no-op tasks' sender keeps its broker
  connection), from the first `createdAt` to the last `finishedAt`, printed as a ratio of
  the raw Celery rate (the headline) and of the floor's; the end is seen by polling the
  database, as the raw Celery run's is by polling Redis; submit -> `succeeded` latency
  (`finishedAt − createdAt`); the CPU time each part spent per tiny job (API, workers,
  PostgreSQL, Redis, the clients);
  per epoch, the worker's time training against its time reporting (the fit's own time is
  `wallTime`, whose clock restarts after the report; the report's is the gap between two
  consecutive epochs' end times, `recorded_at`, less the later epoch's `wallTime`);
- a `--long-epochs` seed job through the service (`finishedAt − startedAt`) against
  `trainq fit` of the same spec in one process (its wall time), on PostgreSQL + Redis and
  on the embedded default (SQLite, a `trainq api` and one `trainq worker` on TRAINQ_HOME);
- the live stream: how long after an epoch ended (`recordedAt`) its `epoch` event reached
  a client of `GET /v1/jobs/{id}/events` (p50, p99), on a seed job of 5,000 epochs;
- evaluate requests per second on one finished job.

The PostgreSQL runs with fsync off (the test harness's setting): disk-bound figures would be
lower. Not run in CI. The machine's load (`uptime`) is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from httpx_sse import connect_sse
from sqlalchemy import make_url

from bench import cpu
from bench import floor as floor_service
from bench.noop import NOOP
from bench.noop import QUEUE as NOOP_QUEUE
from bench.noop import app as noop_app
from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import BIN, Process, Processes, free_port, process_env, stop, wait_for
from tests.support.redis import RedisServer
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE

TINY_JOB = {**SEED_EXAMPLE, "fit": {**SEED_EXAMPLE["fit"], "epochs": 5}}
CLIENT_THREADS = 16
EVALUATE_THREADS = 4
SSE_EPOCHS = 5000
Row = tuple[str, str]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seed_job(epochs: int) -> dict[str, Any]:
    return {**SEED_EXAMPLE, "fit": {**SEED_EXAMPLE["fit"], "epochs": epochs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--long-epochs", type=int, default=20_000)
    parser.add_argument("--evaluations", type=int, default=400)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="trainq-bench-"))
    processes = Processes(folder / "logs")
    rows: list[Row] = [("machine load before (uptime)", uptime())]
    with PostgresServer() as postgres:
        redis_server = RedisServer().start()
        try:
            celery_rate = raw_celery(redis_server.url, processes, args.tasks)
            rows.append(("raw Celery no-op tasks per second", f"{celery_rate:8.1f} /s   ({args.tasks} tasks)"))
            floor_url = postgres.create_database("floor")
            floor_parts = {"PostgreSQL": [postgres.pid], "Redis": [redis_server.pid]}
            floor_rate, floor_rows = floor(floor_url, redis_server.url, processes, args.jobs, celery_rate, floor_parts)
            rows += floor_rows
            database_url = make_url(postgres.create_database("bench")).set(drivername="postgresql")
            env = {
                "DATABASE_URL": database_url.render_as_string(hide_password=False),
                "REDIS_URL": redis_server.url,
                "TRAINQ_HOME": str(folder / "home"),
            }
            migrate(env)
            api = processes.api(env)
            workers = [processes.worker(env, name=f"bench-{name}").popen.pid for name in ("one", "two")]
            parts = {
                "API": [api.process.popen.pid],
                "workers": workers,
                "PostgreSQL": [postgres.pid],
                "Redis": [redis_server.pid],
            }
            rows += service(api.base_url, env["DATABASE_URL"], processes, args, celery_rate, floor_rate, parts)
            processes.stop_all()
            processes.started.clear()
            embedded = {"TRAINQ_HOME": str(folder / "embedded")}
            migrate(embedded)
            api = processes.api(embedded, name="embedded-api")
            processes.worker(embedded, name="embedded-worker")
            rows += long_job(api.base_url, processes, args.long_epochs, "embedded default", folder)
        finally:
            processes.stop_all()
            redis_server.close()
    rows.append(("machine load after (uptime)", uptime()))
    width = max(len(name) for name, _ in rows)
    print(f"trainq service benchmark: PostgreSQL + Redis, 2 workers (-c 1), {args.jobs} tiny jobs")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average: ")[-1]


def migrate(env: dict[str, str]) -> None:
    migrated = subprocess.run(
        [str(BIN / "trainq"), "db", "upgrade"], env=process_env(env), capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise SystemExit(f"trainq db upgrade failed:\n{migrated.stdout}{migrated.stderr}")
    # every /v1 route needs an API key: the harness's
    keys.grant_in(Settings.model_validate(env))


def celery_workers(
    processes: Processes, app: str, queue: str, name: str, loglevel: str, env: dict[str, str]
) -> list[Process]:
    """Two Celery workers of `app` on `queue`, of one prefork process each."""
    return [
        processes.start(
            f"{name}-{n}",
            [
                str(BIN / "celery"),
                "-A",
                app,
                "worker",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--queues",
                queue,
                "--hostname",
                f"{name}-{n}@bench",
                "--loglevel",
                loglevel,
            ],
            env,
        )
        for n in (1, 2)
    ]


def raw_celery(redis_url: str, processes: Processes, tasks: int) -> float:
    """No-op tasks per second through two Celery workers of one prefork process each."""
    workers = celery_workers(processes, "bench.noop", NOOP_QUEUE, "noop", "WARNING", {"REDIS_URL": redis_url})
    noop_app.conf.broker_url = redis_url
    wait_for(
        lambda: len(noop_app.control.ping(timeout=0.5)) >= 2,
        timeout=60,
        what="both no-op workers answer",
        processes=processes,
    )
    broker = redis.Redis.from_url(redis_url)

    def drained() -> bool:
        queued = sum(int(broker.llen(key)) for key in broker.scan_iter(f"{NOOP_QUEUE}*"))
        return queued == 0 and int(broker.hlen("unacked")) == 0

    def send(_: int) -> None:
        noop_app.send_task(NOOP, args=["id"], queue=NOOP_QUEUE)

    send(0)  # a first task warms the pool's connections
    wait_for(drained, timeout=60, what="the warm-up task is done", processes=processes, interval=0.01)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(send, range(tasks)))
    wait_for(drained, timeout=600, what=f"{tasks} no-op tasks are done", processes=processes, interval=0.01)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.stop()
        processes.started.remove(worker)
    return tasks / elapsed


def floor(
    database_url: str,
    redis_url: str,
    processes: Processes,
    jobs: int,
    celery_rate: float,
    parts: dict[str, list[int]],
) -> tuple[float, list[Row]]:
    """The floor's tiny jobs per second, and its rows: its API and two workers of one prefork
    process each, measured as trainq's are in `service` (`parts`: the database's and the
    broker's process trees; the floor's own are added here)."""
    floor_service.create_table(database_url)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # uvicorn's defaults (access log on), as `trainq api` runs it
    api = processes.start(
        "floor-api", [str(BIN / "uvicorn"), "bench.floor:app", "--host", "127.0.0.1", "--port", str(port)], env
    )
    # INFO, as `trainq worker` runs: a log line per task received and per task succeeded
    workers = celery_workers(processes, "bench.floor:celery_app", floor_service.QUEUE, "floor", "INFO", env)

    def api_ready() -> bool:
        try:
            return httpx.get(f"{base_url}/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(api_ready, timeout=60, what=f"the floor's API at {base_url} answers", processes=processes)
        floor_service.celery_app.conf.broker_url = redis_url
        wait_for(
            lambda: len(floor_service.celery_app.control.ping(timeout=0.5)) >= 2,
            timeout=60,
            what="both floor workers answer",
            processes=processes,
        )
        polled = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        # a first job warms the API's and a worker's imports and connections, as trainq's does
        wait_until_stored_finished(polled, [submit(base_url, TINY_JOB)], processes)

        parts = {"API": [api.pid], "workers": [worker.pid for worker in workers], **parts}
        with cpu.spent(parts) as spent:
            ids = submit_concurrently(base_url, TINY_JOB, jobs)
            wait_until_stored_finished(polled, ids, processes)
        with psycopg.connect(polled) as connection:
            row = connection.execute(
                "SELECT min(created_at), max(finished_at), count(*) FILTER (WHERE status = 'succeeded') "
                "FROM jobs WHERE id = ANY(%s)",
                (ids,),
            ).fetchone()
    finally:
        started = [api, *workers]
        stop(started)
        for process in started:
            processes.started.remove(process)
    assert row is not None and row[2] == jobs, row
    span = (row[1] - row[0]).total_seconds()
    rate = jobs / span
    return rate, [
        (
            "floor jobs per second (bench/floor.py: no features)",
            f"{rate:8.1f} /s   ({jobs} jobs in {span:.2f} s)",
        ),
        ("  as a ratio of raw Celery", f"{rate / celery_rate:8.3f}"),
        (
            "  CPU per job, by part",
            cpu.per_job(spent, jobs),
        ),
    ]


def service(
    base_url: str,
    database_url: str,
    processes: Processes,
    args: argparse.Namespace,
    celery_rate: float,
    floor_rate: float,
    parts: dict[str, list[int]],
) -> list[Row]:
    with httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as client:
        # a first job warms both the API's and a worker's imports and connections
        warm = client.post("/v1/jobs", json=TINY_JOB).json()["id"]
        wait_until_finished(client, [warm], processes)

        with cpu.spent(parts) as spent:
            ids = submit_concurrently(base_url, TINY_JOB, args.jobs)
            wait_until_stored_finished(database_url, ids, processes)
        listed = [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
        assert all(job["status"] == "succeeded" for job in listed), {job["status"] for job in listed}

        first_created = min(parse_time(job["createdAt"]) for job in listed)
        submit_span = (max(parse_time(job["createdAt"]) for job in listed) - first_created).total_seconds()
        last_finished = max(parse_time(job["finishedAt"]) for job in listed)
        span = (last_finished - first_created).total_seconds()
        latencies = [(parse_time(j["finishedAt"]) - parse_time(j["createdAt"])).total_seconds() for j in listed]
        training, reporting = epoch_times(database_url, ids)
        rate = args.jobs / span
        rows: list[Row] = [
            ("tiny jobs finished per second", f"{rate:8.1f} /s   ({args.jobs} jobs in {span:.2f} s)"),
            ("  as a ratio of raw Celery (target >= 0.25)", f"{rate / celery_rate:8.3f}"),
            ("  as a ratio of the floor", f"{rate / floor_rate:8.3f}"),
            ("submits accepted per second", f"{args.jobs / submit_span:8.1f} /s   ({CLIENT_THREADS} client threads)"),
            ("submit -> succeeded p50", f"{percentile(latencies, 50) * 1000:8.1f} ms"),
            ("submit -> succeeded p99", f"{percentile(latencies, 99) * 1000:8.1f} ms"),
            ("per epoch: training (wallTime) mean", f"{statistics.fmean(training) * 1000:8.3f} ms"),
            (
                "per epoch: reporting mean (target < 5 % of training)",
                f"{statistics.fmean(reporting) * 1000:8.3f} ms   "
                f"({statistics.fmean(reporting) / statistics.fmean(training) * 100:.1f} %)",
            ),
            # the mean of 1,600 gaps of a few microseconds gains a third of a point for each
            # millisecond the scheduler takes from a worker between two epochs (2 cores, 7
            # busy processes): the median and the largest gap say whether that happened
            (
                "per epoch: reporting p50 / p99 / largest",
                f"{percentile(reporting, 50) * 1000:8.3f} ms / {percentile(reporting, 99) * 1000:.3f} ms / "
                f"{max(reporting) * 1000:.3f} ms",
            ),
            (
                "CPU per tiny job, by part",
                cpu.per_job(spent, args.jobs),
            ),
        ]
        rows += long_job(base_url, processes, args.long_epochs, "PostgreSQL + Redis", Path(tempfile.mkdtemp()))
        rows += stream_latency(client, base_url, processes)
        rows += evaluate_rate(base_url, warm, args.evaluations)
    return rows


def long_job(base_url: str, processes: Processes, epochs: int, where: str, folder: Path) -> list[Row]:
    """A seed job of `epochs` epochs through the service against `trainq fit` of its spec."""
    spec = seed_job(epochs)
    with httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as client:
        job_id = submit(base_url, spec)
        wait_until_finished(client, [job_id], processes)
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    through_service = (parse_time(job["finishedAt"]) - parse_time(job["startedAt"])).total_seconds()
    path = folder / "long.json"
    path.write_text(json.dumps(spec))
    started = time.perf_counter()
    fitted = subprocess.run([str(BIN / "trainq"), "fit", str(path), "--no-progress"], capture_output=True, text=True)
    in_process = time.perf_counter() - started
    assert fitted.returncode == 0, fitted.stderr
    return [
        (
            f"{epochs}-epoch seed job, {where} (target <= 1.2x)",
            f"{through_service:8.2f} s through the service, {in_process:.2f} s `trainq fit`: "
            f"{through_service / in_process:.2f}x",
        )
    ]


def stream_latency(client: httpx.Client, base_url: str, processes: Processes) -> list[Row]:
    """Seconds from an epoch's end to its event at a client of the job's event stream."""
    job_id = submit(base_url, seed_job(SSE_EPOCHS))
    latencies: list[float] = []
    with (
        httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as stream_client,
        connect_sse(stream_client, "GET", f"/v1/jobs/{job_id}/events") as source,
    ):
        answer = source.response.status_code
        for event in source.iter_sse() if answer == 200 else ():
            received = datetime.now(UTC)
            if event.event == "epoch":
                latencies.append((received - parse_time(json.loads(event.data)["recordedAt"])).total_seconds())
    wait_until_finished(client, [job_id], processes)
    if answer != 200:
        return [("SSE epoch delivery", f"n/a (GET /v1/jobs/{{id}}/events answers {answer})")]
    assert len(latencies) == SSE_EPOCHS, len(latencies)
    return [
        (
            "SSE epoch delivery p50 / p99 (target p99 < 0.5 s)",
            f"{percentile(latencies, 50) * 1000:8.1f} ms / {percentile(latencies, 99) * 1000:.1f} ms   "
            f"({SSE_EPOCHS} epochs)",
        )
    ]


def evaluate_rate(base_url: str, job_id: str, evaluations: int) -> list[Row]:
    x_test = [[0.3], [0.7], [1.1]]
    y_test = [[1.6], [2.4], [3.2]]
    latencies: list[float] = []
    lock = threading.Lock()

    def evaluate(_: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS) as own:
            for _ in range(evaluations // EVALUATE_THREADS):
                t0 = time.perf_counter()
                answer = own.post(f"/v1/jobs/{job_id}/evaluate", json={"x": x_test, "y": y_test})
                with lock:
                    latencies.append(time.perf_counter() - t0)
                assert answer.status_code == 200, answer.text

    t0 = time.perf_counter()
    with ThreadPoolExecutor(EVALUATE_THREADS) as pool:
        list(pool.map(evaluate, range(EVALUATE_THREADS)))
    span = time.perf_counter() - t0
    return [
        (
            "evaluate requests per second",
            f"{len(latencies) / span:8.1f} /s   (p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"{EVALUATE_THREADS} client threads)",
        )
    ]


def submit_concurrently(base_url: str, spec: dict[str, Any], jobs: int) -> list[str]:
    """Submit `spec` `jobs` times from CLIENT_THREADS threads, each on one kept connection."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def submit_one(_: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base_url, timeout=60, headers=keys.HEADERS)
            clients.append(client)
        answer = client.post("/v1/jobs", json=spec)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    try:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            return list(pool.map(submit_one, range(jobs)))
    finally:
        for client in clients:
            client.close()


def submit(base_url: str, spec: dict[str, Any]) -> str:
    answer = httpx.post(f"{base_url}/v1/jobs", json=spec, timeout=60, headers=keys.HEADERS)
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
        timeout=900,
        what=f"{len(ids)} jobs finish",
        processes=processes,
        state=lambda: f"{len(remaining)} not finished",
        interval=0.2,
    )


def wait_until_stored_finished(database_url: str, ids: list[str], processes: Processes) -> None:
    """Until the database says every job ended: a query of the source of truth, as cheap as
    the raw Celery run's look at its queue (listing the jobs through the API, page by page,
    would cost the API more than submitting them)."""
    with psycopg.connect(database_url, autocommit=True) as connection:

        def unfinished() -> int:
            row = connection.execute(
                "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                (ids,),
            ).fetchone()
            assert row is not None
            return int(row[0])

        wait_for(
            lambda: unfinished() == 0,
            timeout=900,
            what=f"{len(ids)} jobs finish",
            processes=processes,
            state=lambda: f"{unfinished()} not finished",
            interval=0.02,
        )


def epoch_times(database_url: str, ids: list[str]) -> tuple[list[float], list[float]]:
    """Training seconds (wallTime) and reporting seconds (the gap between consecutive
    epochs' ends, less the later epoch's training) of every epoch after the first."""
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
