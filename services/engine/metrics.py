"""Metrics named in compile, each a per-sample value averaged like the loss.

CONTRACT (to be implemented):

class Metric(Protocol):
    key: str                                              # the history key tf.js uses for it
    def per_sample(self, xp, y_true, y_pred) -> array (n,)

def get_metric(name: str, loss: str, field: str) -> Metric   # 'accuracy' resolves by loss, as tf.js; InvalidConfig
METRIC_NAMES: tuple[str, ...]
"""
