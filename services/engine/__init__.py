"""The training engine: TensorFlow.js-faithful Sequential Dense models fitted by the
SGD family, written against the Python array API standard.

Pure: arrays in, arrays out. No I/O, no database, no Celery. `xp` is any array API
namespace (numpy, array_api_strict, torch, cupy); inputs arrive as host numpy float32
arrays (possibly memory-mapped) and results leave as host numpy float32 arrays.

    config = TrainingConfig(model=ModelConfig(layers=(DenseConfig(1, input_shape=(1,)),)),
                            compile=CompileConfig(OptimizerConfig("sgd"), "meanAbsoluteError"),
                            fit=FitConfig(epochs=20, validation_split=0.2, seed=7))
    validate_training(config, x, y)                 # raises InvalidConfig / InvalidData
    result = fit(config, x, y, on_epoch_end=..., should_stop=...)
    model = Model.from_weights(config.model, config.compile, result.weights)
    model.evaluate(x_test, y_test)                  # {"loss": ..., "mse": ...}
    model.predict(x_new)                            # numpy float32 (n, units)
"""

from trainq.services.engine.checkpoint import Checkpoint
from trainq.services.engine.config import (
    CompileConfig,
    DenseConfig,
    EarlyStoppingConfig,
    FitConfig,
    InitializerConfig,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
)
from trainq.services.engine.errors import Diverged, EngineError, InvalidConfig, InvalidData
from trainq.services.engine.fit import EpochEnd, FitResult, StopReason, fit
from trainq.services.engine.model import Model
from trainq.services.engine.validate import validate_training

__all__ = [
    "Checkpoint",
    "CompileConfig",
    "DenseConfig",
    "Diverged",
    "EarlyStoppingConfig",
    "EngineError",
    "EpochEnd",
    "FitConfig",
    "FitResult",
    "InitializerConfig",
    "InvalidConfig",
    "InvalidData",
    "Model",
    "ModelConfig",
    "OptimizerConfig",
    "StopReason",
    "TrainingConfig",
    "fit",
    "validate_training",
]
