"""A fit stopped at epoch k, checkpointed to bytes and resumed ends bit-for-bit where the
uninterrupted fit ends: the same weights, and the same logs for the epochs after k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainq.services.engine import (
    Checkpoint,
    CompileConfig,
    DenseConfig,
    EarlyStoppingConfig,
    FitConfig,
    FitResult,
    InvalidConfig,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
    fit,
)

RNG = np.random.default_rng(8)
X = RNG.normal(size=(45, 3)).astype(np.float32)
Y = np.tanh(X @ np.array([[1.0], [-0.5], [0.25]], np.float32)).astype(np.float32)

OPTIMIZERS = [
    ("sgd", {"learningRate": 0.05}),
    ("momentum", {"learningRate": 0.02, "momentum": 0.9, "useNesterov": True}),
    ("adam", {"learningRate": 0.01}),
    ("adamax", {"learningRate": 0.01, "decay": 0.01}),
    ("rmsprop", {"learningRate": 0.005, "momentum": 0.5, "centered": True}),
    ("adagrad", {"learningRate": 0.05}),
    ("adadelta", {"learningRate": 0.1}),
]


def config(optimizer: str, options: dict, epochs: int = 6, early: EarlyStoppingConfig | None = None) -> TrainingConfig:
    return TrainingConfig(
        model=ModelConfig(layers=(DenseConfig(4, input_shape=(3,), activation="relu"), DenseConfig(1))),
        compile=CompileConfig(OptimizerConfig(optimizer, options), "meanSquaredError", ("mae",)),
        fit=FitConfig(epochs=epochs, batch_size=8, shuffle=True, validation_split=0.2, seed=21, early_stopping=early),
    )


def interrupted_at(cfg: TrainingConfig, k: int, xp) -> tuple[bytes, FitResult]:
    """Run until epoch k is done, then cancel at the next batch; the last checkpoint's bytes."""
    saved: list[bytes] = []
    cancel = [False]

    def on_epoch_end(end) -> None:
        saved.append(end.take_checkpoint().to_bytes())
        cancel[0] = end.epoch + 1 == k

    result = fit(cfg, X, Y, xp=xp, on_epoch_end=on_epoch_end, should_stop=lambda: cancel[0])
    assert result.stop_reason == "cancelled"
    return saved[-1], result


def after(history: dict[str, list[float]], k: int) -> dict[str, list[float]]:
    return {key: values[k:] for key, values in history.items()}


def before(history: dict[str, list[float]], k: int) -> dict[str, list[float]]:
    return {key: values[:k] for key, values in history.items()}


@pytest.mark.parametrize(("optimizer", "options"), OPTIMIZERS, ids=[name for name, _ in OPTIMIZERS])
def test_resume_from_epoch_k_ends_bit_for_bit_as_the_uninterrupted_fit(xp, optimizer, options):
    cfg = config(optimizer, options)
    uninterrupted = fit(cfg, X, Y, xp=xp)
    data, interrupted = interrupted_at(cfg, 3, xp)
    assert interrupted.epochs == [0, 1, 2]
    assert interrupted.history == before(uninterrupted.history, 3)
    resumed = fit(cfg, X, Y, xp=xp, resume_from=Checkpoint.from_bytes(data))
    assert uninterrupted.epochs == [0, 1, 2, 3, 4, 5]
    assert resumed.epochs == [3, 4, 5]
    assert resumed.history == after(uninterrupted.history, 3)
    for a, b in zip(resumed.weights, uninterrupted.weights):
        np.testing.assert_array_equal(a, b)


def test_resume_keeps_early_stopping_state():
    early = EarlyStoppingConfig(monitor="val_loss", patience=2, min_delta=0.05)
    cfg = config("adam", {"learningRate": 0.01}, epochs=30, early=early)
    uninterrupted = fit(cfg, X, Y)
    assert uninterrupted.stop_reason == "early_stopping"
    k = len(uninterrupted.epochs) - 1  # resume just before the stopping epoch
    data, _ = interrupted_at(cfg, k, None)
    resumed = fit(cfg, X, Y, resume_from=Checkpoint.from_bytes(data))
    assert resumed.stop_reason == "early_stopping"
    assert resumed.epochs == [k]
    assert resumed.history == after(uninterrupted.history, k)


def test_resuming_a_finished_early_stop_returns_at_once():
    cfg = config("sgd", {"learningRate": 0.05}, epochs=30, early=EarlyStoppingConfig(monitor="loss", baseline=0.0))
    saved = []
    first = fit(cfg, X, Y, on_epoch_end=lambda end: saved.append(end.take_checkpoint().to_bytes()))
    again = fit(cfg, X, Y, resume_from=Checkpoint.from_bytes(saved[-1]))
    assert again.stop_reason == first.stop_reason == "early_stopping"
    assert again.epochs == [] and again.history == {}
    for a, b in zip(again.weights, first.weights):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_costs_what_the_model_costs_not_what_the_epochs_so_far_cost():
    sizes = []
    fit(
        config("adam", {}, epochs=40),
        X,
        Y,
        on_epoch_end=lambda end: sizes.append(len(end.take_checkpoint().to_bytes())),
    )
    # only the digits of counters and scalars vary; 40 epochs of 4 logs would add kilobytes
    assert max(sizes) - min(sizes) < 64


def test_bytes_round_trip_every_field():
    checkpoint = Checkpoint(
        epoch=2,
        weights=[np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.1], np.float32)],
        optimizer={
            "iterations": 7,
            "scalars": {"acc_beta1": float(np.float32(0.9) ** 7)},
            "slots": {"m": [np.ones((2, 3), np.float32), np.zeros(1, np.float32)]},
        },
        rng=dict(np.random.default_rng(5).bit_generator.state),
        early_stopping={"wait": 1, "best": math.inf},
        stopped=False,
    )
    back = Checkpoint.from_bytes(checkpoint.to_bytes())
    assert back.epoch == 2 and back.stopped is False
    assert back.rng == checkpoint.rng
    assert back.early_stopping == {"wait": 1, "best": math.inf}
    assert back.optimizer["iterations"] == 7 and back.optimizer["scalars"] == checkpoint.optimizer["scalars"]
    for a, b in zip(
        back.weights + back.optimizer["slots"]["m"], checkpoint.weights + checkpoint.optimizer["slots"]["m"]
    ):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32


def test_bytes_that_are_not_a_checkpoint_are_refused():
    with pytest.raises(InvalidConfig) as caught:
        Checkpoint.from_bytes(b"not a checkpoint")
    assert caught.value.field == "checkpoint"


def test_a_checkpoint_of_another_model_is_refused():
    saved = []
    fit(config("sgd", {}, epochs=1), X, Y, on_epoch_end=lambda end: saved.append(end.take_checkpoint()))
    other = TrainingConfig(
        model=ModelConfig(layers=(DenseConfig(2, input_shape=(3,)), DenseConfig(1))),
        compile=CompileConfig(OptimizerConfig("sgd"), "meanSquaredError"),
        fit=FitConfig(epochs=3),
    )
    with pytest.raises(InvalidConfig) as caught:
        fit(other, X, Y, resume_from=saved[0])
    assert caught.value.field == "checkpoint"
