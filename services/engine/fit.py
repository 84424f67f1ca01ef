"""model.fit: epochs of contiguous minibatches, tf.js's loss averaging, hooks, resume.

As tfjs-layers' fitLoop: `validationSplit` holds out the last rows before any
shuffling; `shuffle` permutes the training rows afresh each epoch; batches are
contiguous slices of them, the short last one kept; an epoch's loss (and each metric)
is the batch-size-weighted mean of the batch values, each taken before its batch's
update; validation runs after the epoch's last update, in batches of `batchSize`.
`seed` (ours) seeds one numpy Generator, drawn first for the initial weights, then for
the shuffles.

The loop keeps to the array namespace: data moves to it once per fit, the running
sums stay on its device, and the host reads them once per epoch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trainq.services.engine.arrays import namespace
from trainq.services.engine.checkpoint import Checkpoint
from trainq.services.engine.config import EarlyStoppingConfig, TrainingConfig
from trainq.services.engine.errors import Diverged, InvalidConfig
from trainq.services.engine.model import Model
from trainq.services.engine.optimizers import Optimizer, get_optimizer
from trainq.services.engine.validate import training_rows, validate_training, weight_shapes

StopReason = Literal["completed", "early_stopping", "cancelled"]

GATHER_ABOVE_BYTES = 8 * 1024 * 1024
# an epoch's batches are taken in runs of this many: a run's batch views and per-sample
# values are held until it ends, not for the whole epoch
BATCHES_PER_RUN = 1024
# unshuffled batches keep their views across epochs up to this many (300 bytes each)
VIEWS_KEPT = 65_536


@dataclass
class EpochEnd:
    epoch: int  # 0-based, as tf.js's history.epoch
    logs: dict[str, float]  # {"loss", "val_loss"?, "<metric>", "val_<metric>"?}
    # the state after this epoch (resume from it ends bit-for-bit the same), taken when
    # called and only during the callback: copying the weights, the optimizer's slots and
    # the generator's state costs about as much as a small model's epoch, and a caller
    # that checkpoints every few seconds should not pay it every epoch
    take_checkpoint: Callable[[], Checkpoint]


@dataclass
class FitResult:
    # tf.js history.history and history.epoch, of the epochs this call ran: a resumed fit
    # starts at its checkpoint's epoch
    history: dict[str, list[float]]
    epochs: list[int]
    weights: list[np.ndarray]  # getWeights() order, host numpy float32
    stop_reason: StopReason


class EarlyStopping:
    """`tf.callbacks.earlyStopping`: stop once `monitor` has not improved by more than
    `minDelta` for `patience` epochs (starting from `baseline` when given). Mode `auto`
    means `max` when the monitor's name contains 'acc', else `min`."""

    def __init__(self, config: EarlyStoppingConfig) -> None:
        self.monitor = config.monitor
        mode = config.mode
        if mode == "auto":
            mode = "max" if "acc" in config.monitor else "min"
        self.greater = mode == "max"
        self.min_delta = abs(config.min_delta) if self.greater else -abs(config.min_delta)
        self.patience = config.patience
        self.wait = 0
        if config.baseline is not None:
            self.best = float(config.baseline)
        else:
            self.best = -math.inf if self.greater else math.inf

    def epoch_end(self, logs: dict[str, float]) -> bool:
        """Whether training stops after this epoch."""
        current = logs[self.monitor] - self.min_delta
        if (current > self.best) if self.greater else (current < self.best):
            self.best = logs[self.monitor]
            self.wait = 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best}

    def load_state(self, state: dict[str, Any]) -> None:
        self.wait, self.best = int(state["wait"]), float(state["best"])


def fit(
    config: TrainingConfig,
    x: np.ndarray,
    y: np.ndarray,
    *,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    xp: Any = None,
    device: Any = None,
    on_epoch_end: Callable[[EpochEnd], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: Checkpoint | None = None,
) -> FitResult:
    """`model.fit(x, y, {...})` for `config`, in namespace `xp` (default numpy) on `device`.

    `should_stop` is polled after every batch: True stops the fit there, reason
    "cancelled", keeping the epochs finished so far (an epoch cut short is not reported).
    `on_epoch_end` receives each finished epoch's logs and a way to take its checkpoint. A fit resumed from
    a checkpoint runs (and reports in its history) the epochs after it.
    Raises InvalidConfig / InvalidData before training, Diverged (the 0-based epoch) when
    the loss or the weights stop being finite."""
    # a diverging fit overflows: numpy would warn at each op, trainq raises Diverged once
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _fit(config, x, y, validation_data, xp, device, on_epoch_end, should_stop, resume_from)


def _fit(
    config: TrainingConfig,
    x: np.ndarray,
    y: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray] | None,
    xp: Any,
    device: Any,
    on_epoch_end: Callable[[EpochEnd], None] | None,
    should_stop: Callable[[], bool] | None,
    resume_from: Checkpoint | None,
) -> FitResult:
    validate_training(config, x, y, validation_data)
    xp = namespace(xp)
    fit_config = config.fit
    rng = np.random.default_rng(fit_config.seed)
    model = Model.initialized(config.model, config.compile, rng, xp, device)
    optimizer = get_optimizer(config.compile.optimizer, "compile.optimizer")
    optimizer.build(xp, model.weights)
    early = EarlyStopping(fit_config.early_stopping) if fit_config.early_stopping is not None else None
    history: dict[str, list[float]] = {}
    epochs: list[int] = []
    first_epoch = fit_config.initial_epoch
    if resume_from is not None:
        model = _resumed(config, model, optimizer, rng, early, resume_from, xp, device)
        first_epoch = resume_from.epoch
        if resume_from.stopped:
            return FitResult(history, epochs, model.get_weights(), "early_stopping")

    mapped = isinstance(x, np.memmap)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    # A shuffled epoch gathers each batch's rows instead of permuting all of them first
    # when the data are memory-mapped (an uploaded dataset, never copied whole) or large
    # host arrays, whose fresh permuted copy every epoch costs page faults: 1.7 s an
    # epoch for 400 MB, against 0.2 s for the batches' gathers. Small data are permuted
    # whole, which saves two gathers a batch.
    gather = mapped or (xp is np and x.nbytes + y.nbytes > GATHER_ABOVE_BYTES)
    if validation_data is not None:
        n = x.shape[0]
        vx, vy = (np.asarray(a, dtype=np.float32) for a in validation_data)
    else:
        n = training_rows(x.shape[0], fit_config.validation_split)
        vx, vy = x[n:], y[n:]
    validating = vx.shape[0] > 0
    on_device = model.weights[0].device
    xs, ys = xp.asarray(x[:n], device=on_device), xp.asarray(y[:n], device=on_device)
    if validating:
        vxs, vys = xp.asarray(vx, device=on_device), xp.asarray(vy, device=on_device)
    batch_size = fit_config.batch_size
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    keys = model.log_keys
    # unshuffled epochs take the same batches: their views are made once
    fixed = _views(xs, ys, bounds) if not fit_config.shuffle and len(bounds) <= VIEWS_KEPT else None

    stop_reason: StopReason = "completed"
    for epoch in range(first_epoch, fit_config.epochs):
        xe, ye, rows = xs, ys, None
        if fit_config.shuffle:
            order = xp.asarray(rng.permutation(n), device=on_device)
            if gather:
                rows = order
            else:
                xe, ye = xp.take(xs, order, axis=0), xp.take(ys, order, axis=0)
        totals, cancelled = _train_epoch(model, optimizer, xe, ye, rows, bounds, fixed, should_stop)
        if totals is None:
            stop_reason = "cancelled"
            break
        logs = {key: _epoch_mean(total, n) for key, total in zip(keys, totals)}
        if validating:
            logs.update(model.logs(vxs, vys, batch_size, "val_"))
        _check_finite(xp, model, logs, epoch)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        epochs.append(epoch)
        stopping = early is not None and early.epoch_end(logs)
        if on_epoch_end is not None:

            def take_checkpoint(epoch: int = epoch, stopping: bool = stopping) -> Checkpoint:
                return Checkpoint(
                    epoch=epoch + 1,
                    weights=model.get_weights(),
                    optimizer=optimizer.state(),
                    rng=copy.deepcopy(dict(rng.bit_generator.state)),
                    early_stopping=None if early is None else early.state(),
                    stopped=stopping,
                )

            on_epoch_end(EpochEnd(epoch, logs, take_checkpoint))
        if stopping:
            stop_reason = "early_stopping"
            break
        if cancelled:
            stop_reason = "cancelled"
            break
    return FitResult(history, epochs, model.get_weights(), stop_reason)


def _views(xs: Any, ys: Any, bounds: list[tuple[int, int]]) -> list[tuple[Any, Any]]:
    return [(xs[start:stop, ...], ys[start:stop, ...]) for start, stop in bounds]


def _train_epoch(
    model: Model,
    optimizer: Optimizer,
    xs: Any,
    ys: Any,
    rows: Any,
    bounds: list[tuple[int, int]],
    fixed: list[tuple[Any, Any]] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[list[Any] | None, bool]:
    """One epoch of updates over the batches `bounds` of xs, ys (of their `rows`, when
    given: each batch gathers its own; of the views `fixed` when given). Answers each
    log key's total over the epoch's samples, and whether `should_stop` asked to stop;
    the totals are None when it stopped the epoch before its last batch."""
    xp = model.xp
    batch_gradients, apply, weights = model.batch_gradients, optimizer.apply, model.weights
    parts: list[list[Any]] = [[] for _ in model.log_keys]
    last = len(bounds) - 1
    asked_to_stop = False
    for first in range(0, len(bounds), BATCHES_PER_RUN):
        run = bounds[first : first + BATCHES_PER_RUN]
        if rows is not None:
            batches = []  # each batch gathers its rows below
        elif fixed is not None:
            batches = fixed[first : first + BATCHES_PER_RUN]
        else:
            batches = _views(xs, ys, run)
        # each batch's per-sample values, joined and summed once a run: a fraction of
        # the cost of a reduction, or even of a slice assignment, per batch
        run_losses: list[Any] = []
        run_metrics: list[list[Any]] = [[] for _ in model.metrics]
        for i, (start, stop) in enumerate(run):
            if rows is None:
                xb, yb = batches[i]
            else:
                batch_rows = rows[start:stop]
                xb, yb = xp.take(xs, batch_rows, axis=0), xp.take(ys, batch_rows, axis=0)
            loss_values, metrics, gradients = batch_gradients(xb, yb)
            apply(weights, gradients)
            run_losses.append(loss_values)
            if metrics:
                for values, batch_values in zip(run_metrics, metrics):
                    values.append(batch_values)
            if should_stop is not None and should_stop():
                if first + i != last:
                    return None, True
                asked_to_stop = True
        parts[0].append(xp.sum(model.loss.per_sample_of(xp, xp.concat(run_losses))))
        for part, values in zip(parts[1:], run_metrics):
            part.append(xp.sum(xp.concat(values)))
    return [xp.sum(xp.stack(part)) for part in parts], asked_to_stop


def _epoch_mean(total: Any, seen: int) -> float:
    """tf.js's BaseLogger: totals · (1 / seen), in float32."""
    return float(np.float32(1 / seen) * np.float32(float(total)))


def _check_finite(xp: Any, model: Model, logs: dict[str, float], epoch: int) -> None:
    for key in ("loss", "val_loss"):
        if key in logs and not math.isfinite(logs[key]):
            raise Diverged(epoch)
    for weight in model.weights:
        if not bool(xp.all(xp.isfinite(weight))):
            raise Diverged(epoch, f"diverged at epoch {epoch}: the weights became NaN or infinite")


def _resumed(
    config: TrainingConfig,
    model: Model,
    optimizer: Optimizer,
    rng: np.random.Generator,
    early: EarlyStopping | None,
    checkpoint: Checkpoint,
    xp: Any,
    device: Any,
) -> Model:
    """The model, optimizer, generator and early stopping as the checkpoint left them."""
    shapes = weight_shapes(config.model)
    if [tuple(w.shape) for w in checkpoint.weights] != shapes:
        raise InvalidConfig("checkpoint", "its weights do not fit this model")
    if not config.fit.initial_epoch <= checkpoint.epoch <= config.fit.epochs:
        raise InvalidConfig("checkpoint", f"it ends at epoch {checkpoint.epoch}, outside this fit's epochs")
    if (early is None) != (checkpoint.early_stopping is None):
        raise InvalidConfig("checkpoint", "its early-stopping state does not match fit.earlyStopping")
    resumed = Model.from_weights(config.model, config.compile, checkpoint.weights, xp, device)
    optimizer.build(xp, resumed.weights)
    optimizer.load_state(xp, checkpoint.optimizer)
    rng.bit_generator.state = copy.deepcopy(checkpoint.rng)
    if early is not None and checkpoint.early_stopping is not None:
        early.load_state(checkpoint.early_stopping)
    return resumed
