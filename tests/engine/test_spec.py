"""The public job spec: what it accepts, what it turns into, and that every example in
docs/job-spec.md is a job that trains."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from trainq.cli.fit import run_fit
from trainq.services.engine import InvalidData, fit, validate_training
from trainq.services.spec import SEED_EXAMPLE, JobSpec, samples

DOC = Path(__file__).resolve().parents[2] / "docs" / "job-spec.md"


def doc_examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def test_the_doc_shows_the_seed_a_classifier_early_stopping_and_initial_weights():
    examples = doc_examples()
    assert len(examples) >= 4
    assert any(e["compile"]["loss"] == "categoricalCrossentropy" for e in examples)
    assert any("earlyStopping" in e.get("fit", {}) for e in examples)
    assert any("weights" in e["model"] for e in examples)


@pytest.mark.parametrize("index", range(4))
def test_every_doc_example_validates_and_trains(index):
    spec = JobSpec.model_validate(doc_examples()[index])
    config = spec.to_training_config()
    x, y, validation = spec.arrays()
    validate_training(config, x, y, validation)
    result = fit(config, x, y, validation_data=validation)
    assert result.epochs and all(np.isfinite(v) for values in result.history.values() for v in values)


def test_seed_example_converts_field_for_field():
    config = JobSpec.model_validate(SEED_EXAMPLE).to_training_config()
    assert config.model.layers[0].input_shape == (1,)
    assert config.model.layers[0].kernel_initializer.name == "glorotNormal"
    assert config.compile.optimizer.name == "sgd"
    assert config.compile.optimizer.options == {"learningRate": 0.01}
    assert (config.fit.epochs, config.fit.batch_size, config.fit.validation_split, config.fit.seed) == (20, 32, 0.2, 7)
    assert config.fit.shuffle is True


def test_optimizer_may_be_a_bare_name_and_initializers_take_options():
    spec = JobSpec.model_validate(
        {
            **SEED_EXAMPLE,
            "model": {
                "layers": [
                    {"units": 1, "inputShape": [1], "kernelInitializer": {"name": "randomNormal", "stddev": 0.1}}
                ]
            },
            "compile": {"optimizer": "adam", "loss": "mse"},
        }
    )
    config = spec.to_training_config()
    assert config.compile.optimizer.name == "adam" and config.compile.optimizer.options == {}
    assert config.model.layers[0].kernel_initializer.options == {"stddev": 0.1}


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError):
        JobSpec.model_validate({**SEED_EXAMPLE, "fit": {"epochs": 2, "learning_rate": 0.1}})


def test_non_finite_data_is_refused_naming_the_cell():
    spec = JobSpec.model_validate({**SEED_EXAMPLE, "data": {"x": [[0.1], [1e39]], "y": [[1.0], [2.0]]}})
    with pytest.raises(InvalidData) as caught:
        spec.arrays()
    assert caught.value.field == "data.x[1][0]"


def test_run_fit_returns_history_weights_and_epochs(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SEED_EXAMPLE))
    result = run_fit(path, progress=False)
    assert set(result) == {"history", "weights", "epochs"}
    assert result["epochs"] == 20
    assert set(result["history"]) == {"loss", "val_loss"} and len(result["history"]["loss"]) == 20
    assert [np.shape(w) for w in result["weights"]] == [(1, 1), (1,)]
    json.dumps(result)  # plain JSON types only
    assert run_fit(path, progress=True) == result  # the seed makes it repeatable


@pytest.mark.parametrize(
    "rows, cell, shown",
    [
        ([[1.0, 2.0], [3.0, 1e39]], "data.x[1][1]", "1e+39"),  # finite in float64, not in float32
        ([[1, 10**400]], "data.x[0][1]", "a number of 401 digits"),  # an int beyond any float
    ],
)
def test_numbers_beyond_float32_are_refused_naming_the_cell(rows, cell, shown):
    with pytest.raises(InvalidData) as error:
        samples(rows, "data.x")
    assert error.value.field == cell
    assert shown in error.value.message
