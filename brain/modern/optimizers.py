"""The optimizers: how a gradient becomes a change of the weights.

FAST PATH — one numba loop over the flat buffer serves every optimizer, so that the
state arrays (flat float64, shaped like the weights) can live in shared memory and
be saved beside the weights.  ``g`` below is the gradient of the mean loss plus the
regularisation, ``2·λ2·w + λ1·sgn w`` (weight decay; biases included); ``t`` is the
step number counting from 1; ``lr`` the learning rate.

| optimizer | state | update |
| --- | --- | --- |
| SGD | — | w −= lr·g |
| Momentum | v | v = μ·v + g;  w −= lr·v |
| Nesterov | v | v = μ·v + g;  w −= lr·(g + μ·v) |
| AdaGrad | G | G += g²;  w −= lr·g / (√G + ε) |
| RMSProp | E | E = ρ·E + (1−ρ)·g²;  w −= lr·g / (√E + ε) |
| Adam | m, v | m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; w −= lr·m̂/(√v̂ + ε), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) |
| NAdam | m, v | as Adam, with m̂ = β1·m/(1−β1ᵗ⁺¹) + (1−β1)·g/(1−β1ᵗ) |
| AdaDelta | E, D | E = ρ·E + (1−ρ)·g²;  d = √(D+ε)/√(E+ε)·g;  D = ρ·D + (1−ρ)·d²;  w −= lr·d |

Momentum and Nesterov follow PyTorch's form (the velocity accumulates gradients, the
learning rate scales the step), so a learning-rate schedule acts at once.  NAdam is
Dozat's, without the momentum schedule.  AdaDelta is Zeiler's times ``lr``
(``LearningRate: 1`` gives the original).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from brain.modern.hyper import OPTIMIZERS, Modern, optimizer_state_names

SGD, MOMENTUM, NESTEROV, ADAGRAD, RMSPROP, ADAM, NADAM, ADADELTA = range(len(OPTIMIZERS))


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _regularised(g, w, l1, l2):
    # sgn w by comparisons, not branches: the loops below stay vectorisable.
    return g + 2.0 * l2 * w + l1 * ((1.0 if w > 0.0 else 0.0) - (1.0 if w < 0.0 else 0.0))


@njit(cache=True, nogil=True, error_model="numpy")
def _store(w, out, i, weight):
    """w[i] = weight, and out[i] too unless ``out`` is None (that version has no test at all)."""
    w[i] = weight
    if out is not None:
        out[i] = weight


# One loop per optimizer over views that start at 0, the choice made outside the loop
# and division errors left to IEEE (error_model="numpy"): so LLVM vectorises each.


@njit(cache=True, nogil=True, error_model="numpy")
def _sgd(w, grad, lr, l1, l2, out):
    for i in range(w.shape[0]):
        weight = w[i]
        _store(w, out, i, weight - lr * _regularised(grad[i], weight, l1, l2))


@njit(cache=True, nogil=True, error_model="numpy")
def _momentum(w, grad, v, lr, l1, l2, mu, out):
    for i in range(w.shape[0]):
        weight = w[i]
        velocity = mu * v[i] + _regularised(grad[i], weight, l1, l2)
        v[i] = velocity
        _store(w, out, i, weight - lr * velocity)


@njit(cache=True, nogil=True, error_model="numpy")
def _nesterov(w, grad, v, lr, l1, l2, mu, out):
    for i in range(w.shape[0]):
        weight = w[i]
        g = _regularised(grad[i], weight, l1, l2)
        velocity = mu * v[i] + g
        v[i] = velocity
        _store(w, out, i, weight - lr * (g + mu * velocity))


@njit(cache=True, nogil=True, error_model="numpy")
def _adagrad(w, grad, s, lr, l1, l2, eps, out):
    for i in range(w.shape[0]):
        weight = w[i]
        g = _regularised(grad[i], weight, l1, l2)
        total = s[i] + g * g
        s[i] = total
        _store(w, out, i, weight - lr * g / (math.sqrt(total) + eps))


@njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop(w, grad, s, lr, l1, l2, eps, rho, out):
    for i in range(w.shape[0]):
        weight = w[i]
        g = _regularised(grad[i], weight, l1, l2)
        mean = rho * s[i] + (1.0 - rho) * g * g
        s[i] = mean
        _store(w, out, i, weight - lr * g / (math.sqrt(mean) + eps))


@njit(cache=True, nogil=True, error_model="numpy")
def _adam(w, grad, m, v, lr, l1, l2, b1, b2, eps, c1, c2, c1n, nadam, out):
    # m̂ = m_factor·m + g_factor·g (Adam: m/c1; NAdam: β1·m/c1n + (1−β1)·g/c1);
    # √v̂ = √v / √c2, one square root and one division per weight.
    m_factor = b1 / c1n if nadam else 1.0 / c1
    g_factor = (1.0 - b1) / c1 if nadam else 0.0
    root = 1.0 / math.sqrt(c2)
    for i in range(w.shape[0]):
        weight = w[i]
        g = _regularised(grad[i], weight, l1, l2)
        first = b1 * m[i] + (1.0 - b1) * g
        second = b2 * v[i] + (1.0 - b2) * g * g
        m[i] = first
        v[i] = second
        _store(w, out, i, weight - lr * (m_factor * first + g_factor * g) / (math.sqrt(second) * root + eps))


@njit(cache=True, nogil=True, error_model="numpy")
def _adadelta(w, grad, s, d2, lr, l1, l2, eps, rho, out):
    for i in range(w.shape[0]):
        weight = w[i]
        g = _regularised(grad[i], weight, l1, l2)
        mean = rho * s[i] + (1.0 - rho) * g * g
        s[i] = mean
        d = math.sqrt(d2[i] + eps) / math.sqrt(mean + eps) * g
        d2[i] = rho * d2[i] + (1.0 - rho) * d * d
        _store(w, out, i, weight - lr * d)


@njit(cache=True, nogil=True, error_model="numpy")
def apply_update(kind, weights, grad, s1, s2, copy32, lo, hi, lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n):
    """Update ``weights[lo:hi]`` (and their state) from ``grad[lo:hi]`` in place.

    ``s1``/``s2`` are the optimizer's state arrays in the order of
    ``optimizer_state_names`` (empty arrays when it has fewer); ``copy32``, when not
    empty, receives the new weights as float32 in the same pass.  ``c1 = 1 − β1ᵗ``,
    ``c2 = 1 − β2ᵗ``, ``c1n = 1 − β1ᵗ⁺¹`` are the bias corrections of step t.
    """
    w, g, a, b = weights[lo:hi], grad[lo:hi], s1[lo:hi], s2[lo:hi]
    # Two compiled versions of the loops, with and without the copy: no test inside them.
    if copy32.shape[0] > 0:
        _update(kind, w, g, a, b, lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n, copy32[lo:hi])
    else:
        _update(kind, w, g, a, b, lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n, None)


@njit(cache=True, nogil=True, error_model="numpy")
def _update(kind, w, g, a, b, lr, l1, l2, mu, b1, b2, eps, rho, c1, c2, c1n, out):
    if kind == SGD:
        _sgd(w, g, lr, l1, l2, out)
    elif kind == MOMENTUM:
        _momentum(w, g, a, lr, l1, l2, mu, out)
    elif kind == NESTEROV:
        _nesterov(w, g, a, lr, l1, l2, mu, out)
    elif kind == ADAGRAD:
        _adagrad(w, g, a, lr, l1, l2, eps, out)
    elif kind == RMSPROP:
        _rmsprop(w, g, a, lr, l1, l2, eps, rho, out)
    elif kind in (ADAM, NADAM):
        _adam(w, g, a, b, lr, l1, l2, b1, b2, eps, c1, c2, c1n, kind == NADAM, out)
    else:
        _adadelta(w, g, a, b, lr, l1, l2, eps, rho, out)


_NO_STATE = np.empty(0)
NO_COPY = np.empty(0, np.float32)


def state_pair(state: dict[str, np.ndarray], hyper: Modern, n_weights: int) -> tuple[np.ndarray, np.ndarray]:
    """The state arrays as the kernels take them (empty where the optimizer has fewer).

    Raises ``ValueError`` when ``state`` does not hold exactly the optimizer's arrays as
    contiguous float64 of the weights' length.
    """
    names = optimizer_state_names(hyper.optimizer)
    if set(state) != set(names):
        raise ValueError(f"{hyper.optimizer} keeps the state {names}, got {tuple(state)}")
    arrays = [state[name] for name in names]
    for name, array in zip(names, arrays, strict=True):
        if array.shape != (n_weights,) or array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError(f"state {name!r} must be contiguous float64 of shape ({n_weights},)")
    arrays += [_NO_STATE] * (2 - len(arrays))
    return arrays[0], arrays[1]


def bias_corrections(hyper: Modern, t: int) -> tuple[float, float, float]:
    """``1 − β1ᵗ``, ``1 − β2ᵗ``, ``1 − β1ᵗ⁺¹`` for step t (t ≥ 1)."""
    return 1.0 - hyper.beta1**t, 1.0 - hyper.beta2**t, 1.0 - hyper.beta1 ** (t + 1)


def optimizer_step(
    weights: np.ndarray,
    grad: np.ndarray,
    state: dict[str, np.ndarray],
    step: np.ndarray,
    hyper: Modern,
    copy32: np.ndarray = NO_COPY,
) -> None:
    """One optimizer step over every weight: ``step[0]`` += 1, then the update of the table above."""
    s1, s2 = state_pair(state, hyper, weights.shape[0])
    step[0] += 1
    c1, c2, c1n = bias_corrections(hyper, int(step[0]))
    apply_update(
        hyper.optimizer_code, weights, grad, s1, s2, copy32, 0, weights.shape[0],
        hyper.learning_rate, hyper.lambda_l1, hyper.lambda_l2, hyper.momentum,
        hyper.beta1, hyper.beta2, hyper.epsilon, hyper.rho, c1, c2, c1n,
    )  # fmt: skip
