"""Stored models: tf.js artifacts uploaded (as `tf.io.http` sends them) and jobs saved as
models, kept to start jobs from (`"model": {"from": "<modelId>"}`).

Every function takes the session first and never commits, as the jobs' service does.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from trainq.services import paging
from trainq.services.db.models import NAME_MAX_LENGTH, StoredModel, utcnow
from trainq.services.errors import InvalidInput, ModelNotFound
from trainq.services.jobs import service as jobs
from trainq.services.models import exports
from trainq.services.models.artifact import model_json, weights_bin
from trainq.services.models.reading import ImportedModel, read_artifact
from trainq.services.spec import Compile, DenseLayer, JobRequest, JobSpec, Model, ModelFrom
from trainq.services.tenants.principal import Principal


def upload(
    session: Session, principal: Principal, document: Any, weights: bytes, *, name: str | None, weights_field: str
) -> StoredModel:
    """Store a tf.js model.json and its weights; InvalidArtifact (422) names what is wrong,
    and then nothing is stored."""
    return _store(session, principal, read_artifact(document, weights, weights_field=weights_field), name=name)


def save_job(session: Session, principal: Principal, job_id: str, *, name: str | None) -> StoredModel:
    """Store a job's model (its final weights, or those of its last checkpoint) to start others from."""
    model = exports.job_model(session, principal, job_id)
    imported = ImportedModel(list(model.spec.model.layers), model.spec.compile, model.weights)
    return _store(session, principal, imported, name=name, source_job_id=job_id)


def get_model(session: Session, principal: Principal, model_id: str, field: str = "path.model_id") -> StoredModel:
    """The model, if `principal` may see it; ModelNotFound otherwise, as if there were none."""
    return principal.find(session, StoredModel, model_id, ModelNotFound(model_id, field))


def list_models(
    session: Session, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[StoredModel], str | None]:
    """A page of models, newest first (their weights not loaded), and the next page's cursor."""
    query = (
        select(StoredModel)
        .options(defer(StoredModel.weights, raiseload=True))
        .where(principal.visible(StoredModel.tenant))
    )
    return paging.page(session, query, StoredModel, cursor=cursor, limit=limit)


def delete_model(session: Session, principal: Principal, model_id: str) -> None:
    """Remove a model; the jobs started from it keep their copy of its layers and weights."""
    session.delete(get_model(session, principal, model_id))
    session.flush()


def layers_of(model: StoredModel) -> list[DenseLayer]:
    return [DenseLayer.model_validate(layer) for layer in model.layers]


def compile_of(model: StoredModel) -> Compile | None:
    return None if model.compile is None else Compile.model_validate(model.compile)


def weights_of(model: StoredModel) -> list[np.ndarray]:
    return jobs.weights_from_bytes(model.weights)


def job_spec(session: Session, principal: Principal, request: JobRequest) -> JobSpec:
    """The job spec to store and train: a `model.from` replaced by the stored model's layers
    and weights (its initial weights), and its compile when the request has none."""
    model, compile = request.model, request.compile
    if isinstance(model, ModelFrom):
        stored = get_model(session, principal, model.from_, field="model.from")
        if compile is None:
            compile = compile_of(stored)
            if compile is None:
                raise InvalidInput(
                    "compile",
                    f"Field required: model {stored.id} was saved without a trainingConfig "
                    "(tf.js: model.save(..., {includeOptimizer: true}) after compile)",
                )
        # constructed, not validated again: the layers were checked when the model was stored
        model = Model.model_construct(layers=layers_of(stored), weights=[w.tolist() for w in weights_of(stored)])
    assert compile is not None  # JobRequest requires it unless the model is stored
    return JobSpec.model_construct(model=model, compile=compile, fit=request.fit, data=request.data)


def model_files(
    session: Session, principal: Principal, model_id: str
) -> tuple[exports.ExportedFile, exports.ExportedFile]:
    """A stored model as tf.js loads it: (model.json, weights.bin)."""
    stored = get_model(session, principal, model_id)
    weights = weights_of(stored)
    metadata = {"modelId": stored.id, "sourceJobId": stored.source_job_id}
    document = model_json(layers_of(stored), compile_of(stored), weights, metadata)
    return exports.exported(document, 0), exports.exported(weights_bin(weights), 0)


def _store(
    session: Session,
    principal: Principal,
    imported: ImportedModel,
    *,
    name: str | None,
    source_job_id: str | None = None,
) -> StoredModel:
    if name is not None and len(name) > NAME_MAX_LENGTH:
        raise InvalidInput("name", f"at most {NAME_MAX_LENGTH} characters")
    model = StoredModel(
        id=str(uuid.uuid4()),
        tenant=principal.tenant,
        name=name,
        layers=[layer.model_dump(mode="json", by_alias=True, exclude_none=True) for layer in imported.layers],
        compile=None
        if imported.compile is None
        else imported.compile.model_dump(mode="json", by_alias=True, exclude_none=True),
        weights=jobs.weights_to_bytes(imported.weights),
        parameters=sum(int(w.size) for w in imported.weights),
        source_job_id=source_job_id,
        created_at=utcnow(),
    )
    session.add(model)
    session.flush()
    return model
