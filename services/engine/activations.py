"""TensorFlow.js 4.22's layer activations, each forward written next to its backward.

An activation maps a Dense layer's pre-activation `z` to its output `a`; `backward`
turns the gradient with respect to `a` into the gradient with respect to `z`, given
both `z` and `a = forward(z)` so each can reuse whichever is cheaper.

    act = get_activation("relu", "model.layers[0].activation")
    a = act.forward(xp, z)
    grad_z = act.backward(xp, z, a, grad_a)

Gradients are those of tf.js's autodiff, not of the textbook function where the two
differ at a kink: relu's gradient at 0 is 0, relu6's is 0 at 0 and at 6 (tf.js builds
it as `minimum(6, relu(x))`), selu's at 0 is `scale * alpha` (its mask is `x > 0`),
hardSigmoid (`clip(0.2 x + 0.5, 0, 1)`) passes 0.2 on the closed interval.
Transcendental kernels run in float64 and round once, as tf.js's cpu backend does;
exponentials only see arguments that cannot overflow.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from trainq.services.engine.errors import InvalidConfig

Array = Any
Namespace = Any

# tfjs-core/src/ops/selu_util.ts
SELU_SCALE = 1.0507009873554804934193349852946
SELU_SCALE_ALPHA = 1.7580993408473768599402175208123


class Activation(Protocol):
    name: str

    def forward(self, xp: Namespace, z: Array) -> Array: ...

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array: ...


# tf.js's cpu backend evaluates each kernel in float64 and rounds once to float32.
# numpy's float32 exp, log and tanh are off by an ulp for a third of all inputs, so the
# transcendental kernels below widen float32 to float64 and round back, which makes them
# agree with tf.js bit for bit; the arithmetic ops (+ - * / sqrt) are already exactly
# rounded in float32. Other dtypes are computed as they are.


def _wide(xp: Namespace, x: Array) -> Array:
    return xp.astype(x, xp.float64) if x.dtype == xp.float32 else x


def _narrow(xp: Namespace, r: Array, like: Array) -> Array:
    return xp.astype(r, like.dtype) if r.dtype != like.dtype else r


def exp(xp: Namespace, x: Array) -> Array:
    return _narrow(xp, xp.exp(_wide(xp, x)), x)


def log(xp: Namespace, x: Array) -> Array:
    return _narrow(xp, xp.log(_wide(xp, x)), x)


def log1p(xp: Namespace, x: Array) -> Array:
    return _narrow(xp, xp.log1p(_wide(xp, x)), x)


def tanh(xp: Namespace, x: Array) -> Array:
    return _narrow(xp, xp.tanh(_wide(xp, x)), x)


def row_sum(xp: Namespace, v: Array, keepdims: bool = False) -> Array:
    """Sum over the last axis, accumulated in float64 like tf.js's Sum kernel."""
    if v.shape[-1] == 1:
        return v if keepdims else v[..., 0]
    return _narrow(xp, xp.sum(_wide(xp, v), axis=-1, keepdims=keepdims), v)


def sigmoid(xp: Namespace, z: Array) -> Array:
    """tf.js's Sigmoid kernel, 1 / (1 + exp(-z)); exp only sees non-positive arguments."""
    w = _wide(xp, z)
    e = xp.exp(-xp.abs(w))
    r = 1.0 / (1.0 + e)
    return _narrow(xp, xp.where(w >= 0, r, e * r), z)


# tf.js's Softplus kernel returns x above -threshold and exp(x) below threshold.
_SOFTPLUS_THRESHOLD = math.log(1.1920928955078125e-7) + 2.0


def softplus(xp: Namespace, z: Array) -> Array:
    """tf.js's Softplus kernel: x, exp(x) or log(1 + exp(x)) by tf.js's thresholds."""
    w = _wide(xp, z)
    e = xp.exp(xp.minimum(w, -_SOFTPLUS_THRESHOLD))
    inner = xp.where(w < _SOFTPLUS_THRESHOLD, e, xp.log(1.0 + e))
    return _narrow(xp, xp.where(w > -_SOFTPLUS_THRESHOLD, w, inner), z)


class Linear:
    name = "linear"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return z

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a


class Relu:
    name = "relu"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return xp.maximum(z, 0.0)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        # tf.js's ReluGrad, dy · step(z): a product is several times cheaper than `where`
        return grad_a * xp.astype(z > 0, grad_a.dtype)


class Relu6:
    name = "relu6"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return xp.minimum(xp.maximum(z, 0.0), 6.0)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return xp.where((z > 0) & (z < 6.0), grad_a, 0.0)


class Elu:
    name = "elu"

    def forward(self, xp: Namespace, z: Array) -> Array:
        w = _wide(xp, z)
        return _narrow(xp, xp.maximum(w, 0.0) + (xp.exp(xp.minimum(w, 0.0)) - 1.0), z)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        # tf.js's EluGrad works from the output: dy where a >= 0, else dy * (a + 1).
        return grad_a * (xp.minimum(a, 0.0) + 1.0)


class Selu:
    name = "selu"

    def forward(self, xp: Namespace, z: Array) -> Array:
        w = _wide(xp, z)
        negative = SELU_SCALE_ALPHA * (xp.exp(xp.minimum(w, 0.0)) - 1.0)
        return _narrow(xp, SELU_SCALE * xp.maximum(w, 0.0) + negative, z)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return xp.where(z > 0, SELU_SCALE * grad_a, (grad_a * SELU_SCALE_ALPHA) * exp(xp, xp.minimum(z, 0.0)))


class Sigmoid:
    name = "sigmoid"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return sigmoid(xp, z)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a * (a * (1.0 - a))


class HardSigmoid:
    name = "hardSigmoid"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return xp.clip(0.2 * z + 0.5, min=0.0, max=1.0)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        # The clip's mask is on its input, which a (clipped) cannot tell apart at 0 and 1.
        pre = 0.2 * z + 0.5
        return xp.where((pre >= 0.0) & (pre <= 1.0), 0.2 * grad_a, 0.0)


class Tanh:
    name = "tanh"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return tanh(xp, z)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return (1.0 - a * a) * grad_a


class Softmax:
    """Over the last axis, shifted by the row maximum as tf.js's kernel does."""

    name = "softmax"

    def forward(self, xp: Namespace, z: Array) -> Array:
        e = exp(xp, z - xp.max(z, axis=-1, keepdims=True))
        return e / row_sum(xp, e, keepdims=True)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        ga = grad_a * a
        return ga - row_sum(xp, ga, keepdims=True) * a


class Softplus:
    name = "softplus"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return softplus(xp, z)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a * sigmoid(xp, z)


class Softsign:
    name = "softsign"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return z / (xp.abs(z) + 1.0)

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        # tf.js's chain through div and abs: dy / b - dy |z| / b², not the tidier dy / b².
        magnitude = xp.abs(z)
        b = magnitude + 1.0
        return grad_a / b - (grad_a * magnitude) / (b * b)


class Swish:
    """z * sigmoid(z) (tf.js's alpha is fixed at 1 for the string name)."""

    name = "swish"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return sigmoid(xp, z) * z

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        s = sigmoid(xp, z)
        return grad_a * s + (grad_a * z) * (s * (1.0 - s))


class Mish:
    name = "mish"

    def forward(self, xp: Namespace, z: Array) -> Array:
        return z * tanh(xp, softplus(xp, z))

    def backward(self, xp: Namespace, z: Array, a: Array, grad_a: Array) -> Array:
        t = tanh(xp, softplus(xp, z))
        return grad_a * t + ((1.0 - t * t) * (grad_a * z)) * sigmoid(xp, z)


_ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Linear(),
        Relu(),
        Relu6(),
        Elu(),
        Selu(),
        Sigmoid(),
        HardSigmoid(),
        Tanh(),
        Softmax(),
        Softplus(),
        Softsign(),
        Swish(),
        Mish(),
    )
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(_ACTIVATIONS)


def get_activation(name: str, field: str) -> Activation:
    """The activation tf.js's `tf.layers.dense({activation: name})` applies."""
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise InvalidConfig(field, f"unknown activation {name!r}; valid names: {', '.join(ACTIVATION_NAMES)}") from None
