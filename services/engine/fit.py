"""model.fit: epochs of contiguous minibatches, tf.js's loss averaging, hooks, resume.

CONTRACT (to be implemented):

StopReason = Literal["completed", "early_stopping", "cancelled"]

@dataclass
class EpochEnd:
    epoch: int                  # 0-based, as tf.js's history.epoch
    logs: dict[str, float]      # {"loss", "val_loss"?, "<metric>", "val_<metric>"?}
    checkpoint: Checkpoint      # the state after this epoch; resume from it ends bit-for-bit the same

@dataclass
class FitResult:
    history: dict[str, list[float]]   # tf.js history.history
    epochs: list[int]                 # tf.js history.epoch
    weights: list[np.ndarray]         # getWeights() order, host numpy float32
    stop_reason: StopReason

def fit(config: TrainingConfig, x: np.ndarray, y: np.ndarray, *,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        xp: ArrayNamespace | None = None,          # default: numpy
        on_epoch_end: Callable[[EpochEnd], None] | None = None,
        should_stop: Callable[[], bool] | None = None,   # polled between batches; True -> stop, reason "cancelled"
        resume_from: Checkpoint | None = None) -> FitResult
Raises InvalidConfig / InvalidData before training, Diverged during it.
"""
