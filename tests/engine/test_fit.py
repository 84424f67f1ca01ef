"""fit() as tf.js's fitLoop: validation split, batching, epoch averaging, initialEpoch,
early stopping, seeding, initial weights, hooks, cancellation, divergence."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from trainq.services.engine import (
    CompileConfig,
    DenseConfig,
    Diverged,
    EarlyStoppingConfig,
    EpochEnd,
    FitConfig,
    InitializerConfig,
    Model,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
    fit,
)
from trainq.services.engine.fit import EarlyStopping

RNG = np.random.default_rng(3)
X = RNG.normal(size=(50, 2)).astype(np.float32)
Y = (X @ np.array([[1.5], [-2.0]], np.float32) + 0.5).astype(np.float32)
W_START = (np.array([[0.1], [0.2]], np.float32), np.array([0.0], np.float32))


def config(
    *,
    loss: str = "meanSquaredError",
    optimizer: str = "sgd",
    options: dict | None = None,
    metrics: tuple[str, ...] = (),
    weights: tuple[np.ndarray, ...] | None = W_START,
    layers: tuple[DenseConfig, ...] = (DenseConfig(1, input_shape=(2,)),),
    **fit_options,
) -> TrainingConfig:
    fit_options.setdefault("shuffle", False)
    return TrainingConfig(
        model=ModelConfig(layers=layers, weights=weights),
        compile=CompileConfig(OptimizerConfig(optimizer, options or {"learningRate": 0.05}), loss, metrics),
        fit=FitConfig(**fit_options),
    )


def hand_rolled_sgd(x, y, w, b, lr, batch_size, epochs):
    """tf.js's loop for Dense(1) + MSE + SGD, written plainly in float32."""
    w, b, lr = w.copy(), b.copy(), np.float32(lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            r = xb @ w + b - yb
            total += float(np.mean(r * r)) * len(xb)
            g = r * np.float32(2 / len(xb))
            w -= lr * (xb.T @ g)
            b -= lr * g.sum(axis=0)
        losses.append(total / len(x))
    return losses, [w, b]


def test_epoch_loss_is_the_batch_size_weighted_mean_with_a_short_last_batch(xp):
    cfg = config(epochs=3, batch_size=16)  # 50 rows: batches of 16, 16, 16, 2
    result = fit(cfg, X, Y, xp=xp)
    losses, weights = hand_rolled_sgd(X, Y, *W_START, 0.05, 16, 3)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-5)
    for got, want in zip(result.weights, weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32
    assert result.epochs == [0, 1, 2] and result.stop_reason == "completed"


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_taken_in_several_runs_give_the_numbers_of_one_run(xp, shuffle, monkeypatch):
    # an epoch's batches are taken BATCHES_PER_RUN at a time (their views and loss values
    # held per run); force runs of 3 and 2 batches, unshuffled views made per run too,
    # against one run of the epoch's 4 batches
    cfg = config(epochs=3, batch_size=16, metrics=("mae",), shuffle=shuffle, seed=1)
    one_run = fit(cfg, X, Y, xp=xp)
    module = sys.modules["trainq.services.engine.fit"]  # services.engine.fit is the function the package exports
    for per_run, views_kept in ((3, 65_536), (2, 0)):
        monkeypatch.setattr(module, "BATCHES_PER_RUN", per_run)
        monkeypatch.setattr(module, "VIEWS_KEPT", views_kept)
        runs = fit(cfg, X, Y, xp=xp)
        for got, want in zip(runs.weights, one_run.weights):
            np.testing.assert_array_equal(got, want)
        for key in ("loss", "mae"):  # the totals are summed per run, then added up
            np.testing.assert_allclose(runs.history[key], one_run.history[key], rtol=1e-6)


@pytest.mark.parametrize("stop_at, finished", [(7, [0]), (8, [0, 1])])
def test_should_stop_in_a_run_of_batches_keeps_only_finished_epochs(monkeypatch, stop_at, finished):
    # 4 batches an epoch in runs of 3: the 7th batch ends epoch 1's first run, the 8th
    # is epoch 1's last batch, alone in its run, and that epoch is kept
    monkeypatch.setattr(sys.modules["trainq.services.engine.fit"], "BATCHES_PER_RUN", 3)
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) == stop_at

    result = fit(config(epochs=5, batch_size=16), X, Y, should_stop=should_stop)
    assert result.epochs == finished and result.stop_reason == "cancelled" and len(calls) == stop_at
    assert result.history == fit(config(epochs=len(finished), batch_size=16), X, Y).history


def test_validation_split_holds_out_the_last_rows_even_when_shuffling(xp):
    cfg = config(epochs=2, batch_size=8, validation_split=0.2, shuffle=True, seed=5, metrics=("mae",))
    result = fit(cfg, X, Y, xp=xp)
    # splitAt = floor(50 * 0.8) = 40; validation is rows 40..49 after the last update
    model = Model.from_weights(cfg.model, cfg.compile, result.weights)
    held_out = model.evaluate(X[40:], Y[40:], batch_size=8)
    np.testing.assert_allclose(result.history["val_loss"][-1], held_out["loss"], rtol=1e-6)
    np.testing.assert_allclose(result.history["val_mae"][-1], held_out["mae"], rtol=1e-6)
    # and training saw only rows 0..39: the same fit on them alone, validated on the rest
    alone = fit(
        config(epochs=2, batch_size=8, shuffle=True, seed=5, metrics=("mae",)),
        X[:40],
        Y[:40],
        xp=xp,
        validation_data=(X[40:], Y[40:]),
    )
    assert alone.history == result.history


def test_validation_data_overrides_validation_split():
    cfg = config(epochs=1, validation_split=0.5)
    result = fit(cfg, X, Y, validation_data=(X[:5], Y[:5]))
    model = Model.from_weights(cfg.model, cfg.compile, result.weights)
    np.testing.assert_allclose(result.history["val_loss"][0], model.evaluate(X[:5], Y[:5])["loss"], rtol=1e-6)
    full = fit(config(epochs=1), X, Y)
    assert full.history["loss"] == result.history["loss"]  # all 50 rows trained


def test_same_seed_same_result_and_another_seed_another(xp):
    cfg = config(weights=None, epochs=3, batch_size=8, shuffle=True, seed=11, validation_split=0.1)
    first, second = fit(cfg, X, Y, xp=xp), fit(cfg, X, Y, xp=xp)
    assert first.history == second.history
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a, b)
    other = fit(config(weights=None, epochs=3, batch_size=8, shuffle=True, seed=12, validation_split=0.1), X, Y, xp=xp)
    assert other.history["loss"] != first.history["loss"]


def test_shuffle_changes_the_batches_but_not_the_data():
    plain = fit(config(epochs=2, batch_size=8), X, Y)
    shuffled = fit(config(epochs=2, batch_size=8, shuffle=True, seed=1), X, Y)
    assert plain.history["loss"][0] != shuffled.history["loss"][0]
    # the first epoch's loss is taken before each update, so both start from similar values
    np.testing.assert_allclose(plain.history["loss"][0], shuffled.history["loss"][0], rtol=0.5)


def test_initial_weights_override_the_initializers():
    layers = (DenseConfig(1, input_shape=(2,), kernel_initializer=InitializerConfig("ones")),)
    result = fit(config(layers=layers, epochs=1, batch_size=50, options={"learningRate": 1e-9}), X, Y)
    np.testing.assert_allclose(result.weights[0], W_START[0], atol=1e-6)


def test_initial_epoch_runs_the_remaining_epochs_under_their_numbers():
    result = fit(config(epochs=5, initial_epoch=3), X, Y)
    assert result.epochs == [3, 4]
    assert len(result.history["loss"]) == 2


def test_early_stopping_stops_when_the_monitor_stops_improving():
    cfg = config(
        epochs=20,
        early_stopping=EarlyStoppingConfig(monitor="loss", min_delta=1e9, patience=2),
    )
    result = fit(cfg, X, Y)
    # epoch 0 improves on +inf; epochs 1 and 2 miss the huge minDelta: stop after 2
    assert result.epochs == [0, 1, 2]
    assert result.stop_reason == "early_stopping"


def test_early_stopping_baseline_and_zero_patience_stop_after_the_first_epoch():
    cfg = config(epochs=20, early_stopping=EarlyStoppingConfig(monitor="loss", baseline=0.0))
    result = fit(cfg, X, Y)
    assert result.epochs == [0] and result.stop_reason == "early_stopping"


def test_early_stopping_auto_mode_maximises_accuracy_names():
    acc = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", patience=1))
    assert not acc.epoch_end({"val_acc": 0.5})
    assert not acc.epoch_end({"val_acc": 0.6})
    assert acc.epoch_end({"val_acc": 0.55})
    loss = EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=1, min_delta=0.1))
    assert not loss.epoch_end({"val_loss": 1.0})
    assert loss.epoch_end({"val_loss": 0.95})  # better, but not by more than minDelta
    forced = EarlyStopping(EarlyStoppingConfig(monitor="val_acc", mode="min", patience=1))
    assert not forced.epoch_end({"val_acc": 0.5})
    assert forced.epoch_end({"val_acc": 0.6})


def test_on_epoch_end_sees_every_epoch_with_its_logs(xp):
    seen: list[EpochEnd] = []
    result = fit(config(epochs=3, validation_split=0.2, metrics=("mse",)), X, Y, xp=xp, on_epoch_end=seen.append)
    assert [e.epoch for e in seen] == [0, 1, 2]
    assert [e.logs["val_loss"] for e in seen] == result.history["val_loss"]
    assert set(seen[0].logs) == {"loss", "mse", "val_loss", "val_mse"}
    assert [e.take_checkpoint().epoch for e in seen] == [1, 2, 3]


def test_should_stop_cancels_after_the_current_batch_keeping_finished_epochs(xp):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) == 10  # 50 rows / 16 = 4 batches per epoch: stop in epoch 2

    result = fit(config(epochs=5, batch_size=16), X, Y, xp=xp, should_stop=should_stop)
    assert result.stop_reason == "cancelled"
    assert result.epochs == [0, 1]
    assert len(calls) == 10
    uninterrupted = fit(config(epochs=2, batch_size=16), X, Y, xp=xp)
    assert result.history == uninterrupted.history


def test_cancel_at_an_epochs_last_batch_keeps_that_epoch():
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) == 2

    result = fit(config(epochs=5, batch_size=25), X, Y, should_stop=should_stop)
    assert result.epochs == [0] and result.stop_reason == "cancelled"


def test_a_diverging_fit_raises_instead_of_returning_nan_weights():
    with pytest.raises(Diverged) as caught:
        fit(config(epochs=50, options={"learningRate": 1e3}), X, Y * 1e3)
    assert "diverged at epoch" in str(caught.value)
    assert caught.value.epoch >= 0


def test_two_layer_model_learns_across_namespaces(xp):
    layers = (DenseConfig(8, input_shape=(2,), activation="relu"), DenseConfig(1))
    cfg = config(weights=None, layers=layers, epochs=4, seed=2, optimizer="adam", options={"learningRate": 0.01})
    ours = fit(cfg, X, Y, xp=xp)
    reference = fit(cfg, X, Y)
    np.testing.assert_allclose(ours.history["loss"], reference.history["loss"], rtol=1e-5)
    assert ours.history["loss"][-1] < ours.history["loss"][0]
    for a, b in zip(ours.weights, reference.weights):
        np.testing.assert_allclose(a, b, atol=1e-5 * max(1.0, float(np.abs(b).max())))
