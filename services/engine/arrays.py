"""The engine's two bridges to array libraries: which namespace to compute with, and
how results come back to the host as numpy.

The engine is written against the Python array API standard, so `xp` may be numpy,
array_api_strict, torch (through array_api_compat) or cupy. Plain numpy is used
directly, not through array_api_compat's wrapper: numpy 2.1+ implements the standard
in its main namespace, and the wrapper's per-call overhead (microseconds) would
dominate a fit step on a tiny model.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

ArrayNamespace = ModuleType

# numpy 2.1 added the last pieces the engine relies on (np.astype, clip's min/max keywords).
_NUMPY_IS_STANDARD = tuple(int(part) for part in np.__version__.split(".")[:2]) >= (2, 1)


def namespace(xp: Any = None) -> ArrayNamespace:
    """The array API namespace to compute with: numpy when `xp` is None or numpy,
    else the standard-compliant namespace for `xp`'s arrays (e.g. `torch` resolves to
    `array_api_compat.torch`; array_api_strict is returned as is)."""
    if xp is None or xp is np:
        return np if _NUMPY_IS_STANDARD else array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(xp.asarray(0.0))


def to_numpy(a: Any) -> np.ndarray:
    """A host numpy copy (or view, for numpy input) of any array API array."""
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(a):
        return a.get()
    # array_api_strict and other CPU libraries speak DLPack.
    return np.from_dlpack(a)
