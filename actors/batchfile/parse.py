"""The batch language of the thesis: ``Key: value`` lines run top to bottom.

Setting lines change a setting that stays in force until changed again;
``Train: n`` and ``Test: n`` are passes that run with the settings in force at
their line.  One file may hold many blocks.  The text is parsed once, here, into
a ``Batch`` of ``Pass``es carrying typed ``Settings``; every problem of the file is
collected and raised together as one ``BatchError``.

Leniency: keys match in any letter case, blanks around ``:`` are optional, ``#``
starts a comment, blank lines are skipped.  Everything else is strict: an
unknown key, a bad value or a pass that cannot run is an error, with the file,
the line and what would have been accepted.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from actors.batchfile.settings import DIRECTIVES, PATH, POSITIVE_INT, Directive, Settings, Value
from brain.activations import Activation
from brain.errors import LayoutError, UserError, shorten
from brain.layout import Layout, load_layout
from brain.modern import Init, Loss, Optimizer, Precision, Update
from brain.persistence import persistence_exists
from brain.user_files import read_text

Mode = Literal["train", "test"]

# A batch file is a page of settings; a few MB of it is a file named by mistake.
MAX_BATCH_BYTES = 4 * 2**20

# Canonical spelling of each pass key -> its mode.
PASS_KEYS: dict[str, Mode] = {"Train": "train", "Test": "test"}

KNOWN_KEYS: tuple[str, ...] = tuple(d.key for d in DIRECTIVES) + tuple(PASS_KEYS)

# Lower-cased spelling (canonical or alias) -> the directive, or the mode of a pass key.
_LOOKUP: dict[str, Directive | Mode] = {
    **{spelling.lower(): d for d in DIRECTIVES for spelling in (d.key, *d.aliases)},
    **{key.lower(): mode for key, mode in PASS_KEYS.items()},
}


@dataclass(frozen=True)
class Pass:
    """``count`` training epochs or test passes, run with ``settings``; from ``where``:``line``."""

    mode: Mode
    count: int
    settings: Settings
    where: str
    line: int


@dataclass(frozen=True)
class Batch:
    """The passes of a batch file, and the warnings (``UserError``s) the caller should print."""

    path: Path
    passes: tuple[Pass, ...]
    warnings: tuple[UserError, ...] = ()
    root: Path | None = None  # --root: the folder paths starting with "." resolve against


class BatchError(UserError):
    """Every problem of one batch file; ``str`` gives one ``file:line: message`` line each."""

    def __init__(self, errors: Sequence[UserError]) -> None:
        if not errors:
            raise ValueError("a BatchError needs at least one problem")
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, where=first.where, line=first.line, allowed=first.allowed)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def load_batch(path: str | Path, overrides: Sequence[str] = (), root: str | Path | None = None) -> Batch:
    """Read and parse a batch file; a missing or unreadable file is a ``BatchError`` too.

    ``overrides`` are ``Key: value`` lines (``run --set``) applied just before every
    Train and Test line, so they win over the file and are checked like it.  ``root``:
    see ``parse_batch``.
    """
    path = Path(path)
    try:
        text = read_text(path, "batch file", encoding="utf-8-sig", limit=MAX_BATCH_BYTES)
    except UserError as error:
        raise BatchError([error]) from None
    return parse_batch(text, path, overrides, root)


def parse_batch(
    text: str, path: str | Path, overrides: Sequence[str] = (), root: str | Path | None = None
) -> Batch:
    """Parse the text of the batch file at ``path``.

    Without ``root``, relative paths resolve against the batch file's folder.  With
    ``root``, as the Go program did with its own folder: a path that starts with
    ``.`` resolves against ``root``, any other relative path against the working
    folder (as given).

    Raises ``BatchError`` with every problem found; checks the file system only for
    whether a PersistenceFile exists (a test pass needs a trained network) and reads
    the network file of each Train line (cross-entropy needs a SoftMax or Logistic
    output; SELU without ``Init: LeCun`` is a warning, kept in ``Batch.warnings``).
    """
    return _Parser(Path(path), overrides, None if root is None else Path(root)).run(text)


def _as_directive(text: str) -> str:
    """``Key=value`` (or ``Key: value``) as a batch line; the value may hold ``:`` or ``=``."""
    key, equals, value = text.partition("=")
    return f"{key}: {value}" if equals and ":" not in key else text


class _Parser:
    def __init__(self, path: Path, overrides: Sequence[str] = (), root: Path | None = None) -> None:
        self.path = path
        self.where = str(path)
        self.overrides = [_as_directive(line) for line in overrides]
        self.folder = path.parent
        self.root = root
        self.settings = Settings()
        self.passes: list[Pass] = []
        self.errors: list[UserError] = []
        # What earlier Train lines leave behind for a Test: persistence files they
        # write, and (without a persistence file) networks trained in memory.
        self.trained_stores: set[Path] = set()
        self.trained_networks: set[Path | None] = set()
        self.warnings: list[UserError] = []
        # Network files read for the checks of a Train line (None: unreadable, left to the runner).
        self.layouts: dict[Path, Layout | None] = {}

    def run(self, text: str) -> Batch:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if line:
                self.line(line, number)
        if not self.passes and not self.errors:
            self.problem("the batch has no Train or Test line", None, "Train: n, Test: n")
        if self.errors:
            unique = {str(error): error for error in self.errors}  # a bad --set shows once, not per pass
            raise BatchError(list(unique.values()))
        return Batch(self.path, tuple(self.passes), tuple(self.warnings), self.root)

    def problem(self, message: str, number: int | None, allowed: str | Sequence[str]) -> None:
        self.errors.append(UserError(message, where=self.where, line=number, allowed=allowed))

    def line(self, line: str, number: int | None) -> None:
        key, colon, text = line.partition(":")
        key, text = key.strip(), text.strip()
        if not colon:
            self.problem(f"expected 'Key: value', found no ':' in {shorten(line)!r}", number, "Key: value")
            return
        target = _LOOKUP.get(key.lower())
        if target is None:
            self.problem(_unknown_key_message(key), number, KNOWN_KEYS)
            return
        canonical = _canonical(target)
        if not text:
            self.problem(f"{canonical} needs a value", number, _value_for(target).allowed)
            return
        try:
            value = _value_for(target).parse(text)
        except ValueError as exc:
            self.problem(f"{canonical}: {exc}", number, _value_for(target).allowed)
            return
        if isinstance(target, Directive):
            if isinstance(value, Path):
                value = resolve_path(text, value, self.folder, self.root)
            self.settings = self.settings.with_value(target.field, value)
        elif number is not None:
            self.apply_overrides()
            self.add_pass(target, value, number)
        else:
            allowed = "--set Key=value of a setting"
            self.problem(f"--set cannot add a {_canonical(target)} pass", None, allowed)

    def apply_overrides(self) -> None:
        """``run --set`` lines, as if written just above the pass (errors name ``--set``)."""
        where, self.where = self.where, "--set"
        try:
            for override in self.overrides:
                self.line(override, None)
        finally:
            self.where = where

    def add_pass(self, mode: Mode, count: int, number: int) -> None:
        problems = _pass_problems(mode, self.settings)
        if mode == "test" and not problems:
            problems += self.untrained_problems()
        if mode == "train" and not problems:
            problems += self.network_problems(number)
        for message, allowed in problems:
            self.problem(message, number, allowed)
        if mode == "train":
            # Counted even when the line is wrong, so that a later Test does not
            # repeat the same complaint.
            if self.settings.persistence_file is not None:
                self.trained_stores.add(self.settings.persistence_file)
            self.trained_networks.add(self.settings.network_file)
        if not problems:
            self.passes.append(Pass(mode, count, self.settings, self.where, number))

    def network_problems(self, number: int) -> list[tuple[str, str]]:
        """What the network file says about the settings of a Train line: errors, and warnings kept aside.

        An unreadable network file is not reported here: the runner (and ``check``) name it.
        """
        settings = self.settings
        path = settings.network_file
        if path is None:
            return []
        if path not in self.layouts:
            try:
                self.layouts[path] = load_layout(path)
            except LayoutError:
                self.layouts[path] = None
        layout = self.layouts[path]
        if layout is None:
            return []
        output = layout.layers[-1]
        selu = any(layer.activation == Activation.SELU for layer in layout.layers)
        if selu and settings.init is not Init.LECUN:
            self.warnings.append(
                UserError(
                    f"network file {path} has SELU layers but Init is {settings.init}: "
                    "SELU self-normalises only from LeCun initial weights",
                    where=self.where,
                    line=number,
                    allowed="Init: LeCun",
                )
            )
        logits = output.activation in _LOGIT_OUTPUTS
        if settings.is_modern and settings.loss is Loss.CROSS_ENTROPY and not logits:
            return [
                (
                    f"Loss CrossEntropy needs a SoftMax or Logistic output layer, but network file {path} "
                    f"ends in {output.activation.name}, {output.neurons}",
                    "Loss: Quadratic, or a network file whose last layer is SoftMax or Logistic",
                )
            ]
        return []

    def untrained_problems(self) -> list[tuple[str, str]]:
        """A Test needs weights: a stored network or one trained earlier in this batch."""
        store = self.settings.persistence_file
        if store is None:
            if self.settings.network_file in self.trained_networks:
                return []
            reason = "a PersistenceFile that exists or a Train line before it"
        elif store in self.trained_stores or persistence_exists(store):
            return []
        else:
            reason = f"PersistenceFile {store} does not exist and no Train line before this writes it"
        allowed = "a PersistenceFile naming an existing file, or a Train line earlier in the batch"
        return [(f"a test pass needs a trained network: {reason}", allowed)]


def _pass_problems(mode: Mode, settings: Settings) -> list[tuple[str, str]]:
    """(message, allowed) for every reason the settings in force cannot run this pass."""
    if mode == "train":
        key, data_key, data = "Train", "TrainFile", settings.train_file
    else:
        key, data_key, data = "Test", "TestFile", settings.test_file
    problems = [
        (f"{key} needs a {needed} line before it", f"a '{needed}: path' line above this one")
        for needed, value in (("NetworkFile", settings.network_file), (data_key, data))
        if value is None
    ]
    if mode == "train" and settings.min_weight > settings.max_weight:
        problems.append(
            (
                f"MinWeight {settings.min_weight} is greater than MaxWeight {settings.max_weight}",
                "MinWeight ≤ MaxWeight",
            )
        )
    problems += _semantics_problems(mode, settings)
    if settings.target_end <= settings.target_start:
        problems.append(
            (
                f"TargetColumnEnd {settings.target_end} must be greater than "
                f"TargetColumnStart {settings.target_start}",
                "TargetColumnStart < TargetColumnEnd",
            )
        )
    return problems


def _semantics_problems(mode: Mode, settings: Settings) -> list[tuple[str, str]]:
    """Settings that change the math of a step are errors with ``Semantics: Thesis``.

    Rejected rather than ignored: thesis semantics reproduce the program bit for bit,
    and a setting that silently did nothing would look like a result.  A Test pass
    is affected only by Bias.  Init, LearningRateSchedule, Merge and Rounds do not
    change a step's math and work with both semantics.
    """
    if settings.is_modern:
        return []
    modern_only = [("Bias", "off", not settings.bias)]
    if mode == "train":
        modern_only += [
            ("Loss", settings.loss, settings.loss is not Loss.QUADRATIC),
            ("Optimizer", settings.optimizer, settings.optimizer is not Optimizer.SGD),
            ("Update", settings.update, settings.update is not Update.ONLINE),
            ("Precision", settings.precision, settings.precision is not Precision.FLOAT64),
            ("LambdaL1", settings.lambda_l1, settings.effective_lambda_l1 != settings.lambda_),
            ("LambdaL2", settings.lambda_l2, settings.effective_lambda_l2 != settings.lambda_),
        ]
    return [
        (
            f"{key}: {value} needs Semantics: Modern (the thesis math has no such setting)",
            f"Semantics: Modern above this line, or {key}: {_THESIS_VALUES[key]}",
        )
        for key, value, is_set in modern_only
        if is_set
    ]


_THESIS_VALUES = {
    "Bias": "on",
    "Loss": Loss.QUADRATIC,
    "Optimizer": Optimizer.SGD,
    "Update": Update.ONLINE,
    "Precision": Precision.FLOAT64,
    "LambdaL1": "the value of Lambda",
    "LambdaL2": "the value of Lambda",
}
_LOGIT_OUTPUTS = (Activation.SoftMax, Activation.Logistic)


def resolve_path(text: str, path: Path, folder: Path, root: Path | None = None) -> Path:
    """An absolute path for the value ``text`` (parsed: ``path``) of a path directive in a
    batch file in ``folder``: see ``parse_batch`` for the rule with and without ``root``."""
    if path.is_absolute():
        return path
    base = folder if root is None else root if text.startswith(".") else Path.cwd()
    return Path(os.path.abspath(base / path))


OUTPUTS = ("persistence_file", "result_file")  # the Settings fields naming files a pass writes


def sets_output(line: str) -> bool:
    """Whether the ``Key: value`` (or ``Key=value``) line sets a PersistenceFile or ResultFile."""
    key = line.partition(":" if ":" in line else "=")[0]
    target = _LOOKUP.get(key.strip().lower())
    return isinstance(target, Directive) and target.field in OUTPUTS


def relocated(path: Path, place: Callable[[Path], Path]) -> str:
    """The text of the batch file at ``path`` for a run from another folder that must
    not touch the files this one writes: every file path made absolute, and every
    PersistenceFile and ResultFile ``f`` replaced by ``place(f)``.

    Lines are rewritten one for one, so errors keep their line numbers; a line
    that does not parse is left as it is (``load_batch`` reports it).
    """
    text = read_text(path, "batch file", encoding="utf-8-sig")
    lines = []
    for raw in text.splitlines():
        key, colon, value = raw.split("#", 1)[0].partition(":")
        target = _LOOKUP.get(key.strip().lower())
        if colon and value.strip() and isinstance(target, Directive) and target.value is PATH:
            try:
                file = resolve_path(value.strip(), PATH.parse(value.strip()), path.parent)
            except ValueError:
                file = None
            if file is not None:
                raw = f"{target.key}: {place(file) if target.field in OUTPUTS else file}"
        lines.append(raw)
    return "\n".join(lines) + "\n"


def _canonical(target: Directive | Mode) -> str:
    if isinstance(target, Directive):
        return target.key
    return next(key for key, mode in PASS_KEYS.items() if mode == target)


def _value_for(target: Directive | Mode) -> Value:
    return target.value if isinstance(target, Directive) else POSITIVE_INT


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key.lower(), list(_LOOKUP), n=1, cutoff=0.6)
    if not close:
        return f"unknown key {shorten(key)!r}"
    return f"unknown key {shorten(key)!r}; did you mean {_canonical(_LOOKUP[close[0]])!r}?"


def directive_table_markdown() -> str:
    """The directive table of the README, made from the same table the parser uses."""
    rows = ["| key | allowed values | default | meaning |", "| --- | --- | --- | --- |"]
    for d in DIRECTIVES:
        key = " / ".join((d.key, *d.aliases))
        rows.append(f"| {key} | {d.value.allowed} | {d.default_text} | {d.help} |")
    rows.append(f"| Train | {POSITIVE_INT.allowed} | | n training epochs over TrainFile |")
    rows.append(f"| Test | {POSITIVE_INT.allowed} | | n test passes over TestFile |")
    return "\n".join(rows)
