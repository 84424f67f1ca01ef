"""A fit on memory-mapped arrays (an uploaded dataset) is the fit on the same arrays in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.engine import CompileConfig, DenseConfig, FitConfig, ModelConfig, OptimizerConfig, TrainingConfig, fit


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
