"""Fetching MNIST: from a local folder or a URL, verified by the decompressed bytes, atomically."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

import brain.data.fetch
from brain.data import MNIST_SHA256, fetch_mnist
from brain.errors import DataError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def published_sha256() -> dict[str, str]:
    lines = (SHARED_MNIST / "SHA256SUMS.uncompressed").read_text().split("\n")
    return {name + ".gz": digest for digest, name in (line.split() for line in lines if line.strip())}


def decompressed_sha256(path: Path) -> str:
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


@pytest.fixture
def mirror(mnist_dir, tmp_path) -> Path:
    """A writable copy of the local mirror, to spoil."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in NAMES:
        shutil.copyfile(mnist_dir / name, folder / name)
    return folder


def fetch(dest, mirror) -> tuple[list[Path], list[str]]:
    reports: list[str] = []
    return fetch_mnist(dest, mirror=str(mirror), report=reports.append), reports


def test_hard_coded_checksums_are_the_published_ones():
    assert published_sha256() == MNIST_SHA256


def test_fetch_from_a_local_mirror_writes_four_verified_files(tmp_path, mirror):
    paths, reports = fetch(tmp_path / "dest", mirror)
    assert paths == [tmp_path / "dest" / name for name in NAMES]
    assert reports == [f"fetched {name} from {mirror / name}" for name in NAMES]
    published = published_sha256()
    for path in paths:
        assert decompressed_sha256(path) == published[path.name]
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(NAMES)


def test_valid_files_are_kept_untouched(tmp_path, mirror):
    dest = tmp_path / "dest"
    fetch(dest, mirror)
    before = {name: (dest / name).stat() for name in NAMES}
    _, reports = fetch(dest, tmp_path / "no-such-mirror")
    assert reports == [f"ok {name}" for name in NAMES]
    for name in NAMES:
        after = (dest / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns)


def test_corrupted_file_is_fetched_again(tmp_path, mirror):
    dest = tmp_path / "dest"
    fetch(dest, mirror)
    spoiled = dest / "train-labels-idx1-ubyte.gz"
    spoiled.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(4)))
    _, reports = fetch(dest, mirror)
    assert reports[1] == f"fetched {spoiled.name} from {mirror / spoiled.name}"
    assert [r.split()[0] for r in reports] == ["ok", "fetched", "ok", "ok"]
    assert decompressed_sha256(spoiled) == published_sha256()[spoiled.name]


def test_mirror_with_a_wrong_checksum_is_rejected_and_nothing_is_written(tmp_path, mirror):
    name = "t10k-labels-idx1-ubyte.gz"
    original = gzip.decompress((mirror / name).read_bytes())
    (mirror / name).write_bytes(gzip.compress(original[:-1] + bytes([original[-1] ^ 1])))
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as caught:
        fetch(dest, mirror)
    message = str(caught.value)
    assert message.startswith(f"{dest / name}: no mirror delivered a valid copy of {name}")
    assert f"{mirror / name}: SHA-256 of the decompressed bytes is" in message
    assert MNIST_SHA256[name] in message
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES[:3])


def test_mirror_serving_something_not_gzip_is_rejected(tmp_path, mirror):
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match=re.escape(f"{NAMES[0]}: not valid gzip data")):
        fetch(tmp_path / "dest", mirror)


def test_missing_mirror_is_named_as_unreachable(tmp_path):
    with pytest.raises(DataError) as caught:
        fetch(tmp_path / "dest", tmp_path / "gone")
    assert f"{tmp_path / 'gone' / NAMES[0]}: unreachable" in str(caught.value)


def test_default_mirrors_are_tried_in_order(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(brain.data.fetch, "DEFAULT_MIRRORS", (str(tmp_path / "gone"), str(mirror)))
    reports: list[str] = []
    fetch_mnist(tmp_path / "dest", report=reports.append)
    assert reports[0] == f"fetched {NAMES[0]} from {mirror / NAMES[0]}"


def test_fetch_over_http(tmp_path, mirror):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(mirror)
    )
    handler.log_message = lambda *args: None  # keep pytest's output clean
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        paths, reports = fetch(tmp_path / "dest", url)
        assert reports[0] == f"fetched {NAMES[0]} from {url}{NAMES[0]}"
        (mirror / NAMES[3]).unlink()
        paths[3].unlink()
        with pytest.raises(DataError, match=re.escape(f"{url}{NAMES[3]}: unreachable") + ".*404"):
            fetch(tmp_path / "dest", url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    published = published_sha256()
    assert [decompressed_sha256(p) for p in paths[:3]] == [published[n] for n in NAMES[:3]]


def test_fetch_from_a_file_url(tmp_path, mirror):
    paths, reports = fetch(tmp_path / "dest", mirror.as_uri())
    assert reports[0] == f"fetched {NAMES[0]} from {mirror.as_uri()}/{NAMES[0]}"
    assert decompressed_sha256(paths[0]) == published_sha256()[NAMES[0]]


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, mirror, monkeypatch):
    dest = tmp_path / "dest"
    dest.mkdir()
    spoiled = dest / NAMES[0]
    spoiled.write_bytes(b"old, corrupt")

    def crash(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        fetch(dest, mirror)
    monkeypatch.undo()
    assert [p.name for p in dest.iterdir()] == [NAMES[0]]
    assert spoiled.read_bytes() == b"old, corrupt"


def test_unwritable_destination_is_a_data_error(tmp_path, mirror):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(DataError, match="cannot write"):
        fetch(blocker / "dest", mirror)


def test_a_destination_that_is_no_folder_is_refused_before_anything_is_fetched(tmp_path, mirror):
    os.mkfifo(tmp_path / "dest")
    refused = r"cannot write: the destination folder cannot be created: .* is a FIFO, not a folder"
    with pytest.raises(DataError, match=refused):
        fetch_mnist(tmp_path / "dest" / "mnist", mirror, report=lambda line: None)
    assert (tmp_path / "dest").is_fifo()
