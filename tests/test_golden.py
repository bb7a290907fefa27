"""Golden numbers for tiny networks, derived by hand from the spec's equations.

Every expected value here is plain scalar arithmetic (``math.exp`` and the four
operations) written out from ``shared/spec/thesis-semantics.md``; nothing calls
the code under test to produce an expectation.  Both ``brain.reference`` and
``brain.kernels`` must reproduce the numbers to 1e-12 relative: the weights are
dyadic fractions, so the hand sums and the code's sums differ only by the
rounding of a few transcendental terms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from brain_helpers import direct_targets, index_targets, network

from brain import kernels, reference
from brain.hyper import Hyper
from brain.layout import Layout
from brain.preprocessing import PreProcessing

REL = 1e-12


def sgn(w: float) -> float:
    return 1.0 if w > 0 else -1.0 if w < 0 else 0.0


def updated(w: list[list[float]], delta: list[float], below: list[float], lr: float, lam: float):
    """The spec's update, weight by weight: w - lr·(delta_j·y_i - λ·(2w + sgn w)) (the program's sign)."""
    return [
        [
            w[i][j] - lr * (delta[j] * below[i] - lam * (2.0 * w[i][j] + sgn(w[i][j])))
            for j in range(len(delta))
        ]
        for i in range(len(below))
    ]


def flat(*matrices: list[list[float]]) -> list[float]:
    return [w for matrix in matrices for row in matrix for w in row]


def assert_close(actual, expected) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=REL, atol=0
    )


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- network A: Identity 2 / Logistic 3 / SoftMax 4 ----------------------------------------------

LAYOUT_A = Layout.of(("Identity", 2), ("Logistic", 3), ("SoftMax", 4))
X_A = [3.0, 6.0]
LABEL_A = 2
# Rows are the neurons below (bias last), columns the neurons above; one weight is 0 so sgn 0 is pinned.
W1_A = [
    [0.5, -0.25, 0.125],
    [0.25, 0.5, -0.375],
    [-0.5, 0.0, 0.25],
]
W2_A = [
    [0.25, -0.5, 0.75, 0.0],
    [-0.25, 0.5, 0.125, -0.75],
    [0.5, 0.25, -0.5, 0.375],
    [0.125, -0.125, 0.25, -0.25],
]


def hand_a(lr: float, lam: float) -> dict[str, list]:
    """Network A on X_A with target class 2, worked out neuron by neuron."""
    # Input layer: 2 neurons + bias, so ÷3; Identity; bias set to 1.
    y0 = [3.0 / 3, 6.0 / 3, 1.0]  # [1, 2, 1]
    # Hidden sums over the 3 neurons below (bias included):
    #   z0 = 1·0.5    + 2·0.25   + 1·(-0.5)  =  0.5
    #   z1 = 1·(-0.25)+ 2·0.5    + 1·0       =  0.75
    #   z2 = 1·0.125  + 2·(-0.375)+ 1·0.25   = -0.375
    # then ÷4 (3 neurons + bias) and the logistic; bias 1.
    h = [logistic(0.5 / 4), logistic(0.75 / 4), logistic(-0.375 / 4), 1.0]  # ≈ [.531, .547, .477, 1]
    # Output sums over the 4 neurons below, ÷4 (no bias on the output layer), softmax.
    z = [
        0.25 * h[0] - 0.25 * h[1] + 0.5 * h[2] + 0.125 * h[3],
        -0.5 * h[0] + 0.5 * h[1] + 0.25 * h[2] - 0.125 * h[3],
        0.75 * h[0] + 0.125 * h[1] - 0.5 * h[2] + 0.25 * h[3],
        0.0 * h[0] - 0.75 * h[1] + 0.375 * h[2] - 0.25 * h[3],
    ]
    s = [v / 4 for v in z]
    top = max(s)
    e = [math.exp(v - top) for v in s]
    y = [v / (e[0] + e[1] + e[2] + e[3]) for v in e]  # ≈ [.262, .225, .301, .211]
    t = [0.0, 0.0, 1.0, 0.0]
    # Backward: error y - t, delta = error · (1-y)·y (softmax's diagonal derivative).
    d2 = [(y[k] - t[k]) * (1.0 - y[k]) * y[k] for k in range(4)]
    # Error of the hidden neurons (not the bias) through W2 *before* its update.
    e1 = [sum(d2[k] * W2_A[i][k] for k in range(4)) for i in range(3)]
    d1 = [e1[i] * (1.0 - h[i]) * h[i] for i in range(3)]
    return {
        "values": [y0, h, y],
        "target": t,
        "w2": updated(W2_A, d2, h, lr, lam),
        "w1": updated(W1_A, d1, y0, lr, lam),
    }


# --- network B: Identity 2 / ELU 2 / ELU 2 (alpha 0.5), direct targets -----------------------------

LAYOUT_B = Layout.of(("Identity", 2), ("ELU", 2), ("ELU", 2))
X_B = [3.0, -6.0]
T_B = [0.25, -0.125]
W1_B = [[0.5, -0.75], [0.25, 0.5], [0.25, 0.5]]
W2_B = [[1.0, -0.5], [0.5, 0.75], [-0.25, 0.5]]


def elu(x: float) -> float:
    return x if x >= 0 else 0.5 * (math.exp(x) - 1.0)


def hand_b(lr: float, lam: float) -> dict[str, list]:
    """Network B on X_B: one hidden and one output neuron on each side of ELU's kink."""
    y0 = [3.0 / 3, -6.0 / 3, 1.0]  # [1, -2, 1]
    # z0 = 0.5 - 0.5 + 0.25 = 0.25 -> ÷3 -> 1/12 (positive branch)
    # z1 = -0.75 - 1 + 0.5 = -1.25 -> ÷3 -> -5/12: 0.5·(e^(-5/12) - 1) ≈ -0.170
    h = [0.25 / 3, 0.5 * (math.exp(-1.25 / 3) - 1.0), 1.0]
    assert h[0] == elu(0.25 / 3)
    # Output ÷2: z0 = h0 + 0.5·h1 - 0.25 ≈ -0.252 (negative branch), z1 = -0.5·h0 + 0.75·h1 + 0.5 ≈ 0.331
    z = [1.0 * h[0] + 0.5 * h[1] - 0.25 * h[2], -0.5 * h[0] + 0.75 * h[1] + 0.5 * h[2]]
    y = [0.5 * (math.exp(z[0] / 2) - 1.0), z[1] / 2]
    assert z[0] < 0 < z[1]
    # ELU's derivative from y: y + alpha where y <= 0, else 1.
    d2 = [(y[0] - T_B[0]) * (y[0] + 0.5), (y[1] - T_B[1]) * 1.0]
    e1 = [d2[0] * W2_B[i][0] + d2[1] * W2_B[i][1] for i in range(2)]
    d1 = [e1[0] * 1.0, e1[1] * (h[1] + 0.5)]
    return {
        "values": [y0, h, y],
        "target": T_B,
        "w2": updated(W2_B, d2, h, lr, lam),
        "w1": updated(W1_B, d1, y0, lr, lam),
    }


# --- the cases ----------------------------------------------------------------------------------

CASES = {
    "A-index": (LAYOUT_A, W1_A, W2_A, X_A, hand_a, lambda: index_targets([LABEL_A], 4)),
    "A-direct": (LAYOUT_A, W1_A, W2_A, X_A, hand_a, lambda: direct_targets([[0.0, 0.0, 1.0, 0.0]])),
    "B-elu": (LAYOUT_B, W1_B, W2_B, X_B, hand_b, lambda: direct_targets([T_B])),
}
SETTINGS = {"plain": (0.5, 0.0), "elastic": (0.5, 0.125)}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


@pytest.fixture(params=sorted(SETTINGS))
def setting(request):
    return SETTINGS[request.param]


def test_reference_forward_matches_hand_values(case):
    layout, w1, w2, x, hand, _ = case
    expected = hand(0.0, 0.0)["values"]
    values = reference.forward(network(layout, w1, w2), np.array(x), Hyper(elu_alpha=0.5))
    assert len(values) == 3
    for got, want in zip(values, expected, strict=True):
        assert_close(got, want)


def test_kernel_test_pass_matches_hand_error_and_verdict(case):
    layout, w1, w2, x, hand, make_targets = case
    golden = hand(0.0, 0.0)
    y, t = golden["values"][-1], golden["target"]
    error = 0.5 * sum((ti - yi) ** 2 for ti, yi in zip(t, y, strict=True))
    first_max = y.index(max(y))
    correct, error_sum = kernels.test(network(layout, w1, w2), np.array([x]), make_targets(), [0], Hyper())
    assert correct == int(t[first_max] == 1.0)
    assert error_sum == pytest.approx(error, rel=REL)


def test_one_reference_training_step_matches_hand_update(case, setting):
    layout, w1, w2, x, hand, make_targets = case
    lr, lam = setting
    golden = hand(lr, lam)
    net = network(layout, w1, w2)
    reference.train_rows(net, np.array([x]), make_targets(), [0], Hyper(learning_rate=lr, lambda_=lam))
    assert_close(net.weights, flat(golden["w1"], golden["w2"]))


def test_one_kernel_training_step_matches_hand_update(case, setting):
    layout, w1, w2, x, hand, make_targets = case
    lr, lam = setting
    golden = hand(lr, lam)
    net = network(layout, w1, w2)
    status = kernels.train(
        net, np.array([x]), make_targets(), np.array([0]), Hyper(learning_rate=lr, lambda_=lam)
    )
    assert status == -1
    assert_close(net.weights, flat(golden["w1"], golden["w2"]))


def test_elastic_term_is_added_not_subtracted():
    # Output equals target, so the gradient is 0 and only λ acts: w + lr·λ·(2w + sgn w).
    # Identity 1 / Identity 1, input 0: output = 0·w0 + 1·wb = wb, target wb.
    lr, lam = 0.5, 0.125
    net = network(Layout.of(("Identity", 1), ("Identity", 1)), [[0.5], [-0.25]])
    expected = [0.5 + 0.0625 * (1.0 + 1.0), -0.25 + 0.0625 * (-0.5 - 1.0)]  # [0.625, -0.34375]
    hyper = Hyper(learning_rate=lr, lambda_=lam)
    for train in (reference.train_rows, kernels.train):
        trained = net.copy()
        train(trained, np.array([[0.0]]), direct_targets([[-0.25]]), np.array([0]), hyper)
        assert_close(trained.weights, expected)


def test_regularisation_of_idle_inputs_follows_the_stepwise_recurrence():
    """Many samples with input 0 (the kernel's lazy closed form), then one that reads the row, then more."""
    lr, lam, target = 0.1, 0.01, 0.25
    xs = [0.0] * 200 + [4.0] + [0.0] * 99
    w0, wb = 0.5, -0.25
    for x in xs:  # Identity 1 (÷2) / Identity 1 (÷1), the spec's update one sample at a time
        y0 = x / 2
        delta = (y0 * w0 + wb) - target
        w0, wb = (
            w0 - lr * (delta * y0 - lam * (2 * w0 + sgn(w0))),
            wb - lr * (delta * 1.0 - lam * (2 * wb + sgn(wb))),
        )
    hyper = Hyper(learning_rate=lr, lambda_=lam)
    inputs = np.array([[x] for x in xs])
    targets = direct_targets([[target]] * len(xs))
    for train in (reference.train_rows, kernels.train):
        net = network(Layout.of(("Identity", 1), ("Identity", 1)), [[0.5], [-0.25]])
        train(net, inputs, targets, np.arange(len(xs)), hyper)
        assert_close(net.weights, [w0, wb])


# --- pre-processing -----------------------------------------------------------------------------

# Identity 3 / Identity 1 with zero weights, target 1, learning rate 1, λ 0: the output is 0,
# delta = (0 - 1)·1 = -1, so one step sets every weight to the input neuron's value (bias: 1).
X_PRE = [2, 4, 12]
PRE_CASES = {
    # ÷4 (3 inputs + bias)
    PreProcessing.NONE: [2 / 4, 4 / 4, 12 / 4],
    # ÷ max 12: [1/6, 1/3, 1], then ÷4
    PreProcessing.Proportional: [1 / 6 / 4, 1 / 3 / 4, 1.0 / 4],
    # − midrange (12 + 2)/2 = 7 (the mean would be 6, the max/2 6): [-5, -3, 5], then ÷4
    PreProcessing.MeanSubtraction: [-5 / 4, -3 / 4, 5 / 4],
}


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("kind", list(PRE_CASES), ids=[k.name for k in PRE_CASES])
@pytest.mark.parametrize("train", [reference.train_rows, kernels.train], ids=["reference", "kernel"])
def test_input_preprocessing_values(train, kind, dtype):
    layout = Layout.of(("Identity", 3), ("Identity", 1))
    hyper = Hyper(learning_rate=1.0, lambda_=0.0, preprocessing=kind)
    inputs = np.array([X_PRE], dtype=dtype)
    net = network(layout, np.zeros((4, 1)))
    train(net, inputs, direct_targets([[1.0]]), np.array([0]), hyper)
    assert_close(net.weights, [*PRE_CASES[kind], 1.0])
    values = reference.forward(network(layout, np.zeros((4, 1))), inputs[0], hyper)
    assert_close(values[0], [*PRE_CASES[kind], 1.0])


# --- check --------------------------------------------------------------------------------------

OUT = [0.1, 0.7, 0.7, 0.2]  # a tie: the first index of the maximum (1) is the prediction


@pytest.mark.parametrize(
    ("target", "correct", "error"),
    [
        # 0.5·(0.1² + 0.7² + 0.3² + 0.2²) = 0.5·0.63
        ([0.0, 0.0, 1.0, 0.0], False, 0.315),
        # 0.5·(0.1² + 0.3² + 0.7² + 0.2²)
        ([0.0, 1.0, 0.0, 0.0], True, 0.315),
        # 0.5·(0.1² + 0.3² + 0.3² + 0.2²) = 0.5·0.23
        ([0.0, 1.0, 1.0, 0.0], True, 0.115),
        # a direct target that is not 1 at the prediction is not correct: 0.5·(0.1² + 0.2² + 0.7² + 0.2²)
        ([0.0, 0.9, 0.0, 0.0], False, 0.29),
    ],
)
def test_check_takes_first_maximum_and_half_squared_error(target, correct, error):
    ok, err = reference.check(np.array(OUT), np.array(target))
    assert ok is correct
    assert err == pytest.approx(error, rel=REL)


def test_kernel_check_takes_first_maximum_and_sums_errors():
    # Identity 1 / Identity 4 with input 0: the output is the bias row ÷4 = OUT.
    net = network(Layout.of(("Identity", 1), ("Identity", 4)), [[9.0, 9.0, 9.0, 9.0], [0.4, 2.8, 2.8, 0.8]])
    inputs = np.zeros((3, 1))
    correct, error = kernels.test(net, inputs, index_targets([2, 1, 1], 4), np.arange(3), Hyper())
    assert (correct, error) == (2, pytest.approx(0.315 * 3, rel=REL))
    rows = np.array([0, 1])
    targets = direct_targets([[0.0, 1.0, 1.0, 0.0], [0.0, 0.9, 0.0, 0.0]])
    correct, error = kernels.test(net, inputs, targets, rows, Hyper())
    assert (correct, error) == (1, pytest.approx(0.115 + 0.29, rel=REL))
    assert reference.test_rows(net, inputs, targets, rows, Hyper()) == (1, pytest.approx(0.405, rel=REL))


def test_uniform_softmax_predicts_class_zero():
    # Zero weights: every output is 1/4; only label 0 is correct; each error 0.5·(0.75² + 3·0.25²) = 0.375.
    net = network(LAYOUT_A, np.zeros((3, 3)), np.zeros((4, 4)))
    targets = index_targets([0, 1, 3, 0], 4)
    for run in (reference.test_rows, kernels.test):
        correct, error = run(net, np.ones((4, 2)), targets, np.arange(4), Hyper())
        assert correct == 2
        assert error == pytest.approx(4 * 0.375, rel=REL)


def test_index_target_is_one_hot():
    np.testing.assert_array_equal(reference.target_vector(index_targets([3, 0], 4), 0, 4), [0, 0, 0, 1])
    np.testing.assert_array_equal(reference.target_vector(direct_targets([[0.5, 2.0]]), 0, 2), [0.5, 2.0])
