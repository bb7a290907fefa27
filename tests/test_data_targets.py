"""Target interpretation: one column and several outputs is a class index, n columns for n
outputs are direct targets, anything else is an error naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from brain.data import Dataset, interpret_targets, load_dataset
from brain.errors import DataError


def dataset(targets, source: str = "digits.csv") -> Dataset:
    targets = np.asarray(targets)
    return Dataset(inputs=np.zeros((len(targets), 2), np.uint8), targets=targets, source=source)


def test_one_column_and_ten_outputs_is_a_class_index():
    targets = interpret_targets(dataset([[3.0], [0.0], [9.0]]), 10)
    assert not targets.is_direct
    assert targets.labels.dtype == np.int64
    assert targets.labels.tolist() == [3, 0, 9]
    assert targets.direct.shape == (0, 10)


def test_idx_uint8_labels_are_class_indices():
    targets = interpret_targets(dataset(np.array([[5], [0], [4]], np.uint8)), 10)
    assert targets.labels.tolist() == [5, 0, 4]
    assert targets.labels.dtype == np.int64


def test_as_many_columns_as_outputs_is_direct():
    values = [[0.0, 1.0, 0.5], [1.0, 0.0, -2.0]]
    targets = interpret_targets(dataset(values), 3)
    assert targets.is_direct
    assert targets.direct.dtype == np.float64
    assert targets.direct.tolist() == values
    assert targets.labels.shape == (0,)


def test_one_column_and_one_output_is_direct():
    targets = interpret_targets(dataset([[0.25], [7.0]]), 1)
    assert targets.is_direct
    assert targets.direct.tolist() == [[0.25], [7.0]]


@pytest.mark.parametrize(("bad", "shown"), [(10.0, "10.0"), (-1.0, "-1.0"), (2.5, "2.5"), (np.nan, "nan")])
def test_class_outside_the_outputs_names_file_record_and_range(bad, shown):
    with pytest.raises(DataError) as caught:
        interpret_targets(dataset([[1.0], [2.0], [bad], [3.0]]), 10)
    assert caught.value.line == 3
    assert str(caught.value) == (
        f"digits.csv:3: record 3: target {shown} is not a class index (allowed: integers 0..9)"
    )


def test_largest_class_is_the_last_output():
    assert interpret_targets(dataset([[9.0]]), 10).labels.tolist() == [9]
    with pytest.raises(DataError, match=r"integers 0\.\.8"):
        interpret_targets(dataset([[9.0]]), 9)


@pytest.mark.parametrize(("columns", "outputs"), [(3, 10), (2, 1), (10, 3)])
def test_column_count_fitting_neither_form_is_an_error(columns, outputs):
    with pytest.raises(DataError) as caught:
        interpret_targets(dataset(np.zeros((4, columns))), outputs)
    assert str(caught.value).startswith(
        f"digits.csv: {columns} target columns do not fit a network with {outputs} output neurons"
    )
    assert caught.value.line is None


def test_bad_class_in_a_csv_names_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"1,0\n2,0\n3,0\n12,0\n")
    with pytest.raises(DataError) as caught:
        interpret_targets(load_dataset(path), 10)
    assert str(caught.value).startswith(f"{path}:4: record 4: target 12.0")
