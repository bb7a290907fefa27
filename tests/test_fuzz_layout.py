"""Fuzzed network files: any text is a layout with the layers it lists, or a ``LayoutError``.

Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import file_bytes, fuzz, junk_text, outcome

from brain.activations import Activation
from brain.layout import load_layout, parse_layout

NAMES = [a.name for a in Activation]

good_names = st.sampled_from(NAMES).flatmap(lambda n: st.sampled_from([n, n.lower(), n.upper(), f" {n} "]))
bad_names = st.one_of(st.sampled_from(["", "Sigmoid", "ELU2", "Soft Max"]), junk_text(12))
good_counts = st.integers(1, 10**6).flatmap(lambda n: st.sampled_from([str(n), f"+{n}", f" {n} "]))
bad_counts = st.one_of(
    st.integers(-3, 0).map(str),
    st.sampled_from(["007", "1e3", "1.0", "٣", "１", "", "9" * 5_000, "0x10", "1_0", "-0"]),
    junk_text(12),
)
good_commas = st.sampled_from([",", " , ", ",\t"])
comments = st.sampled_from(["", " # hidden", "#"])
NAME, COUNT, COMMA, JUNK_LINE, TOO_FEW = range(5)


@st.composite
def network_texts(draw) -> str:
    """A well-formed network file with none, one or two faults."""
    layers = draw(st.lists(st.tuples(good_names, good_counts), min_size=2, max_size=5))
    parts = [[name, draw(good_commas), count, draw(comments)] for name, count in layers]
    faults = draw(st.sets(st.integers(0, 4), max_size=2))
    layer = parts[draw(st.integers(0, len(parts) - 1))]
    if NAME in faults:
        layer[0] = draw(bad_names)
    if COUNT in faults:
        layer[2] = draw(bad_counts)
    if COMMA in faults:
        layer[1] = draw(st.sampled_from([",,", ";", "\t", "", " "]))
    if TOO_FEW in faults:
        parts = parts[: draw(st.integers(0, 1))]
    lines = ["".join(p) for p in parts]
    if JUNK_LINE in faults:
        lines.insert(draw(st.integers(0, len(lines))), draw(junk_text()))
    lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "# a network", "   "])))
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)


def expected_layers(text: str) -> list[tuple[str, int]]:
    """What a valid file must give: (activation, neurons) of each non-blank line, read plainly."""
    layers = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, count = line.split(",")
            layers.append((name.strip().lower(), int(count)))
    return layers


@fuzz
@given(text=network_texts())
def test_any_network_text_is_its_layers_or_a_layout_error(text):
    layout = outcome(lambda: parse_layout(text, "net.txt"))
    if layout is not None:
        got = [(layer.activation.name.lower(), layer.neurons) for layer in layout.layers]
        assert got == expected_layers(text)
        assert [layer.bias for layer in layout.layers] == [True] * (len(got) - 1) + [False]


@fuzz
@given(raw=file_bytes(network_texts(), 200))
def test_any_network_file_loads_or_is_a_layout_error(tmp_path, raw):
    path = tmp_path / "net.txt"
    path.write_bytes(raw)
    layout = outcome(lambda: load_layout(path))
    assert layout is None or len(layout.layers) >= 2
