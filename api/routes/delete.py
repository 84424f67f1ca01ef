"""The one shape of a DELETE route: 204 No Content and no body once deleted; what cannot be
deleted answers in the one error body, with the codes its router declares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Response, status

Route = TypeVar("Route", bound=Callable[..., None])


def delete_route(
    router: APIRouter, path: str, *, summary: str, responses: dict[int | str, dict[str, Any]] | None = None
) -> Callable[[Route], Route]:
    """`router.delete` for a route that deletes and returns nothing; `responses`: the errors it answers beyond
    those its router declares."""
    return router.delete(
        path, status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=responses, summary=summary
    )
