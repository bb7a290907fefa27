"""Initial weights: each rule's spread matches its formula, biases start at 0, seeds reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from brain.connectome import Connectome
from brain.layout import Layout
from brain.modern import initial_weights, with_bias
from brain.modern.forward import matrices

LAYOUT = Layout.of(("Identity", 784), ("ReLU", 300), ("SELU", 100), ("SoftMax", 10))


@pytest.mark.parametrize(
    ("init", "variance"),
    [
        ("He", lambda fan_in, fan_out: 2.0 / fan_in),
        ("LeCun", lambda fan_in, fan_out: 1.0 / fan_in),
        ("Glorot", lambda fan_in, fan_out: 2.0 / (fan_in + fan_out)),
    ],
)
def test_variance_follows_the_fan_in_formula_and_biases_are_zero(init, variance):
    weights = initial_weights(LAYOUT, init, seed=1)
    for below, above, w in zip(LAYOUT.layers[:-1], LAYOUT.layers[1:], matrices(weights, LAYOUT), strict=True):
        fan_in, fan_out = below.neurons, above.neurons
        body = w[:fan_in]
        # The sample variance of n normal draws has relative spread √(2/n): 3000 draws -> 2.6 %.
        assert body.var() == pytest.approx(variance(fan_in, fan_out), rel=0.12)
        assert abs(body.mean()) < 4 * np.sqrt(variance(fan_in, fan_out) / body.size)
        np.testing.assert_array_equal(w[fan_in], 0.0)


def test_glorot_is_uniform_within_its_limit():
    weights = initial_weights(LAYOUT, "Glorot", seed=2)
    first = matrices(weights, LAYOUT)[0][:784]
    limit = np.sqrt(6.0 / (784 + 300))
    assert np.abs(first).max() <= limit
    assert np.abs(first).max() > 0.99 * limit


def test_he_and_lecun_are_normal():
    first = matrices(initial_weights(LAYOUT, "He", seed=3), LAYOUT)[0][:784].ravel()
    # A normal distribution puts 68.3 % within one standard deviation; a uniform one 57.7 %.
    within = np.mean(np.abs(first) < np.sqrt(2.0 / 784))
    assert within == pytest.approx(0.683, abs=0.01)


def test_uniform_is_the_thesis_rule_bit_for_bit():
    expected = Connectome.uniform(LAYOUT, -0.1, 0.1, seed=42).weights
    np.testing.assert_array_equal(initial_weights(LAYOUT, "Uniform", 42, -0.1, 0.1), expected)


def test_seeds_reproduce_and_differ():
    np.testing.assert_array_equal(initial_weights(LAYOUT, "he", 5), initial_weights(LAYOUT, "HE", 5))
    assert not np.array_equal(initial_weights(LAYOUT, "he", 5), initial_weights(LAYOUT, "he", 6))


def test_layouts_without_bias_are_filled_completely():
    layout = with_bias(Layout.of(("Identity", 50), ("ReLU", 40), ("SoftMax", 10)), False)
    weights = initial_weights(layout, "LeCun", 1)
    assert weights.shape == (50 * 40 + 40 * 10,)
    assert np.count_nonzero(weights) == weights.size


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="unknown init 'Xavier'"):
        initial_weights(LAYOUT, "Xavier", 1)
