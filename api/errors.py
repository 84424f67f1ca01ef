"""Every error the API answers, mapped to HTTP in this one place.

The body is always `{"detail": "<one sentence>", "errors": [{"field", "message"}]}`, the
field a dotted path into the request: `model.layers[0].units` and `data.x[3][0]` in the
body, `body` for the body as a whole, `path.job_id`, `query.limit`,
`header.Idempotency-Key`. Input never causes a 500.

While the database cannot be reached the answer is 503 with `Retry-After`, naming it. (A
broker that is down costs no answer: a submit stores the job, and the requeue sweep sends
it once the broker is back; /readyz names either part.) Whatever else escapes a route is a 500, logged once and
answered by `AnswerUnexpectedErrors` rather than by Starlette's outermost middleware,
which re-raises after answering and so makes the server drop the connection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainq.api.schemas import ErrorBody
from trainq.services.engine import EngineError
from trainq.services.errors import InvalidInput, TrainqError
from trainq.services.fields import field_path, is_type_tag

log = logging.getLogger(__name__)

_BODY_NOT_PARSED = "There was an error parsing the body"
# a restarted PostgreSQL accepts connections again within seconds
RETRY_AFTER_SECONDS = 5


# Starlette types a handler's error as Exception (Kludex/starlette#2417), though it calls
# each handler with its own class only; FastAPI's exception_handlers= takes Any there too
ErrorHandler = Callable[[Request, Any], Awaitable[JSONResponse]]


def install(app: FastAPI) -> None:
    handlers: dict[type[Exception], ErrorHandler] = {
        TrainqError: _trainq_error,
        EngineError: _engine_error,
        RequestValidationError: _request_validation_error,
        ValidationError: _validation_error,
        HTTPException: _http_error,
        OverflowError: _overflow_error,
        RecursionError: _recursion_error,
        DataError: _data_error,
    }
    for error_class, handler in handlers.items():
        app.add_exception_handler(error_class, handler)
    # a dropped or refused connection, and a pool that waited in vain for one
    for unreachable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unreachable, _database_unreachable)
    app.add_middleware(AnswerUnexpectedErrors)
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return _error_body_documented(build_openapi())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this override


def _error_body_documented(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every 422 as its own HTTPValidationError; ours is the one error body.
    And an operation that needs a key answers 401 without one."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"]["content"] = body
            if operation.get("security"):
                responses.setdefault("401", {"description": "No API key, or one that is not valid", "content": body})
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or a route: each of these codes answers the one error body."""
    return {code: {"model": ErrorBody} for code in codes}


def error_response(status_code: int, errors: Sequence[tuple[str, str]], detail: str | None = None) -> JSONResponse:
    """The one error body; `detail` defaults to the first error as a sentence."""
    if detail is None:
        field, message = errors[0]
        detail = f"{field}: {message}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
    return JSONResponse(
        {"detail": detail, "errors": [{"field": field, "message": message} for field, message in errors]},
        status_code=status_code,
    )


def _field_errors(errors: Iterable[Mapping[str, Any]], prefix: tuple[Any, ...] = ()) -> list[tuple[str, str]]:
    """Our (field, message) pairs, one message per field, from the union member that got
    furthest: a value that fits no member of `str | Optimizer` or `list[list[number]] |
    list[number]` would otherwise be reported once per member."""
    errors = [{**error, "loc": (*prefix, *error.get("loc", ()))} for error in errors]
    chosen = _furthest_union_members(errors)
    seen: dict[str, str] = {}
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            seen.setdefault("body", f"is not valid JSON{f' ({reason})' if reason else ''}")
            continue
        if any(chosen[point] != tag for point, tag in _union_points(error["loc"])):
            continue
        seen.setdefault(field_path(error["loc"]), str(error.get("msg", "is invalid")))
    return list(seen.items()) or [("body", "is invalid")]


def _union_points(location: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Where the location passes through a union: (the location before it, member tag)."""
    if location[:1] != ("body",):
        return []
    return [(location[:i], part) for i, part in enumerate(location) if isinstance(part, str) and is_type_tag(part)]


def _furthest_union_members(errors: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], str]:
    depth: dict[tuple[Any, ...], dict[str, int]] = {}
    for error in errors:
        for point, tag in _union_points(error["loc"]):
            members = depth.setdefault(point, {})
            members[tag] = max(members.get(tag, 0), len(error["loc"]))
    # the deepest member wins; on a tie, the first (dicts keep pydantic's order)
    return {point: max(members, key=lambda tag: members[tag]) for point, members in depth.items()}


async def _trainq_error(request: Request, error: TrainqError) -> JSONResponse:
    response = error_response(error.status_code, [(error.field, error.reason)], detail=error.detail)
    response.headers.update(error.headers)
    return response


async def _engine_error(request: Request, error: EngineError) -> JSONResponse:
    # refused by the engine where the API called it directly (an inline spec, evaluate, predict)
    return await _trainq_error(request, InvalidInput.of(error))


async def _request_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    return error_response(422, _field_errors(error.errors()))


async def _validation_error(request: Request, error: ValidationError) -> JSONResponse:
    # a model validated inside a route (not by FastAPI): its fields are the body's
    return error_response(422, _field_errors(error.errors(), prefix=("body",)))


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    if error.status_code == 400 and error.detail == _BODY_NOT_PARSED:
        # FastAPI's answer to a body it could not decode (bytes that are not UTF-8): the same
        # 422 as any other body that is not JSON, the answer every operation documents
        return error_response(422, [("body", "is not valid JSON (it could not be decoded)")])
    field = {400: "body", 404: "path", 405: "method", 415: "header.Content-Type"}.get(error.status_code, "request")
    message = str(error.detail)
    response = error_response(error.status_code, [(field, message)], detail=f"{message}.")
    if error.headers:
        response.headers.update(error.headers)
    if error.status_code == 405:
        # Starlette's Allow names the methods of the first route that matched the path;
        # GET /v1/jobs and POST /v1/jobs are two routes, and the path allows both
        response.headers["Allow"] = ", ".join(_methods_allowed(request))
    return response


def _methods_allowed(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path, which are the ones served:
    a path's own (/v1/jobs/batch) before a template's that it also fits (/v1/jobs/{job_id})."""
    paths: dict[str, Any] = request.app.openapi()["paths"]
    if request.url.path in paths:
        return sorted(method.upper() for method in paths[request.url.path])
    methods: set[str] = set()
    for template, operations in paths.items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


async def _overflow_error(request: Request, error: OverflowError) -> JSONResponse:
    # a JSON integer too large for a float reaches numpy as an OverflowError
    return error_response(422, [("body", f"holds a number too large for float32 ({error})")])


async def _recursion_error(request: Request, error: RecursionError) -> JSONResponse:
    return error_response(422, [("body", "is nested too deeply")])


async def _data_error(request: Request, error: DataError) -> JSONResponse:
    # PostgreSQL refuses what SQLite stores: a NUL character in a text, an integer beyond
    # its column. The request's transaction is rolled back, so nothing of it was stored.
    query = [f"query.{name}" for name, value in request.query_params.multi_items() if "\x00" in name + value]
    field = "path" if "\x00" in request.url.path else query[0] if query else "body"
    reason = getattr(error.orig, "diag", None)
    message = getattr(reason, "message_primary", None) or "a value the database cannot store"
    return error_response(
        422, [(field, f"holds {message[:1].lower()}{message[1:]} (a NUL character, or an integer out of range)")]
    )


async def _database_unreachable(request: Request, error: Exception) -> JSONResponse:
    log.warning("the database is unreachable answering %s %s: %s", request.method, request.url.path, error)
    return unavailable_response("database")


def unavailable_response(part: str) -> JSONResponse:
    response = error_response(
        503,
        [(part, "is unreachable")],
        detail=f"The {part} is unreachable; try again in a few seconds.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class AnswerUnexpectedErrors:
    """A 500 for whatever no handler took, logged here once, on a connection that stays
    open. (Starlette's own last resort answers too, then re-raises so that the server logs
    the error again and closes the connection, leaving the client's next request unanswered.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                return  # half an answer is out: the server closes the connection, which tells the client
            response = JSONResponse({"detail": "Internal error; the server logged it.", "errors": []}, status_code=500)
            await response(scope, receive, send)
