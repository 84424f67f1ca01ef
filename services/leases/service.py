"""The lease state machine of any leased work, parametrized by its model class.

Every function takes the session first and never commits: the API's request dependency or
the worker's `session_scope` owns the transaction. Every change of state is one conditional
UPDATE, so two processes racing for the same row cannot both win. The ORM's own
synchronisation of bulk UPDATEs is off (with a RETURNING of our own it left stale values):
each function expires what the session holds of the rows it changed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, literal, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from trainq.services.db.models import UTCDateTime, utcnow
from trainq.services.leases.model import Leased
from trainq.services.leases.states import WorkStatus

Model = type[Leased]


@dataclass(frozen=True)
class Lease:
    owned: bool  # False: another worker took the work over, or it ended; stop without writing
    cancel_requested: bool = False  # True: stop after the current batch and end it cancelled


def claim(
    session: Session,
    model: Model,
    item_id: str,
    *conditions: Any,
    worker: str,
    lease_seconds: float,
    max_attempts: int | None = None,
    returning: Sequence[Any] = (),
) -> Row[Any] | None:
    """Take a queued row, or take over a running one whose lease expired (its worker died),
    where `conditions` also hold; its `attempt`, `lease_expires_at` and `returning` columns.

    None when another worker holds a live lease, the work has ended (a duplicate or late
    delivery), it has lost `max_attempts` workers already (see `give_up`), or a condition
    fails."""
    now = utcnow()
    attempts_left = true() if max_attempts is None else model.attempt < max_attempts
    row = session.execute(
        update(model)
        .where(
            model.id == item_id,
            or_(model.status == WorkStatus.queued.value, and_(expired(model, now), attempts_left)),
            *conditions,
        )
        .values(
            status=WorkStatus.running.value,
            attempt=model.attempt + 1,
            worker=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=func.coalesce(model.started_at, literal(now, UTCDateTime())),
        )
        .returning(model.attempt, model.lease_expires_at, *returning)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    expire(session, model, item_id)
    return row


def give_up(session: Session, model: Model, item_id: str, *conditions: Any, max_attempts: int | None) -> bool:
    """End failed a row whose lease expired after `max_attempts` claims, rather than run it
    again: work that kills every worker it runs on (out of memory, say) must not go round
    the cluster forever. Whether it ended so now."""
    if max_attempts is None:
        return False
    now = utcnow()
    return change(
        session,
        model,
        item_id,
        expired(model, now),
        model.attempt >= max_attempts,
        *conditions,
        status=WorkStatus.failed.value,
        finished_at=now,
        lease_expires_at=None,
        error=workers_lost(max_attempts),
    )


def workers_lost(max_attempts: int) -> str:
    """Why a job or an evaluation ended failed after its last allowed takeover."""
    return (
        f"its worker was lost on each of {max_attempts} attempts (killed, out of memory, or cut off "
        f"from the database); TRAINQ_MAX_ATTEMPTS is {max_attempts}"
    )


def renew(session: Session, model: Model, item_id: str, *, attempt: int, lease_seconds: float) -> Lease:
    """The heartbeat: extend the lease while the work is still this attempt's."""
    now = utcnow()
    return update_owned(
        session, model, item_id, attempt, lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now
    )


def update_owned(session: Session, model: Model, item_id: str, attempt: int, **values: Any) -> Lease:
    """Set `values` on the row while it is still this attempt's; what the row says then."""
    cancel_requested = session.execute(
        update(model)
        .where(*owned_by(model, item_id, attempt))
        .values(**values)
        .returning(model.cancel_flag())
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    expire(session, model, item_id)
    if cancel_requested is None:
        return Lease(owned=False)
    return Lease(owned=True, cancel_requested=bool(cancel_requested))


def finish(session: Session, model: Model, item_id: str, *, attempt: int, status: WorkStatus, **values: Any) -> bool:
    """End the work in `status` with `values` (its error, its result); False when another
    worker took it over meanwhile, whose result stands."""
    return change(
        session,
        model,
        item_id,
        *owned_by(model, item_id, attempt),
        status=WorkStatus(status).value,
        finished_at=utcnow(),
        lease_expires_at=None,
        **values,
    )


def hand_back(session: Session, model: Model, item_id: str, *, attempt: int) -> bool:
    """The worker is shutting down: the work is queued again at once, with its attempt (and a
    job with its last checkpoint), for another worker to take now rather than once the lease
    expires; the caller sends its message. Being handed back is not a lost worker: it does
    not count towards `max_attempts`, which `give_up` applies to taking over an expired lease.
    Whether it was still this attempt's."""
    return change(
        session,
        model,
        item_id,
        *owned_by(model, item_id, attempt),
        status=WorkStatus.queued.value,
        worker=None,
        lease_expires_at=None,
        enqueued_at=utcnow(),
    )


def resent_since_its_worker_died(model: Model, now: datetime) -> Any:
    """Running with an expired lease, and sent again by the sweep since: its message is on
    the queue (or was lost with the broker), and sending more would only pile up duplicates
    while it waits for a free worker."""
    return and_(
        expired(model, now),
        model.enqueued_at.is_not(None),
        or_(model.lease_expires_at.is_(None), model.enqueued_at >= model.lease_expires_at),
    )


def stranded(
    session: Session, model: Model, *conditions: Any, queued_before: datetime, now: datetime, limit: int = 1000
) -> list[str]:
    """Rows no live broker message may carry, where `conditions` hold: queued ones last sent
    before `queued_before`, and running ones whose lease expired (their worker died) and that
    were not re-sent since `queued_before`. Oldest first."""
    sent_long_ago = or_(model.enqueued_at.is_(None), model.enqueued_at < queued_before)
    query = (
        select(model.id)
        .where(sent_long_ago, or_(model.status == WorkStatus.queued.value, expired(model, now)), *conditions)
        .order_by(model.created_at)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def mark_enqueued(session: Session, model: Model, item_ids: Sequence[str]) -> None:
    """Note that a broker message was just sent for these rows."""
    if item_ids:
        session.execute(
            update(model)
            .where(model.id.in_(list(item_ids)))
            .values(enqueued_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        expire(session, model, *item_ids)


def expired(model: Model, now: datetime) -> Any:
    """Running, but its worker stopped renewing the lease. (A running row without a lease
    is an evaluation claimed before evaluations had leases, migration 0004.)"""
    lease_over = or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)
    return and_(model.status == WorkStatus.running.value, lease_over)


def claimable(model: Model, now: datetime) -> Any:
    return or_(model.status == WorkStatus.queued.value, expired(model, now))


def owned_by(model: Model, item_id: str, attempt: int) -> tuple[Any, ...]:
    return model.id == item_id, model.attempt == attempt, model.status == WorkStatus.running.value


def change(session: Session, model: Model, item_id: str, *conditions: Any, **values: Any) -> bool:
    """One conditional UPDATE of one row; whether it matched."""
    result = session.execute(
        update(model)
        .where(model.id == item_id, *conditions)
        .values(**values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    expire(session, model, item_id)
    return result.scalar_one_or_none() is not None


def expire(session: Session, model: Model, *item_ids: str) -> None:
    """Forget what the session holds of rows changed by a bulk UPDATE: the next read reloads them."""
    for item_id in item_ids:
        held = session.identity_map.get(identity_key(model, item_id))
        if held is not None:
            session.expire(held)
