"""TensorFlow.js's layers-model artifact (`model.json` plus a weights file), to and from trainq's spec.

Written as tf.js 4.22's `model.save()` writes it, checked against the real library in
`tests/parity/test_tfjs_artifact.py`:

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
manifest order. tf.js writes `trainingConfig` at the top level (with `includeOptimizer`);
Keras's converter nests `model_config` and `training_config` in `modelTopology`: both are read.

tf.js can compile a loaded model only from the loss and metric strings its layers API
knows (no `huberLoss`, no loss name as a metric but a few): `trainingConfig` carries what
tf.js can compile, and `userDefinedMetadata.trainq.compile` carries trainq's compile whole,
so that trainq reads back exactly what it wrote while a tf.js user who recompiled the
model and saved it again is read by their `trainingConfig`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from trainq.services.engine import CompileConfig, InvalidConfig, ModelConfig
from trainq.services.engine.losses import canonical_loss_name, get_loss
from trainq.services.engine.metrics import get_metric
from trainq.services.engine.optimizers import get_optimizer
from trainq.services.engine.validate import check_model, weight_shapes
from trainq.services.errors import InvalidInput
from trainq.services.spec import Compile, DenseLayer, Initializer, Optimizer, dense_config, optimizer_config

TFJS_VERSION = "4.22.0"
FORMAT = "layers-model"
GENERATED_BY = "trainq 0.1.0"
WEIGHTS_FILE = "weights.bin"

_OPTIMIZER_CLASSES = {
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
_VARIANCE_PRESETS = {
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
_UNSUPPORTED_IF_SET = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)
_BYTES_PER_VALUE = {"float32": 4, "int32": 4, "bool": 1}


@dataclass(frozen=True)
class ImportedModel:
    """What trainq keeps of a tf.js artifact: the layers, the compile (None without a
    training config), and the weights in getWeights() order."""

    layers: list[DenseLayer]
    compile: Compile | None
    weights: list[np.ndarray]


class InvalidArtifact(InvalidInput):
    """A model.json or weights file trainq cannot take; `field` is the path inside the artifact."""


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
        "loss": _snake(loss),
        "metrics": [_snake(metric) for metric in compile.metrics if metric in _TFJS_METRICS],
        "optimizer_config": {
            "class_name": _OPTIMIZER_CLASSES[optimizer.name],
            "config": {key: _json_number(value) for key, value in optimizer.options.items()},
        },
    }


def _layer(name: str, layer: DenseLayer) -> dict[str, Any]:
    config: dict[str, Any] = {
        "units": layer.units,
        "activation": _snake(layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": _initializer(layer.kernel_initializer),
        "bias_initializer": _initializer(layer.bias_initializer),
        **{key: None for key in _UNSUPPORTED_IF_SET},
        "name": name,
        "trainable": True,
    }
    if layer.input_shape is not None:
        config["batch_input_shape"] = [None, *layer.input_shape]
        config["dtype"] = "float32"
    return {"class_name": "Dense", "config": config}


def _initializer(value: str | Initializer) -> dict[str, Any]:
    name, options = (value, {}) if isinstance(value, str) else (value.name, dict(value.model_extra or {}))
    if name in _VARIANCE_PRESETS:
        scale, mode, distribution = _VARIANCE_PRESETS[name]
        return _variance_scaling(scale, mode, distribution, options.get("seed"))
    if name == "varianceScaling":
        return _variance_scaling(
            options.get("scale", 1),
            _snake(options.get("mode", "fanIn")),
            _snake(options.get("distribution", "normal")),
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


def _snake(name: str) -> str:
    """tf.js's toSnakeCase (generic_utils): meanSquaredError -> mean_squared_error, MSE -> mse."""
    intermediate = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def _camel(name: str) -> str:
    """tf.js's toCamelCase: mean_squared_error -> meanSquaredError."""
    return re.sub(r"_+(\w|$)", lambda m: m.group(1).upper(), name)


# --- tf.js -> trainq ------------------------------------------------------------------


def read_artifact(document: Any, weights: bytes, *, weights_field: str) -> ImportedModel:
    """The model a tf.js model.json and its weights describe; InvalidArtifact names the
    field at fault (a path inside model.json, or `weights_field` for the weights file)."""
    if not isinstance(document, dict):
        raise InvalidArtifact("body", "model.json must be a JSON object")
    if document.get("format", FORMAT) != FORMAT:
        raise InvalidArtifact(
            "format", f"is {document.get('format')!r}; trainq takes tf.js layers models ({FORMAT!r}), not graph models"
        )
    topology = document.get("modelTopology")
    where = "modelTopology"
    if not isinstance(topology, dict):
        raise InvalidArtifact(where, "Field required: the model's topology, as model.save() writes it")
    keras_training = topology.get("training_config")
    if "model_config" in topology:
        topology, where = topology["model_config"], f"{where}.model_config"
    layers = _read_layers(topology, where)
    imported_weights = _read_weights(document, weights, layers, weights_field)
    compile = _read_compile(document, keras_training)
    return ImportedModel(layers=[layer for _, layer in layers], compile=compile, weights=imported_weights)


def _read_layers(topology: Any, where: str) -> list[tuple[str, DenseLayer]]:
    """(tf.js layer name, trainq layer) for each Dense layer of a Sequential topology."""
    if not isinstance(topology, dict) or topology.get("class_name") != "Sequential":
        got = topology.get("class_name") if isinstance(topology, dict) else topology
        raise InvalidArtifact(
            f"{where}.class_name", f"is {got!r}; trainq trains Sequential models of Dense layers only"
        )
    config = topology.get("config")
    # Keras 2.2 wrote a Sequential's config as the list of its layers
    entries = config if isinstance(config, list) else config.get("layers") if isinstance(config, dict) else None
    prefix = f"{where}.config" if isinstance(config, list) else f"{where}.config.layers"
    if not isinstance(entries, list) or not entries:
        raise InvalidArtifact(prefix, "must list the model's layers")
    layers: list[tuple[str, DenseLayer]] = []
    input_shape: list[Any] | None = None
    for i, entry in enumerate(entries):
        field = f"{prefix}[{i}]"
        class_name = entry.get("class_name") if isinstance(entry, dict) else None
        layer_config = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(layer_config, dict):
            raise InvalidArtifact(field, "must be {class_name, config}")
        if class_name == "InputLayer" and i == 0:
            input_shape = layer_config.get("batch_input_shape")
            continue
        if class_name != "Dense":
            raise InvalidArtifact(
                f"{field}.class_name",
                f"{class_name!r} layers are not supported: trainq trains Sequential models of Dense layers only",
            )
        layers.append(_read_dense(layer_config, f"{field}.config", input_shape if not layers else None, len(layers)))
    if not layers:
        raise InvalidArtifact(prefix, "holds no Dense layer")
    config_layers = ModelConfig(layers=tuple(dense_config(layer) for _, layer in layers))
    try:
        check_model(config_layers)
    except InvalidConfig as error:
        raise _artifact_field(error, prefix, entries) from None
    return layers


def _read_dense(
    config: dict[str, Any], field: str, input_shape: list[Any] | None, index: int
) -> tuple[str, DenseLayer]:
    for key in _UNSUPPORTED_IF_SET:
        if config.get(key) is not None:
            raise InvalidArtifact(f"{field}.{key}", "is not supported by trainq; it must be null")
    if config.get("trainable", True) is not True:
        raise InvalidArtifact(f"{field}.trainable", "must be true: trainq trains every layer")
    if config.get("dtype", "float32") != "float32":
        raise InvalidArtifact(f"{field}.dtype", f"is {config.get('dtype')!r}; trainq trains float32 models only")
    shape = config.get("batch_input_shape", input_shape)
    if shape is None and config.get("input_dim") is not None:
        shape = [None, config["input_dim"]]
    fields: dict[str, Any] = {
        "units": config.get("units"),
        "activation": _camel(config.get("activation") or "linear"),
        "useBias": config.get("use_bias", True),
        "kernelInitializer": _read_initializer(config.get("kernel_initializer"), "glorotNormal"),
        "biasInitializer": _read_initializer(config.get("bias_initializer"), "zeros"),
    }
    if shape is not None:
        if not isinstance(shape, list) or len(shape) != 2:
            raise InvalidArtifact(
                f"{field}.batch_input_shape", f"is {shape!r}; a Dense model takes [null, number of features]"
            )
        fields["inputShape"] = shape[1:]
    try:
        layer = DenseLayer.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "units"
        raise InvalidArtifact(f"{field}.{_SPEC_TO_CONFIG.get(key, _snake(key))}", first["msg"]) from None
    name = config.get("name")
    return (name if isinstance(name, str) else f"dense_Dense{index + 1}"), layer


def _read_initializer(value: Any, default: str) -> str | dict[str, Any]:
    if value is None:
        return default
    if isinstance(value, str):
        return _camel(value)
    if not isinstance(value, dict):
        return value  # DenseLayer refuses it, naming the field
    class_name, config = value.get("class_name"), dict(value.get("config") or {})
    options = {key: v for key, v in config.items() if v is not None}
    if class_name == "VarianceScaling":
        preset = (options.get("scale", 1), options.get("mode", "fan_in"), options.get("distribution", "normal"))
        for name, values in _VARIANCE_PRESETS.items():
            if values == preset and "seed" not in options:
                return name
        options.update(mode=_camel(str(preset[1])), distribution=_camel(str(preset[2])))
    name = str(class_name)[:1].lower() + str(class_name)[1:]
    return {"name": name, **options} if options else name


def _read_weights(
    document: dict[str, Any], data: bytes, layers: list[tuple[str, DenseLayer]], field: str
) -> list[np.ndarray]:
    manifest = document.get("weightsManifest")
    if manifest is not None:
        if not isinstance(manifest, list) or not all(isinstance(g, dict) for g in manifest):
            raise InvalidArtifact("weightsManifest", "must be a list of {paths, weights}")
        specs = [
            (f"weightsManifest[{g}].weights[{i}]", spec)
            for g, group in enumerate(manifest)
            for i, spec in enumerate(group.get("weights") or [])
        ]
    elif isinstance(document.get("weightSpecs"), list):
        specs = [(f"weightSpecs[{i}]", spec) for i, spec in enumerate(document["weightSpecs"])]
    else:
        raise InvalidArtifact("weightsManifest", "Field required: the weights' names, shapes and dtypes")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for where, spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidArtifact(where, "must be {name, shape, dtype}")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidArtifact(f"{where}.shape", f"is {shape!r}, not a list of sizes")
        dtype = spec.get("dtype", "float32")
        if dtype not in _BYTES_PER_VALUE:
            raise InvalidArtifact(f"{where}.dtype", f"is {dtype!r}; trainq reads float32 weights")
        if spec.get("quantization") is not None:
            raise InvalidArtifact(f"{where}.quantization", "quantized weights are not supported")
        size = math.prod(shape) * _BYTES_PER_VALUE[dtype]
        # optimizer state (model.save with includeOptimizer) is skipped: a job starts its optimizer afresh
        if spec.get("group") != "optimizer" and offset + size <= len(data):
            if dtype != "float32":
                raise InvalidArtifact(f"{where}.dtype", f"is {dtype!r}; a Dense layer's weights are float32")
            values = np.frombuffer(data, dtype="<f4", count=math.prod(shape), offset=offset)
            arrays[spec["name"]] = values.reshape(shape).astype(np.float32)
        offset += size
    if offset != len(data):
        raise InvalidArtifact(
            field, f"holds {len(data)} bytes; the weights manifest describes {offset} ({offset // 4} float32 values)"
        )
    weights = []
    model = ModelConfig(layers=tuple(dense_config(layer) for _, layer in layers))
    shapes = iter(weight_shapes(model))
    for name, layer in layers:
        for part in ("kernel", "bias") if layer.use_bias else ("kernel",):
            expected = next(shapes)
            key = f"{name}/{part}"
            if key not in arrays:
                raise InvalidArtifact("weightsManifest", f"names no weight {key!r}, which layer {name} needs")
            array = arrays.pop(key)
            if array.shape != expected:
                raise InvalidArtifact(
                    "weightsManifest", f"gives {key} the shape {list(array.shape)}; the layer needs {list(expected)}"
                )
            if not np.all(np.isfinite(array)):
                raise InvalidArtifact(field, f"{key} holds NaN or infinite values")
            weights.append(array)
    if arrays:
        raise InvalidArtifact("weightsManifest", f"names weights no layer has: {', '.join(sorted(arrays))}")
    return weights


def _read_compile(document: dict[str, Any], keras_training: Any) -> Compile | None:
    where = "trainingConfig"
    config = document.get("trainingConfig")
    if config is None and keras_training is not None:
        config, where = keras_training, "modelTopology.training_config"
    metadata = document.get("userDefinedMetadata")
    ours = (
        metadata.get("trainq", {}).get("compile")
        if isinstance(metadata, dict) and isinstance(metadata.get("trainq"), dict)
        else None
    )
    if ours is not None:
        try:
            written = Compile.model_validate(ours)
        except ValidationError:
            written = None
        # trainq's own compile, unless a tf.js user recompiled the model since
        if written is not None and training_config(written) == config:
            return _checked_compile(written, "userDefinedMetadata.trainq.compile")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidArtifact(where, "must be {loss, metrics, optimizer_config}")
    loss = config.get("loss")
    if not isinstance(loss, str):
        raise InvalidArtifact(f"{where}.loss", f"is {loss!r}; a Sequential model has one output and one loss name")
    metrics = config.get("metrics") or []
    if isinstance(metrics, dict):
        raise InvalidArtifact(f"{where}.metrics", "must be a list of metric names (one output)")
    optimizer = config.get("optimizer_config")
    if not isinstance(optimizer, dict):
        raise InvalidArtifact(f"{where}.optimizer_config", "Field required: {class_name, config}")
    names = {v: k for k, v in _OPTIMIZER_CLASSES.items()}
    class_name = optimizer.get("class_name")
    # a list or an object is no name either (and cannot be looked up: it is unhashable)
    name = names.get(class_name) if isinstance(class_name, str) else None
    if name is None:
        raise InvalidArtifact(
            f"{where}.optimizer_config.class_name",
            f"{optimizer.get('class_name')!r} is not an optimizer trainq has; it has {', '.join(names)}",
        )
    options = {key: v for key, v in (optimizer.get("config") or {}).items() if v is not None}
    try:
        compile = Compile.model_validate(
            {
                "optimizer": Optimizer.model_validate({"name": name, **options}),
                "loss": _camel(loss),
                "metrics": [_camel(m) if isinstance(m, str) else m for m in metrics],
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArtifact(f"{where}.{'.'.join(map(str, first['loc']))}", first["msg"]) from None
    return _checked_compile(compile, where)


def _checked_compile(compile: Compile, where: str) -> Compile:
    try:
        get_loss(compile.loss, f"{where}.loss")
        get_optimizer(optimizer_config(compile.optimizer), f"{where}.optimizer_config")
        engine = CompileConfig(optimizer_config(compile.optimizer), compile.loss, tuple(compile.metrics))
        for i, metric in enumerate(engine.metrics):
            get_metric(metric, engine.loss, 1, f"{where}.metrics[{i}]")
    except InvalidConfig as error:
        raise InvalidArtifact.of(error) from None
    return compile


_SPEC_TO_CONFIG = {
    "units": "units",
    "activation": "activation",
    "useBias": "use_bias",
    "kernelInitializer": "kernel_initializer",
    "biasInitializer": "bias_initializer",
    "inputShape": "batch_input_shape",
}


def _artifact_field(error: InvalidConfig, prefix: str, entries: list[Any]) -> InvalidArtifact:
    """An engine error about `model.layers[i].<field>` as the artifact's own path."""
    match = re.fullmatch(r"model\.layers\[(\d+)\](?:\.(\w+))?(.*)", error.field)
    if match is None:
        return InvalidArtifact(prefix, error.message)
    index = int(match.group(1)) + (1 if entries and entries[0].get("class_name") == "InputLayer" else 0)
    key = _SPEC_TO_CONFIG.get(match.group(2) or "", match.group(2))
    return InvalidArtifact(f"{prefix}[{index}].config{'.' + key if key else ''}{match.group(3)}", error.message)
