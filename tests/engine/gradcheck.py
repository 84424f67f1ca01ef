"""Central finite differences in float64, through the same array API code the engine runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trainq.services.engine.arrays import to_numpy

Namespace = Any


def numerical_gradient(xp: Namespace, f: Callable[[Any], Any], x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """d f / d x at `x` (float64 numpy) for a scalar-valued `f` of an xp array."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.empty_like(x)
    for i in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.flat[i] += step
        minus.flat[i] -= step
        grad.flat[i] = (float(to_numpy(f(xp.asarray(plus)))) - float(to_numpy(f(xp.asarray(minus))))) / (2 * step)
    return grad


def assert_gradient_matches(
    xp: Namespace, f: Callable[[Any], Any], analytic: Any, x: np.ndarray, rtol: float = 1e-5, atol: float = 1e-8
) -> None:
    """The analytic gradient (an xp array) equals f's central finite differences at x."""
    got = to_numpy(analytic)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, numerical_gradient(xp, f, x), rtol=rtol, atol=atol)
