"""Small builders shared by the brain tests: targets and networks with chosen weights."""

from __future__ import annotations

import numpy as np

from brain.connectome import Connectome
from brain.data.targets import Targets
from brain.layout import Layout


def index_targets(labels, n_outputs: int) -> Targets:
    """Each sample's class; the network's target is its one-hot vector."""
    return Targets(labels=np.asarray(labels, np.int64), direct=np.empty((0, n_outputs)))


def direct_targets(rows) -> Targets:
    """Each sample's target vector as given."""
    return Targets(labels=np.empty(0, np.int64), direct=np.asarray(rows, np.float64).reshape(len(rows), -1))


def network(layout: Layout, *matrices) -> Connectome:
    """A connectome with the given weight matrices (rows: neurons below, bias last)."""
    net = Connectome.zeros(layout)
    for view, values in zip(net.matrices, matrices, strict=True):
        values = np.asarray(values, np.float64)
        assert values.shape == view.shape, (values.shape, view.shape)
        view[...] = values
    return net
