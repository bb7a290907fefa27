"""Network layout files: one ``Activation, Neurons`` line per layer, parsed into an immutable layout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from brain.activations import Activation
from brain.errors import LayoutError, shorten
from brain.user_files import read_text

# One line per layer: a few MB of it is a file named by mistake.
MAX_NETWORK_BYTES = 4 * 2**20

_ALLOWED_LINE = (
    "'Activation, Neurons' with Activation one of "
    + ", ".join(a.name for a in Activation)
    + " and Neurons a positive integer"
)


@dataclass(frozen=True)
class Layer:
    """One layer: its activation, its neurons (without bias) and whether a bias neuron is appended."""

    activation: Activation
    neurons: int
    bias: bool

    @property
    def size(self) -> int:
        """Neurons including the bias neuron: the thesis' divisor of the layer normalisation."""
        return self.neurons + int(self.bias)


@dataclass(frozen=True)
class Layout:
    """A feedforward network: every layer but the last carries a bias neuron.

    Weight matrix ``l`` (for ``l`` = 1 … L-1) connects all neurons of layer ``l-1``,
    its bias included, to the non-bias neurons of layer ``l``: shape
    ``(layers[l-1].size, layers[l].neurons)``, stored row-major one after another in
    a single flat buffer.
    """

    layers: tuple[Layer, ...]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].neurons

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].neurons

    @cached_property
    def weight_shapes(self) -> tuple[tuple[int, int], ...]:
        return tuple(
            (below.size, above.neurons) for below, above in zip(self.layers, self.layers[1:], strict=False)
        )

    @cached_property
    def weight_offsets(self) -> tuple[int, ...]:
        """Start of each weight matrix in the flat buffer, plus the total at the end."""
        offsets = [0]
        for rows, cols in self.weight_shapes:
            offsets.append(offsets[-1] + rows * cols)
        return tuple(offsets)

    @property
    def n_weights(self) -> int:
        return self.weight_offsets[-1]

    def describe(self) -> str:
        """``Identity 784 / ELU 100 / SoftMax 10``: for logs and messages."""
        return " / ".join(f"{layer.activation.name} {layer.neurons}" for layer in self.layers)

    @classmethod
    def of(cls, *layers: tuple[Activation | str, int]) -> Layout:
        """Build a layout in code: ``Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))``."""
        specs = [(a if isinstance(a, Activation) else Activation.parse(a), n) for a, n in layers]
        last = len(specs) - 1
        return cls(tuple(Layer(a, n, i != last) for i, (a, n) in enumerate(specs)))


def parse_layout(text: str, where: str | Path = "<network>") -> Layout:
    """Parse the text of a network file.

    Blank lines and ``#`` comments are skipped.  Raises ``LayoutError`` naming the
    file and line for an unknown activation, a neuron count that is not a positive
    integer, a missing comma, or fewer than two layers.
    """
    specs: list[tuple[Activation, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise LayoutError(
                f"expected one comma in {shorten(raw.strip())!r}",
                where=where,
                line=number,
                allowed=_ALLOWED_LINE,
            )
        name, count = parts
        try:
            activation = Activation.parse(name)
        except KeyError:
            raise LayoutError(
                f"unknown activation {shorten(name)!r}",
                where=where,
                line=number,
                allowed=[a.name for a in Activation],
            ) from None
        try:
            neurons = int(count)
        except ValueError:
            neurons = 0
        if neurons <= 0 or str(neurons) != count.lstrip("+"):
            raise LayoutError(
                f"neuron count {shorten(count)!r} is not a positive integer",
                where=where,
                line=number,
                allowed="1, 2, 3, …",
            )
        specs.append((activation, neurons))
    if len(specs) < 2:
        raise LayoutError(
            f"a network needs at least two layers, found {len(specs)}",
            where=where,
            allowed="an input and an output layer at least",
        )
    return Layout.of(*specs)


def with_bias(layout: Layout, bias: bool) -> Layout:
    """``layout`` with a bias neuron on every layer but the last (``Bias: on``) or on none (``off``).

    Both semantics use it: thesis runs keep the Go program's bias neurons (on).  Bias off
    changes the weight shapes: matrix l is then ``(layers[l-1].neurons, layers[l].neurons)``.
    """
    last = len(layout.layers) - 1
    layers = layout.layers
    return Layout(tuple(Layer(a.activation, a.neurons, bias and i != last) for i, a in enumerate(layers)))


def load_layout(path: str | Path) -> Layout:
    """Read and parse a network file; a missing or unreadable file is a ``LayoutError``."""
    path = Path(path)
    return parse_layout(read_text(path, "network file", LayoutError, limit=MAX_NETWORK_BYTES), where=path)
