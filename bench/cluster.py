"""How many jobs per second the cluster finishes, against the same jobs on one worker.

    .venv/bin/python -m bench.cluster [--jobs 300] [--epochs 5]

Starts a throwaway PostgreSQL and Redis (the test harness's, on free ports), the API, and:

1. four workers on loopback, three CPU workers (numpy) and one `gpu`-queue worker running
   the engine through torch (`--device gpu --array-library torch`; torch's CPU build on a
   machine without a GPU); the jobs are seed-size (y = 2x + 1 on 20 points, one Dense
   unit), a third cpu, a fifth gpu, the rest auto, all submitted at once from 4 client
   threads;
2. one CPU worker alone, on the same specs (the gpu ones sent as auto: a CPU worker never
   takes a gpu job).

The rate is jobs over the time from the first `createdAt` to the last `finishedAt`, both
stamped by trainq. PostgreSQL runs with fsync off (the harness's setting). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from pathlib import Path

from tests.cluster.cluster import Cluster, tiny_spec
from tests.support.postgres import PostgresServer

DEVICES = ["cpu", "auto", "gpu", "cpu", "auto"]


def run(cluster: Cluster, specs: list[dict], label: str) -> float:
    ids = cluster.submit_all(specs)
    cluster.wait_finished(ids, timeout=600)
    rows = cluster.query("SELECT status, worker FROM jobs WHERE id = ANY(%s)", ids)
    statuses = Counter(status for status, _ in rows)
    shares = Counter(worker.rpartition(":")[0] for _, worker in rows)
    rate = cluster.jobs_per_second(ids)
    first, last = cluster.query("SELECT min(created_at), max(created_at) FROM jobs WHERE id = ANY(%s)", ids)[0]
    # when the workers keep up, the submit rate (the API on the same cores) is the bound
    submitted = len(ids) / (last - first).total_seconds()
    print(
        f"{label}: {len(ids)} jobs, {rate:.1f} jobs/s finished (submitted at {submitted:.1f}/s); "
        f"{dict(statuses)}; per worker {dict(sorted(shares.items()))}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs")

    folder = Path(tempfile.mkdtemp(prefix="trainq-bench-cluster-"))
    with PostgresServer() as postgres:
        cluster = Cluster.start(postgres, folder, "bench")
        try:
            cluster.start_workers(["cpu-1", "cpu-2", "cpu-3"])
            cluster.start_workers(["gpu-1"], "--device", "gpu", "--array-library", "torch")
            mixed = [tiny_spec(i, DEVICES[i % len(DEVICES)], epochs=args.epochs) for i in range(args.jobs)]
            four = run(cluster, mixed, "4 workers (3 cpu + 1 gpu-queue on torch), mixed cpu/gpu/auto")
            cluster.stop_workers()

            cluster.start_workers(["alone"])
            same = [{**spec, "device": "cpu" if spec["device"] == "cpu" else "auto"} for spec in mixed]
            one = run(cluster, same, "1 cpu worker, the same specs (gpu ones as auto)")
            print(f"4 workers / 1 worker: {four / one:.2f}x")
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
