"""Metrics named in compile, each a per-sample value that fit and evaluate average like
the loss (batch means weighted by batch size).

    metric = get_metric("accuracy", loss="categoricalCrossentropy", output_units=3,
                        field="compile.metrics[0]")
    metric.key                                   # "acc": the history key tf.js uses
    metric.per_sample(xp, y_true, y_pred)        # (n,)

Names and keys are tf.js 4.22's (checked by running it): `model.compile` accepts
binaryAccuracy, categoricalAccuracy, precision, categoricalCrossentropy,
sparseCategoricalCrossentropy, mse, MSE, mae, MAE, mape, MAPE, cosine, and the
shorthands accuracy/acc (history key "acc") and crossentropy/ce (key "ce"), which it
resolves by the loss and the output width:

    output width 1 or loss binaryCrossentropy  -> binaryAccuracy / binaryCrossentropy
    loss sparseCategoricalCrossentropy         -> sparseCategoricalAccuracy / sparseCategoricalCrossentropy
    otherwise                                  -> categoricalAccuracy / categoricalCrossentropy

Every other metric's key is the name as written. tf.js refuses the long loss names as
metrics ("Unknown metric meanSquaredError"), and msle, kld, binaryCrossentropy,
sparseCategoricalAccuracy and cosineProximity too; trainq accepts them (and every loss
name) with the same per-sample value, as Keras does. Jobs meant to be replayed in tf.js
should stick to tf.js's names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from trainq.services.engine.errors import InvalidConfig
from trainq.services.engine.losses import canonical_loss_name, get_loss, row_mean

Array = Any
Namespace = Any
PerSample = Callable[[Namespace, Array, Array], Array]


class Metric(Protocol):
    @property
    def key(self) -> str: ...

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array: ...


@dataclass(frozen=True)
class NamedMetric:
    key: str
    function: PerSample

    def per_sample(self, xp: Namespace, y_true: Array, y_pred: Array) -> Array:
        return self.function(xp, y_true, y_pred)


def binary_accuracy(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """Share of a row's outputs on the right side of 0.5 (strictly above means 1)."""
    predicted = xp.astype(y_pred > 0.5, y_pred.dtype)
    return row_mean(xp, xp.astype(y_true == predicted, y_pred.dtype))


def categorical_accuracy(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """1 where the row's largest target and largest output share an index (first on ties)."""
    return xp.astype(xp.argmax(y_true, axis=-1) == xp.argmax(y_pred, axis=-1), y_pred.dtype)


def sparse_categorical_accuracy(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """1 where the class index equals the largest output's index; compared exactly, so a
    non-integer index never counts (tf.js casts the argmax to the target's dtype)."""
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0]
    return xp.astype(y_true == xp.astype(xp.argmax(y_pred, axis=-1), y_true.dtype), y_pred.dtype)


def precision(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """tf.js's precision is one value per batch, tp / (tp + fp) with outputs compared to 1
    exactly (no threshold), 0 when nothing is predicted positive; it is repeated per
    sample so the batch mean returns it unchanged."""
    predicted_one = y_pred == 1.0
    tp = xp.sum(xp.astype((y_true == 1.0) & predicted_one, y_pred.dtype))
    fp = xp.sum(xp.astype((y_true == 0.0) & predicted_one, y_pred.dtype))
    value = xp.where(tp + fp > 0, tp / xp.maximum(tp + fp, 1.0), 0.0)
    return xp.zeros_like(y_pred[..., 0]) + value


def _loss_metric(name: str) -> PerSample:
    return get_loss(name).per_sample


_METRICS: dict[str, PerSample] = {
    "binaryAccuracy": binary_accuracy,
    "categoricalAccuracy": categorical_accuracy,
    "sparseCategoricalAccuracy": sparse_categorical_accuracy,
    "precision": precision,
    **{name: _loss_metric(name) for name in ("mse", "MSE", "mae", "MAE", "mape", "MAPE", "cosine")},
}
_SHORTHANDS = ("accuracy", "acc", "crossentropy", "ce")

METRIC_NAMES: tuple[str, ...] = (*_METRICS, *_SHORTHANDS)


def _resolve_shorthand(name: str, loss: str | None, output_units: int) -> PerSample:
    accuracy = name in ("accuracy", "acc")
    if output_units == 1 or loss == "binaryCrossentropy":
        return binary_accuracy if accuracy else _loss_metric("binaryCrossentropy")
    if loss == "sparseCategoricalCrossentropy":
        return sparse_categorical_accuracy if accuracy else _loss_metric("sparseCategoricalCrossentropy")
    return categorical_accuracy if accuracy else _loss_metric("categoricalCrossentropy")


def get_metric(name: str, loss: str, output_units: int, field: str) -> Metric:
    """The metric `model.compile({loss, metrics: [name]})` would compute, with its history key.
    `loss` is the compiled loss's name (an alias is fine); `output_units` the last layer's width."""
    if name in _SHORTHANDS:
        function = _resolve_shorthand(name, canonical_loss_name(loss), output_units)
        return NamedMetric("acc" if name in ("accuracy", "acc") else "ce", function)
    if name in _METRICS:
        return NamedMetric(name, _METRICS[name])
    if canonical_loss_name(name) is not None:
        return NamedMetric(name, _loss_metric(name))
    raise InvalidConfig(
        field,
        f"unknown metric {name!r}; valid names: {', '.join(METRIC_NAMES)}, or any loss name",
    )
