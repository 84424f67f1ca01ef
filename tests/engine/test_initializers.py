"""Initializers: tf.js 4.22's distributions (checked by drawing from tf.js in node),
shapes, float32, determinism, and errors naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainq.services.engine.config import InitializerConfig
from trainq.services.engine.errors import InvalidConfig
from trainq.services.engine.initializers import INITIALIZER_NAMES, initialize

FIELD = "model.layers[0].kernelInitializer"
TRUNCATED_STD = 0.8796256610342398  # std of a standard normal cut at ±2


def draw(name: str, shape=(200, 300), rng_seed: int = 3, **options) -> np.ndarray:
    return initialize(InitializerConfig(name, options), shape, np.random.default_rng(rng_seed), FIELD)


@pytest.mark.parametrize("name", [n for n in INITIALIZER_NAMES if n not in ("identity", "constant")])
def test_kernels_and_biases_are_float32_of_the_requested_shape(name):
    assert draw(name, (3, 5)).dtype == np.float32 and draw(name, (3, 5)).shape == (3, 5)
    if name != "orthogonal":
        assert draw(name, (5,)).shape == (5,)


@pytest.mark.parametrize("name", INITIALIZER_NAMES)
def test_the_same_seed_draws_the_same_weights(name):
    options = {"value": 0.3} if name == "constant" else {}
    shape = (4, 4)
    np.testing.assert_array_equal(draw(name, shape, 9, **options), draw(name, shape, 9, **options))


def test_different_seeds_draw_different_weights():
    assert not np.array_equal(draw("glorotNormal", rng_seed=1), draw("glorotNormal", rng_seed=2))


def test_glorot_normal_is_truncated_at_two_sigma_without_the_keras_correction():
    fan_in, fan_out = 200, 300
    sigma = math.sqrt(2 / (fan_in + fan_out))
    w = draw("glorotNormal", (fan_in, fan_out))
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)
    # tf.js 4.22 drew a [50, 30] kernel with std 0.138 = 0.873 sigma: truncated, not rescaled.
    assert abs(w.std() / sigma - TRUNCATED_STD) < 0.01
    assert abs(w.mean()) < 0.01 * sigma


@pytest.mark.parametrize(
    "name, scale, fan",
    [
        ("heNormal", 2.0, 200),
        ("leCunNormal", 1.0, 200),
    ],
)
def test_fan_in_normals_use_their_scale(name, scale, fan):
    sigma = math.sqrt(scale / fan)
    w = draw(name)
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)
    assert abs(w.std() / sigma - TRUNCATED_STD) < 0.01


@pytest.mark.parametrize(
    "name, limit",
    [
        ("glorotUniform", math.sqrt(6 / 500)),
        ("heUniform", math.sqrt(6 / 200)),
        ("leCunUniform", math.sqrt(3 / 200)),
    ],
)
def test_uniforms_span_their_limit(name, limit):
    w = draw(name)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert abs(w.std() - limit / math.sqrt(3)) < 0.01 * limit


def test_a_bias_takes_square_root_fans_as_tfjs_computes_them():
    # tf.js 4.22: glorotUniform on shape [16] stays within sqrt(3 / 4) (fanIn = fanOut = 4).
    w = draw("glorotUniform", (4096,))
    assert np.abs(w).max() <= math.sqrt(3 / 64) and np.abs(w).max() > 0.99 * math.sqrt(3 / 64)


def test_random_defaults_are_tfjs_defaults():
    uniform, normal, truncated = draw("randomUniform"), draw("randomNormal"), draw("truncatedNormal")
    assert uniform.min() >= -0.05 and uniform.max() <= 0.05 and uniform.max() > 0.049
    assert abs(normal.std() - 0.05) < 0.001 and abs(normal.mean()) < 0.001
    assert np.abs(truncated).max() <= 0.1 + 1e-7 and abs(truncated.std() - 0.05 * TRUNCATED_STD) < 0.001


def test_random_options_use_tfjs_names():
    w = draw("randomNormal", mean=3.0, stddev=0.5)
    assert abs(w.mean() - 3.0) < 0.01 and abs(w.std() - 0.5) < 0.01
    w = draw("truncatedNormal", mean=-1.0, stddev=0.2)
    assert w.min() >= -1.4 - 1e-6 and w.max() <= -0.6 + 1e-6
    w = draw("randomUniform", minval=2.0, maxval=3.0)
    assert w.min() >= 2.0 and w.max() <= 3.0


def test_a_zero_option_falls_back_to_its_default_as_in_tfjs():
    # tf.js reads `args.minval || -0.05`: randomUniform({minval: 0, maxval: 1}) drew from [-0.05, 1).
    w = draw("randomUniform", minval=0, maxval=1.0)
    assert w.min() < 0 and w.min() >= -0.05
    # randomNormal({mean: 1, stddev: 0}) drew with std 0.05.
    assert abs(draw("randomNormal", mean=1.0, stddev=0).std() - 0.05) < 0.001


def test_constant_zeros_ones_identity_and_orthogonal():
    np.testing.assert_array_equal(draw("constant", (2, 3), value=0.25), np.full((2, 3), 0.25, np.float32))
    np.testing.assert_array_equal(draw("zeros", (3,)), np.zeros(3, np.float32))
    np.testing.assert_array_equal(draw("ones", (2, 2)), np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(draw("identity", (3, 3), gain=2.0), 2 * np.eye(3, dtype=np.float32))
    for shape in [(5, 3), (3, 5)]:
        q = draw("orthogonal", shape).astype(np.float64)
        small = q.T @ q if shape[0] > shape[1] else q @ q.T
        np.testing.assert_allclose(small, np.eye(3), atol=1e-6)


def test_variance_scaling_takes_its_mode_and_distribution():
    w = draw("varianceScaling", scale=2.0, mode="fanOut", distribution="uniform")
    limit = math.sqrt(3 * 2.0 / 300)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    sigma = math.sqrt(1.0 / 250)
    w = draw("varianceScaling", mode="fanAvg", distribution="normal")
    assert abs(w.std() / sigma - TRUNCATED_STD) < 0.01


def test_a_seed_option_draws_from_its_own_generator():
    a = initialize(InitializerConfig("heUniform", {"seed": 5}), (3, 3), np.random.default_rng(1), FIELD)
    b = initialize(InitializerConfig("heUniform", {"seed": 5}), (3, 3), np.random.default_rng(2), FIELD)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["glorot_normal", "GlorotNormal", "xavier", ""])
def test_unknown_initializer_names_the_field_and_lists_valid_names(name):
    with pytest.raises(InvalidConfig) as caught:
        draw(name)
    assert caught.value.field == FIELD and "glorotNormal" in caught.value.message


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("randomNormal", {"sigma": 1.0}, f"{FIELD}.sigma"),
        ("glorotNormal", {"stddev": 1.0}, f"{FIELD}.stddev"),
        ("zeros", {"seed": 1}, f"{FIELD}.seed"),
        ("randomNormal", {"stddev": -1.0}, f"{FIELD}.stddev"),
        ("randomUniform", {"minval": "low"}, f"{FIELD}.minval"),
        ("randomUniform", {"maxval": True}, f"{FIELD}.maxval"),
        ("constant", {}, f"{FIELD}.value"),
        ("varianceScaling", {"mode": "fan_in"}, f"{FIELD}.mode"),
        ("varianceScaling", {"scale": -1.0}, f"{FIELD}.scale"),
        ("heNormal", {"seed": 1.5}, f"{FIELD}.seed"),
    ],
)
def test_bad_options_name_their_field(name, options, field):
    with pytest.raises(InvalidConfig) as caught:
        draw(name, (3, 3), **options)
    assert caught.value.field == field


@pytest.mark.parametrize("name, shape", [("identity", (3, 4)), ("identity", (3,)), ("orthogonal", (3,))])
def test_shapes_tfjs_refuses_are_invalid(name, shape):
    with pytest.raises(InvalidConfig) as caught:
        draw(name, shape)
    assert caught.value.field == FIELD
