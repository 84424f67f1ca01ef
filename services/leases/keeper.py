"""The heartbeat of claimed work: a thread that renews its lease while the worker works."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.session import DATABASE_UNAVAILABLE, autocommit, outage, session_scope, when_reachable
from trainq.services.leases import service as leases
from trainq.services.leases.model import Leased
from trainq.services.leases.service import Lease
from trainq.services.settings import Settings

log = logging.getLogger(__name__)


class Claimed(Protocol):
    @property
    def attempt(self) -> int: ...


C = TypeVar("C", bound=Claimed)

# how long a delivery waits for an unreachable database to claim its job or evaluation
# before it goes back on its queue (and the next one waits as long): the queue is not
# drained while the database is down
CLAIM_WAIT_SECONDS = 30.0


def hold(
    session_factory: sessionmaker[Session],
    model: type[Leased],
    item_id: str,
    claim: Callable[..., C | None],
    *,
    worker: str,
    settings: Settings,
    stopping: threading.Event | None = None,
) -> tuple[C, LeaseKeeper] | None:
    """Claim the work (`claim`: the domain's, such as `services.jobs.service.claim`); the
    claim and the keeper of its lease, to run the work in (`with lease:`), or None when this
    delivery may run nothing.

    The claim runs on an autocommit connection: it is one conditional UPDATE, and each of
    its fallbacks (end the work cancelled, or failed after its last attempt) one more, so a
    transaction around them would add its BEGIN and COMMIT and hold nothing together.

    While the database is unreachable the claim is tried again for up to
    CLAIM_WAIT_SECONDS (or until `stopping`: the worker shuts down); then the database error
    is raised, for the caller to put the delivery back on its queue."""

    def take() -> C | None:
        with autocommit(session_factory) as connection, Session(connection) as session:
            return claim(
                session,
                item_id,
                worker=worker,
                lease_seconds=settings.lease_seconds,
                max_attempts=settings.max_attempts,
            )

    claimed = when_reachable(take, wait_seconds=CLAIM_WAIT_SECONDS, stop=stopping or threading.Event())
    if claimed is None:
        return None
    log.info("%s %s: attempt %d on %s", model.kind, item_id, claimed.attempt, worker)
    return claimed, LeaseKeeper(session_factory, model, item_id, attempt=claimed.attempt, settings=settings)


class LeaseKeeper:
    """Renews the lease of `model`'s row `item_id`, held by `attempt`, every
    `heartbeat_seconds` while the work runs (`with LeaseKeeper(...) as lease:`), and turns
    what the row says into flags the work loop reads without I/O."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        model: type[Leased],
        item_id: str,
        *,
        attempt: int,
        settings: Settings,
    ) -> None:
        self.session_factory = session_factory
        self.model = model
        self.item_id = item_id
        self.attempt = attempt
        self.lease_seconds = settings.lease_seconds
        self.interval = settings.heartbeat_seconds
        self.name = f"{model.kind} {item_id}"
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()  # another worker took it over: stop, write nothing
        self.stop_fit = threading.Event()  # either of the two
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.name}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def should_stop(self) -> bool:
        return self.stop_fit.is_set()

    def learn(self, lease: Lease) -> None:
        """Take in what the row said (at a heartbeat, or when a job's epoch was recorded)."""
        if not lease.owned:
            self.lost.set()
            self.stop_fit.set()
        elif lease.cancel_requested:
            self.cancel_requested.set()
            self.stop_fit.set()

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                with session_scope(self.session_factory) as session:
                    lease = leases.renew(
                        session, self.model, self.item_id, attempt=self.attempt, lease_seconds=self.lease_seconds
                    )
            except DATABASE_UNAVAILABLE as error:
                # The database may be back before the lease runs out; if not, another worker
                # takes the work over and this one's writes are refused. A line per beat, no
                # traceback: an outage is no bug, and lasts as many beats as it lasts.
                log.warning("%s: heartbeat failed: the database is unreachable (%s)", self.name, outage(error))
                continue
            except Exception:
                log.exception("%s: heartbeat failed", self.name)
                continue
            self.learn(lease)
            if not lease.owned:
                return
