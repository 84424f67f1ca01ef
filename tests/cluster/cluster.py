"""A trainq cluster on loopback for the cluster test and bench/cluster.py: a throwaway
PostgreSQL and Redis, the API, and named workers of either kind, each a real `trainq
worker` process (one pool process). The `gpu` worker of this machine, which has no GPU,
is `trainq worker --device gpu --array-library torch`: it serves the gpu queue and runs
the engine through torch's CPU build, the code path a CUDA worker takes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import make_url

from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import BIN, Api, Process, Processes, process_env, stop, wait_for
from tests.support.redis import RedisServer
from trainq.services.settings import Settings

# the workers beat often and are lost soon, so a test sees the registry change in seconds
CLUSTER_ENV = {"TRAINQ_WORKER_HEARTBEAT_SECONDS": "0.5", "TRAINQ_WORKER_LOST_AFTER_SECONDS": "5"}
SUBMIT_THREADS = 4
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass
class Cluster:
    folder: Path
    database_url: str
    redis: RedisServer
    processes: Processes
    api: Api | None = None
    workers: dict[str, Process] = field(default_factory=dict)

    @classmethod
    def start(cls, postgres: PostgresServer, folder: Path, database: str) -> Cluster:
        url = make_url(postgres.create_database(database)).set(drivername="postgresql")
        (folder / "redis").mkdir(parents=True)
        cluster = cls(
            folder,
            url.render_as_string(hide_password=False),
            RedisServer(folder / "redis").start(),
            Processes(folder / "logs"),
        )
        migrated = subprocess.run(
            [str(BIN / "trainq"), "db", "upgrade"],
            env=process_env(cluster.env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, f"trainq db upgrade failed:\n{migrated.stdout}{migrated.stderr}"
        keys.grant_in(Settings(DATABASE_URL=cluster.database_url))
        cluster.api = cluster.processes.api(cluster.env)
        return cluster

    def close(self) -> None:
        self.processes.stop_all()
        self.redis.close()

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "TRAINQ_HOME": str(self.folder / "home"),
            **CLUSTER_ENV,
        }

    def client(self) -> httpx.Client:
        assert self.api is not None
        return self.api.client()

    def start_workers(self, names: Iterable[str], *args: str) -> None:
        """Workers named `name@cluster`, each with one pool process; until all are online in
        GET /v1/workers (the registry is written once the worker consumes)."""
        names = list(names)
        for name in names:
            self.workers[name] = self.processes.trainq(
                name, ["worker", "--concurrency", "1", "--hostname", f"{name}@cluster", *args], self.env
            )
        self.wait_online(names)

    def wait_online(self, names: list[str]) -> None:
        wanted = {f"{name}@cluster" for name in names}
        with self.client() as client:

            def online() -> bool:
                for name in names:
                    if not self.workers[name].running():
                        raise AssertionError(f"worker {name} exited:\n{self.workers[name].describe()}")
                listed = client.get("/v1/workers").json()["items"]
                return wanted <= {w["name"] for w in listed if w["status"] == "online"}

            wait_for(online, timeout=60, what=f"workers {sorted(wanted)} online", processes=self.processes)

    def stop_workers(self) -> None:
        stop(self.workers.values())
        self.workers.clear()

    def workers_by_node(self) -> dict[str, dict[str, Any]]:
        with self.client() as client:
            return {worker["name"]: worker for worker in client.get("/v1/workers").json()["items"]}

    def query(self, statement: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(statement, params).fetchall()

    def submit_all(self, specs: list[dict[str, Any]]) -> list[str]:
        """Submit every spec at once from a few client threads; the ids in order."""

        def submit(spec: dict[str, Any]) -> str:
            with self.client() as client:
                response = client.post("/v1/jobs", json=spec)
                assert response.status_code == 201, response.text
                return response.json()["id"]

        with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            return list(pool.map(submit, specs))

    def wait_finished(self, ids: list[str], timeout: float) -> None:
        def done() -> bool:
            return self.query(
                "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status IN ('succeeded', 'failed', 'cancelled')", ids
            )[0][0] == len(ids)

        wait_for(
            done,
            timeout=timeout,
            what=f"{len(ids)} jobs finish",
            processes=self.processes,
            interval=0.1,
            state=lambda: self.query(
                "SELECT status, device, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY status, device", ids
            ),
        )

    def jobs_per_second(self, ids: list[str]) -> float:
        """Jobs finished per second, from the first submit to the last finish (trainq's own stamps)."""
        first, last = self.query("SELECT min(created_at), max(finished_at) FROM jobs WHERE id = ANY(%s)", ids)[0]
        return len(ids) / (last - first).total_seconds()


def tiny_spec(index: int, device: str, *, epochs: int = 5) -> dict[str, Any]:
    """A seed-size job (y = 2x + 1 on 20 points, one Dense unit) with its own seed."""
    x = [[i / 20] for i in range(20)]
    return {
        "name": f"tiny-{index}",
        "device": device,
        "model": {"layers": [{"units": 1, "inputShape": [1]}]},
        "compile": {"optimizer": {"name": "sgd", "learningRate": 0.1}, "loss": "meanSquaredError"},
        "fit": {"epochs": epochs, "batchSize": 8, "validationSplit": 0.2, "seed": index},
        "data": {"x": x, "y": [[2 * v[0] + 1] for v in x]},
    }


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
