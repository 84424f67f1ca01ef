"""The engine's tests run once per array library, in the style of scikit-learn's
`yield_namespace_device_dtype_combinations`: numpy, array_api_strict and torch (CPU),
each skipped when it is not installed. Inputs are built in numpy and moved with
`xp.asarray`; results come back with `services.engine.arrays.to_numpy`."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from trainq.services.engine.arrays import namespace

ARRAY_LIBRARIES = ("numpy", "array_api_strict", "torch")


@pytest.fixture(params=ARRAY_LIBRARIES)
def xp(request: pytest.FixtureRequest) -> ModuleType:
    """The array API namespace of one library (torch resolves to array_api_compat.torch)."""
    try:
        library = importlib.import_module(request.param)
    except ImportError:
        pytest.skip(f"{request.param} is not installed")
    return namespace(library)
