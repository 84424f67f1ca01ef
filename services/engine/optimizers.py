"""tf.js optimizers (sgd, momentum, adam, adamax, rmsprop, adagrad, adadelta), Keras-style.

CONTRACT (to be implemented):

class Optimizer:
    def build(self, xp, weights: list) -> None          # allocate slots
    def apply(self, weights: list, gradients: list) -> None   # one step, in place
    def state(self) -> dict[str, Any]                   # for checkpoints (host numpy arrays + scalars)
    def load_state(self, xp, state: dict[str, Any]) -> None

def get_optimizer(config: OptimizerConfig, field: str = "compile.optimizer") -> Optimizer  # InvalidConfig
OPTIMIZER_NAMES: tuple[str, ...]
"""
