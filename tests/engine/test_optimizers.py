"""Each optimizer against its update rule written out by hand in float64, plus the
tf.js particulars: defaults, float32 beta powers, Adagrad's 0.1 accumulator, Adadelta's
stale denominator, and state that resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest

from trainq.services.engine import InvalidConfig, OptimizerConfig
from trainq.services.engine.arrays import namespace, to_numpy
from trainq.services.engine.optimizers import OPTIMIZER_NAMES, Adam, get_optimizer

W0 = [np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32), np.array([0.1, -0.2], dtype=np.float32)]
GRADS = [
    [np.array([[0.3, -0.6], [0.9, 0.05]], dtype=np.float32), np.array([1.0, -0.5], dtype=np.float32)],
    [np.array([[-0.2, 0.4], [0.1, 0.0]], dtype=np.float32), np.array([0.5, 0.25], dtype=np.float32)],
    [np.array([[0.7, 0.1], [-0.3, 0.2]], dtype=np.float32), np.array([-1.0, 0.75], dtype=np.float32)],
]


def run(xp, name: str, options: dict, steps: int = 3) -> list[np.ndarray]:
    ns = namespace(xp)
    weights = [ns.asarray(w.copy()) for w in W0]
    optimizer = get_optimizer(OptimizerConfig(name, options))
    optimizer.build(ns, weights)
    for grads in GRADS[:steps]:
        optimizer.apply(weights, [ns.asarray(g) for g in grads])
    return [to_numpy(w) for w in weights]


def reference(name: str, o: dict) -> list[np.ndarray]:
    """The textbook rules in float64 (with tf.js's choices), three steps."""
    ws = [w.astype(np.float64) for w in W0]
    state: list[dict] = [{} for _ in ws]
    for t, grads in enumerate(GRADS, start=1):
        for w, g, s in zip(ws, grads, state):
            g = g.astype(np.float64)
            lr = o["learningRate"]
            if name == "sgd":
                w -= lr * g
            elif name == "momentum":
                s["a"] = o["momentum"] * s.get("a", 0) + g
                w -= lr * (g + o["momentum"] * s["a"]) if o.get("useNesterov") else lr * s["a"]
            elif name == "adam":
                b1, b2 = o["beta1"], o["beta2"]
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
                s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
                w -= lr * (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + 1e-7)
            elif name == "adamax":
                b1, b2 = o["beta1"], o["beta2"]
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
                s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g))
                w -= lr / (1 + (t - 1) * o["decay"]) / (1 - b1**t) * s["m"] / (s["u"] + 1e-7)
            elif name == "rmsprop":
                rho = o["decay"]
                s["ms"] = rho * s.get("ms", 0) + (1 - rho) * g * g
                if o["centered"]:
                    s["mg"] = rho * s.get("mg", 0) + (1 - rho) * g
                    denominator = np.sqrt(s["ms"] - s["mg"] ** 2 + 1e-7)
                else:
                    denominator = np.sqrt(s["ms"] + 1e-7)
                s["mom"] = o["momentum"] * s.get("mom", 0) + lr * g / denominator
                w -= s["mom"]
            elif name == "adagrad":
                s["acc"] = s.get("acc", o["initialAccumulatorValue"]) + g * g
                w -= lr * g / np.sqrt(s["acc"] + 1e-7)
            elif name == "adadelta":
                rho = o["rho"]
                accum_grad, accum_var = s.get("ag", 0), s.get("av", 0)
                update = np.sqrt(accum_var + 1e-7) / np.sqrt(accum_grad + 1e-7) * g
                s["ag"] = rho * accum_grad + (1 - rho) * g * g
                s["av"] = rho * accum_var + (1 - rho) * update * update
                w -= lr * update
    return ws


CASES = [
    ("sgd", {"learningRate": 0.1}),
    ("momentum", {"learningRate": 0.1, "momentum": 0.9, "useNesterov": False}),
    ("momentum", {"learningRate": 0.1, "momentum": 0.9, "useNesterov": True}),
    ("adam", {"learningRate": 0.01, "beta1": 0.9, "beta2": 0.999}),
    ("adamax", {"learningRate": 0.02, "beta1": 0.8, "beta2": 0.99, "decay": 0.1}),
    ("rmsprop", {"learningRate": 0.01, "decay": 0.9, "momentum": 0.5, "centered": False}),
    ("rmsprop", {"learningRate": 0.01, "decay": 0.9, "momentum": 0.0, "centered": True}),
    ("adagrad", {"learningRate": 0.1, "initialAccumulatorValue": 0.1}),
    ("adadelta", {"learningRate": 1.0, "rho": 0.95}),
]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_three_steps_follow_the_update_rule(xp, name, options):
    got = run(xp, name, options)
    for g, want in zip(got, reference(name, options)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, want, rtol=2e-6, atol=2e-7)


def test_sgd_step_is_bit_exact_float32_arithmetic(xp):
    got = run(xp, "sgd", {"learningRate": 0.1}, steps=1)
    lr = np.float32(0.1)
    for g, w, grad in zip(got, W0, GRADS[0]):
        np.testing.assert_array_equal(g, w - lr * grad)


def test_adam_keeps_beta_powers_as_running_float32_products():
    optimizer = get_optimizer(OptimizerConfig("adam"))
    assert isinstance(optimizer, Adam)
    weights = [np.zeros(3, np.float32)]
    optimizer.build(np, weights)
    expected = np.float32(0.999)
    for _ in range(50):
        optimizer.apply(weights, [np.ones(3, np.float32)])
        expected = expected * np.float32(0.999)
    assert optimizer.acc_beta2 == expected and optimizer.acc_beta2.dtype == np.float32
    assert optimizer.iterations == 50


def test_adadelta_first_step_moves_by_the_raw_gradient_as_tfjs_does():
    # tf.js scales by sqrt(accum_var + eps) / sqrt(accum_grad + eps) with accum_grad
    # from before the update: both are sqrt(eps) on the first step
    got = run(np, "adadelta", {"learningRate": 1.0}, steps=1)
    for g, w, grad in zip(got, W0, GRADS[0]):
        np.testing.assert_allclose(g, w - grad, rtol=1e-6)


def test_centered_rmsprop_stays_finite_under_a_constant_gradient():
    optimizer = get_optimizer(OptimizerConfig("rmsprop", {"centered": True}))
    weights = [np.zeros(2, np.float32)]
    optimizer.build(np, weights)
    for _ in range(100):
        optimizer.apply(weights, [np.full(2, 0.5, np.float32)])
    assert np.all(np.isfinite(weights[0]))


def test_compile_string_defaults_are_tfjs_defaults():
    defaults = {
        "sgd": {"learningRate": 0.01},
        "adam": {"learningRate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
        "adamax": {"learningRate": 0.002, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7, "decay": 0.0},
        "rmsprop": {"learningRate": 0.001, "decay": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
        "adagrad": {"learningRate": 0.01, "initialAccumulatorValue": 0.1},
        "adadelta": {"learningRate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    }
    for name, options in defaults.items():
        assert get_optimizer(OptimizerConfig(name)).options == options
    assert get_optimizer(OptimizerConfig("Adam")).options == defaults["adam"]
    assert set(OPTIMIZER_NAMES) == {*defaults, "momentum"}


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("sgd", {"learningRate": -0.1}, "compile.optimizer.learningRate"),
        ("sgd", {"learningRate": float("nan")}, "compile.optimizer.learningRate"),
        ("adam", {"beta1": 1.0}, "compile.optimizer.beta1"),
        ("adam", {"beta2": -0.5}, "compile.optimizer.beta2"),
        ("adam", {"epsilon": 0}, "compile.optimizer.epsilon"),
        ("momentum", {"momentum": -1}, "compile.optimizer.momentum"),
        ("momentum", {"useNesterov": "yes"}, "compile.optimizer.useNesterov"),
        ("rmsprop", {"decay": 1.5}, "compile.optimizer.decay"),
        ("adadelta", {"rho": 2}, "compile.optimizer.rho"),
        ("adagrad", {"initialAccumulatorValue": -1}, "compile.optimizer.initialAccumulatorValue"),
        ("sgd", {"beta1": 0.9}, "compile.optimizer.beta1"),
        ("adagrad", {"epsilon": 1e-8}, "compile.optimizer.epsilon"),
        ("nadam", {}, "compile.optimizer"),
    ],
)
def test_bad_hyperparameters_name_their_field(name, options, field):
    with pytest.raises(InvalidConfig) as caught:
        get_optimizer(OptimizerConfig(name, options))
    assert caught.value.field == field


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_state_round_trip_continues_exactly(xp, name, options):
    ns = namespace(xp)
    weights = [ns.asarray(w.copy()) for w in W0]
    first = get_optimizer(OptimizerConfig(name, options))
    first.build(ns, weights)
    first.apply(weights, [ns.asarray(g) for g in GRADS[0]])
    saved, saved_weights = first.state(), [to_numpy(w).copy() for w in weights]
    first.apply(weights, [ns.asarray(g) for g in GRADS[1]])

    resumed_weights = [ns.asarray(w) for w in saved_weights]
    second = get_optimizer(OptimizerConfig(name, options))
    second.build(ns, resumed_weights)
    second.load_state(ns, saved)
    second.apply(resumed_weights, [ns.asarray(g) for g in GRADS[1]])
    for a, b in zip(weights, resumed_weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert second.iterations == first.iterations == 2
