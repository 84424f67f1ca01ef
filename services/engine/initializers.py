"""TensorFlow.js 4.22's initializers (tfjs-layers/src/initializers.ts) by name, drawn on
the host from a seeded numpy Generator.

    kernel = initialize(InitializerConfig("glorotNormal"), (fan_in, units), rng,
                        "model.layers[0].kernelInitializer")      # float32 numpy

tf.js draws from its own generator (seedrandom's alea), which numpy cannot reproduce:
the distributions are tf.js's, the numbers are not. Runs that must match tf.js exactly
pass their initial weights instead.

What tf.js does that other libraries do not:
- glorotNormal, heNormal, leCunNormal (and varianceScaling with distribution "normal")
  draw a truncated normal with sigma = sqrt(scale / fan), redrawing values beyond
  2 sigma, without Keras's 0.8796 correction; truncatedNormal also cuts at 2 sigma;
- varianceScaling's distribution "truncatedNormal" draws a uniform (tf.js only tests
  for "normal");
- fans come from the shape: [fanIn, fanOut] for a kernel, sqrt(size) each for a bias;
- randomUniform, randomNormal and truncatedNormal read their options as
  `args.minval || default`, so a 0 given for minval, maxval or stddev means the default.
An option `seed` draws from numpy's generator seeded with it instead of the job's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from trainq.services.engine.config import InitializerConfig
from trainq.services.engine.errors import InvalidConfig

Shape = tuple[int, ...]
Draw = Callable[[Shape, np.random.Generator, Mapping[str, Any], str], np.ndarray]

_FAN_MODES = ("fanIn", "fanOut", "fanAvg")
_DISTRIBUTIONS = ("normal", "uniform", "truncatedNormal")


def _fans(shape: Shape) -> tuple[float, float]:
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    side = math.sqrt(math.prod(shape))
    return side, side


def _truncated_normal(shape: Shape, rng: np.random.Generator, mean: float, stddev: float) -> np.ndarray:
    """Normal draws, each one beyond 2 standard deviations redrawn until it falls inside."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return mean + stddev * z


def _variance_scaling(shape: Shape, rng: np.random.Generator, scale: float, mode: str, distribution: str) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    fan = {"fanIn": fan_in, "fanOut": fan_out, "fanAvg": (fan_in + fan_out) / 2}[mode]
    scale /= max(1.0, fan)
    if distribution == "normal":
        return _truncated_normal(shape, rng, 0.0, math.sqrt(scale))
    limit = math.sqrt(3.0 * scale)
    return rng.uniform(-limit, limit, shape)


def _number(
    options: Mapping[str, Any], key: str, default: float, field: str, zero_means_default: bool = False
) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidConfig(f"{field}.{key}", f"must be a finite number, got {value!r}")
    if zero_means_default and value == 0:
        return default
    return float(value)


def _choice(options: Mapping[str, Any], key: str, default: str, valid: tuple[str, ...], field: str) -> str:
    value = options.get(key, default)
    if value not in valid:
        raise InvalidConfig(f"{field}.{key}", f"must be one of {', '.join(valid)}, got {value!r}")
    return value


def _preset(scale: float, mode: str, distribution: str) -> Draw:
    def draw(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
        return _variance_scaling(shape, rng, scale, mode, distribution)

    return draw


def _variance_scaling_draw(
    shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str
) -> np.ndarray:
    scale = _number(options, "scale", 1.0, field)
    if scale < 0:
        raise InvalidConfig(f"{field}.scale", f"must be a non-negative number, got {scale}")
    mode = _choice(options, "mode", "fanIn", _FAN_MODES, field)
    distribution = _choice(options, "distribution", "normal", _DISTRIBUTIONS, field)
    return _variance_scaling(shape, rng, scale, mode, distribution)


def _zeros(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    return np.zeros(shape)


def _ones(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    return np.ones(shape)


def _constant(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    if "value" not in options:
        raise InvalidConfig(f"{field}.value", "constant needs a value")
    return np.full(shape, _number(options, "value", 0.0, field))


def _random_uniform(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    low = _number(options, "minval", -0.05, field, zero_means_default=True)
    high = _number(options, "maxval", 0.05, field, zero_means_default=True)
    if low > high:
        raise InvalidConfig(f"{field}.minval", f"must be at most maxval ({high:g}), got {low:g}")
    return rng.uniform(low, high, shape)


def _normal_options(options: Mapping[str, Any], field: str) -> tuple[float, float]:
    mean = _number(options, "mean", 0.0, field)
    stddev = _number(options, "stddev", 0.05, field, zero_means_default=True)
    if stddev < 0:
        raise InvalidConfig(f"{field}.stddev", f"must be positive, got {stddev}")
    return mean, stddev


def _random_normal(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    mean, stddev = _normal_options(options, field)
    return rng.normal(mean, stddev, shape)


def _truncated_normal_draw(
    shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str
) -> np.ndarray:
    mean, stddev = _normal_options(options, field)
    return _truncated_normal(shape, rng, mean, stddev)


def _identity(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise InvalidConfig(field, f"identity can only initialize a square matrix, not shape {list(shape)}")
    return _number(options, "gain", 1.0, field) * np.eye(shape[0])


def _orthogonal(shape: Shape, rng: np.random.Generator, options: Mapping[str, Any], field: str) -> np.ndarray:
    if len(shape) < 2:
        raise InvalidConfig(field, f"orthogonal needs a matrix, not shape {list(shape)}")
    gain = _number(options, "gain", 1.0, field)
    rows, columns = math.prod(shape[:-1]), shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(rows, columns), min(rows, columns))))
    q = q * np.sign(np.diag(r))  # makes the draw uniform over orthogonal matrices
    if rows < columns:
        q = q.T
    return gain * q.reshape(shape)


# name -> (draw, the options tf.js reads besides seed)
_INITIALIZERS: dict[str, tuple[Draw, tuple[str, ...]]] = {
    "constant": (_constant, ("value",)),
    "glorotNormal": (_preset(1.0, "fanAvg", "normal"), ()),
    "glorotUniform": (_preset(1.0, "fanAvg", "uniform"), ()),
    "heNormal": (_preset(2.0, "fanIn", "normal"), ()),
    "heUniform": (_preset(2.0, "fanIn", "uniform"), ()),
    "identity": (_identity, ("gain",)),
    "leCunNormal": (_preset(1.0, "fanIn", "normal"), ()),
    "leCunUniform": (_preset(1.0, "fanIn", "uniform"), ()),
    "ones": (_ones, ()),
    "orthogonal": (_orthogonal, ("gain",)),
    "randomNormal": (_random_normal, ("mean", "stddev")),
    "randomUniform": (_random_uniform, ("minval", "maxval")),
    "truncatedNormal": (_truncated_normal_draw, ("mean", "stddev")),
    "varianceScaling": (_variance_scaling_draw, ("scale", "mode", "distribution")),
    "zeros": (_zeros, ()),
}
_UNSEEDED = ("constant", "identity", "ones", "zeros")

INITIALIZER_NAMES: tuple[str, ...] = tuple(_INITIALIZERS)


def initialize(config: InitializerConfig, shape: tuple[int, ...], rng: np.random.Generator, field: str) -> np.ndarray:
    """A float32 array of `shape` (a kernel is [fanIn, fanOut], a bias [units]) drawn as
    tf.js's initializer `config.name` with `config.options` draws it."""
    if config.name not in _INITIALIZERS:
        raise InvalidConfig(field, f"unknown initializer {config.name!r}; valid names: {', '.join(INITIALIZER_NAMES)}")
    draw, option_names = _INITIALIZERS[config.name]
    valid = option_names if config.name in _UNSEEDED else (*option_names, "seed")
    for key in config.options:
        if key not in valid:
            allowed = f"its options are {', '.join(valid)}" if valid else "it takes no options"
            raise InvalidConfig(f"{field}.{key}", f"unknown option for {config.name}; {allowed}")
    if "seed" in config.options:
        seed = config.options["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidConfig(f"{field}.seed", f"must be a non-negative integer, got {seed!r}")
        rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        weights = np.asarray(draw(tuple(shape), rng, config.options, field), dtype=np.float32)
    if not np.isfinite(weights).all():
        raise InvalidConfig(field, f"{config.name} with these options gives values beyond float32")
    return weights
