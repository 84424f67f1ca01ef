"""TensorFlow.js 4.22's losses (tfjs-layers/src/losses.ts), each written next to its gradient.

    loss = get_loss("meanSquaredError")
    loss.check_target(y.shape, output_units, "data.y")      # InvalidData
    per_sample = loss.per_sample(xp, y_true, y_pred)        # (n,), tf.js's loss before fit's batch mean
    grad = loss.gradient(xp, y_true, y_pred)                # d mean(per_sample) / d y_pred, 1/n included

The forward values follow tf.js op for op: epsilon 1e-7, the same clips, the same
order of operations where it changes a float32 result. The gradients are those of
tf.js's autodiff where it departs from the calculus:

- |r| has gradient -1 at r = 0 (`step(r, -1)`), so an exact fit still moves the weights;
- a clip passes the gradient on its closed interval and stops it outside;
- `maximum(0, x)` (hinges) passes it only where x > 0; `max` over a row passes the
  full gradient to every tied maximum;
- categoricalCrossentropy divides the output by its row sum, clips, then takes the log,
  and the gradient runs back through all of it (no fused softmax shortcut);
- binaryCrossentropy clips p, turns it into the logit log(p / (1 - p)) (rounded to
  float32) and applies the stable sigmoid cross-entropy; the gradient is sigmoid(logit) - t
  carried back to p, so it differs from (p - t) / (p (1 - p)) by the logit's rounding.

Each gradient is tf.js's chain of float32 ops, in its order of accumulation, with
transcendental kernels and row sums computed in float64 and rounded once (see
activations.py); on the cases checked against tf.js 4.22 in node, forward values and
gradients agree to within an ulp or two, most bit for bit. The 1/n seed (and 1/units
for row means) is rounded to float32 as tf.js's Mean gradient rounds it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from trainq.services.engine.activations import exp, log, log1p, row_sum, sigmoid, softplus
from trainq.services.engine.errors import InvalidConfig, InvalidData

Array = Any
Namespace = Any

EPSILON = 1e-7  # tfjs-layers backend/common.ts epsilon()
LOG_2 = math.log(2.0)


class Loss(Protocol):
    name: str

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array: ...

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array: ...

    def batch_seed(self, xp: Namespace, y_pred: Array) -> Array | None: ...

    def value_and_gradient(
        self, xp: Namespace, y_true: Array, y_pred: Array, seed: Array | None = None
    ) -> tuple[Array, Array]: ...

    def per_sample_of(self, xp: Namespace, values: Array) -> Array: ...

    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None: ...


def _f32(value: float) -> float:
    return float(np.float32(value))


@lru_cache(maxsize=1024)
def mean_seed(n: int, units: int = 1, factor: float = 1.0) -> float:
    """The gradient tf.js's autodiff sends to each element of a row-mean loss under fit's
    batch mean: float32(1/n), times `factor`, divided by the row length, each rounded."""
    g = _f32(1.0 / n)
    if factor != 1.0:
        g = _f32(g * factor)
    if units != 1:
        g = _f32(g / units)
    return g


def _seed_array(xp: Namespace, shape: tuple[int, ...], dtype: Any, device: Any, factor: float = 1.0) -> Array:
    """mean_seed for a batch of this (rows, units) shape, times `factor`, as a 0-d array
    of its dtype."""
    return xp.asarray(factor * mean_seed(shape[0], shape[-1]), dtype=dtype, device=device)


def row_mean(xp: Namespace, v: Array) -> Array:
    """tf.js's `mean(v, -1)`: its Mean kernel divides by k first, then sums in float64.
    On a vector of per-sample losses this is fit's batch mean."""
    k = v.shape[-1]
    if k == 1:
        return v[..., 0]
    return row_sum(xp, v / float(k))


def _target_columns(y_shape: tuple[int, ...], field: str) -> int:
    # tf.js makes a 1-D target a column (ensureTensorsRank2OrHigher).
    if len(y_shape) == 1:
        return 1
    if len(y_shape) == 2:
        return y_shape[1]
    raise InvalidData(field, f"must be a matrix (samples × outputs), got shape {tuple(y_shape)}")


class _Loss(ABC):
    name = ""

    @abstractmethod
    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array: ...

    @abstractmethod
    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array: ...

    @abstractmethod
    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None: ...

    def batch_seed(self, xp: Namespace, y_pred: Array) -> Array | None:
        """What `value_and_gradient` needs of a batch's shape alone, made once per shape
        by the model: the hot losses' gradient seed as a 0-d array (an op with a 0-d
        array costs half what one with a Python float does); None for the others."""
        return None

    def value_and_gradient(
        self, xp: Namespace, y_true: Array, y_pred: Array, seed: Array | None = None
    ) -> tuple[Array, Array]:
        """The batch's loss values, in the form `per_sample_of` takes, and `gradient`, at
        once, given `batch_seed` of y_pred's shape; the fit loop's hot losses share their
        work."""
        return self.per_sample(xp, y_true, y_pred), self.gradient(xp, y_true, y_pred)

    def per_sample_of(self, xp: Namespace, values: Array) -> Array:
        """`per_sample` from `value_and_gradient`'s values, of one batch or of several
        joined: the hot losses leave their last elementwise steps to one call per run of
        batches, which gives the same bits for a fraction of the per-batch cost."""
        return values


class _RowLoss(_Loss):
    """A loss whose targets have the output's shape (all but the sparse one)."""

    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None:
        columns = _target_columns(y_shape, field)
        if columns != output_units:
            raise InvalidData(
                field,
                f"has {columns} column(s) but the output layer has {output_units} unit(s); "
                f"{self.name} needs one target column per output unit",
            )


class MeanSquaredError(_RowLoss):
    name = "meanSquaredError"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return self.per_sample_of(xp, y_pred - y_true)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return (y_pred - y_true) * self.batch_seed(xp, y_pred)

    def batch_seed(self, xp: Namespace, y_pred: Array) -> Array:
        # 2 · seed, exact in float32
        return _seed_array(xp, y_pred.shape, y_pred.dtype, y_pred.device, 2.0)

    def value_and_gradient(
        self, xp: Namespace, y_true: Array, y_pred: Array, seed: Array | None = None
    ) -> tuple[Array, Array]:
        d = y_pred - y_true
        return d, d * (self.batch_seed(xp, y_pred) if seed is None else seed)

    def per_sample_of(self, xp: Namespace, values: Array) -> Array:
        return row_mean(xp, values * values)


class MeanAbsoluteError(_RowLoss):
    name = "meanAbsoluteError"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return self.per_sample_of(xp, y_pred - y_true)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return self._gradient(xp, y_pred - y_true, self.batch_seed(xp, y_pred))

    def batch_seed(self, xp: Namespace, y_pred: Array) -> Array:
        return _seed_array(xp, y_pred.shape, y_pred.dtype, y_pred.device)

    def value_and_gradient(
        self, xp: Namespace, y_true: Array, y_pred: Array, seed: Array | None = None
    ) -> tuple[Array, Array]:
        r = y_pred - y_true
        return r, self._gradient(xp, r, self.batch_seed(xp, y_pred) if seed is None else seed)

    def per_sample_of(self, xp: Namespace, values: Array) -> Array:
        return row_mean(xp, xp.abs(values))

    @staticmethod
    def _gradient(xp: Namespace, r: Array, g: Array) -> Array:
        # +g where r > 0, else -g: tf.js's abs gradient is step(r, -1), -1 at r = 0 too.
        # Stepping r one ulp towards -inf keeps the sign of every r != 0 and makes both
        # zeros negative, so copysign gives exactly that, in half the time of where(r > 0)
        return xp.copysign(g, xp.nextafter(r, -math.inf))


class MeanAbsolutePercentageError(_RowLoss):
    name = "meanAbsolutePercentageError"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        clipped_true = xp.clip(xp.abs(y_true), min=EPSILON)
        return 100.0 * row_mean(xp, xp.abs((y_true - y_pred) / clipped_true))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1], factor=100.0)
        clipped_true = xp.clip(xp.abs(y_true), min=EPSILON)
        positive = xp.astype(y_true - y_pred > 0, y_pred.dtype)
        return (g - positive * (2.0 * g)) / clipped_true


class MeanSquaredLogarithmicError(_RowLoss):
    name = "meanSquaredLogarithmicError"

    def _log_ratio(self, xp: Namespace, y_true: Array, y_pred: Array) -> tuple[Array, Array]:
        shifted_pred = 1.0 + xp.clip(y_pred, min=EPSILON)
        return log(xp, shifted_pred) - log(xp, 1.0 + xp.clip(y_true, min=EPSILON)), shifted_pred

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        d, _ = self._log_ratio(xp, y_true, y_pred)
        return row_mean(xp, d * d)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        d, shifted_pred = self._log_ratio(xp, y_true, y_pred)
        return xp.where(y_pred >= EPSILON, (d * (2.0 * g)) / shifted_pred, 0.0)


class HuberLoss(_RowLoss):
    """`tf.losses.huberLoss(labels, predictions)`: delta 1, the mean over every element
    of the batch; per sample, the mean over its row."""

    name = "huberLoss"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        error = xp.abs(y_pred - y_true)
        quadratic = xp.minimum(error, 1.0)
        return row_mean(xp, 0.5 * (quadratic * quadratic) + (error - quadratic))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        # computeWeightedLoss divides the sum by the element count in one step.
        g = mean_seed(y_pred.shape[0] * y_pred.shape[-1])
        error = y_pred - y_true
        magnitude = xp.abs(error)
        quadratic = xp.minimum(magnitude, 1.0)
        # tf.js's sums, in its order: |e| collects g (linear part) and, where |e| <= 1,
        # g q - g (square part minus linear part), which is 0, not g |e|, for tiny |e|.
        grad_magnitude = g + xp.where(magnitude <= 1.0, quadratic * g - g, 0.0)
        return xp.where(error > 0, grad_magnitude, -grad_magnitude)


class LogCosh(_RowLoss):
    """log(cosh(r)) computed as r + softplus(-2r) - log 2."""

    name = "logcosh"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        d = y_pred - y_true
        return row_mean(xp, (d + softplus(xp, -2.0 * d)) - LOG_2)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        # tanh(r) as tf.js reaches it: g (direct) - 2 g sigmoid(-2r) (through softplus)
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        return g - (sigmoid(xp, -2.0 * (y_pred - y_true)) * g) * 2.0


class BinaryCrossentropy(_RowLoss):
    name = "binaryCrossentropy"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        p = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
        z = log(xp, p / (1.0 - p))
        # sigmoidCrossEntropyWithLogits: relu(z) - z t + log(1 + exp(-|z|))
        return row_mean(xp, (xp.maximum(z, 0.0) - z * y_true) + log1p(xp, exp(xp, -xp.abs(z))))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        p = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
        w = 1.0 - p
        u = p / w
        z = log(xp, u)
        e = exp(xp, -xp.abs(z))
        # d/dz, summed in tf.js's order: -g t (the z t term), then ±g e / (1 + e) (the
        # log1p(exp(-|z|)) term, + where z <= 0), then g where z > 0 (relu). Near
        # saturation the sum cancels to a multiple of g's ulp, as it does in tf.js.
        # g as an array: torch turns `scalar / tensor` into a reciprocal and a product
        through_log = (xp.full_like(e, g) / (1.0 + e)) * e
        minus_gt = y_true * -g
        grad_z = xp.where(z > 0, (minus_gt - through_log) + g, minus_gt + through_log)
        grad_u = grad_z / u
        # u = p / w, w = 1 - p: p collects grad_u / w, then grad_u p / w²
        grad_p = grad_u / w + (grad_u * p) / (w * w)
        return xp.where((y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON), grad_p, 0.0)


class CategoricalCrossentropy(_RowLoss):
    name = "categoricalCrossentropy"

    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None:
        if _target_columns(y_shape, field) == 1:
            raise InvalidData(
                field,
                "categoricalCrossentropy expects one-hot targets of shape [samples, classes], "
                "got a single column; use sparseCategoricalCrossentropy for class indices",
            )
        super().check_target(y_shape, output_units, field)

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        q = y_pred / row_sum(xp, y_pred, keepdims=True)
        return -row_sum(xp, y_true * log(xp, xp.clip(q, min=EPSILON, max=1.0 - EPSILON)))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0])
        s = row_sum(xp, y_pred, keepdims=True)
        q = y_pred / s
        c = xp.clip(q, min=EPSILON, max=1.0 - EPSILON)
        grad_q = xp.where((q >= EPSILON) & (q <= 1.0 - EPSILON), (y_true * -g) / c, 0.0)
        # through q = p / s: grad_q / s directly, then -sum(grad_q p) / s² through s = sum(p)
        return grad_q / s - row_sum(xp, grad_q * y_pred, keepdims=True) / (s * s)


class SparseCategoricalCrossentropy(_Loss):
    """Targets are class indices, one per row (floored, as tf.js does); an index outside
    [0, units) gives an all-zero one-hot row and so a loss of 0, as in tf.js.
    tf.js clips the output once here and again inside categoricalCrossentropy."""

    name = "sparseCategoricalCrossentropy"
    _categorical = CategoricalCrossentropy()

    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None:
        columns = _target_columns(y_shape, field)
        if columns != 1:
            raise InvalidData(
                field,
                f"sparseCategoricalCrossentropy expects one class index per sample "
                f"(a single column), got {columns} columns",
            )
        if output_units < 2:
            raise InvalidConfig(
                "compile.loss",
                f"sparseCategoricalCrossentropy needs an output layer of at least 2 units "
                f"(one per class), got {output_units}",
            )

    @staticmethod
    def _one_hot(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        classes = xp.arange(y_pred.shape[-1], dtype=y_pred.dtype, device=y_pred.device)
        index = xp.floor(xp.reshape(y_true, (-1, 1)))
        return xp.astype(index == classes, y_pred.dtype)

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        clipped = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
        return self._categorical.per_sample(xp, self._one_hot(xp, y_true, y_pred), clipped)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        clipped = xp.clip(y_pred, min=EPSILON, max=1.0 - EPSILON)
        grad = self._categorical.gradient(xp, self._one_hot(xp, y_true, y_pred), clipped)
        return xp.where((y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON), grad, 0.0)


class Hinge(_RowLoss):
    """mean(max(0, 1 - t p)); tf.js takes the targets as given (no 0/1 -> -1/1 mapping)."""

    name = "hinge"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return row_mean(xp, xp.maximum(1.0 - y_true * y_pred, 0.0))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        return xp.where(1.0 - y_true * y_pred > 0, y_true * -g, 0.0)


class SquaredHinge(_RowLoss):
    name = "squaredHinge"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        margin = xp.maximum(1.0 - y_true * y_pred, 0.0)
        return row_mean(xp, margin * margin)

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        return (xp.maximum(1.0 - y_true * y_pred, 0.0) * (2.0 * g)) * -y_true


class CategoricalHinge(_RowLoss):
    """max(0, 1 + max((1 - t) p) - sum(t p)) per row."""

    name = "categoricalHinge"

    def _parts(self, xp: Namespace, y_true: Array, y_pred: Array) -> tuple[Array, Array, Array]:
        negative = (1.0 - y_true) * y_pred
        worst = xp.max(negative, axis=-1, keepdims=True)
        margin = 1.0 + (worst - row_sum(xp, y_true * y_pred, keepdims=True))
        return negative, worst, margin

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        _, _, margin = self._parts(xp, y_true, y_pred)
        return xp.maximum(margin, 0.0)[..., 0]

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0])
        negative, worst, margin = self._parts(xp, y_true, y_pred)
        tied = xp.astype(negative == worst, y_pred.dtype)
        # every tied maximum gets the full gradient (tf.js's max gradient is a mask)
        return xp.where(margin > 0, (tied * g) * (1.0 - y_true) + y_true * -g, 0.0)


class KullbackLeiblerDivergence(_RowLoss):
    name = "kullbackLeiblerDivergence"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        ratio = xp.clip(y_true, min=EPSILON, max=1.0) / xp.clip(y_pred, min=EPSILON, max=1.0)
        return row_sum(xp, y_true * log(xp, ratio))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0])
        clipped_true = xp.clip(y_true, min=EPSILON, max=1.0)
        clipped = xp.clip(y_pred, min=EPSILON, max=1.0)
        grad_ratio = (y_true * g) / (clipped_true / clipped)
        grad = -((grad_ratio * clipped_true) / (clipped * clipped))
        return xp.where((y_pred >= EPSILON) & (y_pred <= 1.0), grad, 0.0)


class Poisson(_RowLoss):
    name = "poisson"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return row_mean(xp, y_pred - y_true * log(xp, EPSILON + y_pred))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0], y_pred.shape[-1])
        return g - (y_true * g) / (EPSILON + y_pred)


def _l2_norm(xp: Namespace, x: Array) -> tuple[Array, Array]:
    """tf.js's l2Normalize denominator sqrt(max(sum x², eps)), and sum x² itself."""
    square_sum = row_sum(xp, x * x, keepdims=True)
    return xp.sqrt(xp.maximum(square_sum, EPSILON)), square_sum


class CosineProximity(_RowLoss):
    """-cos(t, p), each side L2-normalised with its squared norm floored at 1e-7."""

    name = "cosineProximity"

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        true_norm, _ = _l2_norm(xp, y_true)
        pred_norm, _ = _l2_norm(xp, y_pred)
        return -row_sum(xp, (y_true / true_norm) * (y_pred / pred_norm))

    def gradient(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        g = mean_seed(y_pred.shape[0])
        true_norm, _ = _l2_norm(xp, y_true)
        norm, square_sum = _l2_norm(xp, y_pred)
        grad_normalized = (y_true / true_norm) * -g
        grad_norm = -(row_sum(xp, grad_normalized * y_pred, keepdims=True) / (norm * norm))
        # through sqrt, then the floor: only where sum x² >= eps (maximum's tie rule)
        grad_square_sum = xp.where(square_sum >= EPSILON, grad_norm / (norm * 2.0), 0.0)
        return grad_normalized / norm + grad_square_sum * (2.0 * y_pred)


_LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        MeanSquaredError(),
        MeanAbsoluteError(),
        MeanAbsolutePercentageError(),
        MeanSquaredLogarithmicError(),
        SquaredHinge(),
        Hinge(),
        CategoricalHinge(),
        LogCosh(),
        CategoricalCrossentropy(),
        SparseCategoricalCrossentropy(),
        BinaryCrossentropy(),
        KullbackLeiblerDivergence(),
        Poisson(),
        CosineProximity(),
        HuberLoss(),
    )
}

# tf.js's own aliases (losses.ts exports them, though compile refuses them as strings)
# and Keras's snake_case names.
_ALIASES = {
    "mse": "meanSquaredError",
    "MSE": "meanSquaredError",
    "mean_squared_error": "meanSquaredError",
    "mae": "meanAbsoluteError",
    "MAE": "meanAbsoluteError",
    "mean_absolute_error": "meanAbsoluteError",
    "mape": "meanAbsolutePercentageError",
    "MAPE": "meanAbsolutePercentageError",
    "mean_absolute_percentage_error": "meanAbsolutePercentageError",
    "msle": "meanSquaredLogarithmicError",
    "MSLE": "meanSquaredLogarithmicError",
    "mean_squared_logarithmic_error": "meanSquaredLogarithmicError",
    "kld": "kullbackLeiblerDivergence",
    "KLD": "kullbackLeiblerDivergence",
    "kl_divergence": "kullbackLeiblerDivergence",
    "kullback_leibler_divergence": "kullbackLeiblerDivergence",
    "cosine": "cosineProximity",
    "cosine_proximity": "cosineProximity",
    "huber": "huberLoss",
    "huber_loss": "huberLoss",
    "log_cosh": "logcosh",
    "binary_crossentropy": "binaryCrossentropy",
    "categorical_crossentropy": "categoricalCrossentropy",
    "sparse_categorical_crossentropy": "sparseCategoricalCrossentropy",
    "squared_hinge": "squaredHinge",
    "categorical_hinge": "categoricalHinge",
}

LOSS_NAMES: tuple[str, ...] = (*_LOSSES, *_ALIASES)


def canonical_loss_name(name: str) -> str | None:
    """The tf.js name a loss string stands for, or None when it names no loss."""
    if not isinstance(name, str):
        return None
    if name in _LOSSES:
        return name
    return _ALIASES.get(name)


def get_loss(name: str, field: str = "compile.loss") -> Loss:
    canonical = canonical_loss_name(name)
    if canonical is None:
        raise InvalidConfig(
            field,
            f"unknown loss {name!r}; valid names: {', '.join(_LOSSES)} (and the aliases {', '.join(_ALIASES)})",
        )
    return _LOSSES[canonical]
