"""A sweep's points and how each becomes a job spec.

A point maps paths into the job spec to values: `{"compile.optimizer.learningRate": 0.01,
"fit.batchSize": 16}`. Paths are dotted, with `[i]` for a list element
(`model.layers[0].units`), in tf.js's field names, as the job spec itself is written.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trainq.services.errors import InvalidInput

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")

Point = dict[str, Any]


@dataclass(frozen=True)
class Range:
    """Where random draws of one path come from: `values` (one picked uniformly), or
    `low`..`high` (uniform, or log-uniform with `log`; whole numbers with `integer`)."""

    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class RandomDraws:
    """`draws` points, each path drawn from its range, seeded: the same request, the same points."""

    ranges: dict[str, Range]
    draws: int
    seed: int = 0

    def document(self) -> dict[str, Any]:
        """As the request wrote it (what a sweep stores as its space)."""
        ranges = {
            path: {k: v for k, v in asdict(spread).items() if v is not None} for path, spread in self.ranges.items()
        }
        return {"draws": self.draws, "seed": self.seed, "ranges": ranges}


def points_of(grid: dict[str, list[Any]] | None, random: RandomDraws | None) -> tuple[list[Point], dict[str, Any]]:
    """The points of a grid, or of random draws (exactly one of the two), and the space as a sweep stores it."""
    if grid is not None:
        return grid_points(grid), {"grid": grid}
    assert random is not None
    return random_points(random.ranges, draws=random.draws, seed=random.seed), {"random": random.document()}


# integer draws stay well inside int64 (numpy draws them as such)
INTEGER_BOUND = 1e15


def grid_points(grid: dict[str, list[Any]]) -> list[Point]:
    """Every combination, the first path varying slowest (as nested loops in key order)."""
    for path, values in grid.items():
        parse(path, f"grid.{path}")
        if not values:
            raise InvalidInput(f"grid.{path}", "needs at least one value")
    return [dict(zip(grid, combination, strict=True)) for combination in itertools.product(*grid.values())]


def random_points(ranges: dict[str, Range], *, draws: int, seed: int) -> list[Point]:
    """`draws` points, each path drawn from its range by numpy's PCG64 seeded with `seed`:
    the same request gives the same points."""
    for path, spread in ranges.items():
        where = f"random.ranges.{path}"
        parse(path, where)
        if spread.values is not None:
            if not spread.values:
                raise InvalidInput(where, "values needs at least one value")
        elif spread.low is None or spread.high is None or not spread.low <= spread.high:
            raise InvalidInput(where, "give values, or low and high with low <= high")
        elif not (math.isfinite(spread.low) and math.isfinite(spread.high)):
            raise InvalidInput(where, "low and high must be finite numbers")
        elif spread.integer and not (
            spread.low >= -INTEGER_BOUND
            and spread.high <= INTEGER_BOUND
            and math.ceil(spread.low) <= math.floor(spread.high)
        ):
            raise InvalidInput(
                where, f"integer draws need a whole number between low and high, within ±{INTEGER_BOUND:.0e}"
            )
        elif spread.log and spread.low <= 0:
            raise InvalidInput(where, "a log range needs low > 0")
    rng = np.random.default_rng(seed)
    return [{path: _draw(rng, spread) for path, spread in ranges.items()} for _ in range(draws)]


def apply(document: dict[str, Any], point: Point) -> dict[str, Any]:
    """A copy of the job spec `document` with the point's values set at their paths. An
    optimizer given by name alone (`"sgd"`) becomes `{"name": "sgd"}` when a path sets one
    of its options; a missing object on the way is created."""
    result = copy.deepcopy(document)
    for path, value in point.items():
        parts = parse(path, path)
        node: Any = result
        for i, part in enumerate(parts[:-1]):
            child = _get(node, part, path)
            if child is None or (isinstance(child, str) and isinstance(parts[i + 1], str)):
                child = {} if child is None else {"name": child}
                node[part] = child
            node = child
        _set(node, parts[-1], value, path)
    return result


def parse(path: str, field: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path):
        separator = path[position : match.start()]
        if (
            separator not in ("", ".")
            or (separator == "." and not parts)
            or (separator == "" and parts and match.group(1))
        ):
            break
        parts.append(match.group(1) if match.group(1) else int(match.group(2)))
        position = match.end()
    if not parts or position != len(path) or isinstance(parts[0], int):
        raise InvalidInput(field, "is not a path into the job spec such as fit.batchSize or model.layers[0].units")
    return parts


def _draw(rng: np.random.Generator, spread: Range) -> Any:
    if spread.values is not None:
        return spread.values[int(rng.integers(len(spread.values)))]
    assert spread.low is not None and spread.high is not None
    if spread.integer:
        if spread.log:
            return round(math.exp(rng.uniform(math.log(spread.low), math.log(spread.high))))
        return int(rng.integers(math.ceil(spread.low), math.floor(spread.high) + 1))
    if spread.log:
        return float(math.exp(rng.uniform(math.log(spread.low), math.log(spread.high))))
    return float(rng.uniform(spread.low, spread.high))


def _get(node: Any, part: str | int, path: str) -> Any:
    if isinstance(part, int):
        if not isinstance(node, list) or part >= len(node):
            raise InvalidInput(path, f"no element [{part}] in the job spec")
        return node[part]
    if not isinstance(node, dict):
        raise InvalidInput(path, f"{part!r} is not inside an object of the job spec")
    return node.get(part)


def _set(node: Any, part: str | int, value: Any, path: str) -> None:
    _get(node, part, path)  # the same checks: the element exists, or the object does
    node[part] = value
