"""Where a piece of leased work (a job, an evaluation) is in its life."""

from __future__ import annotations

from enum import StrEnum


class WorkStatus(StrEnum):
    # stored and waiting for a worker; the broker may or may not hold its message yet
    queued = "queued"
    # claimed by a worker whose lease (renewed by its heartbeat) says it is still alive
    running = "running"
    # done, and its result is stored
    succeeded = "succeeded"
    # its work refused or broke, or it lost a worker too many times; `error` says why
    failed = "failed"
    # cancelled by a person (jobs only: an evaluation cannot be cancelled)
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({WorkStatus.succeeded, WorkStatus.failed, WorkStatus.cancelled})
# what a worker may still run: what a dataset in use may not be deleted under
ACTIVE = frozenset({WorkStatus.queued, WorkStatus.running})
