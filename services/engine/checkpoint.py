"""A fit's full state at an epoch boundary, as bytes.

CONTRACT (to be implemented):

@dataclass
class Checkpoint:
    epoch: int        # epochs completed (the next epoch to run)
    ...               # weights, optimizer state, random-generator state, history so far, early-stopping state
    def to_bytes(self) -> bytes
    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint
"""
