"""Liveness (the process answers) and readiness (its database and broker answer)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from trainq.api.schemas import Health, Readiness

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="The database and the broker are reachable",
)
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    parts = {"database": _database(state.session_factory), "broker": _broker(state.broker_check)}
    ready = all(value == "ok" for value in parts.values())
    return JSONResponse(parts, status_code=200 if ready else 503)


def _database(session_factory: sessionmaker[Session]) -> str:
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("readiness: database unreachable: %s", error)
        return f"unreachable: {type(error).__name__}"
    return "ok"


def _broker(check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as error:
        log.warning("readiness: broker unreachable: %s", error)
        return f"unreachable: {type(error).__name__}"
    return "ok"
