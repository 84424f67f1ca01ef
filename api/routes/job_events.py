"""GET /v1/jobs/{id}/events: a job's status changes and epochs, pushed as Server-Sent Events.

The events and their ids come from `services.jobs.events`; the wake-ups from
`services.jobs.live` (Redis pub/sub, or polling on the embedded default). sse-starlette
frames the events, sends a comment every `PING_SECONDS` so that proxies keep an idle
stream open, and stops the generator when the client goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from trainq.api.deps import PrincipalDep
from trainq.api.schemas import EpochRead, ErrorBody, JobRead
from trainq.services.db.session import session_scope
from trainq.services.jobs import events, live
from trainq.services.jobs import service as jobs
from trainq.services.jobs.events import JobEvent, Position, Read
from trainq.services.tenants.principal import Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

PING_SECONDS = 15

JobId = Annotated[str, Path(max_length=64, description="The job's id, as POST /v1/jobs answered it")]


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`status` events (data: the job, as GET /v1/jobs/{id}) at each change of state and "
            "`epoch` events (data: the epoch, as in its history) as epochs end; each with an `id:` to send back "
            "as Last-Event-ID on reconnecting. The stream ends after the job's final state.",
        },
        **{code: {"model": ErrorBody} for code in (404, 422)},
    },
    summary="Live status and epochs of a job (Server-Sent Events)",
)
async def job_events(
    job_id: JobId,
    request: Request,
    principal: PrincipalDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="The id of the last event received: the stream goes on after it"),
    ] = None,
) -> EventSourceResponse:
    position = Position.parse(last_event_id)
    factory: sessionmaker[Session] = request.app.state.session_factory
    # an unknown job is a 404 before the stream starts
    await run_in_threadpool(_exists, factory, principal, job_id)
    return EventSourceResponse(_stream(request, factory, principal, job_id, position), ping=PING_SECONDS)


async def _stream(
    request: Request, factory: sessionmaker[Session], principal: Principal, job_id: str, position: Position
) -> AsyncIterator[bytes]:
    async with live.subscribed(request.app.state.redis, job_id) as changes:
        while True:
            read, framed = await run_in_threadpool(_read, factory, principal, job_id, position)
            if framed:
                yield framed
            if read.ended:
                return
            position = read.position
            if not read.more:
                await changes.wait(live.FALLBACK_SECONDS)


def _exists(factory: sessionmaker[Session], principal: Principal, job_id: str) -> None:
    with session_scope(factory) as session:
        jobs.get_job(session, principal, job_id)


def _read(factory: sessionmaker[Session], principal: Principal, job_id: str, position: Position) -> tuple[Read, bytes]:
    """The events after `position`, framed together: one write to the client for a report's
    hundreds of epochs, not one each (the stream's latency grew with every event's write)."""
    with session_scope(factory) as session:
        read = events.events_after(session, principal, job_id, position)
        # framed while the session is open: the rows' attributes are read here
        return read, b"".join(_framed(event).encode() for event in read.events)


def _framed(event: JobEvent) -> ServerSentEvent:
    data: Any
    if event.epoch is not None:
        data = EpochRead.of_attributes(event.epoch)
    else:
        assert event.job is not None
        data = JobRead.of(event.job)
    return ServerSentEvent(data=data.model_dump_json(by_alias=True), event=event.kind, id=event.position.event_id)
