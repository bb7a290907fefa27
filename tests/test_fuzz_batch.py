"""Fuzzed batch files: any text parses into runnable passes or one ``BatchError``.

Budget and the long campaign: see ``test_fuzz_support``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import file_bytes, fuzz, junk_text, outcome

from actors.batchfile.parse import BatchError, load_batch, parse_batch
from actors.batchfile.settings import DIRECTIVES, PATH_MAX, Directive

# Values that sit on an edge of some directive's rules.
EDGE_VALUES = [
    "0", "1", "-1", "+3", "007", "1e3", "1.5", "nan", "-inf", "1e999", "1_000", "١٢", "１２",
    "on", "Off", "YES", "unbounded", "Parallel", "inline", "process", "ray", "thread", "None",
    "Proportional", "MeanSubstraction", "9" * 5_000,
]  # fmt: skip
EDGE_PATHS = [
    "w.npz", "~", "~/w.npz", "~nosuchuser/w.npz", "/", "..", ".", "a\x00b", "x" * 5_000, "d/" * 3_000,
    "/dev/null", "/proc/self/mem", "C:\\w.npz", "w.npz/",
]  # fmt: skip
PATH_KEYS = [d.key for d in DIRECTIVES if d.value.allowed.startswith("a file path")]

bad_values = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(repr),
    junk_text(),
)
bad_paths = st.one_of(st.sampled_from(EDGE_PATHS), junk_text())
bad_keys = st.one_of(st.sampled_from(["Paralel", "Train File", "Tests", ""]), junk_text(12))
# Candidates for a valid value; each directive keeps those its own rules accept.
CANDIDATES = [*EDGE_VALUES, "0.5", "2", "100", "0.9", "local", "auto", "10.0.0.1:6379", "w.npz", "sub/x.csv"]


def _accepts(directive: Directive, text: str) -> bool:
    try:
        directive.value.parse(text)
    except ValueError:
        return False
    return True


def good_values(directive: Directive) -> st.SearchStrategy[str]:
    if directive.key in PATH_KEYS:
        return st.sampled_from(["w.npz", "sub/x.csv", "/abs/y.npz", "~/z.npz"])
    candidates = [*CANDIDATES, *directive.value.allowed.split(", ")]
    return st.sampled_from([c for c in dict.fromkeys(candidates) if _accepts(directive, c)] or EDGE_VALUES)


def cased(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from([key, key.lower(), key.upper()])


colons = st.sampled_from([":", ": ", " : ", ":\t"])
comments = st.sampled_from(["", " # note", "#"])
# Without these most passes would only complain that a file is missing.
HEAD = "NetworkFile: net.txt\nTrainFile: train.csv\nTestFile: test.csv\n"
BAD_VALUE, BAD_KEY, NO_COLON, JUNK_LINE, NO_HEAD, BAD_PASS = range(6)


@st.composite
def batch_texts(draw) -> str:
    """A batch file that runs, with none, one or two faults."""
    settings = []  # [key, colon, value, comment, directive]
    for directive in draw(st.lists(st.sampled_from(DIRECTIVES), max_size=6)):
        key = draw(st.sampled_from([directive.key, *directive.aliases]).flatmap(cased))
        settings.append([key, draw(colons), draw(good_values(directive)), draw(comments), directive])
    faults = draw(st.sets(st.integers(0, 5), max_size=2))
    if settings and BAD_VALUE in faults:
        line = settings[draw(st.integers(0, len(settings) - 1))]
        line[2] = draw(bad_paths if line[4].key in PATH_KEYS else bad_values)
    if settings and BAD_KEY in faults:
        settings[draw(st.integers(0, len(settings) - 1))][0] = draw(bad_keys)
    if settings and NO_COLON in faults:
        settings[draw(st.integers(0, len(settings) - 1))][1] = draw(st.sampled_from(["", "=", " "]))
    lines = ["".join(line[:4]) for line in settings]
    counts = st.integers(1, 3).map(str)
    for mode in draw(st.lists(st.sampled_from(["Train", "Test"]), min_size=1, max_size=3)):
        count = draw(bad_values if BAD_PASS in faults else counts)
        lines.insert(draw(st.integers(0, len(lines))), f"{draw(cased(mode))}: {count}")
    if JUNK_LINE in faults:
        lines.insert(draw(st.integers(0, len(lines))), draw(junk_text()))
    head = HEAD.splitlines()
    if NO_HEAD in faults:
        del head[draw(st.integers(0, 2))]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\u2028"]))
    return draw(st.sampled_from(["", "\ufeff"])) + newline.join(head + lines)


def assert_runnable(batch) -> None:
    assert batch.passes
    for p in batch.passes:
        s = p.settings
        assert p.count >= 1 and p.mode in ("train", "test")
        assert s.network_file is not None
        assert (s.train_file if p.mode == "train" else s.test_file) is not None
        assert s.target_start < s.target_end
        assert p.mode == "test" or s.min_weight <= s.max_weight
        assert s.parallel >= 1 and s.worker_batch >= 1 and s.learning_rate > 0


@fuzz
@given(text=batch_texts())
def test_any_batch_text_parses_or_is_a_batch_error(tmp_path, text):
    batch = outcome(lambda: parse_batch(text, tmp_path / "b.batch"))
    if batch is not None:
        assert_runnable(batch)


@fuzz
@given(raw=file_bytes(batch_texts()))
def test_any_batch_file_loads_or_is_a_batch_error(tmp_path, raw):
    path = tmp_path / "b.batch"
    path.write_bytes(raw)
    batch = outcome(lambda: load_batch(path))
    if batch is not None:
        assert_runnable(batch)


# --- what the fuzzer found ------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(BatchError) as caught:
        parse_batch(HEAD + text, Path("/batches/b.batch"))
    return [e.message for e in caught.value.errors]


def test_home_folder_of_an_unknown_user_is_a_batch_error():
    # Path.expanduser raised RuntimeError for '~nosuchuser'.
    assert problems("PersistenceFile: ~nosuchuser/w.npz\nTrain: 1\n") == [
        "PersistenceFile: cannot find the home folder of '~nosuchuser'"
    ]


def test_nul_character_in_a_path_is_a_batch_error():
    # The parser accepted it; opening the file later raised ValueError.
    assert problems("NetworkFile: net\x00.txt\nTrain: 1\n") == [
        "NetworkFile: 'net\\x00.txt' contains a NUL character"
    ]


def test_overlong_persistence_path_of_a_test_pass_is_a_batch_error():
    # Checking whether the file exists raised OSError (file name too long); now the
    # path is refused where it is written, as no file can have such a name.
    long = "w" * 5_000 + ".npz"
    path_error, test_error = problems(f"PersistenceFile: {long}\nTest: 1\n")
    assert path_error == f"PersistenceFile: '{'w' * 79}…' is longer than a path can be ({PATH_MAX} bytes)"
    assert test_error.startswith("a test pass needs a trained network: a PersistenceFile that exists")
