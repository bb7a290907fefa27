"""The fast kernels compute what the readable reference computes, on random small networks.

Agreement is to 1e-12 relative.  The absolute floor is 1e-12 × the largest weight:
a weight is a sum of many updates, and where it passes near 0 its *relative* error
is unbounded while its absolute error stays near (samples × machine epsilon) × the
largest weight — the two implementations add in different orders (BLAS dot
products against sequential loops, the lazy closed form against step-by-step
regularisation).  That floor is still some 1e8 below the size of one update, so a
real difference in the math cannot hide under it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from brain_helpers import direct_targets, index_targets, network

from brain import kernels, reference
from brain.activations import Activation
from brain.connectome import Connectome
from brain.data.targets import Targets
from brain.hyper import Hyper
from brain.layout import Layout
from brain.preprocessing import PreProcessing

RTOL = 1e-12


@dataclass(frozen=True)
class Case:
    net: Connectome
    inputs: np.ndarray
    targets: Targets
    rows: np.ndarray
    hyper: Hyper


def random_case(
    seed: int,
    *,
    activations: tuple[Activation, ...],
    preprocessing: PreProcessing,
    direct: bool,
    dtype: type,
    lambda_: float,
    samples: int = 40,
    zero_fraction: float = 0.5,
) -> Case:
    """A network with the given hidden and output activations (Identity input) and data to train it on."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(3, 12))
    sizes = [n_in] + [int(rng.integers(2, 7)) for _ in activations[:-1]] + [int(rng.integers(2, 6))]
    layout = Layout.of(*zip([Activation.Identity, *activations], sizes, strict=True))
    net = Connectome.uniform(layout, -1.0, 1.0, seed)
    if dtype is np.uint8:
        inputs = rng.integers(0, 256, (samples, n_in)).astype(np.uint8)
    else:
        inputs = rng.normal(0.0, 3.0, (samples, n_in))
    inputs[rng.random(inputs.shape) < zero_fraction] = 0
    n_out = sizes[-1]
    if direct:
        targets = direct_targets(rng.choice([0.0, 0.25, 1.0], (samples, n_out)))
    else:
        targets = index_targets(rng.integers(0, n_out, samples), n_out)
    # Unscaled pixels reach ±255/size at the input layer; a smaller step keeps those networks from diverging.
    raw = dtype is np.uint8 and preprocessing != PreProcessing.Proportional
    hyper = Hyper(
        learning_rate=0.002 if raw else 0.05,
        lambda_=lambda_,
        preprocessing=preprocessing,
        elu_alpha=float(rng.choice([0.5, 1.0])),
    )
    return Case(net, inputs, targets, rng.permutation(samples), hyper)


def weights_close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


def train_both(case: Case, rows: np.ndarray | None = None) -> tuple[Connectome, Connectome]:
    """The case's network trained by the reference and by the kernel (each on its own copy)."""
    rows = case.rows if rows is None else rows
    slow, fast = case.net.copy(), case.net.copy()
    reference.train_rows(slow, case.inputs, case.targets, rows, case.hyper)
    assert kernels.train(fast, case.inputs, case.targets, rows, case.hyper) == -1
    assert slow.is_finite()
    return slow, fast


def assert_kernels_match_reference(case: Case) -> None:
    slow, fast = train_both(case)
    assert np.abs(slow.weights - case.net.weights).max() > 1e-6, "training must change the weights"
    weights_close(fast.weights, slow.weights)
    correct, error = kernels.test(slow, case.inputs, case.targets, case.rows, case.hyper)
    expected_correct, expected_error = reference.test_rows(
        slow, case.inputs, case.targets, case.rows, case.hyper
    )
    assert correct == expected_correct
    assert error == pytest.approx(expected_error, rel=RTOL)


PREPROCESSINGS = list(PreProcessing)
PAIRS = list(itertools.product(Activation, Activation))


@pytest.mark.parametrize(("hidden", "output"), PAIRS, ids=[f"{h.name}-{o.name}" for h, o in PAIRS])
def test_every_activation_in_hidden_and_output_position(hidden, output):
    # The other settings rotate with the pair so each pair also meets a different combination.
    i = PAIRS.index((hidden, output))
    case = random_case(
        100 + i,
        activations=(hidden, output),
        preprocessing=PREPROCESSINGS[i % 3],
        direct=bool(i // 3 % 2),
        dtype=(np.uint8, np.float64)[i // 6 % 2],
        lambda_=(0.0, 1e-3)[i % 2],
    )
    assert_kernels_match_reference(case)


SETTINGS = list(
    itertools.product(PREPROCESSINGS, (False, True), (np.uint8, np.float64), (2, 3, 4), (0.0, 1e-3))
)


@pytest.mark.parametrize(
    ("preprocessing", "direct", "dtype", "depth", "lambda_"),
    SETTINGS,
    ids=[
        f"{p.name}-{'direct' if d else 'index'}-{t.__name__}-depth{n}-lambda{lam}"
        for p, d, t, n, lam in SETTINGS
    ],
)
def test_every_setting_and_depth(preprocessing, direct, dtype, depth, lambda_):
    seed = 500 + SETTINGS.index((preprocessing, direct, dtype, depth, lambda_))
    rng = np.random.default_rng(seed)
    activations = tuple(Activation(int(a)) for a in rng.integers(0, len(Activation), depth - 1))
    case = random_case(
        seed,
        activations=activations,
        preprocessing=preprocessing,
        direct=direct,
        dtype=dtype,
        lambda_=lambda_,
    )
    assert_kernels_match_reference(case)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64], ids=["uint8", "float64"])
@pytest.mark.parametrize("preprocessing", [PreProcessing.NONE, PreProcessing.Proportional])
def test_lazy_regularisation_of_idle_input_rows_matches_stepwise_updates(preprocessing, dtype):
    """Sparse inputs, long blocks: rows of the first matrix stay untouched for hundreds of samples."""
    samples, n_in = 400, 40
    rng = np.random.default_rng(8)
    inputs = np.zeros((samples, n_in), dtype)
    inputs[:, :] = rng.integers(1, 200, (samples, n_in)) * (rng.random((samples, n_in)) < 0.2)
    inputs[:, :10] = 0  # never read: brought up to date only at the end of the block
    inputs[:300, 10] = 0  # idle for 300 samples, then read every sample
    inputs[300:, 10] = 50
    inputs[::97, 11] = 9  # read now and then
    inputs[:, 11][np.arange(samples) % 97 != 0] = 0
    layout = Layout.of(("Identity", n_in), ("ELU", 6), ("SoftMax", 4))
    net = Connectome.uniform(layout, -0.5, 0.5, 9)
    targets = index_targets(rng.integers(0, 4, samples), 4)
    slow, fast = train_both(
        Case(net, inputs, targets, rng.permutation(samples), Hyper(0.05, 0.01, preprocessing))
    )
    # λ > 0 grows the idle rows: by (1 + 2·lr·λ)^400 ≈ 1.49 in magnitude, plus the sgn term.
    untouched = net.matrices[0][:10]
    assert np.all(np.abs(slow.matrices[0][:10]) > 1.4 * np.abs(untouched))
    weights_close(fast.weights, slow.weights)


def test_thesis_shaped_network_matches_reference():
    rng = np.random.default_rng(11)
    layout = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
    inputs = (rng.integers(0, 256, (30, 784)) * (rng.random((30, 784)) < 0.2)).astype(np.uint8)
    case = Case(
        Connectome.uniform(layout, -1.0, 1.0, 42),
        inputs,
        index_targets(rng.integers(0, 10, 30), 10),
        np.arange(30),
        Hyper(learning_rate=0.5, lambda_=1e-7, preprocessing=PreProcessing.Proportional),
    )
    assert_kernels_match_reference(case)


def test_row_order_matters_and_is_followed():
    case = random_case(
        21,
        activations=(Activation.TanH, Activation.SoftMax),
        preprocessing=PreProcessing.Proportional,
        direct=False,
        dtype=np.uint8,
        lambda_=1e-4,
    )
    in_order, _ = train_both(case, np.arange(len(case.rows)))
    slow, fast = train_both(case, case.rows)
    assert np.abs(slow.weights - in_order.weights).max() > 1e-4
    weights_close(fast.weights, slow.weights)


def test_only_the_listed_rows_are_trained_repeats_included():
    case = random_case(
        22,
        activations=(Activation.Logistic, Activation.Identity),
        preprocessing=PreProcessing.MeanSubtraction,
        direct=True,
        dtype=np.float64,
        lambda_=1e-3,
    )
    rows = np.array([3, 3, 17, 0, 3, 39])
    slow, fast = train_both(case, rows)
    weights_close(fast.weights, slow.weights)
    correct, error = kernels.test(slow, case.inputs, case.targets, rows, case.hyper)
    expected = reference.test_rows(slow, case.inputs, case.targets, rows, case.hyper)
    assert (correct, error) == (expected[0], pytest.approx(expected[1], rel=RTOL))


# Identity 1 / Identity 1 on input 2 (÷2 -> 1) with both weights 1 and target 0: the two weights stay
# equal, output = 2w and w <- w - lr·2w, so w_k = (1 - 2·lr)^k.  With lr = 1e100 the outputs are
# 2, -4e100, 8e200, -1.6e301, and then w_4 = (-2e100)^4 = 1.6e401 overflows: position 4 is the first
# non-finite output.
SCALAR = Layout.of(("Identity", 1), ("Identity", 1))


@pytest.mark.parametrize("lambda_", [0.0, 1e-3])
def test_divergence_returns_position_of_first_non_finite_output(lambda_):
    net = network(SCALAR, [[1.0], [1.0]])
    inputs = np.full((10, 1), 2.0)
    rows = np.arange(9, -1, -1)  # a position, not a row index, is reported
    status = kernels.train(net, inputs, direct_targets(np.zeros((10, 1))), rows, Hyper(1e100, lambda_))
    assert status == 4


def test_stable_training_returns_minus_one():
    net = network(SCALAR, [[1.0], [1.0]])
    inputs = np.full((10, 1), 2.0)
    assert kernels.train(net, inputs, direct_targets(np.zeros((10, 1))), np.arange(10), Hyper(0.1, 0.0)) == -1
    # w_10 = (1 - 0.2)^10
    np.testing.assert_allclose(net.weights, [0.8**10, 0.8**10], rtol=RTOL)


def test_divergence_with_a_huge_learning_rate_on_a_random_network():
    case = random_case(
        31,
        activations=(Activation.Identity, Activation.Identity),
        preprocessing=PreProcessing.NONE,
        direct=True,
        dtype=np.float64,
        lambda_=0.0,
    )
    hyper = Hyper(learning_rate=1e60, lambda_=0.0)
    # The first position whose reference output is not finite, found sample by sample.
    slow = case.net.copy()
    expected = -1
    with np.errstate(all="ignore"):
        for position, row in enumerate(case.rows):
            values = reference.forward(slow, case.inputs[row], hyper)
            if not np.isfinite(values[-1]).all():
                expected = position
                break
            target = reference.target_vector(case.targets, row, slow.layout.n_outputs)
            reference.backward_update(slow, values, target, hyper)
    assert expected > 0
    assert kernels.train(case.net.copy(), case.inputs, case.targets, case.rows, hyper) == expected


@pytest.mark.parametrize("dtype", [np.uint8, np.float64], ids=["uint8", "float64"])
@pytest.mark.parametrize("preprocessing", PREPROCESSINGS, ids=[p.name for p in PREPROCESSINGS])
def test_training_leaves_the_inputs_untouched(preprocessing, dtype):
    case = random_case(
        41,
        activations=(Activation.ReLU, Activation.SoftMax),
        preprocessing=preprocessing,
        direct=False,
        dtype=dtype,
        lambda_=1e-3,
    )
    before = case.inputs.copy()
    kernels.train(case.net, case.inputs, case.targets, case.rows, case.hyper)
    kernels.test(case.net, case.inputs, case.targets, case.rows, case.hyper)
    np.testing.assert_array_equal(case.inputs, before)
    # Read-only data (as the CSV cache hands them out) are accepted.
    frozen = before.copy()
    frozen.flags.writeable = False
    assert kernels.train(case.net, frozen, case.targets, case.rows, case.hyper) == -1


def test_negative_lambda_is_refused_by_the_lazy_kernel():
    net = network(SCALAR, [[1.0], [1.0]])
    with pytest.raises(ValueError, match="lambda"):
        kernels.train(net, np.ones((1, 1)), direct_targets([[0.0]]), np.arange(1), Hyper(0.1, -1e-3))
