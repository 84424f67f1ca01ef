"""Evaluating: on a worker, an evaluation under its lease; in the API, a small dataset at once."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from trainq.services.datasets.jobs import dataset_named, mapped
from trainq.services.datasets.storage import Storage
from trainq.services.db.models import Evaluation
from trainq.services.db.session import DATABASE_UNAVAILABLE, session_scope
from trainq.services.engine import EngineError, InvalidData, Model
from trainq.services.errors import InvalidInput
from trainq.services.evaluations import service as evaluations
from trainq.services.evaluations.service import Claim
from trainq.services.jobs.trained import trained
from trainq.services.leases.keeper import hold
from trainq.services.leases.states import WorkStatus
from trainq.services.logs import json_logs
from trainq.services.settings import Settings
from trainq.services.tenants.principal import EVERYONE, Principal

log = logging.getLogger(__name__)


def run(
    factory: sessionmaker[Session],
    storage: Storage,
    evaluation_id: str,
    *,
    worker: str,
    settings: Settings,
    stopping: threading.Event | None = None,
) -> WorkStatus | None:
    """Claim the evaluation and run it under a renewed lease; its final status, or None when
    this delivery ran nothing (another one has it, or took it over). While the database is
    unreachable the claim waits for it (`hold`), then raises for the delivery to go back on
    its queue; `stopping` (the worker shuts down) ends that wait."""
    held = hold(
        factory, Evaluation, evaluation_id, evaluations.claim, worker=worker, settings=settings, stopping=stopping
    )
    if held is None:
        return None
    claimed, lease = held
    try:
        with lease:
            values = _evaluate(factory, storage, claimed)
    except DATABASE_UNAVAILABLE as error:
        log.warning(
            "evaluation %s: the database failed (%s); it runs again once its lease expires", evaluation_id, error
        )
        return None
    with session_scope(factory) as session:
        owned = evaluations.finish(session, evaluation_id, attempt=claimed.attempt, **values)
    if not owned:
        log.warning("evaluation %s: attempt %d was taken over; its result is dropped", evaluation_id, claimed.attempt)
        return None
    return WorkStatus(values["status"])


def _evaluate(factory: sessionmaker[Session], storage: Storage, claimed: Claim) -> dict[str, Any]:
    try:
        with session_scope(factory) as session:
            # the worker acts on what is stored, whoever owns it: the API checked at create
            config, weights = trained(session, EVERYONE, claimed.job_id)
            x, y = mapped(storage, dataset_named(session, EVERYONE, claimed.dataset_id, "datasetId"))
        model = Model.from_weights(config.model, config.compile, weights)
        logs = model.evaluate(x, y, claimed.batch_size)
        # JSON has no NaN or infinity: such a value is stored as null, as epoch logs are
        return dict(status=WorkStatus.succeeded, logs=json_logs(logs))
    except EngineError as error:
        return dict(status=WorkStatus.failed, error=str(error))
    except DATABASE_UNAVAILABLE:
        raise
    except Exception as error:
        log.exception("evaluation %s: unexpected error", claimed.evaluation_id)
        return dict(status=WorkStatus.failed, error=f"internal error: {error!r}")


def evaluate_here(
    session: Session,
    principal: Principal,
    storage: Storage,
    model: Model,
    dataset_id: str,
    batch_size: int,
    *,
    max_bytes: int,
) -> dict[str, float]:
    """`model.evaluate` over a small dataset in this process (the API); a dataset of more
    than `max_bytes` is refused with a pointer to the evaluation run on a worker."""
    dataset = dataset_named(session, principal, dataset_id, "datasetId")
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
