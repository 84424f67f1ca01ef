"""trainq's model.json against the real TensorFlow.js 4.22: what tf.js's `model.save()`
writes for the same model, what its `tf.loadLayersModel` makes of trainq's export, and
what trainq reads from tf.js's own artifacts.

tf.js runs in one node process per test (`tfjs_models.mjs`); the artifacts travel in
memory here (the HTTP round trip is `tests/e2e/test_tfjs.py`)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from tests.parity.conftest import MODELS_PROGRAM, run_tfjs
from trainq.services.engine import Model
from trainq.services.engine.activations import ACTIVATION_NAMES
from trainq.services.engine.optimizers import OPTIMIZER_NAMES
from trainq.services.models.artifact import model_json, weights_bin
from trainq.services.models.reading import InvalidArtifact, read_artifact
from trainq.services.spec import Compile, DenseLayer, JobSpec

pytestmark = pytest.mark.parity

WEIGHT_SCALE = 1e-5  # of the largest |output|, on predictions (the parity tests' tolerance)
# the losses tf.js compiles from a string; huberLoss is trainq's (and tf.losses') only other
TFJS_LOSSES = [
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
]


def tfjs(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    return run_tfjs({"steps": list(steps)}, MODELS_PROGRAM)["results"]


def weights_for(layers: list[dict[str, Any]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights, fan_in = [], layers[0]["inputShape"][0]
    for layer in layers:
        weights.append(rng.uniform(-0.5, 0.5, (fan_in, layer["units"])).astype(np.float32))
        if layer.get("useBias", True):
            weights.append(rng.uniform(-0.1, 0.1, (layer["units"],)).astype(np.float32))
        fan_in = layer["units"]
    return weights


def trainq_export(
    layers: list[dict[str, Any]], compile: dict[str, Any] | None, weights: list[np.ndarray]
) -> tuple[dict[str, Any], bytes]:
    parsed = [DenseLayer.model_validate(layer) for layer in layers]
    return model_json(parsed, None if compile is None else Compile.model_validate(compile), weights, {}), weights_bin(
        weights
    )


def renamed(document: dict[str, Any]) -> dict[str, Any]:
    """tf.js's model.json with its names as a first model's: tf.js numbers models and
    layers across its process (sequential_2, dense_Dense4), trainq within each model."""
    text = json.dumps(document)
    config = document["modelTopology"]["config"]
    text = text.replace(f'"{config["name"]}"', '"sequential_1"')
    for i, layer in enumerate(config["layers"]):
        old = layer["config"]["name"]
        text = text.replace(f'"{old}"', f'"dense_Dense{i + 1}"').replace(f'"{old}/', f'"dense_Dense{i + 1}/')
    return json.loads(text)


def model_spec(layers: list[dict[str, Any]], weights: list[np.ndarray]) -> dict[str, Any]:
    return {"layers": layers, "weights": [w.tolist() for w in weights]}


LAYERS = [
    {"units": 5, "inputShape": [3], "activation": "relu"},
    {"units": 4, "activation": "tanh", "useBias": False, "kernelInitializer": "heUniform"},
    {
        "units": 2,
        "activation": "softmax",
        "kernelInitializer": {"name": "randomNormal", "mean": 0.5, "stddev": 0.2},
        "biasInitializer": {"name": "constant", "value": 0.1},
    },
]


def test_the_export_is_what_tfjs_writes_for_the_same_model() -> None:
    cases: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
        (
            LAYERS,
            {
                "optimizer": {"name": "adam", "learningRate": 0.01},
                "loss": "categoricalCrossentropy",
                "metrics": ["accuracy", "mse"],
            },
        ),
        (
            [
                {
                    "units": 1,
                    "inputShape": [2],
                    "kernelInitializer": {
                        "name": "varianceScaling",
                        "scale": 2,
                        "mode": "fanOut",
                        "distribution": "uniform",
                    },
                }
            ],
            {"optimizer": "sgd", "loss": "meanSquaredError"},
        ),
        (
            [{"units": 3, "inputShape": [4], "activation": "hardSigmoid"}, {"units": 1, "activation": "sigmoid"}],
            {
                "optimizer": {"name": "rmsprop", "momentum": 0.5, "centered": True},
                "loss": "binaryCrossentropy",
                "metrics": ["binaryAccuracy", "precision"],
            },
        ),
        (
            [{"units": 2, "inputShape": [2]}],
            {
                "optimizer": {"name": "momentum", "learningRate": 0.1, "momentum": 0.8, "useNesterov": True},
                "loss": "meanAbsoluteError",
            },
        ),
    ]
    written = tfjs(
        *({"save": {"model": model_spec(layers, weights_for(layers)), "compile": compile}} for layers, compile in cases)
    )
    for (layers, compile), tf_artifact in zip(cases, written):
        assert "error" not in tf_artifact, tf_artifact
        ours, data = trainq_export(layers, compile, weights_for(layers))
        tf_json = renamed(tf_artifact["modelJson"])
        assert ours["modelTopology"] == tf_json["modelTopology"]
        assert ours["format"] == tf_json["format"] and ours["convertedBy"] is tf_json["convertedBy"] is None
        assert ours["trainingConfig"] == tf_json["trainingConfig"]
        # tf.js appends the optimizer's state (includeOptimizer), trainq exports the model's weights
        model_specs = [spec for spec in tf_json["weightsManifest"][0]["weights"] if spec.get("group") != "optimizer"]
        assert ours["weightsManifest"][0]["weights"] == model_specs
        assert ours["weightsManifest"][0]["paths"] == ["weights.bin"]
        assert tf_artifact["fields"] == ["model.json", "model.weights.bin"]
        assert base64.b64decode(tf_artifact["weights"]).startswith(data)


def test_tfjs_loads_the_export_compiled_and_predicts_what_trainq_predicts() -> None:
    compile = {
        "optimizer": {"name": "adagrad", "learningRate": 0.05},
        "loss": "categoricalCrossentropy",
        "metrics": ["acc"],
    }
    weights = weights_for(LAYERS, seed=3)
    document, data = trainq_export(LAYERS, compile, weights)
    x = np.random.default_rng(4).normal(size=(9, 3)).astype(np.float32)
    [loaded] = tfjs({"load": {"modelJson": document, "weights": base64.b64encode(data).decode(), "x": x.tolist()}})
    assert "error" not in loaded, loaded
    for got, want in zip(loaded["weights"], weights, strict=True):
        np.testing.assert_array_equal(np.asarray(got["values"], np.float32).reshape(got["shape"]), want)
    spec = JobSpec.model_validate({"model": {"layers": LAYERS}, "compile": compile, "data": {"x": [[0]], "y": [[0]]}})
    config = spec.to_training_config()
    expected = Model.from_weights(config.model, config.compile, weights).predict(x)
    predicted = np.asarray(loaded["predict"], np.float32).reshape(expected.shape)
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=WEIGHT_SCALE * np.abs(expected).max())
    assert loaded["optimizer"] == {
        "className": "Adagrad",
        "config": {"learningRate": 0.05, "initialAccumulatorValue": 0.1},
    }
    assert loaded["loss"] == "categoricalCrossentropy" and loaded["metricsNames"] == ["loss", "acc"]


def _round_trip_cases() -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    cases: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
        ([{"units": 3, "inputShape": [2], "activation": activation}], {"optimizer": "sgd", "loss": "meanSquaredError"})
        for activation in ACTIVATION_NAMES
    ]
    cases += [
        ([{"units": 3, "inputShape": [2]}], {"optimizer": "adam", "loss": loss, "metrics": ["mae"]})
        for loss in [*TFJS_LOSSES, "huberLoss", "mse"]
    ]
    cases += [
        (
            [{"units": 3, "inputShape": [2]}],
            {
                "optimizer": {"name": name, "learningRate": 0.125},
                "loss": "hinge",
                "metrics": ["accuracy", "meanSquaredLogarithmicError"],
            },
        )
        for name in OPTIMIZER_NAMES
    ]
    return cases


def test_every_activation_loss_and_optimizer_survives_the_export_round_trip() -> None:
    cases = _round_trip_cases()
    steps = []
    for layers, compile in cases:
        weights = weights_for(layers)
        document, data = trainq_export(layers, compile, weights)
        # trainq reads back exactly what it wrote
        imported = read_artifact(json.loads(json.dumps(document)), data, weights_field="weights.bin")
        assert [layer.model_dump() for layer in imported.layers] == [
            DenseLayer.model_validate(layer).model_dump() for layer in layers
        ]
        assert imported.compile == Compile.model_validate(compile)
        for got, want in zip(imported.weights, weights, strict=True):
            np.testing.assert_array_equal(got, want)
        steps.append({"load": {"modelJson": document, "weights": base64.b64encode(data).decode()}})
    # and tf.js loads every one, compiled as trainq compiled it wherever tf.js has the names
    for (_, compile), loaded in zip(cases, tfjs(*steps)):
        assert "error" not in loaded, (compile, loaded)
        parsed = Compile.model_validate(compile)
        if parsed.loss == "huberLoss":
            assert "optimizer" not in loaded  # no string for it in tf.js: loaded uncompiled
            continue
        assert loaded["optimizer"]["className"].lower() == (
            parsed.optimizer if isinstance(parsed.optimizer, str) else parsed.optimizer.name
        )


def test_what_tfjs_saves_is_read_as_its_layers_compile_and_weights() -> None:
    compile: dict[str, Any] = {
        "optimizer": {"name": "adam", "learningRate": 0.01, "beta1": 0.8},
        "loss": "categoricalCrossentropy",
        "metrics": ["accuracy"],
    }
    weights = weights_for(LAYERS, seed=9)
    [saved] = tfjs({"save": {"model": model_spec(LAYERS, weights), "compile": compile}})
    imported = read_artifact(saved["modelJson"], base64.b64decode(saved["weights"]), weights_field="model.weights.bin")
    assert [layer.model_dump() for layer in imported.layers] == [
        DenseLayer.model_validate(layer).model_dump() for layer in LAYERS
    ]
    assert imported.compile == Compile.model_validate(
        {**compile, "optimizer": {**compile["optimizer"], "beta2": 0.999, "epsilon": 1e-7}}
    )
    for got, want in zip(imported.weights, weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_conv2d_model_or_weights_of_the_wrong_length_are_refused_naming_the_field() -> None:
    conv = {
        "layers": [
            {"type": "conv2d", "options": {"inputShape": [4, 4, 1], "filters": 2, "kernelSize": 3}},
            {"type": "flatten", "options": {}},
            {"units": 1},
        ]
    }
    [saved, dense] = tfjs({"save": {"model": conv}}, {"save": {"model": model_spec(LAYERS, weights_for(LAYERS))}})
    with pytest.raises(InvalidArtifact) as refused:
        read_artifact(saved["modelJson"], base64.b64decode(saved["weights"]), weights_field="model.weights.bin")
    assert refused.value.field == "modelTopology.config.layers[0].class_name"
    assert "'Conv2D' layers are not supported" in refused.value.reason
    data = base64.b64decode(dense["weights"])
    with pytest.raises(InvalidArtifact) as short:
        read_artifact(dense["modelJson"], data[:-4], weights_field="model.weights.bin")
    assert short.value.field == "model.weights.bin"
    assert f"holds {len(data) - 4} bytes; the weights manifest describes {len(data)}" in short.value.reason
