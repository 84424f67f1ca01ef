"""Every error validate_training raises names the job spec field at fault."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from trainq.services.engine import (
    CompileConfig,
    DenseConfig,
    EarlyStoppingConfig,
    EpochEnd,
    FitConfig,
    InitializerConfig,
    InvalidConfig,
    InvalidData,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
    fit,
    validate_training,
)

X = np.ones((10, 3), np.float32)
Y = np.ones((10, 1), np.float32)
GOOD = TrainingConfig(
    model=ModelConfig(layers=(DenseConfig(4, input_shape=(3,), activation="relu"), DenseConfig(1))),
    compile=CompileConfig(OptimizerConfig("adam"), "meanSquaredError", ("mae",)),
    fit=FitConfig(epochs=2, validation_split=0.2),
)


def with_layers(*layers: DenseConfig) -> TrainingConfig:
    return replace(GOOD, model=ModelConfig(layers=layers))


def with_compile(**changes) -> TrainingConfig:
    return replace(GOOD, compile=replace(GOOD.compile, **changes))


def with_fit(**changes) -> TrainingConfig:
    return replace(GOOD, fit=replace(GOOD.fit, **changes))


def with_weights(*weights: np.ndarray) -> TrainingConfig:
    return replace(GOOD, model=replace(GOOD.model, weights=weights))


def test_a_good_job_passes():
    validate_training(GOOD, X, Y)
    validate_training(GOOD, X, Y, (X[:2], Y[:2]))


CONFIG_ERRORS = [
    (with_layers(DenseConfig(4), DenseConfig(1)), "model.layers[0].inputShape"),
    (with_layers(DenseConfig(4, input_shape=(3, 2)), DenseConfig(1)), "model.layers[0].inputShape"),
    (with_layers(DenseConfig(4, input_shape=(3,)), DenseConfig(1, input_shape=(5,))), "model.layers[1].inputShape"),
    (with_layers(DenseConfig(0, input_shape=(3,))), "model.layers[0].units"),
    (with_layers(DenseConfig(4, input_shape=(3,)), DenseConfig(1, activation="gelu")), "model.layers[1].activation"),
    (
        with_layers(DenseConfig(1, input_shape=(3,), kernel_initializer=InitializerConfig("xavier"))),
        "model.layers[0].kernelInitializer",
    ),
    (
        with_layers(DenseConfig(1, input_shape=(3,), bias_initializer=InitializerConfig("nope"))),
        "model.layers[0].biasInitializer",
    ),
    (
        with_layers(DenseConfig(1, input_shape=(3,), kernel_initializer=InitializerConfig("randomNormal", {"sd": 1}))),
        "model.layers[0].kernelInitializer.sd",
    ),
    (
        with_layers(DenseConfig(2, input_shape=(3,), kernel_initializer=InitializerConfig("identity")), DenseConfig(1)),
        "model.layers[0].kernelInitializer",
    ),
    (
        with_layers(
            DenseConfig(1, input_shape=(3,), kernel_initializer=InitializerConfig("constant", {"value": 1e39}))
        ),
        "model.layers[0].kernelInitializer",
    ),
    (
        with_layers(
            DenseConfig(
                1, input_shape=(3,), kernel_initializer=InitializerConfig("randomUniform", {"minval": 1, "maxval": -1})
            )
        ),
        "model.layers[0].kernelInitializer.minval",
    ),
    (with_layers(DenseConfig(65_536, input_shape=(3,)), *[DenseConfig(65_536)] * 63), "model.layers"),
    (replace(GOOD, model=ModelConfig(layers=())), "model.layers"),
    (with_compile(loss="meanSquareError"), "compile.loss"),
    (with_compile(optimizer=OptimizerConfig("adamw")), "compile.optimizer"),
    (with_compile(optimizer=OptimizerConfig("adam", {"learningRate": 0})), "compile.optimizer.learningRate"),
    (with_compile(metrics=("mae", "f1score")), "compile.metrics[1]"),
    (with_fit(epochs=0), "fit.epochs"),
    (with_fit(batch_size=0), "fit.batchSize"),
    (with_fit(validation_split=1.0), "fit.validationSplit"),
    (with_fit(initial_epoch=2), "fit.initialEpoch"),
    (with_fit(early_stopping=EarlyStoppingConfig(monitor="val_acc")), "fit.earlyStopping.monitor"),
    (with_fit(validation_split=0.0, early_stopping=EarlyStoppingConfig()), "fit.earlyStopping.monitor"),
    (with_fit(early_stopping=EarlyStoppingConfig(patience=-1)), "fit.earlyStopping.patience"),
    (with_weights(np.ones((3, 4), np.float32)), "model.weights"),
    (
        with_weights(np.ones((3, 4)), np.ones(4), np.ones((4, 2)), np.ones(1)),
        "model.weights[2]",
    ),
    (
        with_weights(np.ones((3, 4)), np.full(4, np.nan), np.ones((4, 1)), np.ones(1)),
        "model.weights[1]",
    ),
]


@pytest.mark.parametrize(("config", "field"), CONFIG_ERRORS, ids=[field for _, field in CONFIG_ERRORS])
def test_config_errors_name_their_field(config, field):
    with pytest.raises(InvalidConfig) as caught:
        validate_training(config, X, Y)
    assert caught.value.field == field


def test_weights_without_bias_entries_where_use_bias_is_false_are_accepted():
    config = TrainingConfig(
        model=ModelConfig(
            layers=(DenseConfig(2, input_shape=(3,), use_bias=False), DenseConfig(1)),
            weights=(np.ones((3, 2), np.float32), np.ones((2, 1), np.float32), np.ones(1, np.float32)),
        ),
        compile=GOOD.compile,
    )
    validate_training(config, X, Y)


def nan_at(array: np.ndarray, i: int, j: int, value: float = np.nan) -> np.ndarray:
    copy = array.copy()
    copy[i, j] = value
    return copy


DATA_ERRORS = [
    (np.ones((10, 2), np.float32), Y, None, "data.x"),
    (X, np.ones((9, 1), np.float32), None, "data.y"),
    (X, np.ones((10, 2), np.float32), None, "data.y"),
    (np.ones(10, np.float32), Y, None, "data.x"),
    (nan_at(X, 4, 2), Y, None, "data.x[4][2]"),
    (X, nan_at(Y, 7, 0, np.inf), None, "data.y[7][0]"),
    (X, Y, (np.ones((2, 4), np.float32), Y[:2]), "data.validationData.x"),
    (X, Y, (X[:2], Y[:3]), "data.validationData.y"),
    (X, Y, (X[:2], nan_at(Y[:2], 1, 0)), "data.validationData.y[1][0]"),
]


@pytest.mark.parametrize(("x", "y", "validation", "field"), DATA_ERRORS, ids=[d[-1] for d in DATA_ERRORS])
def test_data_errors_name_their_field(x, y, validation, field):
    with pytest.raises(InvalidData) as caught:
        validate_training(GOOD, x, y, validation)
    assert caught.value.field == field


def test_a_validation_split_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(InvalidConfig) as caught:
        validate_training(with_fit(validation_split=0.5), X[:1], Y[:1])
    assert caught.value.field == "fit.validationSplit"


def test_fit_validates_before_training():
    trained: list[EpochEnd] = []
    with pytest.raises(InvalidData):
        fit(GOOD, np.ones((10, 2), np.float32), Y, on_epoch_end=trained.append)
    assert trained == []
