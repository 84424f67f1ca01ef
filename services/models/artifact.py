"""TensorFlow.js's layers-model artifact (`model.json` plus a weights file), written from
trainq's spec as tf.js 4.22's `model.save()` writes it; `services.models.reading` reads one
back. Checked against the real library in `tests/parity/test_tfjs_models.py`:

    {"modelTopology": {"class_name": "Sequential", "config": {"name", "layers": [
         {"class_name": "Dense", "config": {"units", "activation", "use_bias",
          "kernel_initializer": {"class_name", "config"}, ..., "name": "dense_Dense1",
          "trainable": true, "batch_input_shape": [null, 4], "dtype": "float32"}}, ...]},
       "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"},
     "format": "layers-model", "generatedBy": ..., "convertedBy": null,
     "weightsManifest": [{"paths": ["weights.bin"], "weights": [{"name": "dense_Dense1/kernel",
          "shape": [4, 8], "dtype": "float32"}, ...]}],
     "userDefinedMetadata": {"trainq": {...}},
     "trainingConfig": {"loss": "mean_squared_error", "metrics": ["mae"],
          "optimizer_config": {"class_name": "Adam", "config": {"learningRate": ...}}}}

The weights file is the weights' float32 values, little-endian, one after the other in
manifest order. tf.js writes `trainingConfig` at the top level (with `includeOptimizer`).

tf.js can compile a loaded model only from the loss and metric strings its layers API
knows (no `huberLoss`, no loss name as a metric but a few): `trainingConfig` carries what
tf.js can compile, and `userDefinedMetadata.trainq.compile` carries trainq's compile whole,
so that trainq reads back exactly what it wrote while a tf.js user who recompiled the
model and saved it again is read by their `trainingConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainq.services.engine.losses import canonical_loss_name
from trainq.services.engine.optimizers import get_optimizer
from trainq.services.spec import Compile, DenseLayer, Initializer, optimizer_config

TFJS_VERSION = "4.22.0"
FORMAT = "layers-model"
GENERATED_BY = "trainq 0.1.0"
WEIGHTS_FILE = "weights.bin"

OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "momentum": "Momentum",
    "adam": "Adam",
    "adamax": "Adamax",
    "rmsprop": "RMSProp",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}
# the loss strings tf.js's compile takes (tfjs-layers/src/losses.ts lossesMap)
_TFJS_LOSSES = frozenset(
    {
        "meanSquaredError",
        "meanAbsoluteError",
        "meanAbsolutePercentageError",
        "meanSquaredLogarithmicError",
        "squaredHinge",
        "hinge",
        "categoricalHinge",
        "logcosh",
        "categoricalCrossentropy",
        "sparseCategoricalCrossentropy",
        "binaryCrossentropy",
        "kullbackLeiblerDivergence",
        "poisson",
        "cosineProximity",
    }
)
# the metric strings it takes (tfjs-layers/src/metrics.ts get), as tf.js 4.22 ran them
_TFJS_METRICS = frozenset(
    {
        "binaryAccuracy",
        "categoricalAccuracy",
        "precision",
        "categoricalCrossentropy",
        "sparseCategoricalCrossentropy",
        "mse",
        "MSE",
        "mae",
        "MAE",
        "mape",
        "MAPE",
        "cosine",
        "accuracy",
        "acc",
        "crossentropy",
        "ce",
    }
)
# initializers tf.js writes as VarianceScaling: (scale, mode, distribution)
VARIANCE_PRESETS = {
    "glorotNormal": (1, "fan_avg", "normal"),
    "glorotUniform": (1, "fan_avg", "uniform"),
    "heNormal": (2, "fan_in", "normal"),
    "heUniform": (2, "fan_in", "uniform"),
    "leCunNormal": (1, "fan_in", "normal"),
    "leCunUniform": (1, "fan_in", "uniform"),
}
# each initializer's options with tf.js's defaults, in the order tf.js writes them; None: no seed
_INITIALIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "zeros": {},
    "ones": {},
    "constant": {"value": None},
    "randomNormal": {"mean": 0, "stddev": 0.05, "seed": None},
    "randomUniform": {"minval": -0.05, "maxval": 0.05, "seed": None},
    "truncatedNormal": {"mean": 0, "stddev": 0.05, "seed": None},
    "orthogonal": {"gain": 1, "seed": None},
    "identity": {"gain": 1},
}
# the layer config keys that must be null: trainq has no regularizers or constraints
UNSUPPORTED_IF_SET = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


# --- trainq -> tf.js ------------------------------------------------------------------


def model_json(
    layers: Sequence[DenseLayer],
    compile: Compile | None,
    weights: Sequence[np.ndarray],
    metadata: Mapping[str, Any],
    weights_path: str = WEIGHTS_FILE,
) -> dict[str, Any]:
    """The model.json of a Sequential of `layers` whose weights file is `weights_path`
    (relative to model.json's URL); `metadata` goes in userDefinedMetadata.trainq."""
    names = [f"dense_Dense{i + 1}" for i in range(len(layers))]
    specs = []
    for name, layer in zip(names, layers):
        specs.append({"name": f"{name}/kernel", "dtype": "float32"})
        if layer.use_bias:
            specs.append({"name": f"{name}/bias", "dtype": "float32"})
    if len(specs) != len(weights):
        raise ValueError(f"{len(weights)} weights for a model of {len(specs)}")
    document: dict[str, Any] = {
        "modelTopology": {
            "class_name": "Sequential",
            "config": {"name": "sequential_1", "layers": [_layer(name, layer) for name, layer in zip(names, layers)]},
            "keras_version": f"tfjs-layers {TFJS_VERSION}",
            "backend": "tensor_flow.js",
        },
        "format": FORMAT,
        "generatedBy": GENERATED_BY,
        "convertedBy": None,
        "weightsManifest": [
            {
                "paths": [weights_path],
                "weights": [
                    {"name": spec["name"], "shape": list(np.shape(w)), "dtype": "float32"}
                    for spec, w in zip(specs, weights)
                ],
            }
        ],
    }
    trainq: dict[str, Any] = dict(metadata)
    if compile is not None:
        trainq["compile"] = compile.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["userDefinedMetadata"] = {"trainq": trainq}
    config = training_config(compile) if compile is not None else None
    if config is not None:
        document["trainingConfig"] = config
    return document


def weights_bin(weights: Sequence[np.ndarray]) -> bytes:
    """The weights file: each array's float32 values, little-endian, in order."""
    return b"".join(np.ascontiguousarray(w, dtype="<f4").tobytes() for w in weights)


def training_config(compile: Compile) -> dict[str, Any] | None:
    """tf.js's trainingConfig for `compile`: None when tf.js has no string for its loss
    (huberLoss); metrics tf.js would refuse are left out (userDefinedMetadata keeps them)."""
    loss = canonical_loss_name(compile.loss)
    if loss not in _TFJS_LOSSES:
        return None
    optimizer = get_optimizer(optimizer_config(compile.optimizer))
    return {
        "loss": snake(loss),
        "metrics": [snake(metric) for metric in compile.metrics if metric in _TFJS_METRICS],
        "optimizer_config": {
            "class_name": OPTIMIZER_CLASSES[optimizer.name],
            "config": {key: _json_number(value) for key, value in optimizer.options.items()},
        },
    }


def _layer(name: str, layer: DenseLayer) -> dict[str, Any]:
    config: dict[str, Any] = {
        "units": layer.units,
        "activation": snake(layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": _initializer(layer.kernel_initializer),
        "bias_initializer": _initializer(layer.bias_initializer),
        **{key: None for key in UNSUPPORTED_IF_SET},
        "name": name,
        "trainable": True,
    }
    if layer.input_shape is not None:
        config["batch_input_shape"] = [None, *layer.input_shape]
        config["dtype"] = "float32"
    return {"class_name": "Dense", "config": config}


def _initializer(value: str | Initializer) -> dict[str, Any]:
    name, options = (value, {}) if isinstance(value, str) else (value.name, dict(value.model_extra or {}))
    if name in VARIANCE_PRESETS:
        scale, mode, distribution = VARIANCE_PRESETS[name]
        return _variance_scaling(scale, mode, distribution, options.get("seed"))
    if name == "varianceScaling":
        return _variance_scaling(
            options.get("scale", 1),
            snake(options.get("mode", "fanIn")),
            snake(options.get("distribution", "normal")),
            options.get("seed"),
        )
    defaults = _INITIALIZER_DEFAULTS.get(name, {})
    config = {key: options.get(key, default) for key, default in defaults.items()}
    return {"class_name": name[:1].upper() + name[1:], "config": config}


def _variance_scaling(scale: float, mode: str, distribution: str, seed: int | None) -> dict[str, Any]:
    return {
        "class_name": "VarianceScaling",
        "config": {"scale": scale, "mode": mode, "distribution": distribution, "seed": seed},
    }


def _json_number(value: Any) -> Any:
    # 1.0 is written 1, as JavaScript writes it
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def snake(name: str) -> str:
    """tf.js's toSnakeCase (generic_utils): meanSquaredError -> mean_squared_error, MSE -> mse."""
    intermediate = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def camel(name: str) -> str:
    """tf.js's toCamelCase: mean_squared_error -> meanSquaredError."""
    return re.sub(r"_+(\w|$)", lambda m: m.group(1).upper(), name)
