"""The Dense stack: getWeights() order, forward, backward through layers, evaluate and
predict batched as tf.js batches them."""

from __future__ import annotations

import numpy as np
import pytest

from trainq.services.engine import (
    CompileConfig,
    DenseConfig,
    InvalidConfig,
    InvalidData,
    Model,
    ModelConfig,
    OptimizerConfig,
)
from trainq.services.engine.arrays import namespace, to_numpy

RNG = np.random.default_rng(4)
X = RNG.normal(size=(37, 3)).astype(np.float32)
Y = RNG.normal(size=(37, 2)).astype(np.float32)
LAYERS = (DenseConfig(4, input_shape=(3,), activation="relu"), DenseConfig(2, activation="linear"))
WEIGHTS = [
    RNG.normal(size=(3, 4)).astype(np.float32),
    RNG.normal(size=4).astype(np.float32),
    RNG.normal(size=(4, 2)).astype(np.float32),
    RNG.normal(size=2).astype(np.float32),
]
COMPILE = CompileConfig(OptimizerConfig("sgd"), "meanSquaredError", ("mae",))


def model(xp=None, weights=WEIGHTS, layers=LAYERS) -> Model:
    return Model.from_weights(ModelConfig(layers=layers), COMPILE, weights, xp)


def forward(x: np.ndarray, w: list[np.ndarray]) -> np.ndarray:
    return np.maximum(x @ w[0] + w[1], 0) @ w[2] + w[3]


def test_get_weights_returns_copies_in_get_weights_order(xp):
    m = model(xp)
    got = m.get_weights()
    assert [w.shape for w in got] == [(3, 4), (4,), (4, 2), (2,)]
    for a, b in zip(got, WEIGHTS):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
    got[0][...] = 0  # a copy: the model is untouched
    np.testing.assert_array_equal(m.get_weights()[0], WEIGHTS[0])


def test_no_bias_entry_where_use_bias_is_false():
    layers = (DenseConfig(4, input_shape=(3,), use_bias=False), DenseConfig(2))
    m = model(weights=[WEIGHTS[0], WEIGHTS[2], WEIGHTS[3]], layers=layers)
    np.testing.assert_allclose(m.predict(X), (X @ WEIGHTS[0]) @ WEIGHTS[2] + WEIGHTS[3], rtol=1e-6)


def test_weights_of_the_wrong_shape_name_their_index():
    with pytest.raises(InvalidConfig) as caught:
        model(weights=[WEIGHTS[0], WEIGHTS[1], WEIGHTS[2].T, WEIGHTS[3]])
    assert caught.value.field == "model.weights[2]"


def test_predict_is_the_forward_pass_in_batches(xp):
    got = model(xp).predict(X, batch_size=8)
    assert got.dtype == np.float32 and got.shape == (37, 2)
    np.testing.assert_allclose(got, forward(X, WEIGHTS), rtol=1e-5, atol=1e-6)


def test_evaluate_averages_over_all_rows_as_tfjs_test_loop(xp):
    result = model(xp).evaluate(X, Y, batch_size=8)
    prediction = forward(X.astype(np.float64), [w.astype(np.float64) for w in WEIGHTS])
    assert set(result) == {"loss", "mae"}
    np.testing.assert_allclose(result["loss"], np.mean((prediction - Y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(result["mae"], np.mean(np.abs(prediction - Y)), rtol=1e-5)


def test_evaluate_refuses_data_that_does_not_fit():
    with pytest.raises(InvalidData) as caught:
        model().evaluate(X[:, :2], Y)
    assert caught.value.field == "x"
    with pytest.raises(InvalidData) as caught:
        model().evaluate(X, Y[:5])
    assert caught.value.field == "y"


def test_gradients_are_those_of_the_batch_mean_loss(xp):
    torch = pytest.importorskip("torch")
    m = model(xp)
    ns = namespace(xp)
    values, metrics, gradients = m.batch_gradients(ns.asarray(X[:16]), ns.asarray(Y[:16]))
    losses = m.loss.per_sample_of(ns, values)

    ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in WEIGHTS]
    out = torch.relu(torch.tensor(X[:16], dtype=torch.float64) @ ws[0] + ws[1]) @ ws[2] + ws[3]
    per_sample = ((out - torch.tensor(Y[:16], dtype=torch.float64)) ** 2).mean(dim=1)
    per_sample.mean().backward()

    np.testing.assert_allclose(to_numpy(losses), per_sample.detach().numpy(), rtol=1e-5)
    assert len(metrics) == 1 and to_numpy(metrics[0]).shape == (16,)
    for got, w in zip(gradients, ws):
        np.testing.assert_allclose(to_numpy(got), w.grad.numpy(), rtol=1e-4, atol=1e-6)
