"""Conditional GET: a response with an ETag, and 304 Not Modified when the client has it."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request, Response


def respond(request: Request, body: bytes, etag: str, media_type: str, headers: Mapping[str, str] = {}) -> Response:
    """`body` with its ETag, or an empty 304 when If-None-Match names that ETag (or `*`).

    `no-cache` makes a browser ask again each time, so a running job's newer epoch is
    seen, while an unchanged model costs a 304 and no body."""
    common = {"ETag": etag, "Cache-Control": "no-cache", **headers}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=common)
    return Response(body, media_type=media_type, headers=common)


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    # weak comparison (RFC 9110 13.1.2): W/"x" matches "x"
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
