"""tf.js activations, each written next to its gradient.

CONTRACT (to be implemented):

class Activation(Protocol):
    name: str
    def forward(self, xp, z) -> a
    def backward(self, xp, z, a, grad_a) -> grad_z    # z: pre-activation, a = forward(z)

def get_activation(name: str, field: str) -> Activation     # InvalidConfig(field, ...) for an unknown name
ACTIVATION_NAMES: tuple[str, ...]
"""
