"""A model file (model.json, weights.bin) answered with its ETag, or 304 Not Modified
when the client has it already."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from trainq.services.models.exports import ExportedFile

# the epoch a job's model file holds: a running, cancelled or failed job exports its last checkpoint
EPOCH_HEADER = "X-Trainq-Epoch"
MODEL_JSON = "application/json"
WEIGHTS_BIN = "application/octet-stream"

Route = TypeVar("Route", bound=Callable[..., Response])


def file_route(
    router: APIRouter,
    path: str,
    media_type: str,
    *,
    summary: str,
    errors: dict[int | str, dict[str, Any]] | None = None,
    description: str | None = None,
) -> Callable[[Route], Route]:
    """`router.get` for a route that answers a model file with `respond`: its media type, and 304; `errors`: those
    it answers beyond its router's."""
    return router.get(
        path,
        responses={
            **(errors or {}),
            304: {"description": "Not Modified: If-None-Match named the current ETag"},
            200: {"content": {media_type: {}}},
        },
        response_class=Response,
        summary=summary,
        description=description,
    )


def respond(request: Request, file: ExportedFile, media_type: str) -> Response:
    """`file` with its ETag, or an empty 304 when If-None-Match names that ETag (or `*`).

    `no-cache` makes a browser ask again each time, so a running job's newer epoch is
    seen, while an unchanged model costs a 304 and no body."""
    headers = {"ETag": file.etag, "Cache-Control": "no-cache"}
    if file.epoch is not None:
        headers[EPOCH_HEADER] = str(file.epoch)
    if _matches(request.headers.get("if-none-match"), file.etag):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=media_type, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    # weak comparison (RFC 9110 13.1.2): W/"x" matches "x"
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
