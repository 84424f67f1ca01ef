"""Every check the engine makes before it trains, in one place.

CONTRACT (to be implemented):

def validate_training(config: TrainingConfig, x: np.ndarray, y: np.ndarray,
                      validation_data: tuple[np.ndarray, np.ndarray] | None = None) -> None
    Raises InvalidConfig / InvalidData naming the spec field (`model.layers[0].activation`,
    `compile.loss`, `data.x`, `data.y`, `model.weights[2]`, ...).
"""
