"""/v1/jobs: submit (one, or a batch), list, read, spec, history, weights, the tf.js model, evaluate,
predict, cancel, delete.

Each route parses, makes one service call and shapes the answer. The routes are plain
`def`s: FastAPI runs them in its thread pool, so database I/O and the model's
arithmetic (evaluate, predict) never block the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from trainq.api import etag
from trainq.api.deps import (
    IdempotencyKey,
    IdListingDep,
    OnlineKindsDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    TrainedModelsDep,
    require_json,
)
from trainq.api.errors import error_responses
from trainq.api.inline_body import InlineDataRoute
from trainq.api.routes.delete import delete_route
from trainq.api.schemas import (
    EpochRead,
    EvaluateRequest,
    EvaluateResponse,
    History,
    JobBatchCreate,
    JobBatchRead,
    JobCreate,
    JobPage,
    JobRead,
    ModelRead,
    PredictRequest,
    PredictResponse,
    WeightArray,
    WeightsRead,
)
from trainq.services.datasets.storage import storage_for
from trainq.services.jobs import batch, submit
from trainq.services.jobs import service as jobs
from trainq.services.jobs.states import JobStatus
from trainq.services.models import exports
from trainq.services.models import service as models
from trainq.services.spec import MAX_EPOCHS, SEED_EXAMPLE
from trainq.services.workers.registry import waiting_reason

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=InlineDataRoute)

JobId = Annotated[str, Path(max_length=64, description="The job's id, as POST /v1/jobs answered it")]
# per route, not the router's: the model files answer fewer (FILE_ERRORS)
ERRORS = error_responses(404, 409, 413, 415, 422)
JSON_BODY = [Depends(require_json)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": JobRead, "description": "An idempotent replay: the job stored the first time"}, **ERRORS},
    summary="Submit a training job",
    dependencies=JSON_BODY,
)
def submit_job(
    job: Annotated[
        JobCreate,
        Body(
            openapi_examples={
                "seed": {"summary": "y = 2x + 1, one Dense unit, 20 epochs", "value": {**SEED_EXAMPLE, "name": "seed"}}
            }
        ),
    ],
    session: SessionDep,
    principal: PrincipalDep,
    online_kinds: OnlineKindsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    stored, created = submit.submit_job(
        session, principal, job, name=job.name, device=job.device, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    reason = waiting_reason(stored, online_kinds(session))
    return JobRead.of(stored, reason=reason)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": JobBatchRead, "description": "An idempotent replay: the jobs stored the first time"},
        **ERRORS,
    },
    summary="Submit up to 1,000 jobs at once: all stored, or none (a fault names its job: jobs[3].fit.epochs)",
    dependencies=JSON_BODY,
)
def submit_jobs(
    body: JobBatchCreate,
    session: SessionDep,
    principal: PrincipalDep,
    online_kinds: OnlineKindsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobBatchRead:
    stored, created = batch.submit_batch(
        session, principal, [(job, job.name, job.device) for job in body.jobs], idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    online = online_kinds(session)
    return JobBatchRead(jobs=[JobRead.of(job, reason=waiting_reason(job, online)) for job in stored])


@router.get("", responses=ERRORS, summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    online_kinds: OnlineKindsDep,
    listing: IdListingDep,
    status_: Annotated[JobStatus | None, Query(alias="status", description="Only jobs in this state")] = None,
) -> JobPage:
    found = jobs.list_jobs(
        session,
        listing.principal,
        status=status_,
        cursor=listing.cursor,
        limit=listing.limit,
        id_prefix=listing.id_prefix,
    )
    online = online_kinds(session)
    return JobPage.of(found, lambda job: JobRead.of(job, reason=waiting_reason(job, online)))


@router.get("/{job_id}", responses=ERRORS, summary="A job: status, progress, metrics")
def get_job(job_id: JobId, session: SessionDep, principal: PrincipalDep, online_kinds: OnlineKindsDep) -> JobRead:
    job = jobs.get_job(session, principal, job_id)
    return JobRead.of(job, reason=waiting_reason(job, online_kinds(session)))


@router.get(
    "/{job_id}/spec", responses=ERRORS, summary="The job spec it was submitted with (model, compile, fit, data)"
)
def get_spec(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    # stored already validated and dumped by alias: it goes out as tf.js's field names
    return jobs.get_job(session, principal, job_id).spec


@router.get("/{job_id}/history", responses=ERRORS, summary="Per-epoch logs")
def get_history(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[
        int, Query(ge=0, le=MAX_EPOCHS, description="The first epoch to return (0-based): poll with the last seen + 1")
    ] = 0,
) -> History:
    epochs = jobs.epochs_since(session, principal, job_id, since)
    return History(job_id=job_id, epochs=[EpochRead.of_attributes(epoch) for epoch in epochs])


@router.get("/{job_id}/weights", responses=ERRORS, summary="Final weights (409 until succeeded)")
def get_weights(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> WeightsRead:
    weights = jobs.final_weights(session, principal, job_id)
    return WeightsRead(weights=[WeightArray(shape=list(w.shape), values=w.tolist()) for w in weights])


FILE_ERRORS = error_responses(404, 409)


@etag.file_route(
    router,
    "/{job_id}/model.json",
    etag.MODEL_JSON,
    errors=FILE_ERRORS,
    summary="The model as tf.js loads it: tf.loadLayersModel('<this URL>')",
    description="A tf.js layers-model artifact (as model.save() writes it) whose weightsManifest points at "
    "weights.bin beside it. A succeeded job's final weights; a running, cancelled or failed job's last "
    f"checkpoint, its epoch in userDefinedMetadata.trainq.epoch and the {etag.EPOCH_HEADER} header. 409 before "
    "the first epoch ends.",
)
def get_model_json(job_id: JobId, request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return etag.respond(request, exports.job_model_json(session, principal, job_id), etag.MODEL_JSON)


@etag.file_route(
    router,
    "/{job_id}/weights.bin",
    etag.WEIGHTS_BIN,
    errors=FILE_ERRORS,
    summary="The weights model.json names: little-endian float32, in its manifest's order",
)
def get_weights_bin(job_id: JobId, request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return etag.respond(request, exports.job_weights_bin(session, principal, job_id), etag.WEIGHTS_BIN)


@router.post(
    "/{job_id}/model",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    summary="Save the job's model to start other jobs from (model: {from: <modelId>})",
    description="A succeeded job's final weights; a running, cancelled or failed job's last checkpoint.",
)
def save_model(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[str | None, Query(max_length=200, description="A label for people")] = None,
) -> ModelRead:
    return ModelRead.of(models.save_job(session, principal, job_id, name=name))


@router.post(
    "/{job_id}/evaluate",
    responses=ERRORS,
    dependencies=JSON_BODY,
    summary="Loss and metrics of the trained model on new data",
)
def evaluate(
    job_id: JobId,
    body: EvaluateRequest,
    session: SessionDep,
    principal: PrincipalDep,
    models: TrainedModelsDep,
    settings: SettingsDep,
) -> EvaluateResponse:
    logs = models.evaluate(
        session,
        principal,
        job_id,
        x=body.x,
        y=body.y,
        dataset_id=body.dataset_id,
        batch_size=body.batch_size,
        storage=storage_for(settings),
        max_bytes=settings.max_request_bytes,
    )
    loss = logs.pop("loss")
    return EvaluateResponse(loss=loss, metrics=logs)


@router.post(
    "/{job_id}/predict",
    responses=ERRORS,
    dependencies=JSON_BODY,
    summary="Outputs of the trained model",
)
def predict(
    job_id: JobId, body: PredictRequest, session: SessionDep, principal: PrincipalDep, models: TrainedModelsDep
) -> PredictResponse:
    outputs = models.predict(session, principal, job_id, body.x, body.batch_size)
    return PredictResponse(predictions=outputs.tolist())


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
    summary="Cancel a job: a queued one never starts, a running one stops at the batch its worker learns of it in",
)
def cancel(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> JobRead:
    return JobRead.of(jobs.request_cancel(session, principal, job_id))


@delete_route(
    router,
    "/{job_id}",
    responses=ERRORS,
    summary="Delete a job that has ended, with its history, checkpoint, weights and evaluations (409: cancel first)",
)
def delete_job(job_id: JobId, session: SessionDep, principal: PrincipalDep, models: TrainedModelsDep) -> None:
    jobs.delete_job(session, principal, job_id)
    models.forget(job_id)
