"""Modern back-propagation against central finite differences of the loss it claims to minimise.

For every hidden and output activation, both losses (cross-entropy after SoftMax or
Logistic outputs), bias on and off, one-hot and direct targets: the analytic gradient
plus the regularisation's must equal (objective(w + h) − objective(w − h)) / 2h.
The softmax with quadratic loss needs its full Jacobian here: the thesis' diagonal
derivative fails this test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from brain.activations import Activation
from brain.layout import Layout
from brain.modern import Modern, with_bias
from brain.modern.forward import forward, matrices, objective
from brain.modern.gradients import gradient, regularisation_gradient
from brain.preprocessing import PreProcessing

A = Activation
STEP = 1e-6


def numeric_gradient(weights, layout, x, t, hyper) -> np.ndarray:
    numeric = np.empty_like(weights)
    for k in range(len(weights)):
        up, down = weights.copy(), weights.copy()
        up[k] += STEP
        down[k] -= STEP
        numeric[k] = (objective(up, layout, x, t, hyper) - objective(down, layout, x, t, hyper)) / (2 * STEP)
    return numeric


def case(hidden: Activation, output: Activation, *, bias: bool, seed: int, direct: bool = False):
    rng = np.random.default_rng(seed)
    layout = with_bias(Layout.of(("Identity", 4), (hidden, 5), (hidden, 4), (output, 3)), bias)
    weights = rng.normal(0.0, 0.6, layout.n_weights)
    x = rng.normal(0.0, 1.0, (6, 4))
    # Direct targets: rows that need not sum to 1.
    t = rng.uniform(0.0, 1.0, (6, 3)) if direct else np.eye(3)[rng.integers(0, 3, 6)]
    return layout, weights, x, t


def assert_gradient_matches(layout, weights, x, t, hyper):
    analytic = gradient(weights, layout, x, t, hyper) + regularisation_gradient(weights, hyper)
    numeric = numeric_gradient(weights, layout, x, t, hyper)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-5, atol=2e-7)


HIDDEN = list(Activation)
QUADRATIC_PAIRS = list(itertools.product(HIDDEN, Activation))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(
    ("hidden", "output"), QUADRATIC_PAIRS, ids=[f"{h.name}-{o.name}" for h, o in QUADRATIC_PAIRS]
)
def test_quadratic_loss_gradient_matches_finite_differences(hidden, output, bias):
    hyper = Modern(
        loss="quadratic", preprocessing=PreProcessing.NONE, elu_alpha=0.7, lambda_l2=0.01, lambda_l1=0.003
    )
    layout, weights, x, t = case(hidden, output, bias=bias, seed=int(hidden) * 10 + int(output))
    assert_gradient_matches(layout, weights, x, t, hyper)


@pytest.mark.parametrize("direct", [False, True], ids=["one-hot", "direct"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("output", [A.SoftMax, A.Logistic])
@pytest.mark.parametrize("hidden", HIDDEN, ids=[h.name for h in HIDDEN])
def test_cross_entropy_gradient_matches_finite_differences(hidden, output, bias, direct):
    hyper = Modern(loss="crossentropy", preprocessing=PreProcessing.NONE, elu_alpha=1.3, lambda_l2=0.02)
    layout, weights, x, t = case(hidden, output, bias=bias, seed=100 + int(hidden), direct=direct)
    assert_gradient_matches(layout, weights, x, t, hyper)


def test_softmax_cross_entropy_output_delta_is_output_minus_target():
    # One layer, Identity input, zero weights: z = 0, softmax = [1/3, 1/3, 1/3] for any input.
    # ∂L/∂W = xᵀ (y − t), bias row: y − t.
    layout = Layout.of(("Identity", 2), ("SoftMax", 3))
    hyper = Modern(loss="crossentropy", preprocessing=PreProcessing.NONE)
    x = np.array([[2.0, -1.0]])
    t = np.array([[0.0, 1.0, 0.0]])
    g = matrices(gradient(np.zeros(layout.n_weights), layout, x, t, hyper), layout)[0]
    third = 1.0 / 3.0
    np.testing.assert_allclose(g, [[2 * third, 2 * (third - 1), 2 * third],
                                   [-third, -(third - 1), -third],
                                   [third, third - 1, third]], rtol=1e-15)  # fmt: skip


def test_batch_gradient_is_the_mean_of_the_samples_gradients():
    layout, weights, x, t = case(A.TanH, A.SoftMax, bias=True, seed=3)
    hyper = Modern(loss="crossentropy", preprocessing=PreProcessing.NONE)
    each = [gradient(weights, layout, x[k : k + 1], t[k : k + 1], hyper) for k in range(len(x))]
    np.testing.assert_allclose(gradient(weights, layout, x, t, hyper), np.mean(each, axis=0), rtol=1e-12)


def test_no_division_by_layer_size_in_the_forward_pass():
    # Identity 2 -> Identity 1 with weights [1, 1] and bias 0.5: z = x1 + x2 + 0.5, not (x1 + x2)/3.
    layout = Layout.of(("Identity", 2), ("Identity", 1))
    hyper = Modern(loss="quadratic", preprocessing=PreProcessing.NONE)
    out = forward(matrices(np.array([1.0, 1.0, 0.5]), layout), layout, np.array([[2.0, 3.0]]), hyper)[-1]
    assert out[0, 0] == 5.5


def test_bias_off_removes_the_bias_rows():
    layout = with_bias(Layout.of(("Identity", 3), ("ReLU", 4), ("SoftMax", 2)), False)
    assert layout.weight_shapes == ((3, 4), (4, 2))
    assert with_bias(layout, True).weight_shapes == ((4, 4), (5, 2))
    assert not layout.layers[-1].bias and not with_bias(layout, True).layers[-1].bias


def test_cross_entropy_after_other_outputs_is_refused():
    layout, weights, x, t = case(A.ReLU, A.Identity, bias=True, seed=1)
    with pytest.raises(ValueError, match="SoftMax or Logistic"):
        gradient(weights, layout, x, t, Modern(loss="crossentropy", preprocessing=PreProcessing.NONE))


def test_float32_gradient_stays_float32_and_close():
    layout, weights, x, t = case(A.ELU, A.SoftMax, bias=True, seed=5)
    hyper = Modern(loss="crossentropy", preprocessing=PreProcessing.NONE)
    g64 = gradient(weights, layout, x, t, hyper)
    g32 = gradient(weights.astype(np.float32), layout, x.astype(np.float32), t.astype(np.float32), hyper)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
