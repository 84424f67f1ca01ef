"""Metrics: tf.js 4.22's names and history keys, how `accuracy` resolves, values as tf.js
computes them."""

from __future__ import annotations

import numpy as np
import pytest

from trainq.services.engine.arrays import to_numpy
from trainq.services.engine.errors import InvalidConfig
from trainq.services.engine.metrics import get_metric

# Inputs (targets, outputs) and, below, each metric's per-sample values printed by
# @tensorflow/tfjs 4.22.0 (cpu backend, node) for metrics taken from a compiled model's
# metricsTensors (precision is one value per batch).
CASES = {
    "reg": (
        [
            [0.5, -1.0, 2.0],
            [1.5, 0.0, -0.30000001192092896],
            [0.20000000298023224, 0.699999988079071, 9.999999717180685e-10],
            [3.0, 3.0, 3.0],
        ],
        [
            [0.4000000059604645, -1.0, 2.5],
            [1.0, 0.20000000298023224, -0.10000000149011612],
            [0.20999999344348907, 0.0, 0.5],
            [2.0, 4.5, 3.0],
        ],
    ),
    "prob": (
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.20000000298023224, 0.5, 0.30000001192092896]],
        [
            [0.20000000298023224, 0.699999988079071, 0.10000000149011612],
            [0.9999998807907104, 5.000000058430487e-08, 1.0000000116860974e-07],
            [0.30000001192092896, 0.30000001192092896, 0.4000000059604645],
            [0.10000000149011612, 0.10000000149011612, 0.800000011920929],
        ],
    ),
    "bin": (
        [[1.0], [0.0], [1.0], [0.0], [1.0]],
        [[0.8999999761581421], [0.20000000298023224], [0.9999999403953552], [9.99999993922529e-09], [0.5]],
    ),
    "hingecase": (
        [[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        [
            [0.30000001192092896, 0.20000000298023224, 2.0],
            [0.5, 1.0, 0.9900000095367432],
            [0.4000000059604645, 0.4000000059604645, 0.10000000149011612],
            [0.5, 0.5, 0.6000000238418579],
        ],
    ),
}
METRICS = {
    "reg:binaryAccuracy": [0.0, 0.3333333432674408, 0.0, 0.0],
    "reg:categoricalAccuracy": [1.0, 1.0, 0.0, 0.0],
    "reg:precision": 0.0,
    "reg:categoricalCrossentropy": [-15.339022636413574, -4.692463397979736, 11.526297569274902, 10.374115943908691],
    "reg:mse": [0.08666666597127914, 0.11000000685453415, 0.2466999888420105, 1.0833333730697632],
    "reg:mae": [0.20000000298023224, 0.30000001192092896, 0.4033333361148834, 0.8333333730697632],
    "reg:mape": [15.000000953674316, 66666700.0, 166666704.0, 27.77777862548828],
    "reg:cosine": [-0.9940378665924072, -0.9760878086090088, -0.10638095438480377, -0.9511898756027222],
    "prob:binaryAccuracy": [1.0, 1.0, 0.6666666865348816, 0.0],
    "prob:categoricalAccuracy": [1.0, 1.0, 1.0, 0.0],
    "prob:precision": 0.0,
    "prob:categoricalCrossentropy": [
        0.3566749691963196,
        1.1920930376163597e-07,
        0.9162907004356384,
        1.6787526607513428,
    ],
    "prob:mse": [0.046666670590639114, 8.903618165282626e-15, 0.18000000715255737, 0.14000000059604645],
    "prob:mae": [0.20000000298023224, 8.973643161880318e-08, 0.4000000059604645, 0.3333333432674408],
    "prob:mape": [100000016.0, 50.00000762939453, 200000032.0, 98.88888549804688],
    "prob:cosine": [-0.9525793790817261, -1.0, -0.6859943270683289, -0.6190103888511658],
    "bin:binaryAccuracy": [1.0, 1.0, 1.0, 1.0, 0.0],
    "bin:categoricalAccuracy": [1.0, 1.0, 1.0, 1.0, 1.0],
    "bin:precision": 0.0,
    "bin:categoricalCrossentropy": [1.1920930376163597e-07, 0.0, 1.1920930376163597e-07, 0.0, 1.1920930376163597e-07],
    "bin:mse": [0.010000004433095455, 0.04000000283122063, 3.552713678800501e-15, 1.0000000168623835e-16, 0.25],
    "bin:mae": [0.10000002384185791, 0.20000000298023224, 5.960464477539063e-08, 9.99999993922529e-09, 0.5],
    "bin:mape": [10.000001907348633, 200000000.0, 5.9604644775390625e-06, 10.0, 50.0],
    "bin:cosine": [-1.0, 0.0, -1.0, 0.0, -1.0],
    "hingecase:binaryAccuracy": [0.3333333432674408, 0.6666666865348816, 0.6666666865348816, 0.3333333432674408],
    "hingecase:categoricalAccuracy": [0.0, 1.0, 0.0, 0.0],
    "hingecase:precision": 1.0,
    "hingecase:categoricalCrossentropy": [
        -0.18232159316539764,
        0.22918587923049927,
        0.8109301924705505,
        1.1631507873535156,
    ],
    "hingecase:mse": [0.9766666889190674, 0.7500333189964294, 0.17666667699813843, 0.2866666913032532],
    "hingecase:mae": [0.9666666984558105, 0.503333330154419, 0.36666667461395264, 0.5333333611488342],
    "hingecase:mape": [96.66667175292969, 50.33333206176758, 166666688.0, 366666688.0],
    "hingecase:cosine": [-0.5966005325317383, -0.5760543346405029, -0.6963106393814087, -0.5391638875007629],
}

# sparseCategoricalAccuracy ('acc' under a sparse loss) on class indices 1, 0, 2.7, 5, -1.
SPARSE = (
    [[1.0], [0.0], [2.700000047683716], [5.0], [-1.0]],
    [
        [0.20000000298023224, 0.699999988079071, 0.10000000149011612],
        [0.9999998807907104, 5.000000058430487e-08, 1.0000000116860974e-07],
        [0.30000001192092896, 0.30000001192092896, 0.4000000059604645],
        [0.10000000149011612, 0.10000000149011612, 0.800000011920929],
        [0.5, 0.25, 0.25],
    ],
    [1.0, 1.0, 0.0, 0.0, 0.0],
)


def as32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def per_sample(xp, metric, t, p) -> np.ndarray:
    return to_numpy(metric.per_sample(xp, xp.asarray(as32(t)), xp.asarray(as32(p))))


@pytest.mark.parametrize("key", sorted(METRICS))
def test_values_match_tfjs(xp, key):
    case, name = key.split(":")
    t, p = CASES[case]
    got = per_sample(xp, get_metric(name, "meanSquaredError", 3, "compile.metrics[0]"), t, p)
    expected = as32(METRICS[key])
    assert got.shape == (len(t),)
    if name == "precision":
        got = got[0]
    np.testing.assert_allclose(got, expected, rtol=3e-7, atol=1e-12)


def test_sparse_accuracy_compares_indices_exactly(xp):
    t, p, expected = SPARSE
    metric = get_metric("acc", "sparseCategoricalCrossentropy", 3, "compile.metrics[0]")
    np.testing.assert_array_equal(per_sample(xp, metric, t, p), expected)


# model.metricsNames as tf.js 4.22 printed them after compile({metrics: [name]})
@pytest.mark.parametrize(
    "name, key",
    [
        ("accuracy", "acc"),
        ("acc", "acc"),
        ("crossentropy", "ce"),
        ("ce", "ce"),
        ("mse", "mse"),
        ("MSE", "MSE"),
        ("mae", "mae"),
        ("MAE", "MAE"),
        ("mape", "mape"),
        ("MAPE", "MAPE"),
        ("cosine", "cosine"),
        ("binaryAccuracy", "binaryAccuracy"),
        ("categoricalAccuracy", "categoricalAccuracy"),
        ("categoricalCrossentropy", "categoricalCrossentropy"),
        ("precision", "precision"),
        ("sparseCategoricalCrossentropy", "sparseCategoricalCrossentropy"),
    ],
)
def test_history_keys_are_those_tfjs_uses(name, key):
    assert get_metric(name, "sparseCategoricalCrossentropy", 3, "compile.metrics[0]").key == key


@pytest.mark.parametrize(
    "name",
    ["meanSquaredError", "msle", "kld", "binaryCrossentropy", "cosineProximity", "sparseCategoricalAccuracy", "hinge"],
)
def test_names_tfjs_refuses_are_accepted_under_their_own_key(name):
    assert get_metric(name, "meanSquaredError", 1, "compile.metrics[0]").key == name


T3 = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
P3 = [[0.6, 0.7, 0.1], [0.2, 0.3, 0.4]]


@pytest.mark.parametrize(
    "loss, units, expected",
    [
        ("meanSquaredError", 1, "binary"),
        ("binaryCrossentropy", 3, "binary"),
        ("sparseCategoricalCrossentropy", 3, "sparse"),
        ("sparse_categorical_crossentropy", 3, "sparse"),
        ("categoricalCrossentropy", 3, "categorical"),
        ("meanSquaredError", 3, "categorical"),
    ],
)
def test_accuracy_resolves_by_output_width_and_loss_as_tfjs_does(xp, loss, units, expected):
    accuracy = get_metric("accuracy", loss, units, "compile.metrics[0]")
    if expected == "sparse":
        np.testing.assert_array_equal(per_sample(xp, accuracy, [[1.0], [1.0]], P3), [1.0, 0.0])
    elif expected == "binary":
        np.testing.assert_allclose(per_sample(xp, accuracy, T3, P3), [2 / 3, 2 / 3], rtol=1e-6)
    else:
        np.testing.assert_array_equal(per_sample(xp, accuracy, T3, P3), [1.0, 0.0])


def test_crossentropy_shorthand_follows_the_same_resolution(xp):
    binary = get_metric("ce", "binaryCrossentropy", 3, "m")
    categorical = get_metric("ce", "categoricalCrossentropy", 3, "m")
    assert not np.allclose(per_sample(xp, binary, T3, P3), per_sample(xp, categorical, T3, P3))
    np.testing.assert_allclose(per_sample(xp, categorical, T3, P3), [-np.log(0.7 / 1.4), -np.log(0.2 / 0.9)], rtol=1e-6)


def test_binary_accuracy_counts_exactly_one_half_as_zero(xp):
    metric = get_metric("binaryAccuracy", "meanSquaredError", 2, "m")
    np.testing.assert_array_equal(per_sample(xp, metric, [[0.0, 1.0]], [[0.5, 0.5000001]]), [1.0])


@pytest.mark.parametrize("name", ["accuracy_score", "f1", "recall", "r2Score", ""])
def test_unknown_metric_names_the_field(name):
    with pytest.raises(InvalidConfig) as caught:
        get_metric(name, "meanSquaredError", 1, "compile.metrics[2]")
    assert caught.value.field == "compile.metrics[2]"
    assert "binaryAccuracy" in caught.value.message
