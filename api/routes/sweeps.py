"""/v1/sweeps: create a sweep (one job per point), list sweeps, read one ranked, cancel it, delete it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from trainq.api.deps import (
    IdempotencyKey,
    IdListingDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    require_json,
)
from trainq.api.errors import error_responses
from trainq.api.routes.delete import delete_route
from trainq.api.schemas import SweepCreate, SweepPage, SweepRead, SweepSummaryRead
from trainq.services.sweeps import service as sweeps

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"], responses=error_responses(404, 409, 413, 415, 422))

SweepId = Annotated[str, Path(max_length=64, description="The sweep's id, as POST /v1/sweeps answered it")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": SweepRead, "description": "An idempotent replay: the sweep stored the first time"}},
    dependencies=[Depends(require_json)],
    summary="Create a sweep: one job per point of a grid or random draws",
)
def create_sweep(
    body: SweepCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SweepRead:
    ranking, created = sweeps.create_sweep(
        session,
        principal,
        base=body.base,
        grid=body.grid,
        random=body.random.draws_of() if body.random is not None else None,
        device=body.device,
        name=body.name,
        metric=body.metric,
        goal=body.goal,
        max_points=settings.max_sweep_points,
        max_inline_bytes=settings.max_request_bytes,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return SweepRead.of(ranking)


@router.get(
    "",
    summary="List sweeps, newest first: points, jobs by status, best value of its metric",
)
def list_sweeps(session: SessionDep, listing: IdListingDep) -> SweepPage:
    found = sweeps.list_sweeps(
        session, listing.principal, cursor=listing.cursor, limit=listing.limit, id_prefix=listing.id_prefix
    )
    return SweepPage.of(found, SweepSummaryRead.of)


@router.get("/{sweep_id}", summary="A sweep, its jobs ranked by a metric")
def get_sweep(
    sweep_id: SweepId,
    session: SessionDep,
    principal: PrincipalDep,
    metric: Annotated[
        str | None, Query(max_length=64, description="Rank by this log key instead of the sweep's")
    ] = None,
    goal: Annotated[Literal["min", "max"] | None, Query(description="min: smallest first; max: largest first")] = None,
) -> SweepRead:
    return SweepRead.of(sweeps.rank(session, principal, sweep_id, metric=metric, goal=goal))


@router.post(
    "/{sweep_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary=(
        "Cancel a sweep: its queued jobs never start, its running ones stop at the batch their workers learn of it in"
    ),
)
def cancel_sweep(sweep_id: SweepId, session: SessionDep, principal: PrincipalDep) -> SweepRead:
    return SweepRead.of(sweeps.cancel_sweep(session, principal, sweep_id))


@delete_route(
    router,
    "/{sweep_id}",
    summary="Delete a sweep whose jobs have all ended, and its jobs (409: cancel it first)",
)
def delete_sweep(sweep_id: SweepId, session: SessionDep, principal: PrincipalDep) -> None:
    sweeps.delete_sweep(session, principal, sweep_id)
