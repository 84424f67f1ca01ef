"""Log values as JSON holds them: a finite number, or null.

JSON has no NaN or infinity (PostgreSQL's JSONB refuses them, and browsers' JSON.parse
too), so a metric that is not a finite number (MAPE on zero targets, a diverged loss) is
stored and answered as null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real


def finite_or_none(value: object) -> float | None:
    """`value` as a float if it is a finite number; None otherwise."""
    return float(value) if isinstance(value, Real) and math.isfinite(value) else None


def json_logs(logs: Mapping[str, float]) -> dict[str, float | None]:
    """Each log value as JSON can hold it (`finite_or_none`)."""
    return {key: finite_or_none(value) for key, value in logs.items()}
