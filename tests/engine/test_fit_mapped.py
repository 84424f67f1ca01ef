"""A fit that gathers each batch's rows (memory-mapped or large arrays) gives the numbers of
one on the same arrays permuted whole in memory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from trainq.services.engine import (
    CompileConfig,
    DenseConfig,
    FitConfig,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
    fit,
)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_fit_on_memory_mapped_arrays_gives_the_numbers_of_one_in_memory(tmp_path: Path, shuffle: bool) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(103, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 2))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    config = TrainingConfig(
        model=ModelConfig(layers=(DenseConfig(units=3, activation="tanh", input_shape=(4,)), DenseConfig(units=2))),
        compile=CompileConfig(optimizer=OptimizerConfig("adam"), loss="meanSquaredError", metrics=("mae",)),
        fit=FitConfig(epochs=3, batch_size=10, shuffle=shuffle, validation_split=0.2, seed=5),
    )
    in_memory = fit(config, x, y)
    mapped_x = np.load(tmp_path / "x.npy", mmap_mode="r")
    mapped = fit(config, mapped_x, np.load(tmp_path / "y.npy", mmap_mode="r"))
    assert isinstance(mapped_x, np.memmap)
    assert mapped.history == in_memory.history
    for a, b in zip(mapped.weights, in_memory.weights):
        np.testing.assert_array_equal(a, b)


def test_gathering_each_batch_gives_the_numbers_of_permuting_the_epoch_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # large host arrays are gathered batch by batch; force that path on small ones
    rng = np.random.default_rng(4)
    x = rng.normal(size=(97, 3)).astype(np.float32)
    y = (x @ rng.normal(size=(3, 1))).astype(np.float32)
    config = TrainingConfig(
        model=ModelConfig(layers=(DenseConfig(units=1, input_shape=(3,)),)),
        compile=CompileConfig(optimizer=OptimizerConfig("sgd"), loss="meanSquaredError"),
        fit=FitConfig(epochs=4, batch_size=8, shuffle=True, seed=2),
    )
    permuted = fit(config, x, y)
    # services.engine.fit is the function the package exports; the module is in sys.modules
    monkeypatch.setattr(sys.modules["trainq.services.engine.fit"], "GATHER_ABOVE_BYTES", 0)
    gathered = fit(config, x, y)
    assert gathered.history == permuted.history
    for a, b in zip(gathered.weights, permuted.weights):
        np.testing.assert_array_equal(a, b)
