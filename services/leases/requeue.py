"""The requeue sweep: send again what the database says is waiting but no broker message
may carry (the message was lost, or the worker holding it died), and count the messages
a queue lacks, so that a backlog, whose messages are all there, is not sent again every sweep.

One row sent twice is harmless: its claim lets one delivery run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.models import Evaluation, Job, utcnow
from trainq.services.db.session import session_scope
from trainq.services.jobs.states import Device
from trainq.services.leases import service as leases
from trainq.services.leases.model import Leased
from trainq.services.leases.states import WorkStatus
from trainq.services.placement import QUEUES, SHARED_QUEUE, Route
from trainq.services.settings import Settings

log = logging.getLogger(__name__)

# each id's route (queue and priority), read in the sweep's session
Routes = Callable[[Session, Sequence[str]], Mapping[str, Route]]


def requeue_stranded(
    session_factory: sessionmaker[Session],
    model: type[Leased],
    settings: Settings,
    *conditions: Any,
    routes: Routes,
    send: Callable[[str, Route], None],
    devices: Collection[Device],
    messages_waiting: Callable[[str], int] | None = None,
) -> list[str]:
    """Send again the rows of `model` where `conditions` hold that were queued more than
    `requeue_after_seconds` ago or whose lease expired (`leases.stranded`), each by `send`
    on its route, and mark them enqueued. The ids sent.

    With `messages_waiting` (the broker's count of messages on a queue), queued ones are
    sent only as many as their queue lacks (`messages_lacking`, for the job `devices` this
    worker serves): in a backlog every waiting row's message is there, and re-sending each
    one every sweep would pile up duplicates for as long as the backlog lasts."""
    now = utcnow()
    with session_scope(session_factory) as session:
        ids = leases.stranded(
            session, model, *conditions, queued_before=now - timedelta(seconds=settings.requeue_after_seconds), now=now
        )
        where = routes(session, ids)
        # sent only if their queue lacks a message: queued rows, and rows whose worker died
        # that were sent again already (the first re-send after a death goes at once)
        counted = set(
            session.execute(
                select(model.id).where(
                    model.id.in_(ids),
                    or_(model.status == WorkStatus.queued.value, leases.resent_since_its_worker_died(model, now)),
                )
            ).scalars()
        )
        lacking = messages_lacking(session, devices, messages_waiting) if counted and messages_waiting else None
    if lacking is not None:
        # which message was lost is not known: a resumed job's goes first, as on the queue
        ids = sorted(ids, key=lambda item_id: where[item_id].priority)
        ids = [item_id for item_id in ids if item_id not in counted or take_one(lacking, where[item_id].queue)]
    sent = resend(ids, lambda item_id: send(item_id, where[item_id]), model.kind)
    if sent:
        with session_scope(session_factory) as session:
            leases.mark_enqueued(session, model, sent)
    return sent


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
    """Per queue, how many more messages the database expects than the broker holds: how
    many it lost. Expected: one for each queued job and evaluation, and one for each whose
    worker died that was sent again since (`leases.resent_since_its_worker_died`), whose
    message waits like any other. A job's queue follows from its device alone (`devices`:
    the ones a sweep looks at); evaluations go to the shared queue."""
    now = utcnow()
    counts = session.execute(
        select(Job.device, func.count())
        .where(
            or_(Job.status == WorkStatus.queued.value, leases.resent_since_its_worker_died(Job, now)),
            Job.device.in_([Device(d).value for d in devices]),
        )
        .group_by(Job.device)
    ).all()
    queued = {
        SHARED_QUEUE: session.execute(
            select(func.count()).where(
                or_(
                    Evaluation.status == WorkStatus.queued.value,
                    leases.resent_since_its_worker_died(Evaluation, now),
                )
            )
        ).scalar_one()
    }
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
