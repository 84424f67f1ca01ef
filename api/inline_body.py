"""A JSON body's inline data parsed straight into float32 arrays, before FastAPI parses the
body into Python objects and validates it.

FastAPI reads a JSON body with `json.loads` and validates the objects with pydantic: rows of
numbers become lists of Python floats at about 90 bytes a value (a 9.5 MB body of one number
a row cost the API 470 MB). A route of `InlineDataRoute` decodes its body with msgspec
first, keeping each place the body model declares a Matrix (`data.x`, `jobs[3].data.y`) as
its raw JSON text, and reads a well-formed matrix's numbers with numpy
(`services.inline_data.parse_matrix`); everything else is `json.loads`ed as FastAPI would.
FastAPI then validates that document as it would have the one it parses, a parsed matrix
passing through Matrix's validator as it is.

msgspec because it can decode part of a document and keep the rest as raw JSON text
(`msgspec.Raw`, a view into the body, checked as JSON), which neither the standard json
module nor pydantic's parser do. Any doubt (a body msgspec refuses, a place that is not
an object, a matrix with a fault) leaves that part to `json.loads` and the full validation,
so every answer to bad input is the one it was.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from trainq.services.inline_data import parse_matrix
from trainq.services.spec import INLINE_MATRIX

# where a body's matrices are: a Matrix, an object's fields by their JSON name, or a list's items ("*")
MATRIX = "matrix"
Places = dict[str, "Places"] | str
ITEMS = "*"


class InlineDataRoute(APIRoute):
    """A route whose body's inline matrices are parsed from the JSON text into arrays."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        places = None if self.body_field is None else matrix_places(self.body_field.field_info.annotation)
        if places is None:
            return handle

        async def parse_inline_data_first(request: Request) -> Response:
            document = parsed(await request.body(), places)
            if document is not None:
                request._json = document  # what FastAPI's `await request.json()` answers
            return await handle(request)

        return parse_inline_data_first


def matrix_places(annotation: Any) -> Places | None:
    """Where in a body of type `annotation` its Matrix fields are; None if it has none."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        return MATRIX if INLINE_MATRIX in metadata else matrix_places(inner)
    if origin in (Union, types.UnionType):
        return next((places for arg in get_args(annotation) if (places := matrix_places(arg))), None)
    if origin is list:
        items = matrix_places(get_args(annotation)[0])
        return None if items is None else {ITEMS: items}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields: dict[str, Places] = {}
        for name, field in annotation.model_fields.items():
            places = MATRIX if INLINE_MATRIX in field.metadata else matrix_places(field.annotation)
            if places is not None:
                fields[field.alias or name] = places
        return fields or None
    return None


def parsed(body: bytes, places: Places) -> Any:
    """The document `json.loads(body)` gives, its well-formed matrices at `places` parsed
    (InlineMatrix); None where msgspec finds fault with the body, for FastAPI to answer."""
    try:
        return _value(msgspec.Raw(body), places)
    except (msgspec.DecodeError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _value(raw: msgspec.Raw, places: Places) -> Any:
    if places == MATRIX:
        return parse_matrix(memoryview(raw)) or _loads(raw)
    assert isinstance(places, dict)
    if ITEMS in places:
        items = _decode(raw, list[msgspec.Raw])
        return _loads(raw) if items is None else [_value(item, places[ITEMS]) for item in items]
    fields = _decode(raw, dict[str, msgspec.Raw])
    if fields is None:
        return _loads(raw)
    return {name: _value(value, places[name]) if name in places else _loads(value) for name, value in fields.items()}


def _decode(raw: msgspec.Raw, shape: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=shape)
    except msgspec.ValidationError:  # valid JSON of another shape: json.loads gives what it is
        return None


def _loads(raw: msgspec.Raw) -> Any:
    return json.loads(bytes(memoryview(raw)))
