"""Whatever a model.json holds, reading it answers a model or an InvalidArtifact naming a
field: every value of a valid artifact replaced by values of every other JSON type (and a
few odd numbers) must never raise anything else (an API answer of 500)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from trainq.services.models.artifact import model_json, weights_bin
from trainq.services.models.reading import InvalidArtifact, read_artifact
from trainq.services.spec import Compile, DenseLayer

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    1e300,
    "",
    "x",
    [],
    [1, 2],
    {},
    {"class_name": []},
    {"name": "adam", "rho": 0.5},
]


def artifact() -> tuple[dict[str, Any], bytes]:
    layers = [
        DenseLayer.model_validate(
            {
                "units": 2,
                "inputShape": [3],
                "activation": "relu",
                "kernelInitializer": {"name": "randomUniform", "minval": -1, "maxval": 1},
            }
        ),
        DenseLayer.model_validate({"units": 1, "useBias": False}),
    ]
    compile = Compile.model_validate({"optimizer": {"name": "adam"}, "loss": "huberLoss", "metrics": ["mae"]})
    weights = [np.ones((3, 2), np.float32), np.zeros(2, np.float32), np.ones((2, 1), np.float32)]
    document = model_json(layers, compile, weights, {"jobId": "j"})
    # both places a compile may come from: tf.js's trainingConfig and trainq's own metadata
    document["trainingConfig"] = {
        "loss": "mean_squared_error",
        "metrics": ["mae"],
        "optimizer_config": {"class_name": "SGD", "config": {"learningRate": 0.1}},
    }
    return json.loads(json.dumps(document)), weights_bin(weights)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def test_every_value_of_every_type_anywhere_is_read_or_refused_by_name() -> None:
    document, data = artifact()
    tried, failures = 0, []
    for path in paths(document):
        for value in ODD_VALUES:
            try:
                read_artifact(replaced(document, path, value), data, weights_field="weights.bin")
            except InvalidArtifact as error:
                assert error.field and error.reason, (path, value)
            except Exception as error:
                failures.append(f"{'.'.join(map(str, path))} = {value!r}: {type(error).__name__}: {error}")
            tried += 1
    assert not failures, "\n".join(failures)
    assert tried > 500
