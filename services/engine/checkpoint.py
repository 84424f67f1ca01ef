"""A fit's full state at an epoch boundary, as bytes.

Everything the next epoch depends on: the weights, the optimizer's slots and counters
(iterations, Adam's running beta powers), the random generator's state (the next
shuffle) and the early-stopping state. `fit(resume_from=...)` continues from it and
ends bit-for-bit where an uninterrupted fit ends.

The history is not in it: it is output, not state, and a checkpoint taken after every
epoch must cost what the model costs, not what the epochs so far cost (a job of 100,000
epochs would otherwise write megabytes per epoch). Whoever keeps checkpoints keeps the
epochs' logs too (the service has them in its epochs table).

On the wire: an uncompressed npz (no pickle) whose arrays are the weights and the
optimizer slots, plus `header`, a UTF-8 JSON document (as uint8) with the rest.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainq.services.engine.errors import InvalidConfig

FORMAT = "trainq.checkpoint/2"


@dataclass
class Checkpoint:
    epoch: int  # epochs completed: the next epoch to run (tf.js numbering)
    weights: list[np.ndarray]  # getWeights() order, host float32
    optimizer: dict[str, Any]  # Optimizer.state(): iterations, scalars, slots
    rng: dict[str, Any]  # numpy Generator.bit_generator.state
    early_stopping: dict[str, Any] | None = None  # EarlyStopping.state()
    stopped: bool = False  # early stopping ended the fit at this epoch

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        for i, weight in enumerate(self.weights):
            arrays[f"weights.{i}"] = np.asarray(weight, dtype=np.float32)
        slot_counts = {}
        for name, slot in self.optimizer["slots"].items():
            slot_counts[name] = len(slot)
            for i, array in enumerate(slot):
                arrays[f"slot.{name}.{i}"] = np.asarray(array, dtype=np.float32)
        header = {
            "format": FORMAT,
            "epoch": self.epoch,
            "weights": len(self.weights),
            "optimizer": {
                "iterations": self.optimizer["iterations"],
                "scalars": self.optimizer["scalars"],
                "slots": slot_counts,
            },
            "rng": self.rng,
            "early_stopping": self.early_stopping,
            "stopped": self.stopped,
        }
        # floats round-trip exactly through JSON (repr); early stopping's best may be ±Infinity
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            header = json.loads(arrays.pop("header").tobytes().decode())
        except (ValueError, KeyError, OSError, UnicodeDecodeError) as error:
            raise InvalidConfig("checkpoint", f"not a trainq checkpoint ({error})") from None
        if header.get("format") != FORMAT:
            raise InvalidConfig("checkpoint", f"unknown checkpoint format {header.get('format')!r}")
        optimizer = header["optimizer"]
        return cls(
            epoch=header["epoch"],
            weights=[arrays[f"weights.{i}"] for i in range(header["weights"])],
            optimizer={
                "iterations": optimizer["iterations"],
                "scalars": optimizer["scalars"],
                "slots": {
                    name: [arrays[f"slot.{name}.{i}"] for i in range(count)]
                    for name, count in optimizer["slots"].items()
                },
            },
            rng=header["rng"],
            early_stopping=header["early_stopping"],
            stopped=header["stopped"],
        )
