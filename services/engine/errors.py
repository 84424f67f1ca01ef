"""The engine's errors. Each names the spec field at fault, in the job spec's own
dotted path (`model.layers[1].activation`, `compile.loss`, `data.y`), so the API can
answer 422 pointing at it.

    EngineError
     ├── InvalidConfig   an unknown name, an option out of range, weights of the wrong shape
     ├── InvalidData     x and y of different lengths, a shape that does not fit, NaN or infinity
     └── Diverged        the loss became NaN or infinite during fit
"""

from __future__ import annotations


class EngineError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidConfig(EngineError):
    pass


class InvalidData(EngineError):
    pass


class Diverged(EngineError):
    def __init__(self, epoch: int, message: str | None = None) -> None:
        super().__init__("fit", message or f"diverged at epoch {epoch}: the loss became NaN or infinite")
        self.epoch = epoch
