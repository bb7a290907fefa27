"""The batch language: thesis spellings accepted, settings carried over, every mistake named."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from actors.batchfile.parse import (
    KNOWN_KEYS,
    BatchError,
    directive_table_markdown,
    load_batch,
    parse_batch,
)
from actors.batchfile.preflight import preflight
from actors.batchfile.settings import DIRECTIVES, Settings
from brain.errors import DataError, LayoutError, PersistenceError, UserError
from brain.layout import Layout
from brain.persistence import Persisted, save_persistence
from brain.preprocessing import PreProcessing

REPO = Path(__file__).resolve().parent.parent
BATCH_DIR = REPO / "batch"

# The files every runnable pass needs, ahead of the lines under test.
HEAD = "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"


def parse(text: str, folder: Path = Path("/batches")):
    return parse_batch(text, folder / "b.txt")


def errors_of(text: str, folder: Path = Path("/batches")) -> list[str]:
    with pytest.raises(BatchError) as caught:
        parse(text, folder)
    return [str(error) for error in caught.value.errors]


# --- accepted files --------------------------------------------------------------------


def test_seed_style_batch_is_accepted_unchanged():
    path = BATCH_DIR / "thesis-seed-style.txt"
    text = path.read_text()
    assert "TargetColumnsStart:0" in text and "PreProcessing:MeanSubstraction" in text
    batch = load_batch(path)
    assert [(p.mode, p.count, p.settings.parallel) for p in batch.passes] == [
        ("train", 1, 2),
        ("test", 1, 2),
        ("train", 1, 4),
        ("test", 1, 4),
    ]
    first = batch.passes[0].settings
    assert first.preprocessing is PreProcessing.MeanSubtraction
    assert (first.target_start, first.target_end) == (0, 1)
    assert first.lambda_ == 1e-7
    assert first.network_file == BATCH_DIR / "networks" / "thesis-784-100-10.txt"


def test_default_batch_is_the_thesis_benchmark():
    batch = load_batch(BATCH_DIR / "default.txt")
    assert [(p.mode, p.count) for p in batch.passes] == [("train", 1), ("test", 1)]
    s = batch.passes[0].settings
    assert (s.parallel, s.worker_batch, s.learning_rate, s.lambda_) == (4, 100, 0.8, 1e-7)
    assert (s.min_weight, s.max_weight, s.preprocessing) == (-0.1, 0.1, PreProcessing.NONE)
    assert s.network_file == BATCH_DIR / "networks" / "thesis-784-100-10.txt"
    assert s.train_file == REPO / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    assert s.test_file == REPO / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert s.persistence_file == REPO / "results" / "default.npz"
    assert s.result_file == REPO / "results" / "default.csv"
    assert batch.passes[1].settings == s


def test_unset_settings_have_the_thesis_program_defaults():
    s = parse(HEAD + "Train: 1").passes[0].settings
    assert (s.parallel, s.worker_batch, s.learning_rate, s.lambda_) == (1, 100, 1.0, 1.0)
    assert (s.min_weight, s.max_weight, s.target_start, s.target_end) == (-1.0, 1.0, 0, 1)
    assert s.preprocessing is PreProcessing.NONE
    assert (s.seed, s.shuffle, s.executor, s.elu_alpha) == (42, True, "process", 0.5)
    assert (s.data_capacity, s.output_capacity) == (None, None)
    assert s.persistence_file is s.result_file is s.train_labels is None


@pytest.mark.parametrize(
    "line", ["Parallel:3", "Parallel: 3", "Parallel :3", "  parallel   :   3  ", "PARALLEL: 3"]
)
def test_blanks_around_colon_and_key_case_do_not_matter(line):
    assert parse(HEAD + line + "\nTrain: 1").passes[0].settings.parallel == 3


def test_comments_and_blank_lines_are_skipped():
    text = "# a batch\n\n" + HEAD + "Parallel: 3  # three workers\n   \n# Parallel: 9\nTrain: 1\n"
    batch = parse(text)
    assert batch.passes[0].settings.parallel == 3
    assert batch.passes[0].line == 9


def test_settings_carry_over_from_block_to_block():
    text = HEAD + (
        "Parallel: 2\nLearningRate: 0.5\nTrain: 3\nTest: 1\n"
        "Parallel: 4\nTrain: 1\nTest: 2\n"
        "LearningRate: 0.25\nTrain: 1\n"
    )
    passes = parse(text).passes
    seen = [(p.mode, p.count, p.settings.parallel, p.settings.learning_rate) for p in passes]
    assert seen == [
        ("train", 3, 2, 0.5),
        ("test", 1, 2, 0.5),
        ("train", 1, 4, 0.5),
        ("test", 2, 4, 0.5),
        ("train", 1, 4, 0.25),
    ]
    assert [p.line for p in passes] == [6, 7, 9, 10, 12]


def test_relative_paths_resolve_against_the_batch_folder(tmp_path):
    text = f"NetworkFile: nets/n.txt\nTrainFile: ../data/t.csv\nTestFile: {tmp_path}/abs.csv\nTrain: 1"
    s = parse(text, tmp_path / "batches").passes[0].settings
    assert s.network_file == tmp_path / "batches" / "nets" / "n.txt"
    assert s.train_file == tmp_path / "data" / "t.csv"
    assert s.test_file == tmp_path / "abs.csv"


def test_target_columns_accept_both_spellings():
    s = parse(HEAD + "TargetColumnsStart: 2\nTargetColumnEnd: 12\nTrain: 1").passes[0].settings
    assert (s.target_start, s.target_end) == (2, 12)


@pytest.mark.parametrize("text", ["MeanSubstraction", "MeanSubtraction", "meansubtraction"])
def test_mean_subtraction_accepts_the_thesis_spelling(text):
    s = parse(HEAD + f"PreProcessing: {text}\nTrain: 1").passes[0].settings
    assert s.preprocessing is PreProcessing.MeanSubtraction


@pytest.mark.parametrize(
    ("text", "stored", "effective"),
    [("unbounded", math.inf, math.inf), ("0", 0, 0), ("7", 7, 7), ("Parallel", None, 3)],
)
def test_channel_capacity(text, stored, effective):
    s = parse(HEAD + f"Parallel: 3\nDataChannelCapacity: {text}\nTrain: 1").passes[0].settings
    assert s.data_capacity == stored
    assert s.effective_data_capacity == effective
    assert s.effective_output_capacity == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("on", True), ("off", False), ("true", True), ("False", False), ("yes", True), ("no", False)],
)
def test_shuffle_switch(text, expected):
    assert parse(HEAD + f"Shuffle: {text}\nTrain: 1").passes[0].settings.shuffle is expected


def test_project_settings_are_read(tmp_path):
    text = HEAD + (
        "Seed: 7\nExecutor: Thread\nELUAlpha: 1.5\nOutputChannelCapacity: 0\n"
        "TrainLabels: labels/train.idx\nTestLabels: /abs/test.idx\nTrain: 1"
    )
    s = parse(text, tmp_path).passes[0].settings
    assert (s.seed, s.executor, s.elu_alpha, s.output_capacity) == (7, "thread", 1.5, 0)
    assert s.train_labels == tmp_path / "labels" / "train.idx"
    assert s.test_labels == Path("/abs/test.idx")


def test_every_settings_field_has_one_directive_in_the_readme_table():
    assert [d.field for d in DIRECTIVES] == [f.name for f in dataclasses.fields(Settings)]
    table = directive_table_markdown()
    for d in DIRECTIVES:
        assert f"| {d.key}" in table
    assert "| Train |" in table and "| Test |" in table
    assert set(KNOWN_KEYS) == {d.key for d in DIRECTIVES} | {"Train", "Test"}


def test_the_readme_shows_the_directive_table_the_parser_uses():
    assert directive_table_markdown() in (REPO / "README.md").read_text(encoding="utf-8")


# --- errors ----------------------------------------------------------------------------

KNOWN = "allowed: ResultFile, NetworkFile"


@pytest.mark.parametrize(
    ("line", "message", "allowed"),
    [
        ("Paralel: 4", "unknown key 'Paralel'; did you mean 'Parallel'?", KNOWN),
        ("workerbach: 4", "did you mean 'WorkerBatch'?", KNOWN),
        ("TargetColumnStrat: 1", "did you mean 'TargetColumnStart'?", KNOWN),
        ("Parallel:", "Parallel needs a value", "allowed: an integer ≥ 1"),
        ("workerbatch:   ", "WorkerBatch needs a value", "allowed: an integer ≥ 1"),
        ("Parallel 4", "expected 'Key: value', found no ':'", "allowed: Key: value"),
        ("Parallel: 0", "Parallel: 0 is below 1", "allowed: an integer ≥ 1"),
        ("Parallel: four", "Parallel: 'four' is not an integer", "allowed: an integer ≥ 1"),
        ("Parallel: 2.5", "Parallel: '2.5' is not an integer", "allowed: an integer ≥ 1"),
        ("WorkerBatch: -5", "WorkerBatch: -5 is below 1", "allowed: an integer ≥ 1"),
        ("WorkerBatch: 0", "WorkerBatch: 0 is below 1", "allowed: an integer ≥ 1"),
        ("TargetColumnStart: -1", "TargetColumnStart: -1 is below 0", "an integer ≥ 0"),
        ("TargetColumnsEnd: x", "TargetColumnEnd: 'x' is not an integer", "an integer ≥ 0"),
        ("LearningRate: fast", "LearningRate: 'fast' is not a number", "a finite number > 0"),
        ("LearningRate: 0", "LearningRate: 0.0 must be greater than 0", "a finite number > 0"),
        ("LearningRate: nan", "'nan' is not a finite number", "a finite number > 0"),
        ("Lambda: -1e-7", "Lambda: -1e-07 is below 0", "a finite number ≥ 0"),
        ("MinWeight: inf", "MinWeight: 'inf' is not a finite number", "a finite number"),
        ("PreProcessing: Mean", "unknown pre-processing 'Mean'", "None, Proportional"),
        ("Executor: gpu", "Executor: unknown executor 'gpu'", "inline, thread, process, processpool, ray"),
        ("Shuffle: maybe", "Shuffle: 'maybe' is not a switch", "on, true, yes, off"),
        ("DataChannelCapacity: -1", "-1 is below 0", "unbounded, or Parallel"),
        ("ELUAlpha: 0", "ELUAlpha: 0.0 must be greater than 0", "a finite number > 0"),
        ("Train: 0", "Train: 0 is below 1", "allowed: an integer ≥ 1"),
        ("Train: -2", "Train: -2 is below 1", "allowed: an integer ≥ 1"),
        ("Test: twice", "Test: 'twice' is not an integer", "allowed: an integer ≥ 1"),
    ],
)
def test_bad_line_is_named_with_file_line_and_allowed_values(line, message, allowed):
    # Line 5 is the line under test; a good Train line follows so the batch is otherwise fine.
    (error,) = errors_of(HEAD + "Seed: 1\n" + line + "\nTrain: 1\n")
    assert error.startswith("/batches/b.txt:5: ")
    assert message in error
    assert allowed in error


def test_unknown_key_without_close_match_lists_known_keys_only():
    (error,) = errors_of(HEAD + "Colour: blue\nTrain: 1")
    assert "/batches/b.txt:4: unknown key 'Colour' (allowed: " in error
    assert "did you mean" not in error
    assert "Train, Test)" in error


@pytest.mark.parametrize(
    ("text", "line", "message", "allowed"),
    [
        ("TrainFile: t.csv\nTrain: 1", 2, "Train needs a NetworkFile line", "'NetworkFile: path'"),
        ("NetworkFile: n.txt\nTrain: 1", 2, "Train needs a TrainFile line", "'TrainFile: path'"),
        ("NetworkFile: n.txt\nTrainFile: t\nTest: 1", 3, "Test needs a TestFile", "'TestFile: path'"),
        (
            HEAD + "MaxWeight: 0.1\nMinWeight: 0.5\nTrain: 1",
            6,
            "MinWeight 0.5 is greater than MaxWeight 0.1",
            "MinWeight ≤ MaxWeight",
        ),
        (
            HEAD + "TargetColumnEnd: 3\nTargetColumnStart: 3\nTrain: 1",
            6,
            "TargetColumnEnd 3 must be greater than TargetColumnStart 3",
            "TargetColumnStart < TargetColumnEnd",
        ),
        (
            HEAD + "Test: 1",
            4,
            "a test pass needs a trained network: a PersistenceFile that exists or a Train line",
            "a PersistenceFile naming an existing file, or a Train line earlier in the batch",
        ),
        (
            HEAD + "PersistenceFile: /nowhere/w.npz\nTest: 1",
            5,
            "PersistenceFile /nowhere/w.npz does not exist and no Train line before this writes it",
            "a PersistenceFile naming an existing file",
        ),
        (
            HEAD + "Train: 1\nNetworkFile: other.txt\nTest: 1",
            6,
            "a test pass needs a trained network",
            "a Train line earlier in the batch",
        ),
    ],
)
def test_pass_that_cannot_run_is_named_at_its_line(text, line, message, allowed):
    errors = errors_of(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"/batches/b.txt:{line}: ")
    assert message in errors[0]
    assert f"(allowed: {allowed}" in errors[0] or allowed in errors[0]


def test_min_weight_above_max_is_fine_until_a_train_line_uses_it():
    text = HEAD + "MinWeight: 0.5\nMaxWeight: 0.9\nTrain: 1\nMinWeight: 2\nTest: 1"
    assert [p.mode for p in parse(text).passes] == ["train", "test"]


def test_a_test_may_follow_a_train_that_writes_its_persistence_file():
    text = HEAD + "PersistenceFile: /nowhere/w.npz\nTrain: 1\nTest: 1"
    assert [p.mode for p in parse(text).passes] == ["train", "test"]


def test_a_test_may_follow_a_train_of_the_same_network_in_memory():
    assert [p.mode for p in parse(HEAD + "Train: 1\nTest: 1").passes] == ["train", "test"]


def test_a_test_may_load_an_existing_persistence_file_but_not_an_empty_one(tmp_path):
    (tmp_path / "full.npz").write_bytes(b"weights")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert parse(HEAD + "PersistenceFile: full.npz\nTest: 1", tmp_path).passes[0].mode == "test"
    (error,) = errors_of(HEAD + "PersistenceFile: empty.npz\nTest: 1", tmp_path)
    assert "empty.npz does not exist" in error


def test_all_problems_of_a_file_are_reported_together_one_line_each():
    text = "Paralel: 4\nParallel: 0\n" + HEAD + "Train: 0\nLearningRate: x\nTest: 1\n"
    with pytest.raises(BatchError) as caught:
        parse(text)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        "/batches/b.txt:1",
        "/batches/b.txt:2",
        "/batches/b.txt:6",
        "/batches/b.txt:7",
        "/batches/b.txt:8",
    ]
    assert len(caught.value.errors) == 5


def test_a_batch_without_passes_is_refused():
    (error,) = errors_of(HEAD + "Parallel: 2\n")
    assert error == "/batches/b.txt: the batch has no Train or Test line (allowed: Train: n, Test: n)"


def test_missing_batch_file_is_a_batch_error(tmp_path):
    with pytest.raises(BatchError, match="batch file not found"):
        load_batch(tmp_path / "nothing.txt")


# --- check (the pre-flight) ------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """A 3-input, 2-output network and CSV data for it (class index first)."""
    (tmp_path / "net.txt").write_text("Identity, 3\nSoftMax, 2\n")
    (tmp_path / "train.csv").write_text("0,1,2,3\n1,4,5,6\n")
    (tmp_path / "test.csv").write_text("1,1,1,1\n")
    return tmp_path


def run_check(folder: Path, body: str) -> list[str]:
    (folder / "b.txt").write_text(HEAD + body)
    return list(preflight(load_batch(folder / "b.txt")).summaries)


def check_errors(folder: Path, body: str) -> list[UserError]:
    with pytest.raises(BatchError) as caught:
        run_check(folder, body)
    return caught.value.errors


def test_check_summarises_each_pass(small):
    lines = run_check(small, "Parallel: 2\nTrain: 2\nTest: 1\n")
    assert len(lines) == 2
    assert lines[0].startswith(f"{small / 'b.txt'}:5: Train ×2: Identity 3 / SoftMax 2; TrainFile")
    assert "(2 lines)" in lines[0] and "Parallel 2" in lines[0]
    assert "no PersistenceFile" in lines[0]
    assert lines[1].startswith(f"{small / 'b.txt'}:6: Test ×1") and "(1 lines)" in lines[1]


def test_check_names_a_missing_data_file_with_its_directive(small):
    (small / "train.csv").unlink()
    (error,) = check_errors(small, "Train: 1\n")
    assert str(error) == (
        f"{small / 'b.txt'}:4: TrainFile {small / 'train.csv'} not found (allowed: an existing data file)"
    )


def test_check_reports_an_unreadable_network_file_once(small):
    (small / "net.txt").write_text("Identity, 3\nSoftMax, two\n")
    (error,) = check_errors(small, "Train: 1\nTrain: 1\n")
    assert isinstance(error, LayoutError)
    assert str(error).startswith(f"{small / 'net.txt'}:2: ")


def test_check_refuses_data_wider_than_the_input_layer(small):
    (small / "train.csv").write_text("0,1,2,3,4,5\n1,4,5,6,7,8\n")
    (error,) = check_errors(small, "Train: 1\n")
    assert str(error).startswith(
        f"{small / 'b.txt'}:4: TrainFile has 5 inputs per line, the network's input layer 3 neurons"
    )


@pytest.mark.parametrize(
    ("data", "body"),
    [
        ("0,1,2,3\n2,4,5,6\n", "Train: 1\n"),  # class 2 of 2 outputs
        ("0,1,0,2,3,4\n1,0,0,5,6,7\n", "TargetColumnEnd: 3\nTrain: 1\n"),  # 3 columns, 2 outputs
    ],
)
def test_check_refuses_targets_that_do_not_fit_the_output_layer(small, data, body):
    (small / "train.csv").write_text(data)
    (error,) = check_errors(small, body + "Train: 1\n")  # reported once for both passes
    assert isinstance(error, DataError)
    assert error.where == str(small / "train.csv")


def test_check_accepts_one_target_column_per_output(small):
    (small / "train.csv").write_text("0,1,1,2,3\n1,0,4,5,6\n")
    assert len(run_check(small, "TargetColumnEnd: 2\nTrain: 1\n")) == 1


def test_check_refuses_a_persistence_file_of_another_network(small):
    other = Layout.of(("Identity", 4), ("SoftMax", 2))
    save_persistence(small / "w.npz", Persisted(other, np.zeros(other.n_weights)))
    (error,) = check_errors(small, "PersistenceFile: w.npz\nTrain: 1\nTest: 1\n")
    assert isinstance(error, PersistenceError)
    assert "Identity 4 / SoftMax 2" in str(error) and "Identity 3 / SoftMax 2" in str(error)
