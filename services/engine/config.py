"""What a model, its compilation and its fit are, in the engine's own plain terms.

These dataclasses are the engine's input. They mirror TensorFlow.js's layers API
(`tf.layers.dense`, `model.compile`, `model.fit`) field for field, in snake_case.
The public JSON contract (camelCase, validated with pydantic) lives in
`services/spec.py` and converts into these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

EarlyStoppingMode = Literal["auto", "min", "max"]


@dataclass(frozen=True)
class InitializerConfig:
    """A tf.js initializer by name (`glorotNormal`, `zeros`, `randomNormal`, ...)
    with its options in tf.js's names (`mean`, `stddev`, `minval`, `maxval`, `value`)."""

    name: str
    options: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DenseConfig:
    """`tf.layers.dense({units, inputShape, activation, useBias, kernelInitializer, biasInitializer})`."""

    units: int
    activation: str = "linear"
    use_bias: bool = True
    kernel_initializer: InitializerConfig = InitializerConfig("glorotNormal")
    bias_initializer: InitializerConfig = InitializerConfig("zeros")
    input_shape: tuple[int, ...] | None = None  # required on the first layer only


@dataclass(frozen=True)
class OptimizerConfig:
    """An optimizer by tf.js name with options in tf.js's names:
    learningRate, momentum, useNesterov, beta1, beta2, epsilon, rho, decay, centered,
    initialAccumulatorValue."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompileConfig:
    optimizer: OptimizerConfig
    loss: str
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """`tf.callbacks.earlyStopping({monitor, minDelta, patience, mode, baseline})`."""

    monitor: str = "val_loss"
    min_delta: float = 0.0
    patience: int = 0
    mode: EarlyStoppingMode = "auto"
    baseline: float | None = None


@dataclass(frozen=True)
class FitConfig:
    """`model.fit(x, y, {epochs, batchSize, shuffle, validationSplit, initialEpoch})`, plus `seed`."""

    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True
    validation_split: float = 0.0
    initial_epoch: int = 0
    seed: int | None = None
    early_stopping: EarlyStoppingConfig | None = None


@dataclass(frozen=True)
class ModelConfig:
    """A Sequential stack of Dense layers and, optionally, its starting weights in
    `model.getWeights()` order (kernel then bias, layer by layer; no bias where useBias is false)."""

    layers: tuple[DenseConfig, ...]
    weights: tuple[np.ndarray, ...] | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """Everything `fit` needs besides the data."""

    model: ModelConfig
    compile: CompileConfig
    fit: FitConfig = FitConfig()
