"""Network files parse into layouts, every malformed one is a LayoutError naming file and line,
and a connectome keeps all weights in one buffer with the matrices as views into it."""

from __future__ import annotations

import numpy as np
import pytest

from brain.activations import Activation
from brain.connectome import Connectome
from brain.errors import LayoutError, UserError
from brain.layout import Layout, load_layout, parse_layout

THESIS = "Identity, 784\nELU, 100\nSoftMax, 10\n"


def test_thesis_network_has_bias_neurons_on_every_layer_but_the_last():
    layout = parse_layout(THESIS)
    assert [layer.activation for layer in layout.layers] == [
        Activation.Identity,
        Activation.ELU,
        Activation.SoftMax,
    ]
    assert [layer.neurons for layer in layout.layers] == [784, 100, 10]
    assert [layer.size for layer in layout.layers] == [785, 101, 10]
    assert (layout.n_inputs, layout.n_outputs) == (784, 10)


def test_thesis_network_weight_shapes_and_count():
    layout = parse_layout(THESIS)
    assert layout.weight_shapes == ((785, 100), (101, 10))
    # 785·100 + 101·10 = 78500 + 1010
    assert layout.weight_offsets == (0, 78500, 79510)
    assert layout.n_weights == 79510


def test_layout_of_builds_the_same_layout_as_the_file():
    assert Layout.of(("Identity", 784), (Activation.ELU, 100), ("softmax", 10)) == parse_layout(THESIS)


def test_four_layer_weight_shapes():
    layout = Layout.of(("Identity", 2), ("Logistic", 3), ("TanH", 5), ("SoftMax", 4))
    assert layout.weight_shapes == ((3, 3), (4, 5), (6, 4))
    assert layout.n_weights == 9 + 20 + 24


def test_blank_lines_comments_and_case_are_ignored():
    text = "# the thesis network\n\n  identity ,784\n\nelu,100   # hidden\n   \nSOFTMAX, 10\n# end\n"
    assert parse_layout(text) == parse_layout(THESIS)


def test_windows_line_endings_are_accepted():
    assert parse_layout(THESIS.replace("\n", "\r\n")) == parse_layout(THESIS)


def error_of(text: str, where: str = "nets/bad.txt") -> LayoutError:
    with pytest.raises(LayoutError) as caught:
        parse_layout(text, where=where)
    return caught.value


def test_unknown_activation_names_file_line_and_the_allowed_list():
    error = error_of("Identity, 784\n\nSigmoid, 100\nSoftMax, 10\n")
    message = str(error)
    assert "nets/bad.txt:3" in message
    assert "Sigmoid" in message
    for name in ("Identity", "Logistic", "TanH", "ReLU", "LeakyReLU", "ELU", "SoftMax"):
        assert name in message
    assert (error.where, error.line) == ("nets/bad.txt", 3)
    assert isinstance(error, UserError)


@pytest.mark.parametrize("count", ["0", "-5", "1.5", "ten", "", "1e2", "3 4"])
def test_neuron_count_that_is_not_a_positive_integer_is_rejected(count):
    error = error_of(f"Identity, 4\n# comment\nELU, {count}\nSoftMax, 2\n")
    assert "nets/bad.txt:3" in str(error)
    assert error.line == 3


@pytest.mark.parametrize("line", ["ELU; 100", "ELU 100", "ELU, 100, 3", "ELU\t100"])
def test_wrong_separator_is_rejected(line):
    error = error_of(f"Identity, 4\n{line}\nSoftMax, 2\n")
    assert "nets/bad.txt:2" in str(error)
    assert "," in error.allowed


@pytest.mark.parametrize("text", ["Identity, 784\n", "# only a comment\nSoftMax, 10\n\n"])
def test_fewer_than_two_layers_is_rejected(text):
    error = error_of(text)
    assert "nets/bad.txt" in str(error)
    assert "two layers" in str(error)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# nothing\n"])
def test_empty_file_is_rejected(text):
    assert "nets/bad.txt" in str(error_of(text))


def test_load_layout_reads_a_file(tmp_path):
    path = tmp_path / "thesis.txt"
    path.write_text(THESIS, encoding="utf-8")
    assert load_layout(path) == parse_layout(THESIS)


def test_load_layout_errors_name_the_real_file(tmp_path):
    path = tmp_path / "net.txt"
    path.write_text("Identity, 4\nSquash, 3\n", encoding="utf-8")
    with pytest.raises(LayoutError, match=r"net\.txt:2"):
        load_layout(path)


def test_missing_file_is_a_layout_error_naming_it(tmp_path):
    path = tmp_path / "missing-net.txt"
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert str(path) in str(caught.value)


# --- connectome -------------------------------------------------------------------------------

SMALL = Layout.of(("Identity", 3), ("ELU", 2), ("SoftMax", 4))  # shapes (4, 2), (3, 4)


def test_connectome_is_one_contiguous_float64_buffer():
    net = Connectome.uniform(SMALL)
    assert net.weights.shape == (8 + 12,)
    assert net.weights.dtype == np.float64
    assert net.weights.flags.c_contiguous


def test_matrices_are_views_in_order_into_the_buffer():
    net = Connectome.zeros(SMALL)
    first, second = net.matrices
    assert first.shape == (4, 2)
    assert second.shape == (3, 4)
    first[3, 1] = 7.0  # bias row of the first matrix, second column: element 3·2 + 1
    second[0, 2] = -2.0  # first element after the 8 of the first matrix, third column
    expected = np.zeros(20)
    expected[7] = 7.0
    expected[8 + 2] = -2.0
    np.testing.assert_array_equal(net.weights, expected)
    net.weights[19] = 5.0  # and the other way round
    assert net.matrices[1][2, 3] == 5.0


def test_uniform_weights_lie_in_range_and_are_spread():
    layout = Layout.of(("Identity", 50), ("Logistic", 40), ("SoftMax", 10))
    weights = Connectome.uniform(layout, low=-0.25, high=0.75, seed=3).weights
    assert weights.min() >= -0.25
    assert weights.max() <= 0.75
    # 2450 draws: the extremes come within a few thousandths of the bounds, the mean near 0.25.
    assert weights.min() < -0.24
    assert weights.max() > 0.74
    assert abs(weights.mean() - 0.25) < 0.02


def test_uniform_weights_are_reproducible_for_a_seed():
    a = Connectome.uniform(SMALL, seed=42).weights
    np.testing.assert_array_equal(a, Connectome.uniform(SMALL, seed=42).weights)
    assert not np.array_equal(a, Connectome.uniform(SMALL, seed=43).weights)
    # The default seed is the thesis' 42.
    np.testing.assert_array_equal(a, Connectome.uniform(SMALL).weights)


def test_copy_does_not_share_the_buffer():
    net = Connectome.uniform(SMALL)
    clone = net.copy()
    clone.weights[0] += 1.0
    assert clone.weights[0] != net.weights[0]


def test_connectome_rejects_a_buffer_of_the_wrong_shape_or_type():
    with pytest.raises(ValueError, match="20"):
        Connectome(SMALL, np.zeros(19))
    with pytest.raises(ValueError):
        Connectome(SMALL, np.zeros(20, dtype=np.float32))
