"""`model.evaluate` of a finished job over an uploaded dataset, as an evaluation of its own.

    queued ──claim──▶ running ──finish──▶ succeeded | failed
                       │  ▲
                       └──┘ claim after the lease expired: taken over, attempt + 1

An evaluation is leased work (`services.leases`): the API stores it queued and sends its
id ("trainq.run_evaluation"); a worker claims it (a duplicate delivery does nothing),
renews the lease while it evaluates (`services.evaluations.evaluate`), and stores the loss
and metrics, or why it failed, fenced by its attempt. An evaluation whose message was
lost, or whose worker died, is sent again by the requeue sweep (`requeue_stranded`), and
the next claim takes it over. Functions take the session first and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.datasets.jobs import dataset_named, stand_ins
from trainq.services.db.models import Evaluation, utcnow
from trainq.services.engine.validate import check_samples
from trainq.services.errors import DatasetDeleted, EvaluationNotFound
from trainq.services.jobs.states import Device
from trainq.services.jobs.trained import trained
from trainq.services.leases import requeue
from trainq.services.leases import service as leases
from trainq.services.leases.states import WorkStatus
from trainq.services.placement import Route
from trainq.services.queue import evaluation_message, send_after_commit
from trainq.services.settings import Settings
from trainq.services.tenants.principal import Principal


@dataclass(frozen=True)
class Claim:
    """What a worker gets when it wins an evaluation."""

    evaluation_id: str
    attempt: int  # pass it back with every write: it proves the evaluation is still this worker's
    job_id: str
    dataset_id: str
    batch_size: int


# --- the API side ---------------------------------------------------------------------


def create(session: Session, principal: Principal, job_id: str, dataset_id: str, batch_size: int) -> Evaluation:
    """A queued evaluation, sent to the workers once the caller commits; refused now if the
    job has no weights (409) or the dataset does not fit its model (422 naming datasetId).
    The dataset is held until the caller commits, so that it cannot be deleted under the
    evaluation being stored. The job and the dataset must both be the principal's to see:
    another tenant's dataset is not there for it (422 naming datasetId)."""
    config, _ = trained(session, principal, job_id)
    x, y = stand_ins(dataset_named(session, principal, dataset_id, "datasetId", held=True))
    check_samples(config.model, config.compile.loss, x, y, "datasetId", "datasetId")
    now = utcnow()
    evaluation = Evaluation(
        id=str(uuid.uuid4()),
        tenant=principal.tenant,
        job_id=job_id,
        dataset_id=dataset_id,
        batch_size=batch_size,
        status=WorkStatus.queued.value,
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


def get_evaluation(session: Session, principal: Principal, evaluation_id: str, job_id: str | None = None) -> Evaluation:
    """The evaluation, if `principal` may see it (and of `job_id` if given); EvaluationNotFound otherwise."""
    evaluation = session.get(Evaluation, evaluation_id)
    if (
        evaluation is None
        or not principal.sees(evaluation.tenant)
        or (job_id is not None and evaluation.job_id != job_id)
    ):
        raise EvaluationNotFound(evaluation_id)
    return evaluation


# --- the worker side ------------------------------------------------------------------


_CLAIM = leases.claiming(Evaluation, returning=(Evaluation.job_id, Evaluation.dataset_id, Evaluation.batch_size))


def claim(
    session: Session, evaluation_id: str, *, worker: str, lease_seconds: float, max_attempts: int | None = None
) -> Claim | None:
    """Take a queued evaluation, or take over a running one whose lease expired (its worker
    died). None when another worker holds a live lease or it has ended (a duplicate or
    late delivery); one that has lost `max_attempts` workers already ends failed instead."""
    row = leases.claim(
        session, _CLAIM, evaluation_id, worker=worker, lease_seconds=lease_seconds, max_attempts=max_attempts
    )
    if row is None:
        leases.give_up(session, Evaluation, evaluation_id, max_attempts=max_attempts)
        return None
    return Claim(evaluation_id, row.attempt, row.job_id, row.dataset_id, row.batch_size)


def finish(
    session: Session,
    evaluation_id: str,
    *,
    attempt: int,
    status: WorkStatus,
    logs: dict[str, float | None] | None = None,
    error: str | None = None,
) -> bool:
    """End the evaluation succeeded (with its logs) or failed (with why); False when another
    worker took it over meanwhile, whose result stands."""
    return leases.finish(session, Evaluation, evaluation_id, attempt=attempt, status=status, logs=logs, error=error)


# --- the requeue sweep ----------------------------------------------------------------


def requeue_stranded(
    factory: sessionmaker[Session],
    send: Callable[[str], None],
    settings: Settings,
    messages_waiting: Callable[[str], int] | None = None,
) -> list[str]:
    """Send again the evaluations whose message was lost or whose worker died
    (`leases.stranded`); any worker can run one, so every worker's sweep sends them all.
    With `messages_waiting`, queued ones only as many as the shared queue lacks (as for
    jobs, `services.training.requeue_stranded`). The ids sent."""
    return requeue.requeue_stranded(
        factory,
        Evaluation,
        settings,
        routes=_routes,
        send=lambda evaluation_id, _: send(evaluation_id),
        devices={Device.auto},
        messages_waiting=messages_waiting,
    )


def _routes(_: Session, evaluation_ids: Sequence[str]) -> Mapping[str, Route]:
    return {evaluation_id: evaluation_message(evaluation_id).route for evaluation_id in evaluation_ids}
