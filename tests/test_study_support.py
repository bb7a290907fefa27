"""What the ``test_study_*`` modules share: running the CLI in-process, reading its CSV and PNGs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from actors.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run ``python -m actors ARGV`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def png_size(path: Path) -> tuple[int, int]:
    """The PNG's size in pixels; fails unless Pillow reads the whole file as a PNG."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_png_size_rejects_a_file_that_is_not_a_png(tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(Exception):  # noqa: B017 - Pillow raises its own error types here
        png_size(fake)
