"""The lease state machine of any leased work, parametrized by its model class.

Every function takes the session first and never commits: the API's request dependency or
the worker's `session_scope` owns the transaction. Every change of state is one conditional
UPDATE, so two processes racing for the same row cannot both win. The UPDATEs run on the
session's connection (`core`), outside the ORM's bulk-UPDATE synchronisation (with a
RETURNING of our own it left stale values): each function expires what the session holds
of the rows it changed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Row, String, and_, bindparam, func, inspect, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.elements import BindParameter, ClauseElement

from trainq.services.db.models import UTCDateTime, utcnow
from trainq.services.db.session import core, expire
from trainq.services.leases.model import Leased
from trainq.services.leases.states import WorkStatus

Model = type[Leased]


@dataclass(frozen=True)
class Lease:
    owned: bool  # False: another worker took the work over, or it ended; stop without writing
    cancel_requested: bool = False  # True: stop after the current batch and end it cancelled


@dataclass(frozen=True)
class Claiming:
    """How rows of one kind of leased work are claimed: the UPDATE, built once (its
    construction cost the worker as much CPU as running it) and run by `claim` with each
    claim's parameters."""

    model: Model
    statement: ReturningUpdate[Any]


def claiming(model: Model, *conditions: Any, returning: Sequence[Any] = ()) -> Claiming:
    """The claim of a `model` row where `conditions` also hold (they may name bound
    parameters of their own, passed to `claim`), returning its `attempt`,
    `lease_expires_at` and `returning` columns."""
    now = bindparam("now", type_=UTCDateTime())
    max_attempts = bindparam("max_attempts", type_=Integer())
    statement = (
        update(model)
        .where(
            model.id == bindparam("item_id"),
            or_(
                model.status == WorkStatus.queued.value,
                and_(expired(model, now), or_(max_attempts.is_(None), model.attempt < max_attempts)),
            ),
            *conditions,
        )
        .values(
            status=WorkStatus.running.value,
            attempt=model.attempt + 1,
            worker=bindparam("claimed_by", type_=String()),
            lease_expires_at=bindparam("claimed_until", type_=UTCDateTime()),
            heartbeat_at=now,
            started_at=func.coalesce(model.started_at, now),
        )
        .returning(model.attempt, model.lease_expires_at, *returning)
    )
    return Claiming(model, statement)


def claim(
    session: Session,
    claiming: Claiming,
    item_id: str,
    *,
    worker: str,
    lease_seconds: float,
    max_attempts: int | None = None,
    **parameters: Any,
) -> Row[Any] | None:
    """Take a queued row, or take over a running one whose lease expired (its worker died),
    where the conditions of `claiming` also hold (with `parameters`); its `attempt`,
    `lease_expires_at` and returning columns.

    None when another worker holds a live lease, the work has ended (a duplicate or late
    delivery), it has lost `max_attempts` workers already (see `give_up`), or a condition
    fails."""
    now = utcnow()
    row = (
        core(session)
        .execute(
            claiming.statement,
            dict(
                item_id=item_id,
                now=now,
                max_attempts=max_attempts,
                claimed_by=worker,
                claimed_until=now + timedelta(seconds=lease_seconds),
                **parameters,
            ),
        )
        .one_or_none()
    )
    expire(session, claiming.model, item_id)
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
    if any(isinstance(value, ClauseElement) for value in values.values()):
        statement = update(model).where(*owned_by(model, item_id, attempt)).values(**values)
        cancel_requested = core(session).execute(statement.returning(model.cancel_flag())).scalar_one_or_none()
    else:
        parameters = {f"new_{column}": value for column, value in values.items()}
        statement = _owned_update(model, tuple(values))
        cancel_requested = (
            core(session)
            .execute(statement, {"item_id": item_id, "owned_attempt": attempt, **parameters})
            .scalar_one_or_none()
        )
    expire(session, model, item_id)
    if cancel_requested is None:
        return Lease(owned=False)
    return Lease(owned=True, cancel_requested=bool(cancel_requested))


_OWNED_UPDATES: dict[tuple[Model, tuple[str, ...]], ReturningUpdate[Any]] = {}


def _owned_update(model: Model, columns: tuple[str, ...]) -> ReturningUpdate[Any]:
    """`update_owned`'s UPDATE of these columns, built once per shape (the heartbeat, a
    report, an end): the value of `column` is the bound parameter `new_<column>` (a
    parameter may not take a column's own name)."""
    built = _OWNED_UPDATES.get((model, columns))
    if built is not None:
        return built
    mapped = inspect(model).columns
    built = (
        update(model)
        .where(*owned_by(model, bindparam("item_id"), bindparam("owned_attempt")))
        .values({column: bindparam(f"new_{column}", type_=mapped[column].type) for column in columns})
        .returning(model.cancel_flag())
    )
    return _OWNED_UPDATES.setdefault((model, columns), built)


def finish(session: Session, model: Model, item_id: str, *, attempt: int, status: WorkStatus, **values: Any) -> bool:
    """End the work in `status` with `values` (its error, its result); False when another
    worker took it over meanwhile, whose result stands."""
    return update_owned(
        session,
        model,
        item_id,
        attempt,
        status=WorkStatus(status).value,
        finished_at=utcnow(),
        lease_expires_at=None,
        **values,
    ).owned


def hand_back(session: Session, model: Model, item_id: str, *, attempt: int) -> bool:
    """The worker is shutting down: the work is queued again at once, with its attempt (and a
    job with its last checkpoint), for another worker to take now rather than once the lease
    expires; the caller sends its message. Being handed back is not a lost worker: it does
    not count towards `max_attempts`, which `give_up` applies to taking over an expired lease.
    Whether it was still this attempt's."""
    return update_owned(
        session,
        model,
        item_id,
        attempt,
        status=WorkStatus.queued.value,
        worker=None,
        lease_expires_at=None,
        enqueued_at=utcnow(),
    ).owned


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
        core(session).execute(update(model).where(model.id.in_(list(item_ids))).values(enqueued_at=utcnow()))
        expire(session, model, *item_ids)


def expired(model: Model, now: datetime | BindParameter[datetime]) -> Any:
    """Running, but its worker stopped renewing the lease. (A running row without a lease
    is an evaluation claimed before evaluations had leases, migration 0004.)"""
    lease_over = or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)
    return and_(model.status == WorkStatus.running.value, lease_over)


def claimable(model: Model, now: datetime) -> Any:
    return or_(model.status == WorkStatus.queued.value, expired(model, now))


def owned_by(model: Model, item_id: str | BindParameter[str], attempt: int | BindParameter[int]) -> tuple[Any, ...]:
    return model.id == item_id, model.attempt == attempt, model.status == WorkStatus.running.value


def change(session: Session, model: Model, item_id: str, *conditions: Any, **values: Any) -> bool:
    """One conditional UPDATE of one row; whether it matched."""
    result = core(session).execute(
        update(model).where(model.id == item_id, *conditions).values(**values).returning(model.id)
    )
    expire(session, model, item_id)
    return result.scalar_one_or_none() is not None
