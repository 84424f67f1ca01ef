"""`model.evaluate` over an uploaded dataset, run on a worker as an evaluation of its own.

    queued ──claim──▶ running ──finish──▶ succeeded | failed
                       │  ▲
                       └──┘ claim after the lease expired: taken over, attempt + 1

An evaluation is leased as a job is (`services.leases`): the API stores it queued and
sends its id ("trainq.run_evaluation"); a worker claims it with one conditional UPDATE
that raises its `attempt` (a duplicate delivery does nothing), renews the lease while it
evaluates, and stores the loss and metrics, or why it failed, fenced by its attempt. An
evaluation whose message was lost, or whose worker died, is sent again by the requeue
sweep (`requeue_stranded`), and the next claim takes it over.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.util import identity_key

from trainq.services.datasets.jobs import dataset_named, held_dataset, mapped, stand_ins
from trainq.services.datasets.storage import Storage
from trainq.services.db.models import Evaluation, UTCDateTime, utcnow
from trainq.services.db.session import DATABASE_UNAVAILABLE, session_scope
from trainq.services.engine import EngineError, InvalidData, Model
from trainq.services.engine.validate import check_samples
from trainq.services.errors import DatasetDeleted, EvaluationNotFound, InvalidInput
from trainq.services.jobs import service as jobs
from trainq.services.jobs.service import Lease
from trainq.services.jobs.states import Device
from trainq.services.leases import LeaseKeeper, messages_lacking, resend, take_one
from trainq.services.placement import SHARED_QUEUE
from trainq.services.queue import evaluation_message, send_after_commit
from trainq.services.settings import Settings
from trainq.services.spec import JobSpec

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


@dataclass(frozen=True)
class Claim:
    """What a worker gets when it wins an evaluation."""

    evaluation_id: str
    attempt: int  # pass it back with every write: it proves the evaluation is still this worker's
    job_id: str
    dataset_id: str
    batch_size: int


# --- the API side ---------------------------------------------------------------------


def create(session: Session, job_id: str, dataset_id: str, batch_size: int) -> Evaluation:
    """A queued evaluation, sent to the workers once the caller commits; refused now if the
    job has no weights (409) or the dataset does not fit its model (422 naming datasetId).
    The dataset is held until the caller commits, so that it cannot be deleted under the
    evaluation being stored."""
    jobs.final_weights(session, job_id)
    config = JobSpec.model_validate(jobs.get_job(session, job_id).spec).to_training_config()
    x, y = stand_ins(held_dataset(session, dataset_id, "datasetId"))
    check_samples(config.model, config.compile.loss, x, y, "datasetId", "datasetId")
    now = utcnow()
    evaluation = Evaluation(
        id=str(uuid.uuid4()),
        job_id=job_id,
        dataset_id=dataset_id,
        batch_size=batch_size,
        status=QUEUED,
        attempt=0,
        created_at=now,
        enqueued_at=now,
    )
    session.add(evaluation)
    try:
        session.flush()
    except IntegrityError:
        # not while the dataset is held; should another path store one, still a 409, not a 500
        raise DatasetDeleted(dataset_id, "datasetId") from None
    send_after_commit(session, evaluation_message(evaluation.id))
    return evaluation


def get_evaluation(session: Session, evaluation_id: str, job_id: str | None = None) -> Evaluation:
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None or (job_id is not None and evaluation.job_id != job_id):
        raise EvaluationNotFound(evaluation_id)
    return evaluation


# --- the worker side ------------------------------------------------------------------


def claim(
    session: Session, evaluation_id: str, *, worker: str, lease_seconds: float, max_attempts: int | None = None
) -> Claim | None:
    """Take a queued evaluation, or take over a running one whose lease expired (its worker
    died). None when another worker holds a live lease or it has ended (a duplicate or
    late delivery); one that has lost `max_attempts` workers already ends failed instead."""
    now = utcnow()
    attempts_left = true() if max_attempts is None else Evaluation.attempt < max_attempts
    row = session.execute(
        update(Evaluation)
        .where(Evaluation.id == evaluation_id, _claimable(now), or_(Evaluation.status == QUEUED, attempts_left))
        .values(
            status=RUNNING,
            attempt=Evaluation.attempt + 1,
            worker=worker,
            started_at=func.coalesce(Evaluation.started_at, literal(now, UTCDateTime())),
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
        )
        .returning(Evaluation.attempt, Evaluation.job_id, Evaluation.dataset_id, Evaluation.batch_size)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    _expire(session, evaluation_id)
    if row is None:
        if max_attempts is not None:
            session.execute(
                update(Evaluation)
                .where(
                    Evaluation.id == evaluation_id,
                    _claimable(now),
                    Evaluation.status == RUNNING,
                    Evaluation.attempt >= max_attempts,
                )
                .values(status=FAILED, finished_at=now, lease_expires_at=None, error=jobs.workers_lost(max_attempts))
                .execution_options(synchronize_session=False)
            )
            _expire(session, evaluation_id)
        return None
    return Claim(evaluation_id, row.attempt, row.job_id, row.dataset_id, row.batch_size)


def renew_lease(session: Session, evaluation_id: str, *, attempt: int, lease_seconds: float) -> Lease:
    """The heartbeat: extend the lease while the evaluation is still this attempt's."""
    now = utcnow()
    renewed = session.execute(
        update(Evaluation)
        .where(*_owned_by(evaluation_id, attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
        .returning(Evaluation.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    _expire(session, evaluation_id)
    return Lease(owned=renewed is not None, cancel_requested=False)


def finish(
    session: Session,
    evaluation_id: str,
    *,
    attempt: int,
    status: str,
    logs: dict[str, float | None] | None = None,
    error: str | None = None,
) -> bool:
    """End the evaluation succeeded (with its logs) or failed (with why); False when another
    worker took it over meanwhile, whose result stands."""
    finished = session.execute(
        update(Evaluation)
        .where(*_owned_by(evaluation_id, attempt))
        .values(status=status, logs=logs, error=error, finished_at=utcnow(), lease_expires_at=None)
        .returning(Evaluation.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    _expire(session, evaluation_id)
    return finished is not None


def run(
    factory: sessionmaker[Session], storage: Storage, evaluation_id: str, *, worker: str, settings: Settings
) -> str | None:
    """Claim the evaluation and run it under a renewed lease; its final status, or None when
    this delivery ran nothing (another one has it, or took it over)."""
    with session_scope(factory) as session:
        claimed = claim(
            session,
            evaluation_id,
            worker=worker,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
    if claimed is None:
        return None
    log.info("evaluation %s: attempt %d on %s", evaluation_id, claimed.attempt, worker)
    lease = LeaseKeeper(
        factory,
        partial(
            renew_lease, evaluation_id=evaluation_id, attempt=claimed.attempt, lease_seconds=settings.lease_seconds
        ),
        interval=settings.heartbeat_seconds,
        name=f"evaluation {evaluation_id}",
    )
    lease.start()
    try:
        values = _evaluate(factory, storage, claimed)
    except DATABASE_UNAVAILABLE as error:
        log.warning(
            "evaluation %s: the database failed (%s); it runs again once its lease expires", evaluation_id, error
        )
        return None
    finally:
        lease.stop()
    with session_scope(factory) as session:
        owned = finish(session, evaluation_id, attempt=claimed.attempt, **values)
    if not owned:
        log.warning("evaluation %s: attempt %d was taken over; its result is dropped", evaluation_id, claimed.attempt)
        return None
    return str(values["status"])


def _evaluate(factory: sessionmaker[Session], storage: Storage, claimed: Claim) -> dict[str, Any]:
    try:
        with session_scope(factory) as session:
            weights = jobs.final_weights(session, claimed.job_id)
            config = JobSpec.model_validate(jobs.get_job(session, claimed.job_id).spec).to_training_config()
            x, y = mapped(storage, dataset_named(session, claimed.dataset_id, "datasetId"))
        model = Model.from_weights(config.model, config.compile, weights)
        logs = model.evaluate(x, y, claimed.batch_size)
        # JSON has no NaN or infinity: such a value is stored as null, as epoch logs are
        return dict(status=SUCCEEDED, logs={k: v if math.isfinite(v) else None for k, v in logs.items()})
    except EngineError as error:
        return dict(status=FAILED, error=str(error))
    except DATABASE_UNAVAILABLE:
        raise
    except Exception as error:
        log.exception("evaluation %s: unexpected error", claimed.evaluation_id)
        return dict(status=FAILED, error=f"internal error: {error!r}")


# --- the requeue sweep ----------------------------------------------------------------


def stranded_evaluations(session: Session, *, queued_before: datetime, now: datetime, limit: int = 1000) -> list[str]:
    """Evaluations no live broker message may carry: queued ones last sent before
    `queued_before`, and running ones whose lease expired, not re-sent since. Oldest first."""
    sent_long_ago = or_(Evaluation.enqueued_at.is_(None), Evaluation.enqueued_at < queued_before)
    query = select(Evaluation.id).where(sent_long_ago, _claimable(now)).order_by(Evaluation.created_at).limit(limit)
    return list(session.execute(query).scalars())


def requeue_stranded(
    factory: sessionmaker[Session],
    send: Callable[[str], None],
    settings: Settings,
    messages_waiting: Callable[[str], int] | None = None,
) -> list[str]:
    """Send again the evaluations whose message was lost or whose worker died (see
    `stranded_evaluations`); any worker can run one, so every worker's sweep sends them
    all. One sent twice is harmless: its claim lets one delivery run it. With
    `messages_waiting`, queued ones only as many as the shared queue lacks (as for jobs,
    `services.training.requeue_stranded`). The ids sent."""
    now = utcnow()
    with session_scope(factory) as session:
        ids = stranded_evaluations(
            session, queued_before=now - timedelta(seconds=settings.requeue_after_seconds), now=now
        )
        queued = set(
            session.execute(select(Evaluation.id).where(Evaluation.id.in_(ids), Evaluation.status == QUEUED)).scalars()
        )
        lacking = messages_lacking(session, {Device.auto}, messages_waiting) if queued and messages_waiting else None
    if lacking is not None:
        ids = [i for i in ids if i not in queued or take_one(lacking, SHARED_QUEUE)]
    sent = resend(ids, send, "evaluation")
    if sent:
        with session_scope(factory) as session:
            mark_enqueued(session, sent)
    return sent


def mark_enqueued(session: Session, evaluation_ids: Sequence[str]) -> None:
    session.execute(
        update(Evaluation)
        .where(Evaluation.id.in_(list(evaluation_ids)))
        .values(enqueued_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    _expire(session, *evaluation_ids)


# --- evaluating in the API ------------------------------------------------------------


def evaluate_here(
    session: Session, storage: Storage, model: Model, dataset_id: str, batch_size: int, *, max_bytes: int
) -> dict[str, float]:
    """`model.evaluate` over a small dataset in this process (the API); a dataset of more
    than `max_bytes` is refused with a pointer to the evaluation run on a worker."""
    dataset = dataset_named(session, dataset_id, "datasetId")
    stored = dataset.rows * (dataset.x_columns + dataset.y_columns) * 4
    if stored > max_bytes:
        raise InvalidInput(
            "datasetId",
            f"the dataset holds {stored} bytes, more than the {max_bytes} evaluated here; "
            "POST /v1/jobs/{id}/evaluations evaluates it on a worker",
        )
    x, y = mapped(storage, dataset)
    try:
        return model.evaluate(x, y, batch_size)
    except InvalidData as error:
        raise InvalidInput.of(error, "datasetId") from None


# --- internals ------------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    # a running evaluation without a lease was claimed before leases existed (migration 0004)
    expired = or_(Evaluation.lease_expires_at.is_(None), Evaluation.lease_expires_at < now)
    return or_(Evaluation.status == QUEUED, and_(Evaluation.status == RUNNING, expired))


def _owned_by(evaluation_id: str, attempt: int) -> tuple[Any, ...]:
    return Evaluation.id == evaluation_id, Evaluation.attempt == attempt, Evaluation.status == RUNNING


def _expire(session: Session, *evaluation_ids: str) -> None:
    """Forget what the session holds of evaluations changed by a bulk UPDATE (as
    `services.jobs.service._expire` does for jobs): the next read reloads them."""
    for evaluation_id in evaluation_ids:
        evaluation = session.identity_map.get(identity_key(Evaluation, evaluation_id))
        if evaluation is not None:
            session.expire(evaluation)
