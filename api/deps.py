"""What a route may ask for: who calls (the API key's `Principal`), the settings, a
database session, the trained-model cache. All of it lives on `app.state`, set by
`create_app`, so a test builds an app on its own database and broker without touching globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from trainq.services.db.models import IDEMPOTENCY_KEY_MAX_LENGTH
from trainq.services.db.session import autocommit
from trainq.services.errors import NotAuthenticated
from trainq.services.paging import MAX_PAGE
from trainq.services.settings import Settings
from trainq.services.tenants import keys
from trainq.services.tenants.principal import Principal
from trainq.services.trained_models import TrainedModels
from trainq.services.workers.registry import OnlineKinds

# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` one in its thread
# pool, a hop to another thread and back that cost more than what it does.


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it
    raises; what the services recorded to send goes to the broker once it committed.

    A session opens no connection until its first statement, so it is made here on the
    event loop; only its commit or rollback (I/O) takes a thread: one hop, not two."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        await run_in_threadpool(session.commit)
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    finally:
        # after the commit or the rollback the connection is back in the pool: no I/O left
        session.close()


# declared in the OpenAPI document, so /docs offers to authorize; auto_error=False: a
# request without it is answered by `_principal`, in the one error body, with 401
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key: `trainq keys create --tenant NAME`, or the one `trainq up` saved in TRAINQ_HOME/api-key",
)


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; 401 without a valid key."""
    if credentials is None:
        raise NotAuthenticated("an API key is required: send the header Authorization: Bearer <key>")
    # not the request's transaction: the key's last use is recorded whatever becomes of the request
    with autocommit(request.app.state.session_factory) as connection:
        return keys.authenticate(connection, credentials.credentials)


async def _trained_models(request: Request) -> TrainedModels:
    return request.app.state.trained_models


async def _online_kinds(request: Request) -> OnlineKinds:
    return request.app.state.online_kinds


async def require_json(request: Request) -> None:
    """A body must be JSON, and say so: answer 415 rather than fail to find fields in
    something else (FastAPI parses a body as JSON only under a JSON Content-Type, so one
    sent without it would be reported as a body with no fields)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "the request has no Content-Type; send application/json"
        )
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Content-Type {media_type!r} is not application/json"
        )


# Every /v1 router is included with AUTHENTICATED (api/app.py); a route that needs to know
# who calls takes PrincipalDep too, which FastAPI answers from the same, cached, call.
AUTHENTICATED = [Depends(_principal)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
# the query parameters of every list: keyset pages (services.paging)
# what services.paging hands out: unpadded urlsafe base64
PageCursor = Annotated[
    str | None,
    Query(min_length=1, pattern="^[A-Za-z0-9_-]+$", description="nextCursor of the previous page"),
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")]
# a list's filter by tenant: an admin key's view of one tenant (a tenant's key sees its own only)
TenantFilter = Annotated[
    str | None, Query(max_length=64, description="Only this tenant's (an admin key sees every tenant's otherwise)")
]
# a list's filter by id prefix: the short ids the CLI and dashboard show
IdPrefix = Annotated[
    str | None, Query(alias="idPrefix", min_length=1, max_length=36, description="Only ids that start so")
]


@dataclass(frozen=True)
class Listing:
    """The query every list takes: whose rows (the caller's, or an admin's view of one
    tenant), from which cursor, how many."""

    principal: Principal
    cursor: str | None
    limit: int
    id_prefix: str | None = None


async def _listing(
    principal: PrincipalDep, cursor: PageCursor = None, limit: PageLimit = 50, tenant: TenantFilter = None
) -> Listing:
    return Listing(principal.only(tenant), cursor, limit)


async def _listing_by_id_prefix(
    principal: PrincipalDep,
    cursor: PageCursor = None,
    limit: PageLimit = 50,
    tenant: TenantFilter = None,
    id_prefix: IdPrefix = None,
) -> Listing:
    return Listing(principal.only(tenant), cursor, limit, id_prefix)


ListingDep = Annotated[Listing, Depends(_listing)]
# the lists of what the CLI and the dashboard name by short ids: jobs, datasets, sweeps
IdListingDep = Annotated[Listing, Depends(_listing_by_id_prefix)]
SettingsDep = Annotated[Settings, Depends(_settings)]
# scope="function": the commit happens before the response is sent, so a failed commit
# answers an error instead of a success for something that was not stored
SessionDep = Annotated[Session, Depends(_session, scope="function")]
TrainedModelsDep = Annotated[TrainedModels, Depends(_trained_models)]
# the device kinds online workers serve (read at most once a second): why a queued job waits
OnlineKindsDep = Annotated[OnlineKinds, Depends(_online_kinds)]

# one key space per kind of request: a job's key, a batch's and a sweep's never meet
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="A retry with the same key and body returns what the first request stored instead of storing"
        " it again (200, not 201); the key with another body is refused (409). A single submit, a batch and a"
        " sweep each have keys of their own",
    ),
]
