"""A Sequential stack of Dense layers: forward, backward, weights; evaluate and predict.

`tf.layers.dense` computes `activation(input · kernel + bias)` with the kernel shaped
`[inputDim, units]`; `getWeights()` lists kernel then bias, layer by layer (no bias where
`useBias` is false). The weights live in the array namespace `xp` (on its device) and
are updated in place by the optimizer; they leave as host numpy float32 arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainq.services.engine.activations import Activation, Linear, get_activation
from trainq.services.engine.arrays import namespace, to_numpy
from trainq.services.engine.config import CompileConfig, ModelConfig
from trainq.services.engine.initializers import initialize
from trainq.services.engine.losses import Loss, get_loss
from trainq.services.engine.metrics import Metric, get_metric
from trainq.services.engine.validate import check_samples, check_weights, input_width


@dataclass
class Dense:
    kernel: Any  # (inputDim, units)
    bias: Any | None  # (units,), None where useBias is false
    activation: Activation


class Model:
    """A compiled Sequential model: its layers, its loss and its metrics, in namespace `xp`."""

    def __init__(self, xp: Any, config: ModelConfig, compile: CompileConfig, layers: list[Dense]) -> None:
        self.xp = xp
        self.config = config
        self.compile = compile
        self.layers = layers
        self.loss: Loss = get_loss(compile.loss, "compile.loss")
        units = config.layers[-1].units
        self.metrics: list[Metric] = [
            get_metric(name, compile.loss, units, f"compile.metrics[{i}]") for i, name in enumerate(compile.metrics)
        ]
        self.weights: list[Any] = [
            w for layer in layers for w in ((layer.kernel,) if layer.bias is None else (layer.kernel, layer.bias))
        ]
        # batch_gradients' view of the layers: (kernel, bias, activation or None for
        # linear, whether the kernel has one row); the optimizer updates the weights in
        # place, so the plan stays true
        self._plan = [
            (
                layer.kernel,
                layer.bias,
                None if isinstance(layer.activation, Linear) else layer.activation,
                layer.kernel.shape[0] == 1,
            )
            for layer in layers
        ]
        self._by_rows: dict[int, tuple[Any, Any]] = {}  # rows -> _batch_constants

    @property
    def log_keys(self) -> list[str]:
        """The keys of an epoch's training logs, in tf.js's order: loss, then metrics."""
        return ["loss", *(metric.key for metric in self.metrics)]

    @classmethod
    def initialized(
        cls,
        model: ModelConfig,
        compile: CompileConfig,
        rng: np.random.Generator,
        xp: Any = None,
        device: Any = None,
    ) -> Model:
        """The model with `model.weights` if given, else drawn from its initializers with
        `rng`, layer by layer, kernel then bias."""
        if model.weights is not None:
            return cls.from_weights(model, compile, model.weights, xp, device)
        weights: list[np.ndarray] = []
        fan_in = input_width(model)
        for i, layer in enumerate(model.layers):
            field = f"model.layers[{i}]"
            weights.append(
                initialize(layer.kernel_initializer, (fan_in, layer.units), rng, f"{field}.kernelInitializer")
            )
            if layer.use_bias:
                weights.append(initialize(layer.bias_initializer, (layer.units,), rng, f"{field}.biasInitializer"))
            fan_in = layer.units
        return cls.from_weights(model, compile, weights, xp, device)

    @classmethod
    def from_weights(
        cls,
        model: ModelConfig,
        compile: CompileConfig,
        weights: Sequence[np.ndarray],
        xp: Any = None,
        device: Any = None,
    ) -> Model:
        """The model with these weights (getWeights() order), copied into `xp` on `device`.
        InvalidConfig names `model.weights[i]` when one does not fit."""
        xp = namespace(xp)
        check_weights(model, weights)
        arrays = iter([xp.asarray(np.array(w, dtype=np.float32, copy=True), device=device) for w in weights])
        layers = []
        for i, layer in enumerate(model.layers):
            kernel = next(arrays)
            bias = next(arrays) if layer.use_bias else None
            layers.append(Dense(kernel, bias, get_activation(layer.activation, f"model.layers[{i}].activation")))
        return cls(xp, model, compile, layers)

    def get_weights(self) -> list[np.ndarray]:
        """Host float32 copies, in `model.getWeights()` order."""
        return [np.array(to_numpy(w), dtype=np.float32, copy=True) for w in self.weights]

    def output(self, x: Any) -> Any:
        """The last layer's activations for a batch `x` already in `xp`."""
        xp = self.xp
        for layer in self.layers:
            z = product(x, layer.kernel)
            if layer.bias is not None:
                z += layer.bias
            x = layer.activation.forward(xp, z)
        return x

    def batch_gradients(self, x: Any, y: Any) -> tuple[Any, list[Any], list[Any]]:
        """For one batch (in `xp`): its loss values (`loss.per_sample_of` makes them
        the per-sample losses) and per-sample metrics, taken before any update, and
        the gradient of the batch-mean loss with respect to each weight, in
        getWeights() order."""
        # a tiny model's step is a few microseconds of array work, so the Python around
        # it is kept to the bone: no lookups a plan made once can answer, no calls to
        # the identity (linear), no work for absent metrics
        xp = self.xp
        trace = []  # each layer's (input, z, output)
        a = x
        for kernel, bias, activation, one_column in self._plan:
            z = a * kernel if one_column else a @ kernel  # see product()
            if bias is not None:
                z += bias
            out = z if activation is None else activation.forward(xp, z)
            trace.append((a, z, out))
            a = out
        constants = self._by_rows.get(x.shape[0])
        if constants is None:
            constants = self._by_rows[x.shape[0]] = self._batch_constants(a)
        ones, seed = constants
        loss_values, grad = self.loss.value_and_gradient(xp, y, a, seed)
        metrics = [metric.per_sample(xp, y, a) for metric in self.metrics] if self.metrics else []
        gradients: list[Any] = []
        for (kernel, bias, activation, _), (inputs, z, out) in zip(reversed(self._plan), reversed(trace)):
            grad_z = grad if activation is None else activation.backward(xp, z, out, grad)
            if bias is not None:
                # the column sums, as a vector-matrix product: a fraction of xp.sum's overhead
                gradients.append(ones @ grad_z)
            gradients.append(inputs.T @ grad_z)
            if inputs is not x:
                grad = product(grad_z, kernel.T)
        gradients.reverse()
        return loss_values, metrics, gradients

    def _batch_constants(self, output: Any) -> tuple[Any, Any]:
        """What a batch needs beside its data, from its output's shape: a vector of ones
        for the bias gradients' column sums, and the loss's seed."""
        ones = self.xp.ones((output.shape[0],), dtype=output.dtype, device=output.device)
        return ones, self.loss.batch_seed(self.xp, output)

    def logs(self, x: Any, y: Any, batch_size: int, prefix: str = "") -> dict[str, float]:
        """Loss and metrics over `x`, `y` (in `xp`), batch by batch as tf.js's testLoop
        goes, averaged as it averages them: the sum over all rows divided by their
        number, in float32."""
        xp = self.xp
        n = x.shape[0]
        buffers = [xp.empty((n,), dtype=xp.float32, device=x.device) for _ in self.log_keys]
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yb = y[start:stop, ...]
            out = self.output(x[start:stop, ...])
            buffers[0][start:stop] = self.loss.per_sample(xp, yb, out)
            for buffer, metric in zip(buffers[1:], self.metrics):
                buffer[start:stop] = metric.per_sample(xp, yb, out)
        return {prefix + key: mean_of(xp.sum(buffer), n) for key, buffer in zip(self.log_keys, buffers)}

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> dict[str, float]:
        """`model.evaluate(x, y, {batchSize})`: {"loss": ..., "<metric>": ...}; no update.
        InvalidData names `x` or `y` when they do not fit the model."""
        check_samples(self.config, self.compile.loss, x, y, "x", "y")
        xs, ys = self._device_array(x), self._device_array(y)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is an answer, not a warning
            return self.logs(xs, ys, batch_size)

    def predict(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """`model.predict(x, {batchSize})`: host float32 (n, units)."""
        check_samples(self.config, None, x, None, "x", None)
        xs = self._device_array(x)
        n = xs.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = [self.output(xs[start : min(start + batch_size, n), ...]) for start in range(0, n, batch_size)]
        return np.asarray(to_numpy(self.xp.concat(outputs, axis=0)), dtype=np.float32)

    def _device_array(self, array: np.ndarray) -> Any:
        return self.xp.asarray(np.asarray(array, dtype=np.float32), device=self.weights[0].device)


def product(a: Any, b: Any) -> Any:
    """a @ b. Over a single column it is an outer product, which broadcasting computes to
    the same bits (one rounded product per element, as tf.js's matmul) several times
    faster than a matrix-product kernel does."""
    if a.shape[-1] == 1:
        return a * b
    return a @ b


def mean_of(total: Any, n: int) -> float:
    """tf.js's division of a float32 total by a count, as a Python float."""
    return float(np.float32(float(total)) / np.float32(n))
