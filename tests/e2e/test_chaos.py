"""The chaos suite: real PostgreSQL, Redis, API and Celery workers, and every fault at once.

Jobs train on WORKERS workers (a wave of WAVE more submitted before each fault, so that
there is always work running and queued) while the suite, one fault after another, SIGKILLs a
worker's whole process group, its main process alone and its pool process alone (each
running a job it picked at random), stops a worker with SIGTERM, kills Redis and starts
it empty, and stops PostgreSQL and starts it again. At the end every job has succeeded
exactly once (one success in all the workers' logs), its history holds each epoch once,
and every job that was resumed ends with the same weights, bit for bit, as an uninterrupted
fit of its spec. It prints its figures (faults, resume latencies, recovery after each
outage) and asserts their bounds: a killed or stopped worker's job resumes within lease +
15 s while every worker is busy, and queued work moves again within RECOVERY_BOUND_SECONDS of
an outage's end.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import long_spec, submit, weights
from tests.support.processes import Process, wait_for
from trainq.services.engine import fit
from trainq.services.spec import JobSpec

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

WORKERS = 3
WAVE = WORKERS + 1
EPOCHS = 400
LEASE_SECONDS = 3.0
# checkpoints every quarter second: a fault waits for a running job with a checkpoint, and on
# a fast machine a job of 400 epochs ends little more than a second after it starts
SETTINGS = {
    "TRAINQ_LEASE_SECONDS": str(LEASE_SECONDS),
    "TRAINQ_HEARTBEAT_SECONDS": "0.5",
    "TRAINQ_REQUEUE_AFTER_SECONDS": "2",
    "TRAINQ_CHECKPOINT_INTERVAL_SECONDS": "0.25",
    "TRAINQ_WORKER_HEARTBEAT_SECONDS": "1",
    "TRAINQ_WORKER_LOST_AFTER_SECONDS": "5",
}
RESUME_BOUND_SECONDS = LEASE_SECONDS + 15
# here every worker is busy: a handed-back job waits for one to free up (its own test,
# with an idle worker, holds it to seconds)
HAND_BACK_BOUND_SECONDS = RESUME_BOUND_SECONDS
RECOVERY_BOUND_SECONDS = 15.0
SEED = 12


@dataclass
class Chaos:
    stack: Stack
    rng: random.Random
    workers: list[Process] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> its spec
    faults: list[str] = field(default_factory=list)
    resumes: list[tuple[str, float]] = field(default_factory=list)  # (fault, seconds until the job resumed)
    recoveries: list[tuple[str, float]] = field(default_factory=list)  # (outage, seconds until work moved again)
    _numbers: int = 0

    def wave(self, client: httpx.Client) -> None:
        """WAVE more jobs, each its own seed."""
        for _ in range(WAVE):
            spec = long_spec(epochs=EPOCHS, samples=600, seed=len(self.specs))
            self.specs[submit(client, spec)["id"]] = spec

    def add_worker(self) -> Process:
        self._numbers += 1
        worker = self.stack.worker(f"chaos{self._numbers}", SETTINGS)
        self.workers.append(worker)
        return worker

    def running(self) -> list[tuple[str, int, str]]:
        """(job id, attempt, worker) of every running job whose worker is one of ours and alive."""
        rows = self.stack.query("SELECT id, attempt, worker FROM jobs WHERE status = 'running'")
        alive = {f"{w.name}@e2e" for w in self.workers if w.running()}
        return [(job_id, attempt, worker) for job_id, attempt, worker in rows if worker.split(":")[0] in alive]

    def pick_running(self) -> tuple[str, int, Process, int]:
        """A running job at random, once it has a checkpoint: (job id, attempt, its worker, its pool pid)."""

        def candidates() -> list[tuple[str, int, str]]:
            checkpointed = {row[0] for row in self.stack.query("SELECT job_id FROM checkpoints")}
            return [row for row in self.running() if row[0] in checkpointed]

        found = wait_for(candidates, timeout=60, what="a running job with a checkpoint", processes=self.stack.processes)
        job_id, attempt, worker = self.rng.choice(found)
        name, pid = worker.rsplit(":", 1)
        process = next(w for w in self.workers if f"{w.name}@e2e" == name)
        return job_id, attempt, process, int(pid)

    def attempt_after(self, job_id: str, attempt: int, fault: str, bound: float, since: float) -> None:
        """Wait until the job is claimed again (a higher attempt) or has succeeded; record how long it took."""

        def moved() -> bool:
            [(status, now)] = self.stack.query("SELECT status, attempt FROM jobs WHERE id = %s", job_id)
            return now > attempt or status == "succeeded"

        wait_for(moved, timeout=bound + 30, what=f"job {job_id} resumed after {fault}", processes=self.stack.processes)
        self.resumes.append((fault, time.monotonic() - since))

    def kill(self, fault: str, how: Callable[[Process, int], None]) -> None:
        job_id, attempt, process, pid = self.pick_running()
        since = time.monotonic()
        how(process, pid)
        self.faults.append(f"{fault} ({process.name}, job {job_id[:8]})")
        self.attempt_after(job_id, attempt, fault, RESUME_BOUND_SECONDS, since)

    def progress(self) -> int:
        return int(self.stack.query("SELECT coalesce(sum(epochs_done), 0) FROM jobs")[0][0])

    def recovered(self, outage: str, since: float) -> None:
        """Wait until work moves again after an outage ended: a job that was queued starts
        (its message may have been lost with Redis), or, with none queued, epochs are recorded."""
        queued = {row[0] for row in self.stack.query("SELECT id FROM jobs WHERE status = 'queued'")}
        before = self.progress()

        def moved() -> bool:
            if queued:
                still = {row[0] for row in self.stack.query("SELECT id FROM jobs WHERE status = 'queued'")}
                return bool(queued - still)
            return self.progress() > before or self.all_succeeded()

        wait_for(
            moved,
            timeout=RECOVERY_BOUND_SECONDS + 30,
            what=f"work moves again after {outage}",
            processes=self.stack.processes,
        )
        self.recoveries.append((outage, time.monotonic() - since))

    def all_succeeded(self) -> bool:
        return self.stack.query("SELECT count(*) FROM jobs WHERE status <> 'succeeded'")[0][0] == 0


def kill_group(process: Process, _pid: int) -> None:
    process.kill(signal.SIGKILL)


def kill_main(process: Process, _pid: int) -> None:
    process.popen.send_signal(signal.SIGKILL)


def kill_child(_process: Process, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def test_every_job_succeeds_exactly_once_and_bit_identical_through_kills_and_outages(outage_stack: Stack) -> None:
    stack = outage_stack
    assert stack.postgres is not None
    chaos = Chaos(stack, random.Random(SEED))
    started = time.monotonic()
    for _ in range(WORKERS):
        chaos.add_worker()
    with stack.client() as client:
        chaos.wave(client)
        chaos.kill("SIGKILL of a worker's process group", kill_group)
        chaos.add_worker()
        chaos.wave(client)
        chaos.kill("SIGKILL of a worker's main process", kill_main)
        chaos.add_worker()
        chaos.wave(client)
        chaos.kill("SIGKILL of a pool process", kill_child)

        chaos.wave(client)
        job_id, attempt, process, _ = chaos.pick_running()
        since = time.monotonic()
        process.terminate()
        chaos.faults.append(f"SIGTERM ({process.name}, job {job_id[:8]})")
        chaos.attempt_after(job_id, attempt, "SIGTERM", HAND_BACK_BOUND_SECONDS, since)
        process.popen.wait(HAND_BACK_BOUND_SECONDS)
        chaos.add_worker()

        chaos.wave(client)
        stack.redis.restart_empty()
        chaos.faults.append("Redis stopped and started empty")
        chaos.recovered("Redis restarted empty", time.monotonic())

        chaos.wave(client)
        stack.postgres.stop()
        chaos.faults.append("PostgreSQL stopped for 8 s")
        down_until = time.monotonic() + 8
        wait_for(lambda: time.monotonic() >= down_until, timeout=20, what="the outage lasted", interval=0.5)
        stack.postgres.start()
        chaos.recovered("PostgreSQL started again", time.monotonic())

        wait_for(
            chaos.all_succeeded,
            timeout=300,
            what="every job succeeded",
            processes=stack.processes,
            state=lambda: stack.query("SELECT status, count(*) FROM jobs GROUP BY status"),
            interval=0.5,
        )
        jobs = list(chaos.specs)
        finals = {job_id: weights(client, job_id) for job_id in jobs}
    elapsed = time.monotonic() - started

    rows = stack.query("SELECT id, status, attempt FROM jobs")
    assert {job_id: status for job_id, status, _ in rows} == dict.fromkeys(jobs, "succeeded")
    epochs = dict(stack.query("SELECT job_id, array_agg(epoch ORDER BY epoch) FROM epochs GROUP BY job_id"))
    for job_id in jobs:
        assert epochs[job_id] == list(range(EPOCHS)), f"job {job_id}: epochs {epochs[job_id]}"
    logs = "".join(process.log() for process in chaos.workers)
    for job_id in jobs:
        assert logs.count(f"job {job_id}: succeeded") == 1, f"job {job_id} succeeded {logs.count(job_id)} times"

    resumed = [job_id for job_id, _, attempt in rows if attempt > 1]
    for job_id in resumed:
        spec = chaos.specs[job_id]
        parsed = JobSpec.model_validate({k: v for k, v in spec.items() if k != "name"})
        x, y, _ = parsed.arrays()
        twin = fit(parsed.to_training_config(), x, y)
        for got, expected in zip(finals[job_id], twin.weights, strict=True):
            np.testing.assert_array_equal(got, expected, err_msg=f"job {job_id} differs from its uninterrupted twin")

    resends = sum(int(line.split("requeued ")[1].split()[0]) for line in logs.splitlines() if "requeued " in line)
    report(len(jobs), len(resumed), chaos, resends, elapsed)
    for fault, seconds in chaos.resumes:
        bound = HAND_BACK_BOUND_SECONDS if fault == "SIGTERM" else RESUME_BOUND_SECONDS
        assert seconds <= bound, f"the job hit by {fault} resumed after {seconds:.1f}s (bound {bound:.0f}s)"
    for outage, seconds in chaos.recoveries:
        assert seconds <= RECOVERY_BOUND_SECONDS, f"after {outage}, work moved again after {seconds:.1f}s"


def report(jobs: int, resumed: int, chaos: Chaos, resends: int, elapsed: float) -> None:
    lines: list[Any] = [
        f"\nchaos: {jobs} jobs of {EPOCHS} epochs on {WORKERS} workers, all succeeded once in {elapsed:.0f}s; "
        f"{resumed} resumed, bit-identical to their twins; {resends} messages re-sent by the sweeps",
        *(f"  fault: {fault}" for fault in chaos.faults),
        *(f"  resumed {seconds:5.1f}s after {fault}" for fault, seconds in chaos.resumes),
        *(f"  work moved again {seconds:5.1f}s after {outage}" for outage, seconds in chaos.recoveries),
    ]
    print("\n".join(lines))
