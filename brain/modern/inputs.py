"""A mini-batch's inputs: rows gathered from the data set, converted, pre-processed.

FAST PATH (numba) — only the rows of one mini-batch are converted, never the whole
data set, so uint8 images stay uint8 in (shared) memory.  The pre-processing is the
thesis' per-sample rule (``brain.preprocessing``; the tests hold the two equal):
Proportional divides a row by its maximum (a row whose maximum is 0 is left alone),
MeanSubtraction subtracts the row's midrange (max + min) / 2.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from brain.preprocessing import PreProcessing

PRE_NONE, PRE_PROPORTIONAL, PRE_MIDRANGE = (int(p) for p in PreProcessing)


@njit(cache=True, nogil=True, error_model="numpy")
def prepare_row(x, out, prep):
    """out[:] = the sample ``x`` pre-processed; ``out`` sets the dtype of the arithmetic."""
    n = out.shape[0]
    if prep == PRE_NONE:
        for i in range(n):
            out[i] = x[i]
        return
    # Extremes in the input's own type: for uint8 a vectorised integer reduction.
    top = x[0]
    bottom = x[0]
    for i in range(1, n):
        top = x[i] if x[i] > top else top
        bottom = x[i] if x[i] < bottom else bottom
    if prep == PRE_PROPORTIONAL:
        scale = out.dtype.type(top)
        if scale == 0:
            scale = out.dtype.type(1)
        for i in range(n):
            out[i] = x[i] / scale
    else:
        mid = (out.dtype.type(top) + out.dtype.type(bottom)) / 2
        for i in range(n):
            out[i] = x[i] - mid


@njit(cache=True, nogil=True, error_model="numpy")
def gather_into(inputs, rows, out, prep):
    """out[k] = ``inputs[rows[k]]`` pre-processed (``prep``: a ``PreProcessing`` code), for every k."""
    for k in range(rows.shape[0]):
        prepare_row(inputs[rows[k]], out[k], prep)


def gather_inputs(
    inputs: np.ndarray, rows: np.ndarray, preprocessing: PreProcessing, dtype: type
) -> np.ndarray:
    """``inputs[rows]`` as a new ``(len(rows), n_inputs)`` matrix of ``dtype``, each row pre-processed."""
    out = np.empty((len(rows), inputs.shape[1]), dtype)
    gather_into(inputs, np.asarray(rows, np.int64), out, int(preprocessing))
    return out
