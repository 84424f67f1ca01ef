"""Evaluations on workers: `POST /v1/jobs/{id}/evaluations` queues `model.evaluate` over an
uploaded dataset, too large to evaluate inside the API; poll the evaluation by its id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from trainq.api.deps import PrincipalDep, SessionDep, require_json
from trainq.api.errors import error_responses
from trainq.api.schemas import EvaluationCreate, EvaluationRead
from trainq.services.evaluations import service as evaluations

router = APIRouter(tags=["evaluations"], responses=error_responses(404, 409, 415, 422))

JobId = Annotated[str, Path(max_length=64, description="The job whose trained model is evaluated")]
EvaluationId = Annotated[str, Path(max_length=64, description="The evaluation's id, as its POST answered it")]


@router.post(
    "/v1/jobs/{job_id}/evaluations",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_json)],
    summary="Evaluate the trained model on an uploaded dataset, on a worker",
)
def create_evaluation(
    job_id: JobId, body: EvaluationCreate, session: SessionDep, principal: PrincipalDep
) -> EvaluationRead:
    return EvaluationRead.of(evaluations.create(session, principal, job_id, body.dataset_id, body.batch_size))


@router.get(
    "/v1/evaluations/{evaluation_id}",
    summary="An evaluation: queued, running, or its loss and metrics",
)
def get_evaluation(evaluation_id: EvaluationId, session: SessionDep, principal: PrincipalDep) -> EvaluationRead:
    return EvaluationRead.of(evaluations.get_evaluation(session, principal, evaluation_id))


@router.get(
    "/v1/jobs/{job_id}/evaluations/{evaluation_id}",
    summary="An evaluation of this job",
)
def get_job_evaluation(
    job_id: JobId, evaluation_id: EvaluationId, session: SessionDep, principal: PrincipalDep
) -> EvaluationRead:
    return EvaluationRead.of(evaluations.get_evaluation(session, principal, evaluation_id, job_id))
