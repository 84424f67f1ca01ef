"""trainq's engine against the real TensorFlow.js 4.22 (pure JS cpu backend, in node).

Every case is a trainq job spec with its initial weights and `shuffle: false`. The tf.js
side runs in this session (one node process for all cases, see `tfjs_results`); the
engine runs the same spec, on numpy, array_api_strict and torch alike; then each
epoch's loss, val_loss and metrics must agree to a relative 1e-5 and the weights after
every epoch to 1e-5 of the largest weight, as must `evaluate()` and `predict()` on
held-out data where a case asks for them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.parity.conftest import run_tfjs
from trainq.services.engine import Diverged, EpochEnd, Model, fit
from trainq.services.engine.arrays import namespace
from trainq.services.spec import JobSpec

pytestmark = pytest.mark.parity
ARRAY_LIBRARIES = ("numpy", "array_api_strict", "torch")

XY = tuple[np.ndarray, np.ndarray]
RELATIVE = 1e-5  # on losses and metrics
WEIGHT_SCALE = 1e-5  # of the largest |weight|, on weights and predictions


# ---------------------------------------------------------------- the cases' data


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _glorot(rng: np.random.Generator, layers: list[dict[str, Any]]) -> list[np.ndarray]:
    """Initial weights in getWeights() order: glorot-uniform kernels, small nonzero biases."""
    weights = []
    fan_in = layers[0]["inputShape"][0]
    for layer in layers:
        fan_out = layer["units"]
        limit = np.sqrt(6 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        if layer.get("useBias", True):
            weights.append(rng.uniform(-0.1, 0.1, (fan_out,)).astype(np.float32))
        fan_in = fan_out
    return weights


def _lists(array: np.ndarray) -> Any:
    return np.asarray(array, dtype=np.float32).tolist()


def _regression(seed: int, n: int, features: int, outputs: int = 1, scale: float = 1.0) -> XY:
    rng = _rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    true = rng.normal(size=(features, outputs))
    y = (x @ true * scale + 0.3 + 0.1 * rng.normal(size=(n, outputs))).astype(np.float32)
    return x, y


def _one_hot_classes(seed: int, n: int, features: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    labels = np.argmax(x @ rng.normal(size=(features, classes)) + 0.5 * rng.normal(size=(n, classes)), axis=1)
    return x, np.eye(classes, dtype=np.float32)[labels]


def _binary(seed: int, n: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x @ rng.normal(size=(features, 1)) + 0.5 * rng.normal(size=(n, 1)) > 0).astype(np.float32)
    return x, y


@dataclass
class Case:
    """A job spec for both sides, and held-out data for evaluate() and predict()."""

    name: str
    layers: list[dict[str, Any]]
    compile: dict[str, Any]
    fit: dict[str, Any]
    x: np.ndarray
    y: np.ndarray
    weights: list[np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None = None
    held_out: tuple[np.ndarray, np.ndarray] | None = None

    def spec(self) -> dict[str, Any]:
        """The trainq job spec (what the API would receive)."""
        data: dict[str, Any] = {"x": _lists(self.x), "y": _lists(self.y)}
        if self.validation is not None:
            data["validationData"] = {"x": _lists(self.validation[0]), "y": _lists(self.validation[1])}
        return {
            "model": {"layers": self.layers, "weights": [_lists(w) for w in self.weights]},
            "compile": self.compile,
            "fit": {**self.fit, "shuffle": False},
            "data": data,
        }

    def tfjs_document(self) -> dict[str, Any]:
        """The spec plus the harness's own evaluate/predict requests."""
        document = self.spec()
        if self.held_out is not None:
            x, y = self.held_out
            document["evaluate"] = {"x": _lists(x), "y": _lists(y), "batchSize": 7}
            document["predict"] = {"x": _lists(x), "batchSize": 7}
        return document


def _dense(units: int, activation: str = "linear", input_features: int | None = None, **options: Any) -> dict[str, Any]:
    layer: dict[str, Any] = {"units": units, "activation": activation, **options}
    if input_features is not None:
        layer["inputShape"] = [input_features]
    return layer


def _case(
    name: str,
    layers: list[dict[str, Any]],
    loss: str,
    optimizer: Any,
    data: tuple[np.ndarray, np.ndarray],
    *,
    metrics: tuple[str, ...] = (),
    epochs: int = 4,
    batch_size: int = 16,
    validation_split: float = 0.0,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    weights: list[np.ndarray] | None = None,
    fit_extra: dict[str, Any] | None = None,
) -> Case:
    fit_options: dict[str, Any] = {"epochs": epochs, "batchSize": batch_size, **(fit_extra or {})}
    if validation_split:
        fit_options["validationSplit"] = validation_split
    if weights is None:
        weights = _glorot(_rng(zlib.crc32(name.encode())), layers)
    return Case(
        name=name,
        layers=layers,
        compile={"optimizer": optimizer, "loss": loss, "metrics": list(metrics)},
        fit=fit_options,
        x=data[0],
        y=data[1],
        weights=weights,
        validation=validation,
        held_out=held_out,
    )


def _split(data: XY, keep: int) -> tuple[XY, XY]:
    x, y = data
    return (x[:keep], y[:keep]), (x[keep:], y[keep:])


def _seed_case() -> Case:
    # the seed job: y ≈ 2x + 1, 50 samples, 40 train in batches 16, 16 and a short 8
    rng = _rng(7)
    x = rng.uniform(0, 2, (60, 1)).astype(np.float32)
    y = (2 * x + 1 + 0.05 * rng.normal(size=(60, 1))).astype(np.float32)
    (train, held_out) = _split((x, y), 50)
    return _case(
        "seed_mae_sgd_validation_split_short_batch",
        [_dense(1, input_features=1)],
        "meanAbsoluteError",
        {"name": "sgd", "learningRate": 0.01},
        train,
        metrics=("mse",),
        epochs=20,
        validation_split=0.2,
        held_out=held_out,
        weights=[np.array([[0.3]], np.float32), np.array([0.0], np.float32)],
    )


def _zero_residual_case() -> Case:
    # every residual exactly 0 in float32: tf.js's d|r|/dr at 0 is -1, so it still moves the weights
    x = (np.arange(24, dtype=np.float32) / 4).reshape(-1, 1)
    y = 2 * x + 0.5
    return _case(
        "mae_exactly_zero_residuals_still_moves",
        [_dense(1, input_features=1)],
        "meanAbsoluteError",
        {"name": "sgd", "learningRate": 0.01},
        (x, y),
        epochs=3,
        batch_size=8,
        weights=[np.array([[2.0]], np.float32), np.array([0.5], np.float32)],
    )


def _cases() -> list[Case]:
    regression = _regression(1, 70, 4)
    reg_train, reg_held = _split(regression, 56)
    classes = _one_hot_classes(2, 76, 4, 3)
    cls_train, cls_held = _split(classes, 60)
    binary = _binary(3, 70, 3)
    bin_train, bin_held = _split(binary, 56)
    positive = _regression(4, 48, 3)
    positive_y = (np.abs(positive[1]) + 0.5).astype(np.float32)
    signs = (2 * _binary(5, 48, 3)[1] - 1).astype(np.float32)
    counts = _rng(6).poisson(2.0, (48, 1)).astype(np.float32)
    labels = np.argmax(classes[1], axis=1).astype(np.float32).reshape(-1, 1)
    soft_targets = _rng(8).dirichlet(np.ones(3), 76).astype(np.float32)
    multi = _regression(9, 48, 3, outputs=3)
    big_regression = _regression(10, 48, 3, scale=5.0)

    mlp = [_dense(8, "relu", 4), _dense(1)]
    classifier = [_dense(6, "tanh", 4), _dense(3, "softmax")]
    return [
        _seed_case(),
        _case(
            "relu_regression_adam",
            mlp,
            "meanSquaredError",
            {"name": "adam", "learningRate": 0.01},
            reg_train,
            metrics=("mae",),
            epochs=6,
            batch_size=10,
            validation_split=0.25,
            held_out=reg_held,
        ),
        _case(
            "softmax_categorical_crossentropy_rmsprop",
            classifier,
            "categoricalCrossentropy",
            {"name": "rmsprop", "learningRate": 0.01},
            cls_train,
            metrics=("accuracy",),
            epochs=6,
            validation_split=0.2,
            held_out=cls_held,
        ),
        _case(
            "sigmoid_binary_crossentropy_momentum",
            [_dense(1, "sigmoid", 3)],
            "binaryCrossentropy",
            {"name": "momentum", "learningRate": 0.1, "momentum": 0.9},
            bin_train,
            metrics=("accuracy",),
            epochs=6,
            validation_split=0.2,
            held_out=bin_held,
        ),
        _case(
            "sigmoid_binary_crossentropy_nesterov_momentum",
            [_dense(4, "relu", 3), _dense(1, "sigmoid")],
            "binaryCrossentropy",
            {"name": "momentum", "learningRate": 0.1, "momentum": 0.9, "useNesterov": True},
            bin_train,
            metrics=("binaryAccuracy",),
            epochs=6,
            validation_split=0.2,
            held_out=bin_held,
        ),
        _case(
            "huber_loss_adagrad",
            mlp,
            "huberLoss",
            {"name": "adagrad", "learningRate": 0.1},
            reg_train,
            epochs=5,
            validation_split=0.2,
            held_out=reg_held,
        ),
        _zero_residual_case(),
        _case(
            "mse_alias_adamax",
            [_dense(5, "elu", 4), _dense(1)],
            "mse",
            {"name": "adamax", "learningRate": 0.02},
            reg_train,
            metrics=("mse", "mae"),
            validation_split=0.2,
        ),
        _case(
            "mae_alias_adadelta",
            [_dense(5, "selu", 4), _dense(1)],
            "mae",
            {"name": "adadelta", "learningRate": 1.0},
            reg_train,
            validation_split=0.2,
        ),
        _case(
            "rmsprop_with_momentum",
            [_dense(5, "softplus", 4), _dense(1)],
            "meanSquaredError",
            {"name": "rmsprop", "learningRate": 0.01, "momentum": 0.5},
            reg_train,
        ),
        _case(
            # large, noisy gradients keep the running variance far above epsilon, where
            # tf.js's sqrt(s - (c² + ε)) and trainq's sqrt(s - c² + ε) agree to float32
            "centered_rmsprop_where_defined",
            [_dense(1, input_features=3)],
            "meanSquaredError",
            {"name": "rmsprop", "learningRate": 0.01, "centered": True},
            big_regression,
            batch_size=8,
        ),
        _case(
            "mape_alias_sgd_validation_data",
            [_dense(1, input_features=3)],
            "mape",
            {"name": "sgd", "learningRate": 0.002},
            (positive[0][:36], positive_y[:36]),
            metrics=("mape",),
            validation=(positive[0][36:], positive_y[36:]),
            batch_size=10,
        ),
        _case(
            "msle_alias_softplus_output",
            [_dense(4, "relu", 3), _dense(1, "softplus")],
            "msle",
            {"name": "adam", "learningRate": 0.05},
            (positive[0], positive_y),
        ),
        _case(
            "logcosh_sgd",
            [_dense(4, "softsign", 4), _dense(1)],
            "logcosh",
            {"name": "sgd", "learningRate": 0.1},
            reg_train,
        ),
        _case(
            "hinge_tanh",
            [_dense(1, "tanh", 3)],
            "hinge",
            {"name": "sgd", "learningRate": 0.1},
            (_binary(5, 48, 3)[0], signs),
        ),
        _case(
            "squared_hinge_hard_sigmoid_relu6",
            [_dense(4, "relu6", 3), _dense(1, "hardSigmoid")],
            "squaredHinge",
            {"name": "sgd", "learningRate": 0.1},
            (_binary(5, 48, 3)[0], signs),
        ),
        _case(
            "categorical_hinge_softmax",
            classifier,
            "categoricalHinge",
            {"name": "sgd", "learningRate": 0.1},
            cls_train,
            metrics=("categoricalAccuracy",),
        ),
        _case(
            "kullback_leibler_soft_targets",
            [_dense(4, "swish", 4), _dense(3, "softmax")],
            "kullbackLeiblerDivergence",
            {"name": "adam", "learningRate": 0.02},
            (classes[0], soft_targets),
        ),
        _case(
            "kld_alias_one_hot_targets",
            [_dense(4, "mish", 4), _dense(3, "softmax")],
            "kld",
            {"name": "sgd", "learningRate": 0.1},
            cls_train,
        ),
        _case(
            "poisson_softplus_counts",
            [_dense(1, "softplus", 3)],
            "poisson",
            {"name": "sgd", "learningRate": 0.05},
            (positive[0], counts),
        ),
        _case(
            "cosine_proximity_three_outputs",
            [_dense(3, input_features=3)],
            "cosineProximity",
            {"name": "sgd", "learningRate": 0.5},
            multi,
            metrics=("cosine",),
        ),
        _case(
            "sparse_categorical_crossentropy_accuracy",
            classifier,
            "sparseCategoricalCrossentropy",
            {"name": "adam", "learningRate": 0.02},
            (classes[0][:60], labels[:60]),
            metrics=("accuracy",),
            validation_split=0.2,
            held_out=(classes[0][60:], labels[60:]),
        ),
        _case(
            # tf.js's precision counts only outputs exactly 1: large weights saturate the sigmoid
            "binary_metrics_precision_ce_uppercase_mse",
            [_dense(1, "sigmoid", 3)],
            "binaryCrossentropy",
            {"name": "sgd", "learningRate": 0.01},
            bin_train,
            metrics=("precision", "ce", "MSE"),
            validation_split=0.2,
            weights=[np.array([[30.0], [-20.0], [25.0]], np.float32), np.array([2.0], np.float32)],
        ),
        _case(
            "categorical_metrics_crossentropy_by_name_and_shorthand",
            classifier,
            "categoricalHinge",
            {"name": "adam", "learningRate": 0.02},
            cls_train,
            metrics=("crossentropy", "categoricalCrossentropy", "MAE", "MAPE"),
            validation_split=0.2,
        ),
        _case(
            "sparse_metrics_crossentropy",
            classifier,
            "sparseCategoricalCrossentropy",
            {"name": "sgd", "learningRate": 0.2},
            (classes[0][:60], labels[:60]),
            metrics=("ce", "sparseCategoricalCrossentropy"),
        ),
        _case(
            "sigmoid_layer_without_bias",
            [_dense(3, "sigmoid", 4, useBias=False), _dense(1)],
            "meanSquaredError",
            {"name": "sgd", "learningRate": 0.1},
            reg_train,
            held_out=reg_held,
        ),
        _case(
            "optimizer_string_adam",
            mlp,
            "meanSquaredError",
            "adam",
            reg_train,
        ),
        _case(
            "optimizer_string_rmsprop",
            classifier,
            "categoricalCrossentropy",
            "rmsprop",
            cls_train,
            metrics=("acc",),
        ),
        _case(
            "optimizer_string_adagrad_with_mae",
            mlp,
            "meanAbsoluteError",
            "adagrad",
            reg_train,
        ),
        # 'adadelta' steps by lr·g (lr 1) at first, as tf.js reads the squared-gradient
        # average before updating it: with MSE this data diverges (see the test below)
        _case("optimizer_string_adadelta", mlp, "meanAbsoluteError", "adadelta", reg_train),
        *(_case(f"optimizer_string_{name}", mlp, "meanSquaredError", name, reg_train) for name in ("adamax", "sgd")),
        _case(
            "initial_epoch",
            mlp,
            "meanSquaredError",
            {"name": "sgd", "learningRate": 0.05},
            reg_train,
            epochs=5,
            fit_extra={"initialEpoch": 2},
            validation_split=0.2,
        ),
        _case(
            "early_stopping_against_a_baseline",
            mlp,
            "meanSquaredError",
            {"name": "sgd", "learningRate": 0.05},
            reg_train,
            epochs=8,
            validation_split=0.2,
            fit_extra={"earlyStopping": {"monitor": "val_loss", "patience": 2, "baseline": 0.0}},
        ),
    ]


CASES = _cases()
DIVERGING = _case(
    "adadelta_string_diverges_with_mse",
    [_dense(8, "relu", 4), _dense(1)],
    "meanSquaredError",
    "adadelta",
    _split(_regression(1, 70, 4), 56)[0],
)


# ---------------------------------------------------------------- running both sides


@pytest.fixture(scope="module")
def tfjs_results(tfjs: None) -> dict[str, dict[str, Any]]:
    """Every case through real tf.js, in one node process (its start costs ~0.3 s)."""
    cases = [*CASES, DIVERGING]
    answer = run_tfjs({"cases": [case.tfjs_document() for case in cases]})
    assert answer["version"] == "4.22.0" and answer["backend"] == "cpu", answer.get("version")
    return {case.name: result for case, result in zip(cases, answer["results"], strict=True)}


@dataclass
class EngineRun:
    history: dict[str, list[float]]
    epochs: list[int]
    weights_per_epoch: list[list[np.ndarray]]
    model: Model


def _run_engine(case: Case, xp: Any = None) -> EngineRun:
    job = JobSpec.model_validate(case.spec())
    config = job.to_training_config()
    x, y, validation = job.arrays()
    per_epoch: list[list[np.ndarray]] = []

    def keep(end: EpochEnd) -> None:
        per_epoch.append([np.array(w, dtype=np.float32) for w in end.take_checkpoint().weights])

    result = fit(config, x, y, validation_data=validation, xp=xp, on_epoch_end=keep)
    model = Model.from_weights(config.model, config.compile, result.weights, xp)
    return EngineRun(result.history, result.epochs, per_epoch, model)


def _tfjs_weights(weights: list[dict[str, Any]]) -> list[np.ndarray]:
    return [np.asarray(w["values"], dtype=np.float64).reshape(w["shape"]) for w in weights]


def _assert_close_numbers(ours: list[float], theirs: list[float], what: str) -> None:
    ours_a, theirs_a = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours_a.shape == theirs_a.shape, f"{what}: {len(ours)} values here, {len(theirs)} in tf.js"
    tolerance = RELATIVE * np.maximum(np.abs(theirs_a), 1e-6)
    bad = np.flatnonzero(~(np.abs(ours_a - theirs_a) <= tolerance))
    if bad.size:
        i = int(bad[0])
        raise AssertionError(
            f"{what}: first difference at index {i}: trainq {ours_a[i]!r}, tf.js {theirs_a[i]!r} "
            f"(relative {abs(ours_a[i] - theirs_a[i]) / max(abs(theirs_a[i]), 1e-30):.3g})\n"
            f"trainq {ours_a.tolist()}\ntf.js  {theirs_a.tolist()}"
        )


def _assert_close_weights(ours: list[np.ndarray], theirs: list[np.ndarray], what: str) -> None:
    assert [w.shape for w in ours] == [w.shape for w in theirs], what
    scale = max(float(np.max(np.abs(w))) for w in theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        worst = float(np.max(np.abs(a.astype(np.float64) - b)))
        assert worst <= WEIGHT_SCALE * scale, (
            f"{what}, weight {i}: max |diff| {worst:.3g} > {WEIGHT_SCALE:g} × max|w| {scale:.3g}\n"
            f"trainq {a.ravel()[:8].tolist()}\ntf.js  {b.ravel()[:8].tolist()}"
        )


# ---------------------------------------------------------------- the tests


@pytest.fixture(params=ARRAY_LIBRARIES)
def xp(request: pytest.FixtureRequest) -> ModuleType:
    """The engine's array namespace: numpy, array_api_strict, torch (CPU), where installed."""
    library = pytest.importorskip(request.param)
    return namespace(library)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_fit_matches_tfjs_epoch_by_epoch(case: Case, xp: ModuleType, tfjs_results: dict[str, dict[str, Any]]) -> None:
    theirs = tfjs_results[case.name]
    assert "error" not in theirs, theirs.get("error")
    _assert_close_weights(case.weights, _tfjs_weights(theirs["initialWeights"]), "initial weights")
    ours = _run_engine(case, xp)

    assert ours.epochs == theirs["epochs"]
    assert set(ours.history) == set(theirs["history"])
    for key in sorted(theirs["history"]):
        _assert_close_numbers(ours.history[key], theirs["history"][key], f"history[{key!r}]")
    assert len(ours.weights_per_epoch) == len(theirs["weightsPerEpoch"])
    for epoch, (mine, tfjs_weights) in zip(ours.epochs, zip(ours.weights_per_epoch, theirs["weightsPerEpoch"])):
        _assert_close_weights(mine, _tfjs_weights(tfjs_weights), f"weights after epoch {epoch}")

    if case.held_out is not None:
        x, y = case.held_out
        evaluated = ours.model.evaluate(x, y, batch_size=7)
        _assert_close_numbers([evaluated[name] for name in ours.model.log_keys], theirs["evaluate"], "evaluate()")
        assert theirs["metricsNames"] == ours.model.log_keys
        predicted = ours.model.predict(x, batch_size=7)
        _assert_close_weights([predicted], [np.asarray(theirs["predict"], np.float64)], "predict()")


def test_mae_with_zero_residuals_moves_the_weights_as_tfjs_does(tfjs_results: dict[str, dict[str, Any]]) -> None:
    """The parity above could pass with weights that never moved; here tf.js must move them."""
    case = next(c for c in CASES if c.name == "mae_exactly_zero_residuals_still_moves")
    theirs = _tfjs_weights(tfjs_results[case.name]["weightsPerEpoch"][0])
    assert theirs[0][0, 0] != 2.0 and theirs[1][0] != 0.5
    ours = _run_engine(case).weights_per_epoch[0]
    assert ours[0][0, 0] == pytest.approx(theirs[0][0, 0], rel=RELATIVE)


def test_fit_diverges_at_the_epoch_where_tfjs_loss_turns_nan(tfjs_results: dict[str, dict[str, Any]]) -> None:
    theirs = tfjs_results[DIVERGING.name]["history"]["loss"]
    # JSON has no NaN: tf.js's NaN epochs arrive as null
    first_nan = next(epoch for epoch, loss in enumerate(theirs) if loss is None or not np.isfinite(loss))
    with pytest.raises(Diverged) as raised:
        _run_engine(DIVERGING)
    assert raised.value.epoch == first_nan


def test_every_case_ran_in_tfjs(tfjs_results: dict[str, dict[str, Any]]) -> None:
    failed = {name: result["error"].splitlines()[0] for name, result in tfjs_results.items() if "error" in result}
    assert not failed
