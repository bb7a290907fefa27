"""``predict``: a network trained for one epoch on a few thousand lines reads MNIST digits from PNGs."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from test_study_support import cli

from actors.study.predict import FIELD, classify, load_network, mnist_sample
from brain import kernels
from brain.connectome import Connectome
from brain.data import Dataset, interpret_targets, load_idx, read_idx, write_csv
from brain.layout import Layout
from brain.persistence import Persisted, save_persistence

TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
SAMPLES = (0, 1, 2, 3)  # MNIST's first test images: 7, 2, 1, 0
# Modern math, online SGD: about 90 % after one epoch over the first 5,000 training images.
TRAINING = (
    "Semantics: Modern\nLoss: CrossEntropy\nPreProcessing: Proportional\nInit: He\nOptimizer: SGD\n"
    "LearningRate: 0.05\nLambda: 0\nUpdate: Online\nExecutor: inline\n"
)


@pytest.fixture(scope="module")
def network(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from actors.cli import main

    folder = tmp_path_factory.mktemp("trained")
    train = load_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    write_csv(Dataset(train.inputs[:5000], train.targets[:5000], "train"), folder / "train.csv")
    (folder / "network.txt").write_text("Identity, 784\nELU, 100\nSoftMax, 10\n")
    (folder / "batch.txt").write_text(
        f"NetworkFile: network.txt\nTrainFile: train.csv\nPersistenceFile: net.npz\n{TRAINING}Train: 1\n"
    )
    assert main(["run", str(folder / "batch.txt"), "--no-log", "--quiet"]) == 0
    return folder / "net.npz"


@pytest.fixture(scope="module")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(mnist_dir / TEST_IMAGES, 2051)
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", 2049)
    return images, labels


TOP_THREE = re.compile(r"^.+: (\d) \(([\d.]+)\), (\d) \(([\d.]+)\), (\d) \(([\d.]+)\)")


def top_three(stdout: str) -> list[list[tuple[int, float]]]:
    """Each ``name: d (p), d (p), d (p)`` line as [(digit, probability)] × 3."""
    found = []
    for line in stdout.splitlines():
        if match := TOP_THREE.match(line):
            values = match.groups()
            found.append([(int(values[i]), float(values[i + 1])) for i in (0, 2, 4)])
    return found


def answers(stdout: str) -> list[int]:
    """The answer (the first of the top three) of each line."""
    return [three[0][0] for three in top_three(stdout)]


def test_pngs_of_known_test_images_come_back_as_their_labels(
    network: Path, mnist_test, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = mnist_test
    paths = []
    for index in SAMPLES:
        paths.append(tmp_path / f"digit{index}.png")
        Image.fromarray(images[index]).save(paths[-1])
    code, out, _ = cli(capsys, "predict", "--persistence", network, *paths)
    assert code == 0
    assert answers(out) == [int(labels[i]) for i in SAMPLES]


def test_each_image_gets_its_three_likeliest_digits_with_their_probabilities(
    network: Path, mnist_test, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _ = mnist_test
    Image.fromarray(images[0]).save(tmp_path / "digit.png")
    code, out, _ = cli(capsys, "predict", "--persistence", network, tmp_path / "digit.png")
    assert code == 0
    (three,) = top_three(out)
    outputs = classify(load_network(network), images[0].reshape(-1)).outputs  # the image is MNIST already
    expected = sorted(range(10), key=lambda digit: -outputs[digit])[:3]
    assert [digit for digit, _ in three] == expected
    assert [p for _, p in three] == pytest.approx([outputs[d] for d in expected], abs=5e-4)
    assert 1.0 >= three[0][1] >= three[1][1] >= three[2][1] >= 0.0


def test_ink_is_cropped_fitted_into_20_pixels_and_centred_by_its_mass() -> None:
    ink = np.zeros((300, 200), np.int64)
    ink[30:130, 140:190] = 200  # a 100 × 50 bar, far off-centre, not at full strength
    sample = mnist_sample(ink).astype(np.float64)
    rows, columns = np.flatnonzero(sample.any(axis=1)), np.flatnonzero(sample.any(axis=0))
    assert (rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1) == (FIELD, FIELD // 2)
    assert sample.max() == 255  # the ink stretched to the full range
    mass = sample.sum()
    assert abs(sample.sum(axis=1) @ np.arange(28) / mass - 14) <= 0.5
    assert abs(sample.sum(axis=0) @ np.arange(28) / mass - 14) <= 0.5


def test_digits_scaled_up_off_centre_on_a_canvas_read_as_their_28_by_28_originals(
    network: Path, mnist_test, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 test digits, each 7× larger, somewhere near a corner of a 320 × 280 canvas, half of them
    black on white: the answers must be those for the MNIST originals for at least 95 %."""
    images, _ = mnist_test
    rng = np.random.default_rng(7)
    paths = []
    for index in range(200):
        large = Image.fromarray(images[index]).resize((196, 196), Image.Resampling.BICUBIC)
        canvas = Image.new("L", (320, 280))
        canvas.paste(
            large, (int(rng.choice([rng.integers(0, 25), rng.integers(100, 125)])), int(rng.integers(0, 85)))
        )
        if index % 2:
            canvas = ImageOps.invert(canvas)
        paths.append(tmp_path / f"canvas{index}.png")
        canvas.save(paths[-1])
    code, out, _ = cli(capsys, "predict", "--persistence", network, *paths)
    assert code == 0
    trained = load_network(network)
    originals = [classify(trained, images[index].reshape(-1)).digit for index in range(200)]
    same = sum(a == b for a, b in zip(answers(out), originals, strict=True))
    assert same >= 190, f"{same} of 200 read as their originals"


@pytest.mark.parametrize(
    "paint",
    [
        lambda: Image.new("L", (200, 200), 255),  # blank paper
        lambda: Image.new("RGB", (64, 64), (0, 0, 0)),  # blank black
        lambda: Image.fromarray(np.where(np.eye(64, dtype=bool), 235, 250).astype(np.uint8)),  # too faint
    ],
)
def test_an_image_without_ink_is_refused_in_one_line(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], paint
) -> None:
    paint().save(tmp_path / "blank.png")
    code, out, err = cli(capsys, "predict", "--persistence", network, tmp_path / "blank.png")
    assert code == 2 and out == ""
    assert "blank.png" in err and "no ink" in err and len(err.strip().splitlines()) == 1


def test_a_large_black_on_white_image_is_inverted_and_scaled_down(
    network: Path, mnist_test, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = mnist_test
    paper = Image.fromarray(255 - images[0]).resize((84, 84), Image.Resampling.NEAREST)
    paper.convert("RGB").save(tmp_path / "paper.png")
    code, out, _ = cli(capsys, "predict", "--persistence", network, tmp_path / "paper.png")
    assert code == 0
    assert answers(out) == [int(labels[0])]


def test_idx_samples_print_their_label_beside_the_answer(
    network: Path, mnist_dir: Path, mnist_test, capsys: pytest.CaptureFixture[str]
) -> None:
    _, labels = mnist_test
    code, out, _ = cli(capsys, "predict", "--persistence", network, "--idx", mnist_dir / TEST_IMAGES,
                       "--index", "1", "--index", "2")  # fmt: skip
    assert code == 0
    assert answers(out) == [int(labels[1]), int(labels[2])]
    assert f"label {labels[1]}" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: Image.new("L", (20, 28)).save(path), "20 × 28 pixels, too small"),
        (lambda path: path.write_text("not an image"), "not a readable image"),
        (lambda path: None, "image not found"),
    ],
)
def test_bad_images_are_one_line_errors(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:
    path = tmp_path / "digit.png"
    make(path)
    code, _, err = cli(capsys, "predict", "--persistence", network, path)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_thesis_network_answers_what_the_test_kernel_counts_as_correct(tmp_path: Path, mnist_test) -> None:
    images, _ = mnist_test
    layout = Layout.of(("Identity", 784), ("ELU", 100), ("SoftMax", 10))
    weights = Connectome.uniform(layout, -0.1, 0.1, seed=7).weights
    save_persistence(tmp_path / "thesis.npz", Persisted(layout, weights))
    network = load_network(tmp_path / "thesis.npz")
    pixels = images[:20].reshape(20, -1)
    neurons, bias, acts = kernels.network_arrays(Connectome(layout, weights))
    for row in range(20):
        digit = classify(network, pixels[row]).digit
        for label in range(10):
            targets = interpret_targets(
                Dataset(pixels[row : row + 1], np.array([[label]], np.uint8), "x"), 10
            )
            correct, _ = kernels.test_block(
                weights, neurons, bias, acts, pixels[row : row + 1], targets.labels, targets.direct,
                np.zeros(1, np.int64), 0, network.elu_alpha,
            )  # fmt: skip
            assert correct == (label == digit)


@pytest.mark.parametrize("kind", ["a FIFO", "a directory"])
def test_an_image_that_is_no_regular_file_is_refused_without_reading_it(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    image = tmp_path / "digit.png"
    os.mkfifo(image) if kind == "a FIFO" else image.mkdir()  # a FIFO: opening it would wait forever
    done = threading.Event()

    def unblock() -> None:  # should a read wait on the FIFO (the failure under test): an end of file
        while not done.wait(5.0):
            with contextlib.suppress(OSError):
                os.close(os.open(image, os.O_WRONLY | os.O_NONBLOCK))

    watcher = threading.Thread(target=unblock, daemon=True)
    watcher.start()
    try:
        code, out, err = cli(capsys, "predict", "--persistence", network, image)
    finally:
        done.set()
        watcher.join()
    assert code == 2 and out == ""
    assert err.strip() == f"error: {image}: image is {kind}, not a regular file"
