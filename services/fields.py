"""A field's name in the request: the dotted path every 4xx answer gives (`model.layers[0].units`,
`data.x[3][0]`, `query.limit`), made from pydantic's error locations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# the names pydantic puts in an error's location for the member of a union (or the
# validator) that failed; they are not part of the request's own path
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "bytes"})


def field_path(location: Iterable[Any]) -> str:
    """pydantic/FastAPI's error location as our dotted path:
    ("body", "model", "layers", 0, "units") -> "model.layers[0].units",
    ("query", "limit") -> "query.limit", ("body",) -> "body"."""
    where, *parts = list(location) or ["body"]
    if where in ("path", "query", "header", "cookie"):
        return ".".join([where, *map(str, parts)])
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not is_type_tag(part):
            path += f".{part}" if path else str(part)
    return path or "body"


def is_type_tag(part: Any) -> bool:
    """Whether a part of a location names a union member or a validator, not a field."""
    if not isinstance(part, str):
        return False
    return part in _TYPE_TAGS or any(c in part for c in "[](),") or part[:1].isupper()
