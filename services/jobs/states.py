"""Where a job is in its life, and where it may run."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    # stored and waiting for a worker; the broker may or may not hold its message yet
    queued = "queued"
    # claimed by a worker whose lease (renewed by its heartbeat) says it is still alive
    running = "running"
    # finished every epoch (or stopped early) and its final weights are stored
    succeeded = "succeeded"
    # the engine refused or broke; `error` says why; the epochs it finished are kept
    failed = "failed"
    # cancelled by a person: never started if it was queued, else stopped at the batch its worker learned of it in
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class Device(StrEnum):
    cpu = "cpu"
    gpu = "gpu"
    # the worker picks: a GPU when its array library sees one, else the CPU
    auto = "auto"
