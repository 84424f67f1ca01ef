"""A Sequential stack of Dense layers: forward, backward, weights; evaluate and predict.

CONTRACT (to be implemented):

class Model:
    @classmethod
    def from_weights(cls, model: ModelConfig, compile: CompileConfig,
                     weights: Sequence[np.ndarray], xp=None) -> Model
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> dict[str, float]
        # {"loss": ..., "<metric>": ...}, tf.js's batch-weighted mean; no weight update
    def predict(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray   # host float32 (n, units)
    def get_weights(self) -> list[np.ndarray]
"""
