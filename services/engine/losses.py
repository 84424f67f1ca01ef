"""tf.js losses by name, each written next to its gradient.

CONTRACT (to be implemented):

class Loss(Protocol):
    name: str
    def per_sample(self, xp, y_true, y_pred) -> array (n,)        # tf.js's loss before the batch mean
    def gradient(self, xp, y_true, y_pred) -> array like y_pred   # d mean(per_sample) / d y_pred
    def check_target(self, y_shape: tuple[int, ...], output_units: int, field: str) -> None  # InvalidData

def get_loss(name: str, field: str = "compile.loss") -> Loss  # tf.js names and Keras aliases; InvalidConfig
LOSS_NAMES: tuple[str, ...]
"""
