"""Leases: how a worker keeps what it claimed, and how the sweep re-sends what nobody holds.

Jobs and evaluations are both claimed with one conditional UPDATE that raises their
`attempt` and sets a lease; the worker renews the lease while it works and writes its
results fenced by its attempt. A row queued too long (its broker message was lost) or
running with an expired lease (its worker died) is sent again by the requeue sweep, and
its next claim takes it over. This module holds the parts both share: the heartbeat
thread, the re-sending loop, and the count of the messages a queue lacks (so that a
backlog, whose messages are all there, is not sent again every sweep).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.models import Evaluation, Job
from trainq.services.db.session import session_scope
from trainq.services.jobs.service import Lease
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.placement import QUEUES, SHARED_QUEUE

log = logging.getLogger(__name__)

# one renewal of a held lease, in the session given: the job's or the evaluation's own UPDATE
Renew = Callable[[Session], Lease]


class LeaseKeeper:
    """The heartbeat of a claimed job or evaluation: calls `renew` every `interval` seconds
    in a thread and turns what the row says into flags the work loop reads without I/O."""

    def __init__(self, session_factory: sessionmaker[Session], renew: Renew, *, interval: float, name: str) -> None:
        self.session_factory = session_factory
        self.renew = renew
        self.interval = interval
        self.name = name
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()  # another worker took it over: stop, write nothing
        self.stop_fit = threading.Event()  # either of the two
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def should_stop(self) -> bool:
        return self.stop_fit.is_set()

    def mark_lost(self) -> None:
        self.lost.set()
        self.stop_fit.set()

    def learn(self, lease: Lease) -> None:
        """Take in what the row said (at a heartbeat, or when an epoch was recorded)."""
        if not lease.owned:
            self.mark_lost()
        elif lease.cancel_requested:
            self.cancel_requested.set()
            self.stop_fit.set()

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                with session_scope(self.session_factory) as session:
                    lease = self.renew(session)
            except Exception:
                # The database may be back before the lease runs out; if not, another worker
                # takes the work over and this one's writes are refused.
                log.exception("%s: heartbeat failed", self.name)
                continue
            self.learn(lease)
            if not lease.owned:
                return


def resend(ids: Sequence[str], send: Callable[[str], None], what: str) -> list[str]:
    """Send each id's message again, in order; stop at the first failure (the broker is
    likely down: the next sweep tries again). The ids sent, for the caller to mark enqueued."""
    sent: list[str] = []
    for item_id in ids:
        try:
            send(item_id)
        except Exception:
            log.exception("requeue of %s %s failed; the next sweep tries again", what, item_id)
            break
        sent.append(item_id)
    if sent:
        log.info("requeued %d stranded %ss", len(sent), what)
    return sent


def messages_lacking(
    session: Session, devices: Collection[Device], messages_waiting: Callable[[str], int]
) -> dict[str, int]:
    """Per queue, how many more jobs and evaluations the database has queued for it than
    the broker holds messages: how many messages it lost. A job's queue follows from its
    device alone (`devices`: the ones a sweep looks at); evaluations go to the shared queue."""
    counts = session.execute(
        select(Job.device, func.count())
        .where(Job.status == JobStatus.queued.value, Job.device.in_([Device(d).value for d in devices]))
        .group_by(Job.device)
    ).all()
    queued = {SHARED_QUEUE: session.execute(select(func.count()).where(Evaluation.status == "queued")).scalar_one()}
    for device, count in counts:
        queue = QUEUES[Device(device)]
        queued[queue] = queued.get(queue, 0) + count
    return {queue: count - messages_waiting(queue) for queue, count in queued.items()}


def take_one(lacking: dict[str, int], queue: str) -> bool:
    """Whether `queue` still lacks a message; if it does, one more is counted as sent."""
    if lacking.get(queue, 0) <= 0:
        return False
    lacking[queue] -= 1
    return True
