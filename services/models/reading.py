"""A TensorFlow.js layers-model artifact read as trainq's spec: what `model.save()` wrote
(tf.io.http's multipart form, the files of `trainq models import`), checked as a job spec
would be. Anything trainq cannot train (a Conv2D layer, a regularizer, a weights file of
the wrong length) is an InvalidArtifact naming the field of model.json at fault.

tf.js writes `trainingConfig` at the top level (with `includeOptimizer`); Keras's converter
nests `model_config` and `training_config` in `modelTopology`: both are read. trainq's own
exports carry their compile whole in `userDefinedMetadata.trainq.compile` (see
`services.models.artifact`), read back unless a tf.js user recompiled the model since.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from trainq.services.engine import CompileConfig, InvalidConfig, ModelConfig
from trainq.services.engine.losses import get_loss
from trainq.services.engine.metrics import get_metric
from trainq.services.engine.optimizers import get_optimizer
from trainq.services.engine.validate import check_model, weight_shapes
from trainq.services.errors import InvalidInput
from trainq.services.models.artifact import (
    FORMAT,
    OPTIMIZER_CLASSES,
    UNSUPPORTED_IF_SET,
    VARIANCE_PRESETS,
    camel,
    snake,
    training_config,
)
from trainq.services.spec import Compile, DenseLayer, Optimizer, dense_config, optimizer_config

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
    for key in UNSUPPORTED_IF_SET:
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
        "activation": camel(_name(config.get("activation") or "linear", f"{field}.activation")),
        "useBias": config.get("use_bias", True),
        "kernelInitializer": _read_initializer(
            config.get("kernel_initializer"), "glorotNormal", f"{field}.kernel_initializer"
        ),
        "biasInitializer": _read_initializer(config.get("bias_initializer"), "zeros", f"{field}.bias_initializer"),
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
        raise InvalidArtifact(f"{field}.{_SPEC_TO_CONFIG.get(key, snake(key))}", first["msg"]) from None
    name = config.get("name")
    return (name if isinstance(name, str) else f"dense_Dense{index + 1}"), layer


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidArtifact(field, f"is {value!r}, not a name")
    return value


def _read_initializer(value: Any, default: str, field: str) -> str | dict[str, Any]:
    if value is None:
        return default
    if isinstance(value, str):
        return camel(value)
    if not isinstance(value, dict):
        return value  # DenseLayer refuses it, naming the field
    class_name, config = _name(value.get("class_name"), f"{field}.class_name"), value.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidArtifact(f"{field}.config", f"is {config!r}, not an object of the initializer's options")
    options = {key: v for key, v in config.items() if v is not None}
    if class_name == "VarianceScaling":
        preset = (options.get("scale", 1), options.get("mode", "fan_in"), options.get("distribution", "normal"))
        for name, values in VARIANCE_PRESETS.items():
            if values == preset and "seed" not in options:
                return name
        options.update(mode=camel(str(preset[1])), distribution=camel(str(preset[2])))
    name = class_name[:1].lower() + class_name[1:]
    return {"name": name, **options} if options else name


def _read_weights(
    document: dict[str, Any], data: bytes, layers: list[tuple[str, DenseLayer]], field: str
) -> list[np.ndarray]:
    manifest = document.get("weightsManifest")
    if manifest is not None:
        if not isinstance(manifest, list) or not all(
            isinstance(g, dict) and isinstance(g.get("weights", []), list) for g in manifest
        ):
            raise InvalidArtifact("weightsManifest", "must be a list of {paths, weights: [{name, shape, dtype}]}")
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
        if not isinstance(dtype, str) or dtype not in _BYTES_PER_VALUE:
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
            written: Compile | None = Compile.model_validate(ours)
            as_tfjs = training_config(written) if written is not None else None
        except (ValidationError, InvalidConfig):
            written = as_tfjs = None
        # trainq's own compile, unless a tf.js user recompiled the model since
        if written is not None and as_tfjs == config:
            return _checked_compile(written, "userDefinedMetadata.trainq.compile")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidArtifact(where, "must be {loss, metrics, optimizer_config}")
    loss = config.get("loss")
    if not isinstance(loss, str):
        raise InvalidArtifact(f"{where}.loss", f"is {loss!r}; a Sequential model has one output and one loss name")
    metrics = config.get("metrics") or []
    if not isinstance(metrics, list):
        raise InvalidArtifact(f"{where}.metrics", "must be a list of metric names (one output)")
    optimizer = config.get("optimizer_config")
    if not isinstance(optimizer, dict):
        raise InvalidArtifact(f"{where}.optimizer_config", "Field required: {class_name, config}")
    names = {v: k for k, v in OPTIMIZER_CLASSES.items()}
    class_name = optimizer.get("class_name")
    # a list or an object is no name either (and cannot be looked up: it is unhashable)
    name = names.get(class_name) if isinstance(class_name, str) else None
    if name is None:
        raise InvalidArtifact(
            f"{where}.optimizer_config.class_name",
            f"{optimizer.get('class_name')!r} is not an optimizer trainq has; it has {', '.join(names)}",
        )
    options = optimizer.get("config") or {}
    if not isinstance(options, dict):
        raise InvalidArtifact(f"{where}.optimizer_config.config", f"is {options!r}, not an object of options")
    options = {key: v for key, v in options.items() if v is not None}
    try:
        compile = Compile.model_validate(
            {
                "optimizer": Optimizer.model_validate({"name": name, **options}),
                "loss": camel(loss),
                "metrics": [camel(m) if isinstance(m, str) else m for m in metrics],
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
