"""The cluster on loopback: real PostgreSQL, Redis, the API and four `trainq worker`
processes, three CPU workers (numpy) and one worker of the `gpu` queue running the engine
through torch (this machine's CPU build: the code path of a CUDA worker).

The tests run in order on one cluster: the first starts the CPU workers, shows a gpu job
waiting for a GPU worker, then starts the GPU worker the later tests use."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.cluster.cluster import Cluster, parse_time, tiny_spec
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

CPU_WORKERS = ["cpu-1", "cpu-2", "cpu-3"]
GPU_WORKER = "gpu-1"
JOBS = 300
EPOCHS = 5


def base_spec(seed: int, epochs: int) -> dict:
    """A sweep's base: a job spec alone, without a job's name and device."""
    spec = tiny_spec(seed, "auto", epochs=epochs)
    del spec["name"], spec["device"]
    return spec


def node(job: dict) -> str:
    """The worker node that ran a job: jobs name it "node@host:pool-pid"."""
    return job["worker"].rpartition(":")[0]


def test_a_gpu_job_stays_queued_with_its_reason_until_a_gpu_worker_joins(cluster: Cluster) -> None:
    cluster.start_workers(CPU_WORKERS)
    with cluster.client() as client:
        gpu_job = client.post("/v1/jobs", json=tiny_spec(0, "gpu")).json()
        assert (gpu_job["status"], gpu_job["reason"]) == ("queued", "no GPU worker online")
        # the CPU workers are consuming: a cpu job submitted after it finishes first
        cpu_job = client.post("/v1/jobs", json=tiny_spec(1, "cpu")).json()
        wait_for(
            lambda: client.get(f"/v1/jobs/{cpu_job['id']}").json()["status"] == "succeeded",
            timeout=30,
            what="the cpu job succeeds",
            processes=cluster.processes,
        )
        waiting = client.get(f"/v1/jobs/{gpu_job['id']}").json()
        assert (waiting["status"], waiting["attempt"], waiting["reason"]) == ("queued", 0, "no GPU worker online")

        cluster.start_workers([GPU_WORKER], "--device", "gpu", "--array-library", "torch")

        def ran() -> dict | None:
            job = client.get(f"/v1/jobs/{gpu_job['id']}").json()
            return job if job["status"] == "succeeded" else None

        job = wait_for(ran, timeout=60, what="the gpu job succeeds", processes=cluster.processes)
        assert node(job) == f"{GPU_WORKER}@cluster" and job["reason"] is None
    gpu = cluster.workers_by_node()[f"{GPU_WORKER}@cluster"]
    assert (gpu["status"], gpu["deviceKind"], gpu["arrayLibrary"]) == ("online", "gpu", "torch")
    assert all(cluster.workers_by_node()[f"{name}@cluster"]["arrayLibrary"] == "numpy" for name in CPU_WORKERS)


def test_300_mixed_jobs_each_succeed_once_on_a_worker_of_their_kind(cluster: Cluster) -> None:
    devices = ["cpu", "auto", "gpu", "cpu", "auto"]  # 120 cpu, 120 auto, 60 gpu
    specs = [tiny_spec(i, devices[i % len(devices)], epochs=EPOCHS) for i in range(JOBS)]

    ids = cluster.submit_all(specs)
    cluster.wait_finished(ids, timeout=100)

    rows = cluster.query("SELECT id, status, attempt, device, worker FROM jobs WHERE id = ANY(%s)", ids)
    assert Counter(status for _, status, *_ in rows) == {"succeeded": JOBS}
    assert Counter(attempt for _, _, attempt, *_ in rows) == {1: JOBS}
    epochs = dict(cluster.query("SELECT job_id, count(*) FROM epochs WHERE job_id = ANY(%s) GROUP BY job_id", ids))
    assert epochs == {job_id: EPOCHS for job_id in ids}
    kinds = {name: worker["deviceKind"] for name, worker in cluster.workers_by_node().items()}
    ran_on = Counter((device, kinds[node({"worker": worker})]) for _, _, _, device, worker in rows)
    assert ran_on[("cpu", "gpu")] == 0 and ran_on[("gpu", "cpu")] == 0, ran_on
    assert ran_on[("cpu", "cpu")] == 120 and ran_on[("gpu", "gpu")] == 60, ran_on
    shares = Counter(node({"worker": worker}) for *_, worker in rows)
    assert all(shares[f"{name}@cluster"] > 0 for name in CPU_WORKERS), shares
    print(f"\n{JOBS} jobs on 4 workers: {cluster.jobs_per_second(ids):.1f} jobs/s; shares {dict(shares)}")


def test_a_sweep_of_12_points_runs_across_the_workers_and_ranks_by_each_jobs_history(cluster: Cluster) -> None:
    base = base_spec(7, epochs=8)
    grid = {"compile.optimizer.learningRate": [0.3, 0.1, 0.03, 0.01], "fit.batchSize": [4, 8, 16]}
    with cluster.client() as client:
        created = client.post("/v1/sweeps", json={"base": base, "grid": grid, "name": "lr x batch"})
        assert created.status_code == 201, created.text
        sweep = created.json()
        ids = [entry["job"]["id"] for entry in sweep["jobs"]]
        assert len(ids) == 12
        cluster.wait_finished(ids, timeout=60)
        ranked = client.get(sweep["links"]["self"]).json()
        final = {}
        for job_id in ids:
            history = client.get(f"/v1/jobs/{job_id}/history").json()["epochs"]
            assert [row["epoch"] for row in history] == list(range(8))
            final[job_id] = history[-1]["logs"]["val_loss"]
        jobs = {entry["job"]["id"]: entry["job"] for entry in ranked["jobs"]}
    assert ranked["counts"] == {"succeeded": 12}
    expected = sorted(ids, key=lambda job_id: (final[job_id], ids.index(job_id)))
    assert [entry["job"]["id"] for entry in ranked["jobs"]] == expected
    assert [entry["value"] for entry in ranked["jobs"]] == [final[job_id] for job_id in expected]
    ranks = [entry["rank"] for entry in ranked["jobs"]]
    assert ranks[0] == 1 and all(
        rank == (ranks[i - 1] if ranked["jobs"][i]["value"] == ranked["jobs"][i - 1]["value"] else i + 1)
        for i, rank in enumerate(ranks)
        if i
    )
    assert len({node(job) for job in jobs.values()}) >= 2, Counter(node(job) for job in jobs.values())


def test_a_single_job_submitted_after_a_big_sweep_runs_next_not_after_it(cluster: Cluster) -> None:
    sweep_size = 80
    with cluster.client() as client:
        created = client.post(
            "/v1/sweeps",
            json={
                "base": base_spec(3, epochs=300),
                "grid": {"fit.seed": list(range(sweep_size))},
            },
        )
        assert created.status_code == 201, created.text
        sweep_ids = [entry["job"]["id"] for entry in created.json()["jobs"]]
        single = client.post("/v1/jobs", json=tiny_spec(99, "auto", epochs=300)).json()
        cluster.wait_finished([*sweep_ids, single["id"]], timeout=90)
        finished_single = parse_time(client.get(f"/v1/jobs/{single['id']}").json()["finishedAt"])
    sweep_finishes = sorted(
        finished for (finished,) in cluster.query("SELECT finished_at FROM jobs WHERE id = ANY(%s)", sweep_ids)
    )
    ahead = sum(finished < finished_single for finished in sweep_finishes)
    # it waits only for the sweep jobs the four workers had already taken (and the ones
    # finishing while it trains), not for the sweep's queue of eighty
    assert ahead <= 3 * len(cluster.workers), (ahead, sweep_size)
    assert finished_single < sweep_finishes[-1]
