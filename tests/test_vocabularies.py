"""Vocabularies: parsed once by the settings table, members inside, the old spellings outside.

The spellings below are written out here, not taken from the enums: they are what
batch files, JSON logs and result tables have always said.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_batchfile import HEAD, errors_of, parse
from tiny_runs import TinyFolder

from actors.batchfile import memory
from actors.batchfile.memory import PassShape
from actors.coordinator import PassPlan
from actors.executors.executor import make_executor
from actors.executors.step import Workload
from actors.vocabulary import ExecutorName, RayPlacement, Rounds
from brain.hyper import Semantics
from brain.layout import Layout
from brain.merge import Merge, merge_divisor
from brain.modern import Init, Loss, Optimizer, Precision, ScheduleKind, Update

# Directive, the Settings field it sets, its vocabulary, the allowed spellings in order.
VOCABULARIES = [
    ("Semantics", "semantics", Semantics, "Thesis, Modern"),
    ("Loss", "loss", Loss, "Quadratic, CrossEntropy"),
    ("Init", "init", Init, "Uniform, He, Glorot, LeCun"),
    ("Optimizer", "optimizer", Optimizer, "SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam, NAdam, AdaDelta"),
    ("LearningRateSchedule", "schedule", ScheduleKind, "Constant, Step, Cosine, Plateau"),
    ("Update", "update", Update, "Online, MiniBatch"),
    ("Precision", "precision", Precision, "float64, float32"),
    ("Merge", "merge", Merge, "Harmonic, Mean, Sum"),
    ("Rounds", "rounds", Rounds, "Sync, Async"),
    ("Executor", "executor", ExecutorName, "inline, thread, process, processpool, ray"),
    ("RayPlacement", "ray_placement", RayPlacement, "spread, pack"),
]


@pytest.mark.parametrize(("key", "name", "vocabulary", "allowed"), VOCABULARIES)
def test_an_unknown_value_is_refused_at_parse_time_with_file_line_and_allowed_values(
    key, name, vocabulary, allowed
):
    (error,) = errors_of(HEAD + f"Seed: 1\n{key}: Bogus\nTrain: 1\n")
    what = "executor" if key == "Executor" else "value"
    assert error.startswith(f"/batches/b.txt:5: {key}: unknown {what} 'Bogus'")
    assert f"allowed: {allowed}" in error


@pytest.mark.parametrize(("key", "name", "vocabulary", "allowed"), VOCABULARIES)
def test_every_spelling_in_any_letter_case_becomes_the_member(key, name, vocabulary, allowed):
    for spelling in allowed.split(", "):
        batch = parse(HEAD + f"Semantics: Modern\n{key}: {spelling.swapcase()}\nTrain: 1")
        value = getattr(batch.passes[0].settings, name)
        assert type(value) is vocabulary
        assert value.value == spelling


def test_a_member_is_written_as_its_spelling_wherever_a_string_goes():
    assert json.dumps({"merge": Merge.MEAN, "rounds": Rounds.ASYNC}) == '{"merge": "Mean", "rounds": "Async"}'
    assert f"{Optimizer.NADAM};{ExecutorName.PROCESSPOOL}" == "NAdam;processpool"
    assert (Semantics.THESIS.recorded, Semantics.MODERN.recorded) == ("thesis", "modern")


def test_a_name_that_is_no_member_is_refused_by_the_brain_with_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown schedule kind 'Exponential'; allowed: Constant, Step"):
        ScheduleKind("Exponential")
    assert Init("lecun") is Init.LECUN


def _plan(**vocabulary) -> PassPlan:
    work = Workload("train", *(None,) * 7)
    main, replicas = np.zeros(2), np.zeros((1, 2))
    return PassPlan("train", 4, 1, 2, 1, 1, work, main, replicas, state=main.copy(), **vocabulary)


@pytest.mark.parametrize("text", ["Mean", "Bogus", None])
def test_the_merge_refuses_anything_but_a_member_instead_of_falling_back(text):
    with pytest.raises(TypeError, match="expected a member of Merge"):
        merge_divisor(text, 2, 3)


@pytest.mark.parametrize(("field", "text"), [("rounds", "Async"), ("rounds", "async"), ("merge", "Sum")])
def test_a_pass_plan_refuses_a_string_where_a_member_belongs(field, text):
    with pytest.raises(TypeError, match="member"):
        _plan(**{field: text})
    assert _plan(rounds=Rounds.ASYNC, merge=Merge.SUM).rounds is Rounds.ASYNC


def test_an_executor_is_made_from_a_member_only():
    with pytest.raises(TypeError, match="expected a member of ExecutorName, got 'thread'"):
        make_executor("thread", 1)
    with pytest.raises(TypeError, match="expected a member of RayPlacement, got 'pack'"):
        make_executor(ExecutorName.THREAD, 1, ray_placement="pack")
    executor = make_executor(ExecutorName.THREAD, 1)
    try:
        assert executor.name is ExecutorName.THREAD
    finally:
        executor.close()


def test_logs_and_result_rows_carry_the_same_strings_as_before(tmp_path):
    folder = TinyFolder(tmp_path)
    run = folder.run(
        "Executor: inline\nTrain: 1\nTest: 1\n"
        "Semantics: modern\nLoss: crossentropy\nMerge: mean\nRounds: async\nExecutor: THREAD\nParallel: 2\n"
        "PreProcessing: proportional\nTrain: 1\n"
    )
    assert run.status == 0
    fields = ("semantics", "merge", "rounds", "executor", "preprocessing")
    starts = [tuple(event[f] for f in fields) for event in run.events("pass_start")]
    assert starts == [
        ("thesis", "Harmonic", "Sync", "inline", "NONE"),
        ("thesis", "Harmonic", "Sync", "inline", "NONE"),
        ("modern", "Mean", "Async", "thread", "Proportional"),
    ]
    lines = (tmp_path / "results.csv").read_text().splitlines()
    header = lines[0].split(";")
    rows = [dict(zip(header, line.split(";"), strict=True)) for line in lines[1:]]
    assert [(row["Mode"], row["Semantics"], row["Executor"]) for row in rows] == [
        ("train", "thesis", "inline"),
        ("test", "thesis", "inline"),
        ("train", "modern", "thread"),
    ]
    assert run.persisted.semantics == "modern"


@pytest.mark.parametrize(
    ("update", "precision", "copy", "rows"),
    [("Online", "float64", 0, 1), ("MiniBatch", "float64", 0, 50), ("Online", "float32", 1, 1)],
)
def test_a_modern_workers_memory_follows_update_and_precision(update, precision, copy, rows):
    text = f"Update: {update}\nMiniBatch: 50\nPrecision: {precision}\nParallel: 2\nTrain: 1"
    settings = parse(HEAD + "Semantics: Modern\n" + text).passes[0].settings
    layout = Layout.of(("Identity", 4), ("ReLU", 3), ("SoftMax", 2))
    need = memory.estimate([PassShape(settings, True, layout, ("data",), 0)])
    # 5·3 + 4·2 = 23 weights; 5 + 4 + 2 = 11 neurons with their bias.  A step keeps the
    # gradient (8 bytes a weight), float32 weights when asked (4), values, errors and
    # deltas of its rows (3 × 8 bytes a neuron a row); two workers.
    assert need.parts["workers"] == 2 * (23 * 8 + copy * 23 * 4 + 3 * rows * 11 * 8)


@pytest.mark.parametrize(
    ("executor", "processes"), [("inline", 0), ("thread", 0), ("process", 2), ("processpool", 2), ("ray", 1)]
)
def test_the_runtime_memory_counts_the_processes_of_the_executor(executor, processes):
    settings = parse(HEAD + f"Executor: {executor}\nParallel: 1\nTrain: 1").passes[0].settings
    layout = Layout.of(("Identity", 4), ("SoftMax", 2))
    need = memory.estimate([PassShape(settings, True, layout, ("data",), 0)])
    # The pool: one worker process and its server; Ray: one actor per worker.
    assert need.parts["runtime"] == memory.RUNTIME_BYTES + processes * memory.PROCESS_BYTES
