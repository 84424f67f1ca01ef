"""Inline data (a job's `data.x`, an evaluation's `y`) parsed straight from a request's JSON
text into a float32 matrix, without a Python list of floats in between.

As Python lists, rows of one number cost about 90 bytes a value where their JSON text costs
7: a 9.5 MB body took the API 470 MB above its resting size while parsed, validated and
stored. Here the text's numbers are read by numpy in one pass, and the text itself is what
is stored (`json_text` writes it into the stored document as it came).

Only well-formed matrices take this path: a non-empty list of equally long, non-empty rows
(or a non-empty flat list) of numbers, every one finite as float32. Anything else is left
to the full validation, whose messages name the row and column at fault.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

_WHITESPACE = b" \t\n\r"
# the characters of a JSON array of numbers, whitespace removed; of its structure
_NUMERIC = np.zeros(256, dtype=bool)
_NUMERIC[list(b"0123456789+-.eE,[]")] = True
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[list(b",[]")] = True
_BRACKETS_AS_SPACES = bytes.maketrans(b"[]", b"  ")


@dataclass(frozen=True, eq=False)
class InlineMatrix:
    """A matrix of inline data: the float32 array it holds (rows of samples, a flat list
    being one column) and its JSON text as it came (a view into the request's body)."""

    array: np.ndarray
    text: memoryview


def parse_matrix(text: memoryview) -> InlineMatrix | None:
    """The matrix `text` holds, which must be valid JSON; None when it is anything else than
    a well-formed matrix of finite float32 numbers (for the full validation to name why)."""
    compact = bytes(text).translate(None, _WHITESPACE)
    chars = np.frombuffer(compact, dtype=np.uint8)
    if len(chars) < 3 or b"[]" in compact or not _NUMERIC[chars].all():
        return None
    shape = _shape(chars[_STRUCTURAL[chars]].tobytes())
    if shape is None:
        return None
    try:
        # float64 first, as Python's float() reads each number, then rounded to float32 as today
        values = np.fromstring(compact.translate(_BRACKETS_AS_SPACES), dtype=np.float64, sep=",")
    except ValueError:
        return None
    if values.size != shape[0] * shape[1]:
        return None
    with np.errstate(over="ignore"):
        array = values.astype(np.float32).reshape(shape)
    if not np.isfinite(array).all():
        return None
    return InlineMatrix(array, text)


def _shape(structure: bytes) -> tuple[int, int] | None:
    """(rows, columns) of a JSON array of numbers, given its brackets and commas; None when
    it is not a flat list or a list of equally long rows. (Being valid JSON, each slot
    between them holds a number.)"""
    rows = structure.count(b"[") - 1
    if rows == 0:  # a flat list: one sample a value
        return structure.count(b",") + 1, 1
    columns = structure.index(b"]") - 1
    row = b"[" + b"," * (columns - 1) + b"]"
    if structure != b"[" + (row + b",") * (rows - 1) + row + b"]":
        return None  # nested deeper, ragged, or numbers beside rows
    return rows, columns


def json_text(value: Any, *, compact: bool = False, **options: Any) -> str:
    """`json.dumps(value, **options)`, an InlineMatrix written as its JSON text: how documents
    are stored (the database's JSON serializer) and hashed. `compact`: no whitespace at all,
    in the matrices' text either."""
    matrices: list[InlineMatrix] = []
    # made at the first matrix: most documents (an epoch's logs) have none
    marks: list[str] = []

    def placeholder(item: Any) -> str:
        if not isinstance(item, InlineMatrix):
            raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")
        if not marks:
            marks.append(f"inline-{uuid.uuid4().hex}-")
        matrices.append(item)
        return f"{marks[0]}{len(matrices) - 1}"

    if compact:
        options["separators"] = (",", ":")
    text = json.dumps(value, default=placeholder, **options)
    if not matrices:
        return text
    head, *rest = text.split(f'"{marks[0]}')
    pieces = [head]
    for part in rest:
        index, tail = part.split('"', 1)
        matrix = matrices[int(index)].text
        pieces += [
            bytes(matrix).translate(None, _WHITESPACE).decode("ascii") if compact else str(matrix, "ascii"),
            tail,
        ]
    return "".join(pieces)
