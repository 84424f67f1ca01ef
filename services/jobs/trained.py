"""The trained model of a finished job: its training config and final weights, read once here
for the API's model cache, its evaluations and their checks."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from trainq.services.engine import Model, TrainingConfig
from trainq.services.jobs import service as jobs
from trainq.services.spec import JobSpec
from trainq.services.tenants.principal import Principal


def trained(session: Session, principal: Principal, job_id: str) -> tuple[TrainingConfig, list[np.ndarray]]:
    """The job's training config and final weights; JobNotFound (not `principal`'s to see),
    JobHasNoWeights (409) while it has none."""
    weights = jobs.final_weights(session, principal, job_id)
    return JobSpec.model_validate(jobs.get_job(session, principal, job_id).spec).to_training_config(), weights


def trained_model(session: Session, principal: Principal, job_id: str) -> Model:
    """The job's model with its final weights (`trained`)."""
    config, weights = trained(session, principal, job_id)
    return Model.from_weights(config.model, config.compile, weights)
