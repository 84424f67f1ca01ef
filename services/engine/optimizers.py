"""tf.js optimizers (sgd, momentum, adam, adamax, rmsprop, adagrad, adadelta), Keras-style.

Each optimizer validates its hyperparameters when it is made, allocates its slots in
`build`, and updates the weights in place in `apply`, op for op as tfjs-core's
`applyGradients` does, so that float32 rounding lands where tf.js's lands: every
hyperparameter is a float32 scalar, every intermediate a float32 array, and the
scalars tf.js keeps as running products (Adam's and Adamax's `beta1^t`, `beta2^t`) are
running float32 products here too. Defaults are those of tf.js's compile strings
(`'adam'` is `tf.train.adam(0.001, 0.9, 0.999, 1e-7)`); `epsilon` defaults to the
backend's 1e-7.

    sgd       w -= lr·g
    momentum  a = m·a + g;  w -= lr·a   (useNesterov: w -= lr·(g + m·a))
    adam      m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  w -= lr·(m/(1-β1ᵗ)) / (sqrt(v/(1-β2ᵗ)) + ε)
    adamax    m = β1·m + (1-β1)·g;  u = max(β2·u, |g|);  w -= lr/(1 + (t-1)·decay)/(1-β1ᵗ) · m/(u + ε)
    rmsprop   s = ρ·s + (1-ρ)·g²;  μ = momentum·μ + lr·g/sqrt(s + ε);  w -= μ
              centered: c = ρ·c + (1-ρ)·g;  μ = momentum·μ + lr·g/sqrt(s - c² + ε)
    adagrad   s += g²  (s starts at initialAccumulatorValue);  w -= lr·g/sqrt(s + 1e-7)
    adadelta  s' = ρ·s + (1-ρ)·g²;  Δ = sqrt(d + ε)/sqrt(s + ε)·g  (s before its update, as tf.js);
              d = ρ·d + (1-ρ)·Δ²;  s = s';  w -= lr·Δ

Centered RMSProp departs from tf.js on purpose: tf.js computes sqrt(s - (c² + ε)), which
is NaN whenever the running variance s - c² falls below ε (a constant gradient, say).
trainq computes sqrt(s - c² + ε), as TensorFlow's ApplyCenteredRMSProp does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from trainq.services.engine.arrays import to_numpy
from trainq.services.engine.config import OptimizerConfig
from trainq.services.engine.errors import InvalidConfig

EPSILON = 1e-7  # tf.js's backend epsilon


def _f32(value: float) -> float:
    """A hyperparameter as tf.js holds it: a float32 scalar (kept as the Python float
    of equal value, which every array namespace takes as a weak scalar)."""
    return float(np.float32(value))


class Optimizer:
    """One optimizer: made (and validated) from options, `build` once, `apply` per batch."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    ranges: ClassVar[dict[str, tuple[str, Callable[[float], bool]]]] = {}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        for key in options:
            if key not in self.defaults:
                raise InvalidConfig(
                    f"{field}.{key}",
                    f"{self.name} takes no option {key!r}; it takes {', '.join(self.defaults)}",
                )
        ranges = {**_RANGES, **self.ranges}
        self.options: dict[str, Any] = {
            key: _checked(value, ranges.get(key), f"{field}.{key}")
            for key, value in {**self.defaults, **options}.items()
        }
        self.learning_rate: float = self.options["learningRate"]
        self.iterations = 0
        self.slot_names: tuple[str, ...] = ()
        self.scalar_names: tuple[str, ...] = ()
        self.slots: dict[str, list[Any]] = {}
        self._xp: Any = None

    def build(self, xp: Any, weights: Sequence[Any]) -> None:
        """Allocate the slots, one array like each weight per slot name."""
        self._xp = xp
        self.slots = {name: [self._initial_slot(xp, w) for w in weights] for name in self.slot_names}

    def _initial_slot(self, xp: Any, weight: Any) -> Any:
        return xp.zeros_like(weight)

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        """One step, in place, for all weights."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Iterations, float32 scalars and slots (host numpy float32 copies)."""
        return {
            "iterations": self.iterations,
            "scalars": {name: float(getattr(self, name)) for name in self.scalar_names},
            "slots": {name: [to_numpy(a).copy() for a in arrays] for name, arrays in self.slots.items()},
        }

    def load_state(self, xp: Any, state: Mapping[str, Any]) -> None:
        """Continue from `state()` after `build`: the next `apply` is the one that would have followed."""
        self._xp = xp
        self.iterations = int(state["iterations"])
        for name in self.scalar_names:
            setattr(self, name, np.float32(state["scalars"][name]))
        for name in self.slot_names:
            current = self.slots[name]
            saved = state["slots"][name]
            if len(saved) != len(current):
                raise InvalidConfig(
                    "checkpoint", f"optimizer slot {name!r} holds {len(saved)} arrays, not {len(current)}"
                )
            self.slots[name] = [_like(xp, array, like) for array, like in zip(saved, current)]


def _like(xp: Any, array: np.ndarray, like: Any) -> Any:
    """`array` copied into the namespace and onto the device of `like`, checked for shape."""
    if tuple(array.shape) != tuple(like.shape):
        raise InvalidConfig("checkpoint", f"an array of shape {tuple(array.shape)} where {tuple(like.shape)} belongs")
    return xp.asarray(np.array(array, dtype=np.float32, copy=True), device=like.device)


_RANGES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "learningRate": ("> 0", lambda v: v > 0),
    "momentum": (">= 0", lambda v: v >= 0),
    "beta1": ("in [0, 1)", lambda v: 0 <= v < 1),
    "beta2": ("in [0, 1)", lambda v: 0 <= v < 1),
    "epsilon": ("> 0", lambda v: v > 0),
    "rho": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "decay": (">= 0", lambda v: v >= 0),
    "initialAccumulatorValue": (">= 0", lambda v: v >= 0),
}


def _checked(value: Any, requirement: tuple[str, Callable[[float], bool]] | None, field: str) -> Any:
    if requirement is None:  # a switch: useNesterov, centered
        if not isinstance(value, bool):
            raise InvalidConfig(field, f"must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidConfig(field, f"must be a finite number, not {value!r}")
    text, test = requirement
    if not test(value):
        raise InvalidConfig(field, f"must be {text}, not {value!r}")
    return float(value)


class SGD(Optimizer):
    """`tf.train.sgd(learningRate)`, compile string `'sgd'`: w -= lr·g."""

    name = "sgd"
    defaults: ClassVar[dict[str, Any]] = {"learningRate": 0.01}

    def build(self, xp: Any, weights: Sequence[Any]) -> None:
        super().build(xp, weights)
        # a 0-d float32 array on the weights' device: the same product as with the
        # Python float, in half the time on a tiny weight
        self._lr = xp.asarray(_f32(self.learning_rate), dtype=weights[0].dtype, device=weights[0].device)

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        lr = self._lr
        for w, g in zip(weights, gradients):
            w -= lr * g
        self.iterations += 1


class Momentum(Optimizer):
    """`tf.train.momentum(learningRate, momentum, useNesterov)`. tf.js requires both numbers;
    trainq defaults to learningRate 0.01 and momentum 0.9."""

    name = "momentum"
    defaults: ClassVar[dict[str, Any]] = {"learningRate": 0.01, "momentum": 0.9, "useNesterov": False}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("accumulation",)

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        lr, m = _f32(self.learning_rate), _f32(self.options["momentum"])
        nesterov = self.options["useNesterov"]
        for w, g, a in zip(weights, gradients, self.slots["accumulation"]):
            a *= m
            a += g
            if nesterov:
                w -= lr * (g + a * m)
            else:
                w -= lr * a
        self.iterations += 1


class Adam(Optimizer):
    """`tf.train.adam(learningRate, beta1, beta2, epsilon)`, compile string `'adam'`."""

    name = "adam"
    defaults: ClassVar[dict[str, Any]] = {"learningRate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": EPSILON}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("m", "v")
        self.scalar_names = ("acc_beta1", "acc_beta2")
        # tf.js starts the running products at beta (not 1) and multiplies after each step
        self.acc_beta1 = np.float32(self.options["beta1"])
        self.acc_beta2 = np.float32(self.options["beta2"])

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        xp, o = self._xp, self.options
        b1, b2 = _f32(o["beta1"]), _f32(o["beta2"])
        c1, c2 = _f32(1 - o["beta1"]), _f32(1 - o["beta2"])
        lr, eps = _f32(self.learning_rate), _f32(o["epsilon"])
        one_minus_acc1 = float(np.float32(1) - self.acc_beta1)
        one_minus_acc2 = float(np.float32(1) - self.acc_beta2)
        for w, g, m, v in zip(weights, gradients, self.slots["m"], self.slots["v"]):
            m *= b1
            m += g * c1
            v *= b2
            v += (g * g) * c2
            w -= ((m / one_minus_acc1) / (xp.sqrt(v / one_minus_acc2) + eps)) * lr
        self.acc_beta1 = self.acc_beta1 * np.float32(b1)
        self.acc_beta2 = self.acc_beta2 * np.float32(b2)
        self.iterations += 1


class Adamax(Optimizer):
    """`tf.train.adamax(learningRate, beta1, beta2, epsilon, decay)`, compile string `'adamax'`."""

    name = "adamax"
    defaults: ClassVar[dict[str, Any]] = {
        "learningRate": 0.002,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": EPSILON,
        "decay": 0.0,
    }

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("m", "u")
        self.scalar_names = ("acc_beta1",)
        self.acc_beta1 = np.float32(self.options["beta1"])

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        xp, o, f32 = self._xp, self.options, np.float32
        b1, b2, c1, eps = _f32(o["beta1"]), _f32(o["beta2"]), _f32(1 - o["beta1"]), _f32(o["epsilon"])
        # tf.js: lr = -learningRate / (iteration·decay + 1), its iteration a float32 counter from 0
        lr = f32(-self.learning_rate) / (f32(self.iterations) * f32(o["decay"]) + f32(1))
        step = float(lr / (f32(1) - self.acc_beta1))
        m_slots, u_slots = self.slots["m"], self.slots["u"]
        for i, (w, g) in enumerate(zip(weights, gradients)):
            m = m_slots[i]
            m *= b1
            m += g * c1
            u = u_slots[i] = xp.maximum(u_slots[i] * b2, xp.abs(g))
            w += step * (m / (u + eps))
        self.acc_beta1 = self.acc_beta1 * f32(b1)
        self.iterations += 1


class RMSProp(Optimizer):
    """`tf.train.rmsprop(learningRate, decay, momentum, epsilon, centered)`, compile string
    `'rmsprop'`. Centered: see the module docstring for where trainq departs from tf.js."""

    name = "rmsprop"
    defaults: ClassVar[dict[str, Any]] = {
        "learningRate": 0.001,
        "decay": 0.9,
        "momentum": 0.0,
        "epsilon": EPSILON,
        "centered": False,
    }
    ranges: ClassVar[dict[str, Any]] = {"decay": ("in [0, 1]", lambda v: 0 <= v <= 1)}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("rms", "momentum", "mg") if self.options["centered"] else ("rms", "momentum")

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        xp, o, slots = self._xp, self.options, self.slots
        rho, c, lr = _f32(o["decay"]), _f32(1 - o["decay"]), _f32(self.learning_rate)
        mom, eps = _f32(o["momentum"]), _f32(o["epsilon"])
        centered = o["centered"]
        for i, (w, g) in enumerate(zip(weights, gradients)):
            ms, moment = slots["rms"][i], slots["momentum"][i]
            ms *= rho
            ms += (g * g) * c
            if centered:
                mg = slots["mg"][i]
                mg *= rho
                mg += g * c
                denominator = xp.sqrt((ms - mg * mg) + eps)
            else:
                denominator = xp.sqrt(ms + eps)
            moment *= mom
            moment += (g * lr) / denominator
            w -= moment
        self.iterations += 1


class Adagrad(Optimizer):
    """`tf.train.adagrad(learningRate, initialAccumulatorValue)`, compile string `'adagrad'`.
    Its epsilon is the backend's 1e-7; tf.js gives no option for it."""

    name = "adagrad"
    defaults: ClassVar[dict[str, Any]] = {"learningRate": 0.01, "initialAccumulatorValue": 0.1}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("accumulator",)

    def _initial_slot(self, xp: Any, weight: Any) -> Any:
        return xp.full_like(weight, _f32(self.options["initialAccumulatorValue"]))

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        xp, lr, eps = self._xp, _f32(self.learning_rate), _f32(EPSILON)
        for w, g, s in zip(weights, gradients, self.slots["accumulator"]):
            s += g * g
            w -= (g / xp.sqrt(s + eps)) * lr
        self.iterations += 1


class Adadelta(Optimizer):
    """`tf.train.adadelta(learningRate, rho, epsilon)`, compile string `'adadelta'` (whose
    learning rate is 1). tf.js scales the step with the squared-gradient average from
    before this step's update (Keras uses the updated one); trainq follows tf.js."""

    name = "adadelta"
    defaults: ClassVar[dict[str, Any]] = {"learningRate": 1.0, "rho": 0.95, "epsilon": EPSILON}

    def __init__(self, options: Mapping[str, Any], field: str = "compile.optimizer") -> None:
        super().__init__(options, field)
        self.slot_names = ("accum_grad", "accum_var")

    def apply(self, weights: Sequence[Any], gradients: Sequence[Any]) -> None:
        xp, o, slots = self._xp, self.options, self.slots
        rho, c = _f32(o["rho"]), _f32(1 - o["rho"])
        lr, eps = _f32(self.learning_rate), _f32(o["epsilon"])
        for i, (w, g) in enumerate(zip(weights, gradients)):
            accum_grad, accum_var = slots["accum_grad"][i], slots["accum_var"][i]
            update = (xp.sqrt(accum_var + eps) / xp.sqrt(accum_grad + eps)) * g
            accum_grad *= rho
            accum_grad += (g * g) * c
            accum_var *= rho
            accum_var += (update * update) * c
            w -= update * lr
        self.iterations += 1


_OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Adam, Adamax, RMSProp, Adagrad, Adadelta)
}
# tf.js's compile strings also come capitalised, as the class names
_ALIASES = {
    "SGD": "sgd",
    "Momentum": "momentum",
    "Adam": "adam",
    "Adamax": "adamax",
    "RMSProp": "rmsprop",
    "Adagrad": "adagrad",
    "Adadelta": "adadelta",
}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(_OPTIMIZERS)


def get_optimizer(config: OptimizerConfig, field: str = "compile.optimizer") -> Optimizer:
    """A fresh optimizer for `config`; InvalidConfig names the option (`compile.optimizer.beta1`)."""
    cls = _OPTIMIZERS.get(_ALIASES.get(config.name, config.name))
    if cls is None:
        raise InvalidConfig(field, f"unknown optimizer {config.name!r}; expected one of {', '.join(OPTIMIZER_NAMES)}")
    return cls(config.options, field)
