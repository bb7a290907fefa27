"""Every optimizer against two steps worked out by hand, and the sign of the regularisation.

Each test feeds the same two gradients, g1 = [0.5, -1] then g2 = [0.25, 2], to the
weights w0 = [1, -2] with learning rate 0.1; the expected weights are written out
from the update rules (brain/modern/optimizers.py's table), step by step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from brain.modern import Modern, new_state, optimizer_state_names
from brain.modern.optimizers import NO_COPY, apply_update, optimizer_step

W0 = [1.0, -2.0]
G1 = [0.5, -1.0]
G2 = [0.25, 2.0]
EPS = 1e-8


def two_steps(optimizer: str, **hyper) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    h = Modern(optimizer=optimizer, learning_rate=hyper.pop("learning_rate", 0.1), epsilon=EPS, **hyper)
    w = np.array(W0)
    state = new_state(optimizer, 2)
    step = np.zeros(1, np.int64)
    for g in (G1, G2):
        optimizer_step(w, np.array(g), state, step, h)
    return w, state, step


def test_sgd_steps_against_the_gradient():
    w, _, step = two_steps("SGD")
    # w1 = [1 - 0.1·0.5, -2 + 0.1·1] = [0.95, -1.9]; w2 = [0.95 - 0.025, -1.9 - 0.2]
    np.testing.assert_allclose(w, [0.925, -2.1], rtol=1e-15)
    assert step[0] == 2


def test_momentum_accumulates_the_velocity():
    w, state, _ = two_steps("Momentum", momentum=0.9)
    # v1 = g1, w1 = [0.95, -1.9]; v2 = 0.9·[0.5, -1] + [0.25, 2] = [0.7, 1.1]
    # w2 = [0.95 - 0.07, -1.9 - 0.11]
    np.testing.assert_allclose(state["velocity"], [0.7, 1.1], rtol=1e-15)
    np.testing.assert_allclose(w, [0.88, -2.01], rtol=1e-15)


def test_nesterov_steps_along_gradient_plus_mu_velocity():
    w, state, _ = two_steps("Nesterov", momentum=0.9)
    # w1 = w0 - 0.1·(g1 + 0.9·v1) = [1 - 0.095, -2 + 0.19] = [0.905, -1.81]
    # v2 = [0.7, 1.1]; w2 = w1 - 0.1·(g2 + 0.9·v2) = [0.905 - 0.088, -1.81 - 0.299]
    np.testing.assert_allclose(state["velocity"], [0.7, 1.1], rtol=1e-15)
    np.testing.assert_allclose(w, [0.817, -2.109], rtol=1e-14)


def test_adagrad_divides_by_the_root_of_summed_squares():
    w, state, _ = two_steps("AdaGrad")
    # G1 = [0.25, 1]; G2 = [0.3125, 5]
    w1 = [1 - 0.1 * 0.5 / (0.5 + EPS), -2 + 0.1 * 1 / (1 + EPS)]
    w2 = [w1[0] - 0.1 * 0.25 / (math.sqrt(0.3125) + EPS), w1[1] - 0.1 * 2 / (math.sqrt(5) + EPS)]
    np.testing.assert_allclose(state["sum_squares"], [0.3125, 5.0], rtol=1e-15)
    np.testing.assert_allclose(w, w2, rtol=1e-14)


def test_rmsprop_divides_by_the_root_of_a_running_mean():
    w, state, _ = two_steps("RMSProp", rho=0.9)
    # E1 = 0.1·g1² = [0.025, 0.1]; E2 = 0.9·E1 + 0.1·g2² = [0.02875, 0.49]
    w1 = [1 - 0.1 * 0.5 / (math.sqrt(0.025) + EPS), -2 + 0.1 * 1 / (math.sqrt(0.1) + EPS)]
    w2 = [w1[0] - 0.1 * 0.25 / (math.sqrt(0.02875) + EPS), w1[1] - 0.1 * 2 / (0.7 + EPS)]
    np.testing.assert_allclose(state["mean_square"], [0.02875, 0.49], rtol=1e-14)
    np.testing.assert_allclose(w, w2, rtol=1e-13)


def test_adam_corrects_the_bias_of_both_moments():
    w, state, step = two_steps("Adam", beta1=0.9, beta2=0.999)
    # Step 1: m̂ = g1, v̂ = g1², so each weight moves by 0.1·|g|/(|g| + ε) against its gradient.
    w1 = [1 - 0.1 * 0.5 / (0.5 + EPS), -2 + 0.1 * 1 / (1 + EPS)]
    # Step 2: m2 = 0.9·[0.05, -0.1] + 0.1·g2 = [0.07, 0.11];
    #         v2 = 0.999·[0.00025, 0.001] + 0.001·g2² = [0.00031225, 0.004999]
    m_hat = [0.07 / 0.19, 0.11 / 0.19]  # 1 - 0.9² = 0.19
    v_hat = [0.00031225 / 0.001999, 0.004999 / 0.001999]  # 1 - 0.999² = 0.001999
    w2 = [w1[k] - 0.1 * m_hat[k] / (math.sqrt(v_hat[k]) + EPS) for k in range(2)]
    np.testing.assert_allclose(state["m"], [0.07, 0.11], rtol=1e-14)
    np.testing.assert_allclose(state["v"], [0.00031225, 0.004999], rtol=1e-14)
    np.testing.assert_allclose(w, w2, rtol=1e-13)
    assert step[0] == 2


def test_nadam_looks_ahead_with_the_next_bias_correction():
    w, state, _ = two_steps("NAdam", beta1=0.9, beta2=0.999)
    # m̂_t = 0.9·m_t/(1 - 0.9^(t+1)) + 0.1·g_t/(1 - 0.9^t); v̂_t = v_t/(1 - 0.999^t)
    m1, v1 = [0.05, -0.1], [0.00025, 0.001]
    m_hat1 = [0.9 * m1[k] / 0.19 + 0.1 * G1[k] / 0.1 for k in range(2)]
    w1 = [W0[k] - 0.1 * m_hat1[k] / (math.sqrt(v1[k] / 0.001) + EPS) for k in range(2)]
    m2, v2 = [0.07, 0.11], [0.00031225, 0.004999]
    m_hat2 = [0.9 * m2[k] / (1 - 0.9**3) + 0.1 * G2[k] / 0.19 for k in range(2)]
    w2 = [w1[k] - 0.1 * m_hat2[k] / (math.sqrt(v2[k] / 0.001999) + EPS) for k in range(2)]
    np.testing.assert_allclose(state["m"], m2, rtol=1e-14)
    np.testing.assert_allclose(w, w2, rtol=1e-13)


def test_adadelta_scales_by_the_ratio_of_running_roots():
    eps = 1e-6  # large enough to matter in the first step, where D = 0
    h = Modern(optimizer="AdaDelta", learning_rate=1.0, rho=0.9, epsilon=eps)
    w, state, step = np.array(W0), new_state("AdaDelta", 2), np.zeros(1, np.int64)
    for g in (G1, G2):
        optimizer_step(w, np.array(g), state, step, h)
    # E1 = 0.1·g1²; d1 = √(0 + ε)/√(E1 + ε)·g1; D1 = 0.1·d1²
    e1 = [0.1 * g * g for g in G1]
    d1 = [math.sqrt(eps) / math.sqrt(e1[k] + eps) * G1[k] for k in range(2)]
    big_d1 = [0.1 * d * d for d in d1]
    e2 = [0.9 * e1[k] + 0.1 * G2[k] ** 2 for k in range(2)]
    d2 = [math.sqrt(big_d1[k] + eps) / math.sqrt(e2[k] + eps) * G2[k] for k in range(2)]
    expected = [W0[k] - d1[k] - d2[k] for k in range(2)]
    np.testing.assert_allclose(state["mean_square"], e2, rtol=1e-14)
    np.testing.assert_allclose(state["mean_update"], [0.9 * big_d1[k] + 0.1 * d2[k] ** 2 for k in range(2)])
    np.testing.assert_allclose(w, expected, rtol=1e-13)


def test_regularisation_decays_weights_towards_zero():
    h = Modern(optimizer="SGD", learning_rate=0.1, lambda_l2=0.5, lambda_l1=0.25)
    w, step = np.array([1.0, -2.0, 0.0]), np.zeros(1, np.int64)
    for _ in range(2):
        optimizer_step(w, np.zeros(3), {}, step, h)
    # gradient = 2·0.5·w + 0.25·sgn w: step 1 [1.25, -2.25, 0] -> w1 = [0.875, -1.775, 0]
    # step 2 [1.125, -2.025, 0] -> w2 = [0.7625, -1.5725, 0]  (the thesis program grew them)
    np.testing.assert_allclose(w, [0.7625, -1.5725, 0.0], rtol=1e-15)


def test_regularisation_enters_adaptive_optimizers_as_part_of_the_gradient():
    h = Modern(optimizer="Momentum", learning_rate=0.1, momentum=0.5, lambda_l2=0.5)
    w, state, step = np.array([2.0]), new_state("Momentum", 1), np.zeros(1, np.int64)
    optimizer_step(w, np.array([1.0]), state, step, h)
    # g = 1 + 2·0.5·2 = 3; v = 3; w = 2 - 0.3
    np.testing.assert_allclose(state["velocity"], [3.0])
    np.testing.assert_allclose(w, [1.7], rtol=1e-15)


def test_update_of_a_range_leaves_the_other_weights_and_fills_the_float32_copy():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    copy = np.zeros(4, np.float32)
    apply_update(0, w, np.full(4, 10.0), np.empty(0), np.empty(0), copy, 1, 3,
                 0.1, 0.0, 0.0, 0.9, 0.9, 0.999, EPS, 0.95, 0.1, 0.001, 0.19)  # fmt: skip
    np.testing.assert_array_equal(w, [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(copy, np.array([0.0, 1.0, 2.0, 0.0], np.float32))
    apply_update(0, w, np.full(4, 10.0), np.empty(0), np.empty(0), NO_COPY, 0, 1,
                 0.1, 0.0, 0.0, 0.9, 0.9, 0.999, EPS, 0.95, 0.1, 0.001, 0.19)  # fmt: skip
    assert w[0] == 0.0


@pytest.mark.parametrize(
    ("optimizer", "names"),
    [
        ("SGD", ()),
        ("Momentum", ("velocity",)),
        ("Nesterov", ("velocity",)),
        ("AdaGrad", ("sum_squares",)),
        ("RMSProp", ("mean_square",)),
        ("Adam", ("m", "v")),
        ("NAdam", ("m", "v")),
        ("AdaDelta", ("mean_square", "mean_update")),
    ],
)
def test_each_optimizer_names_its_state(optimizer, names):
    assert optimizer_state_names(optimizer) == names
    assert optimizer_state_names(optimizer.upper()) == names
    state = new_state(optimizer, 5)
    assert tuple(state) == names
    assert all(a.dtype == np.float64 and a.shape == (5,) and not a.any() for a in state.values())


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer 'LBFGS'"):
        optimizer_state_names("LBFGS")
    with pytest.raises(ValueError):
        Modern(optimizer="LBFGS")


def test_state_that_does_not_fit_is_a_bug():
    h = Modern(optimizer="Adam")
    step = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="keeps the state"):
        optimizer_step(np.zeros(3), np.zeros(3), {"m": np.zeros(3)}, step, h)
    with pytest.raises(ValueError, match="float64 of shape"):
        optimizer_step(np.zeros(3), np.zeros(3), {"m": np.zeros(3), "v": np.zeros(4)}, step, h)
    assert step[0] == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"momentum": 1.0},
        {"beta1": 1.0},
        {"beta2": -0.1},
        {"rho": 1.5},
        {"epsilon": 0.0},
        {"minibatch": 0},
        {"learning_rate": -0.1},
        {"lambda_l2": -1.0},
        {"loss": "hinge"},
        {"precision": "float16"},
    ],
)
def test_modern_rejects_values_out_of_range(bad):
    with pytest.raises(ValueError):
        Modern(**bad)
