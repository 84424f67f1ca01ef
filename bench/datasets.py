"""Datasets at scale: a 1,000,000 x 100 float32 dataset (about 400 MB) uploaded as .npy
and as CSV to a real API process, then one job trained on it for 2 epochs by a real
worker, against the same fit on inline in-memory arrays in this process.

Prints, for each format, the upload throughput (MB/s of the file, conversion to .npy
included) and the API process's peak resident memory (VmHWM, a fresh process per
upload; target < 300 MB); the worker's peak resident memory while training (VmHWM of
its pool process, file-backed pages of the memory-mapped dataset included; target
< 1.5 x the dataset's size); training samples/s on the worker against the same fit on
in-memory arrays here (target >= 0.8).

    .venv/bin/python bench/datasets.py [--rows 1000000] [--columns 100] [--keep]
It needs about 3 GB free under the temp folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from trainq.services.engine import fit
from trainq.services.spec import JobSpec

BIN = Path(sys.executable).parent
CHUNK_BYTES = 1024 * 1024
MB = 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=100, help="features + 1 target")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trainq-bench-datasets-"))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("TRAINQ_")
    }
    env.update(TRAINQ_HOME=str(folder / "home"), PYTHONUNBUFFERED="1")
    try:
        run(args.rows, args.columns, folder, env)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(rows: int, columns: int, folder: Path, env: dict[str, str]) -> None:
    print(f"dataset: {rows:,} x {columns} float32 ({rows * columns * 4 / MB:,.0f} MB), last column the target")
    matrix = make_matrix(rows, columns)
    npy, csv = folder / "data.npy", folder / "data.csv"
    np.save(npy, matrix)
    write_csv(csv, matrix)
    print(f"files: .npy {npy.stat().st_size / MB:,.0f} MB, CSV {csv.stat().st_size / MB:,.0f} MB\n")
    subprocess.run([str(BIN / "trainq"), "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [str(BIN / "trainq"), "keys", "create", "--tenant", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}

    ids = {}
    for fmt, path in (("npy", npy), ("csv", csv)):
        with Started(
            [str(BIN / "trainq"), "api", "--port", str(port := free_port())], env, folder / f"api-{fmt}.log"
        ) as api:
            url = f"http://127.0.0.1:{port}"
            wait_http(url)
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/v1/datasets",
                params={"format": fmt},
                content=file_chunks(path),
                headers={"Content-Length": str(path.stat().st_size), **auth},
                timeout=3600,
            )
            seconds = time.perf_counter() - started
            assert response.status_code == 201, response.text
            peak = vm_hwm(api.pid)
        ids[fmt] = response.json()["id"]
        print(
            f"upload {fmt:4s} {path.stat().st_size / MB:8,.0f} MB in {seconds:6.1f} s: "
            f"{path.stat().st_size / MB / seconds:7.1f} MB/s   API peak RSS {peak / MB:6.0f} MB "
            f"(target < 300) {'ok' if peak < 300 * MB else 'MISSED'}"
        )

    dataset_bytes = rows * columns * 4
    spec = training_spec(columns - 1)
    with (
        Started([str(BIN / "trainq"), "api", "--port", str(port := free_port())], env, folder / "api.log"),
        Started(
            [str(BIN / "trainq"), "worker", "--concurrency", "1", "--hostname", "bench@%h"], env, folder / "worker.log"
        ) as worker,
    ):
        url = f"http://127.0.0.1:{port}"
        wait_http(url)
        job = httpx.post(
            f"{url}/v1/jobs", json={**spec, "data": {"datasetId": ids["npy"]}}, headers=auth, timeout=60
        ).json()
        final = wait_job(url, job["id"], auth)
        assert final["status"] == "succeeded", final
        history = httpx.get(f"{url}/v1/jobs/{job['id']}/history", headers=auth, timeout=60).json()["epochs"]
        pool = children(worker.pid)
        peak = max(vm_hwm(pid) for pid in pool)
    worker_rate = rows / min(epoch["wallTime"] for epoch in history)
    print(
        f"\nworker: 2 epochs on the uploaded dataset, peak RSS {peak / MB:,.0f} MB = "
        f"{peak / dataset_bytes:.2f} x the dataset (target < 1.5) {'ok' if peak < 1.5 * dataset_bytes else 'MISSED'}"
    )

    parsed = JobSpec.model_validate({**spec, "data": {"x": [[0.0] * (columns - 1)], "y": [[0.0]]}})
    config = parsed.to_training_config()
    x, y = np.ascontiguousarray(matrix[:, :-1]), np.ascontiguousarray(matrix[:, -1:])
    times: list[float] = []

    def timed(end: Any) -> None:
        times.append(time.perf_counter() - clock[0])
        clock[0] = time.perf_counter()

    clock = [time.perf_counter()]
    inline = fit(config, x, y, on_epoch_end=timed)
    inline_rate = rows / min(times)
    ratio = worker_rate / inline_rate
    print(
        f"training samples/s: worker on the dataset {worker_rate:,.0f}, inline in-memory fit here "
        f"{inline_rate:,.0f}: {ratio:.2f} (target >= 0.8) {'ok' if ratio >= 0.8 else 'MISSED'}"
    )
    same = [e["logs"]["loss"] for e in history] == inline.history["loss"]
    print(f"same losses on the worker as inline: {same}")


def make_matrix(rows: int, columns: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    matrix = np.empty((rows, columns), dtype=np.float32)
    weights = rng.normal(size=(columns - 1,)).astype(np.float32) / np.sqrt(columns)
    for start in range(0, rows, 100_000):
        block = rng.uniform(-1, 1, size=(min(100_000, rows - start), columns - 1)).astype(np.float32)
        matrix[start : start + len(block), :-1] = block
        matrix[start : start + len(block), -1] = block @ weights + 0.5
    return matrix


def write_csv(path: Path, matrix: np.ndarray) -> None:
    with path.open("w") as f:
        f.write(",".join([f"f{j}" for j in range(matrix.shape[1] - 1)] + ["target"]) + "\n")
        for start in range(0, matrix.shape[0], 50_000):
            np.savetxt(f, matrix[start : start + 50_000], fmt="%.9g", delimiter=",")


def training_spec(features: int) -> dict[str, Any]:
    return {
        "model": {"layers": [{"units": 1, "inputShape": [features]}]},
        "compile": {"optimizer": {"name": "sgd", "learningRate": 0.01}, "loss": "meanSquaredError"},
        "fit": {"epochs": 2, "batchSize": 256, "seed": 1},
    }


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def wait_job(url: str, job_id: str, auth: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=auth, timeout=30).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish")


class Started:
    """A process in its own group, with its log in a file, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log

    def __enter__(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, process_group=0
        )
        return self.process

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


if __name__ == "__main__":
    main()
