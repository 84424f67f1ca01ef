"""A running job's epochs on their way to the database, a batch at a time.

The engine fits a small model's epoch in a fraction of a millisecond; a transaction per
epoch cost the worker 10-20 times that (issue 10). So the worker holds finished epochs
and writes them together: at most every `report_interval` seconds (time-based, so a job
of slow epochs still reports each one as it ends), and inside the transaction that ends
the job. Each write answers, as a heartbeat does, whether the job is still this
attempt's and whether it was asked to cancel. A checkpoint rides along at most every
`checkpoint_interval` seconds; a worker that dies loses the epochs after it, which the
next attempt runs again (bit for bit the same) and records anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.models import utcnow
from trainq.services.db.session import session_scope
from trainq.services.engine import EpochEnd
from trainq.services.jobs import service as jobs
from trainq.services.jobs.service import EpochRecord
from trainq.services.leases.service import Lease
from trainq.services.metrics import REPORT_SECONDS


class EpochBuffer:
    """The epochs one attempt finished and has not written yet."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        job_id: str,
        attempt: int,
        *,
        learn: Callable[[Lease], None],
        report_interval: float,
        checkpoint_interval: float,
        written: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_factory = session_factory
        self.job_id = job_id
        self.attempt = attempt
        self.learn = learn  # what the row said at a write: the LeaseKeeper's `learn`
        self.written = written  # told the job's id after each committed write (the live push)
        self.report_interval = report_interval
        self.checkpoint_interval = checkpoint_interval
        self.clock = clock
        self.pending: list[EpochRecord] = []
        self.checkpointed = False  # whether this attempt wrote a checkpoint
        started = clock()
        self._reported_at = started
        self._checkpointed_at = started

    def epoch_ended(self, end: EpochEnd, wall_time: float) -> None:
        """Hold the epoch; write what is held if the last write is `report_interval` old."""
        self.pending.append(EpochRecord(end.epoch, end.logs, wall_time, utcnow()))
        now = self.clock()
        if now - self._reported_at < self.report_interval:
            return
        checkpoint = None
        if now - self._checkpointed_at >= self.checkpoint_interval:
            taken = end.take_checkpoint()
            checkpoint = (taken.epoch, taken.to_bytes())
        with REPORT_SECONDS.time(), session_scope(self.session_factory) as session:
            lease = self.write(session, checkpoint)
        if checkpoint is not None:
            self._checkpointed_at = now
            self.checkpointed = True
        self._reported_at = self.clock()
        self.learn(lease)
        if self.written is not None:
            self.written(self.job_id)

    def write(self, session: Session, checkpoint: tuple[int, bytes] | None = None) -> Lease:
        """Write the held epochs in `session`'s transaction. A failed transaction ends this
        attempt (the job is left to its lease), so nothing held is written twice."""
        lease = jobs.record_epochs(
            session, self.job_id, attempt=self.attempt, epochs=self.pending, checkpoint=checkpoint
        )
        self.pending = []
        return lease

    def take(self) -> list[EpochRecord]:
        """The held epochs, no longer held: at the end, the transaction that ends the job
        writes them (`jobs.succeed` and its siblings)."""
        taken, self.pending = self.pending, []
        return taken
