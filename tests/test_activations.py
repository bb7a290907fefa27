"""Each activation and its derivative-from-y match the spec's table, in the readable and the fast copy."""

from __future__ import annotations

import numpy as np
import pytest

from brain import kernels
from brain.activations import LEAKY_SLOPE, Activation, activate, derivative

A = Activation

SOFTMAX_123 = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219]

# (activation, x, f(x), f' computed from y = f(x)); every number written out from the
# spec's table (thesis-semantics.md, "Activations"), with ELU alpha 0.5.
TABLE = [
    (A.Identity, [-2.5, 0.0, 3.0], [-2.5, 0.0, 3.0], [1.0, 1.0, 1.0]),
    (
        A.Logistic,
        [0.0, 2.0, -1.0],
        # 1/(1+e^0), 1/(1+e^-2), 1/(1+e^1)
        [0.5, 0.8807970779778823, 0.2689414213699951],
        # (1-y)·y
        [0.25, 0.10499358540350662, 0.19661193324148185],
    ),
    (
        A.TanH,
        [0.0, 0.5, -1.0],
        [0.0, 0.46211715726000974, -0.7615941559557649],
        # 1 - y²
        [1.0, 0.7864477329659274, 0.41997434161402614],
    ),
    # max(0, x); 1 if y > 0 else 0 (so 0 at y = 0)
    (A.ReLU, [-1.5, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    # x if x >= 0 else 0.01x; 1 if y > 0 else 0.01 (so 0.01 at y = 0)
    (A.LeakyReLU, [-2.0, 0.0, 3.0], [-0.02, 0.0, 3.0], [0.01, 0.01, 1.0]),
    (
        A.ELU,
        [-1.0, 0.0, 1.5],
        # 0.5·(e^-1 - 1), 0, 1.5
        [-0.31606027941427883, 0.0, 1.5],
        # y + 0.5 (= 0.5·e^-1) for y <= 0, 1 for y > 0
        [0.18393972058572117, 0.5, 1.0],
    ),
    (
        A.SoftMax,
        [1.0, 2.0, 3.0],
        # e^(x_i - 3) / (e^-2 + e^-1 + 1)
        SOFTMAX_123,
        # diagonal only: (1 - y_i)·y_i
        [0.08192506906499324, 0.18483644650997874, 0.22269542653462335],
    ),
    # Not in the thesis: SELU with Klambauer et al.'s scale s = 1.0507009873554805 and
    # alpha a = 1.6732632423543772: s·a·(e^x - 1) for x <= 0, s·x above; derivative y + s·a below
    # (= s·a·e^x), s above.
    (
        A.SELU,
        [-1.0, 0.0, 2.0],
        [-1.1113307378125625, 0.0, 2.101401974710961],
        [0.646768603034814, 1.7580993408473766, 1.0507009873554805],
    ),
]


def reference_f(kind: Activation, x: list[float], alpha: float = 0.5) -> np.ndarray:
    return activate(kind, np.array(x, dtype=np.float64), alpha)


def kernel_f(kind: Activation, x: list[float], alpha: float = 0.5) -> np.ndarray:
    z = np.array(x, dtype=np.float64)
    out = np.full_like(z, np.nan)
    kernels._think(int(kind), z, out, len(z), 1, alpha)  # layer size 1: no normalisation
    return out


def reference_df(kind: Activation, y: list[float], alpha: float = 0.5) -> np.ndarray:
    return derivative(kind, np.array(y, dtype=np.float64), alpha)


def kernel_df(kind: Activation, y: list[float], alpha: float = 0.5) -> np.ndarray:
    return np.array([kernels._derivative(int(kind), value, alpha) for value in y])


IMPLEMENTATIONS = {"reference": (reference_f, reference_df), "kernel": (kernel_f, kernel_df)}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request):
    return IMPLEMENTATIONS[request.param]


@pytest.mark.parametrize(
    ("kind", "x", "expected_y", "expected_dy"), TABLE, ids=[row[0].name for row in TABLE]
)
def test_activation_and_derivative_follow_the_spec_table(implementation, kind, x, expected_y, expected_dy):
    f, df = implementation
    y = f(kind, x)
    np.testing.assert_allclose(y, expected_y, rtol=1e-15, atol=0)
    np.testing.assert_allclose(df(kind, expected_y), expected_dy, rtol=1e-15, atol=0)


def test_table_covers_every_activation():
    assert {row[0] for row in TABLE} == set(Activation)


def test_softmax_sums_to_one(implementation):
    f, _ = implementation
    y = f(A.SoftMax, [0.3, -1.7, 2.2, 0.0, 5.1])
    assert y.sum() == pytest.approx(1.0, rel=1e-15)
    assert (y > 0).all()


def test_softmax_is_shift_invariant_and_does_not_overflow(implementation):
    f, _ = implementation
    # e^1003 overflows a float64: only the max-shifted form survives it.
    shifted = f(A.SoftMax, [1001.0, 1002.0, 1003.0])
    np.testing.assert_allclose(shifted, SOFTMAX_123, rtol=1e-15, atol=0)
    np.testing.assert_allclose(f(A.SoftMax, [-4.0, -3.0, -2.0]), SOFTMAX_123, rtol=1e-15, atol=0)


def test_elu_alpha_is_configurable(implementation):
    f, df = implementation
    # alpha 1: e^-1 - 1, derivative y + 1 = e^-1; alpha 2: 2(e^-1 - 1), derivative 2e^-1
    np.testing.assert_allclose(f(A.ELU, [-1.0, 2.0], 1.0), [-0.6321205588285577, 2.0], rtol=1e-15)
    np.testing.assert_allclose(df(A.ELU, [-0.6321205588285577, 2.0], 1.0), [0.36787944117144233, 1.0])
    np.testing.assert_allclose(f(A.ELU, [-1.0], 2.0), [-1.2642411176571153], rtol=1e-15)
    np.testing.assert_allclose(df(A.ELU, [-1.2642411176571153], 2.0), [0.7357588823428847], rtol=1e-15)


def test_leaky_relu_slope_is_one_hundredth(implementation):
    f, df = implementation
    assert LEAKY_SLOPE == 0.01
    np.testing.assert_allclose(f(A.LeakyReLU, [-100.0, -0.5]), [-1.0, -0.005], rtol=1e-15)
    np.testing.assert_allclose(df(A.LeakyReLU, [-1.0, -0.005]), [0.01, 0.01], rtol=0)


def test_activation_names_parse_case_insensitively():
    assert Activation.parse("elu") is A.ELU
    assert Activation.parse("  SOFTMAX ") is A.SoftMax
    assert Activation.parse("leakyrelu") is A.LeakyReLU
    with pytest.raises(KeyError):
        Activation.parse("Sigmoid")
