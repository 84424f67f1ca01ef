"""`model.evaluate` over an uploaded dataset, run on a worker as an evaluation of its own.

The API stores the evaluation queued and sends its id ("trainq.run_evaluation"); a
worker claims it with one conditional UPDATE (a duplicate delivery does nothing), reads
the dataset memory-mapped and the job's weights, evaluates batch by batch, and stores
the loss and metrics, or why it failed.
"""

from __future__ import annotations

import logging
import math
import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.datasets.jobs import dataset_named, mapped, stand_ins
from services.datasets.storage import Storage
from services.db.models import Evaluation, utcnow
from services.db.session import session_scope
from services.engine import EngineError, InvalidData, Model
from services.engine.validate import check_samples
from services.errors import EvaluationNotFound, InvalidInput
from services.jobs import service as jobs
from services.spec import JobSpec

log = logging.getLogger(__name__)


def create(session: Session, job_id: str, dataset_id: str, batch_size: int) -> Evaluation:
    """A queued evaluation; refused now if the job has no weights (409) or the dataset
    does not fit its model (422 naming datasetId)."""
    jobs.final_weights(session, job_id)
    config = JobSpec.model_validate(jobs.get_job(session, job_id).spec).to_training_config()
    x, y = stand_ins(dataset_named(session, dataset_id, "datasetId"))
    check_samples(config.model, config.compile.loss, x, y, "datasetId", "datasetId")
    evaluation = Evaluation(
        id=str(uuid.uuid4()), job_id=job_id, dataset_id=dataset_id, batch_size=batch_size,
        status="queued", created_at=utcnow(),
    )
    session.add(evaluation)
    session.flush()
    return evaluation


def get_evaluation(session: Session, evaluation_id: str, job_id: str | None = None) -> Evaluation:
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None or (job_id is not None and evaluation.job_id != job_id):
        raise EvaluationNotFound(evaluation_id)
    return evaluation


def run(factory: sessionmaker[Session], storage: Storage, evaluation_id: str) -> str | None:
    """Claim and run the evaluation; its final status, or None when another delivery had it."""
    with session_scope(factory) as session:
        claimed = session.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id, Evaluation.status == "queued")
            .values(status="running", started_at=utcnow())
            .returning(Evaluation.job_id, Evaluation.dataset_id, Evaluation.batch_size)
        ).one_or_none()
    if claimed is None:
        return None
    try:
        with session_scope(factory) as session:
            weights = jobs.final_weights(session, claimed.job_id)
            config = JobSpec.model_validate(jobs.get_job(session, claimed.job_id).spec).to_training_config()
            x, y = mapped(storage, dataset_named(session, claimed.dataset_id, "datasetId"))
        model = Model.from_weights(config.model, config.compile, weights)
        logs = model.evaluate(x, y, claimed.batch_size)
        # JSON has no NaN or infinity: such a value is stored as null, as epoch logs are
        values = dict(status="succeeded", logs={k: v if math.isfinite(v) else None for k, v in logs.items()})
    except EngineError as error:
        values = dict(status="failed", error=str(error))
    except Exception as error:
        log.exception("evaluation %s: unexpected error", evaluation_id)
        values = dict(status="failed", error=f"internal error: {error!r}")
    with session_scope(factory) as session:
        session.execute(
            update(Evaluation).where(Evaluation.id == evaluation_id).values(finished_at=utcnow(), **values)
        )
    return str(values["status"])


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
        raise InvalidInput("datasetId", error.message) from None
