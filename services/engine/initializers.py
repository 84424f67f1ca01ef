"""tf.js initializers by name, drawn from a seeded numpy Generator on the host.

CONTRACT (to be implemented):

def initialize(config: InitializerConfig, shape: tuple[int, ...], rng: np.random.Generator,
               field: str) -> np.ndarray           # float32; kernel shape [fanIn, fanOut], bias [units]
INITIALIZER_NAMES: tuple[str, ...]
"""
