"""A job's model as tf.js loads it: `model.json` and `weights.bin`.

A succeeded job exports its final weights; a running, cancelled or failed one the weights
of its last checkpoint (the epoch it got to), so that a long run that was stopped is not
lost. The ETag is a digest of what the files hold: an unchanged model is not sent again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from trainq.services.db.models import Checkpoint as CheckpointRow
from trainq.services.db.models import Weights
from trainq.services.engine import Checkpoint
from trainq.services.errors import JobHasNoWeights
from trainq.services.jobs import service as jobs
from trainq.services.models.artifact import model_json, weights_bin
from trainq.services.spec import JobSpec
from trainq.services.tenants.principal import Principal


@dataclass(frozen=True)
class JobModel:
    """A job's model at `epoch` (epochs completed), with its weights in getWeights() order."""

    job_id: str
    status: str
    epoch: int
    spec: JobSpec
    weights: list[np.ndarray]

    @property
    def final(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class ExportedFile:
    body: bytes
    etag: str
    epoch: int | None  # the job's epoch it holds; None for a stored model


def job_model(session: Session, principal: Principal, job_id: str) -> JobModel:
    """The job's final weights, or those of its last checkpoint; JobHasNoWeights (409)
    before its first epoch ends."""
    job = jobs.get_job(session, principal, job_id)
    final = session.get(Weights, job_id)
    if final is not None:
        weights, epoch = jobs.weights_from_bytes(final.data), job.epochs_done
    else:
        row = session.execute(
            select(CheckpointRow.data, CheckpointRow.epoch).where(CheckpointRow.job_id == job_id)
        ).one_or_none()
        if row is None:
            raise JobHasNoWeights(job_id, job.status)
        weights, epoch = Checkpoint.from_bytes(row.data).weights, row.epoch
    return JobModel(job_id, job.status, epoch, JobSpec.model_validate(job.spec), weights)


def metadata(model: JobModel) -> dict[str, Any]:
    """What userDefinedMetadata.trainq says of a job's model (compile is added beside it)."""
    return {"jobId": model.job_id, "status": model.status, "epoch": model.epoch, "final": model.final}


def job_model_json(session: Session, principal: Principal, job_id: str) -> ExportedFile:
    model = job_model(session, principal, job_id)
    document = model_json(model.spec.model.layers, model.spec.compile, model.weights, metadata(model))
    return exported(document, model.epoch)


def job_weights_bin(session: Session, principal: Principal, job_id: str) -> ExportedFile:
    model = job_model(session, principal, job_id)
    return exported(weights_bin(model.weights), model.epoch)


def exported(content: dict[str, Any] | bytes, epoch: int | None) -> ExportedFile:
    """A model.json document (compact JSON) or a weights file, with its ETag: a digest of its bytes."""
    body = content if isinstance(content, bytes) else json.dumps(content, separators=(",", ":")).encode()
    return ExportedFile(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', epoch)
