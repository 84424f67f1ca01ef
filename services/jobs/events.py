"""A job's life as a sequence of events: `status` at each change of state, `epoch` per epoch.

The database is the source of truth: events are read from it, never carried by a message.
Each event's id is the reader's position after it, `"{epochs seen}.{status seen}"`, so a
client that reconnects with the last id it saw (SSE's Last-Event-ID) is sent everything
after it and nothing twice. States are ranked (queued, running, ended): a takeover (running
again, attempt + 1) is not a new state. Epochs that a takeover runs again (those after the
dead worker's last checkpoint) come out the same, bit for bit, and are not sent twice.

Within one read the job is read before its epochs, so an ended job's epochs are all there
(a worker writes its last epochs in the transaction that ends the job): the `status` event
of the end comes after the last `epoch` event, and ends the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from trainq.services.db.models import Epoch, Job
from trainq.services.errors import InvalidInput
from trainq.services.jobs.service import get_job
from trainq.services.jobs.states import JobStatus
from trainq.services.tenants.principal import Principal

# epochs read at once: a client that joins a long job late gets its history in pieces
EPOCHS_PER_READ = 2000
QUEUED, RUNNING, ENDED = 0, 1, 2


def rank(status: JobStatus) -> int:
    return {JobStatus.queued: QUEUED, JobStatus.running: RUNNING}.get(JobStatus(status), ENDED)


@dataclass(frozen=True)
class Position:
    """What a reader has seen: epochs 0..epochs-1, and the state ranked `status` (-1: none)."""

    epochs: int = 0
    status: int = -1

    @property
    def event_id(self) -> str:
        return f"{self.epochs}.{self.status}"

    @classmethod
    def parse(cls, event_id: str | None) -> Position:
        if event_id is None or event_id == "":
            return cls()
        epochs, _, status = event_id.partition(".")
        if not (epochs.isdigit() and status in ("-1", "0", "1", "2") and len(epochs) <= 9):
            raise InvalidInput("Last-Event-ID", f"{event_id[:40]!r} is not an id this stream sent")
        return cls(int(epochs), int(status))


@dataclass(frozen=True)
class JobEvent:
    kind: str  # "status" or "epoch"
    position: Position  # where the reader stands after it: its id
    job: Job | None = None  # for a status event
    epoch: Row[tuple[int, dict[str, Any], float, datetime]] | None = None  # for an epoch event: its columns


@dataclass(frozen=True)
class Read:
    events: list[JobEvent]
    position: Position
    ended: bool  # the job's last event is among these: the stream ends
    more: bool  # epochs are left to read now, without waiting


def events_after(session: Session, principal: Principal, job_id: str, position: Position) -> Read:
    """The job's events after `position`: raises JobNotFound for an unknown job, or one not `principal`'s to see."""
    job = get_job(session, principal, job_id)
    status = rank(job.job_status)
    # the columns, not ORM objects: a report brings thousands of epochs, each framed at once
    epochs = list(
        session.execute(
            select(Epoch.epoch, Epoch.logs, Epoch.wall_time, Epoch.recorded_at)
            .where(Epoch.job_id == job_id, Epoch.epoch >= position.epochs)
            .order_by(Epoch.epoch)
            .limit(EPOCHS_PER_READ)
        )
    )
    more = len(epochs) == EPOCHS_PER_READ
    events: list[JobEvent] = []
    if status > position.status and status != ENDED:
        position = replace(position, status=status)
        events.append(JobEvent("status", position, job=job))
    for epoch in epochs:
        position = replace(position, epochs=epoch.epoch + 1)
        events.append(JobEvent("epoch", position, epoch=epoch))
    ended = status == ENDED and not more
    if ended and position.status != ENDED:
        position = replace(position, status=ENDED)
        events.append(JobEvent("status", position, job=job))
    return Read(events, position, ended=ended, more=more)
