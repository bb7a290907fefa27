"""``predict``: classify images of digits with a trained network (a persistence file).

An image becomes one MNIST sample the way the MNIST digits were made (LeCun et al.):
grayscale; white ink on black (a black-on-white image — paper, most drawing programs —
is recognised by its border: if the median pixel of the outermost ring is brighter
than mid-grey, the image is inverted; transparent pixels count as white paper); the
background level (that median) subtracted and the ink stretched to 0–255; cropped to
the bounding box of the ink (the pixels with at least half the strongest ink); scaled,
keeping its aspect ratio and anti-aliased (Lanczos), so that its longer side is 20
pixels; pasted into a black 28 × 28 field so that its centre of mass lies at the
field's centre (pixel 14, 14, where the MNIST digits have theirs).  An image whose ink
nowhere differs from the background by a tenth of the range is refused; so is one
smaller than 28 × 28.

The answer is the output neuron with the largest value, and that value — a
probability for a SoftMax output layer, as in the thesis' network — followed by the
runners-up (the top three).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.errors import DataError, UserError
from brain.hyper import Semantics
from brain.persistence import Persisted, load_persistence
from brain.user_files import open_input

SIDE = 28  # MNIST images are 28 × 28 pixels
FIELD = 20  # the box a digit was fitted into, keeping its aspect ratio
CENTRE = 14.0  # where MNIST digits have their centre of mass (row and column, pixel indices)
MIN_INK = 26  # a tenth of the range: less than that from the background is no ink
TOP = 3  # answers printed per image


@dataclass(frozen=True)
class Prediction:
    digit: int
    probability: float  # the winning output neuron's value
    outputs: np.ndarray

    def top(self, count: int = TOP) -> list[tuple[int, float]]:
        """The ``count`` digits with the largest outputs, largest first, with their values."""
        order = np.argsort(-self.outputs, kind="stable")[:count]
        return [(int(digit), float(self.outputs[digit])) for digit in order]


def load_network(path: Path) -> Persisted:
    """The trained network; it must take 784 inputs (28 × 28 pixels)."""
    network = load_persistence(path)
    inputs = network.layout.n_inputs
    if inputs != SIDE * SIDE:
        raise UserError(
            f"the network takes {inputs} inputs, an image has {SIDE * SIDE}",
            where=path,
            allowed="a network trained on MNIST (784 input neurons)",
        )
    return network


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as 784 uint8 pixels, prepared as MNIST prepared its digits (module docstring)."""
    from PIL import Image, UnidentifiedImageError

    try:  # looked at before it is read: a FIFO would block, a device never end
        with open_input(path, "image") as file, Image.open(file) as opened:
            image = _on_white(opened)
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(
            f"not a readable image: {error}",
            where=path,
            allowed="PNG, JPEG, BMP, GIF, … (anything Pillow opens)",
        ) from None
    width, height = image.size
    if width < SIDE or height < SIDE:
        raise UserError(
            f"the image is {width} × {height} pixels, too small",
            where=path,
            allowed=f"{SIDE} × {SIDE} pixels or larger",
        )
    ink = _ink(np.asarray(image, dtype=np.uint8))
    if ink.max() < MIN_INK:
        raise UserError(
            f"the image has no ink: no pixel differs from its background by a tenth of the range "
            f"({MIN_INK} of 255)",
            where=path,
            allowed="a digit drawn darker or lighter than its background",
        )
    return mnist_sample(ink).reshape(-1)


def _on_white(image):
    """Grayscale, transparent pixels composited onto white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def _ink(pixels: np.ndarray) -> np.ndarray:
    """How far each pixel is from the background, as light ink on black (int, 0–255)."""
    ring = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = int(np.median(ring))
    if background > 127:
        return np.clip(background - pixels.astype(np.int64), 0, 255)
    return np.clip(pixels.astype(np.int64) - background, 0, 255)


def mnist_sample(ink: np.ndarray) -> np.ndarray:
    """28 × 28 uint8 from light ink on black: cropped to the ink, fitted into 20 × 20, centred by mass."""
    from PIL import Image

    peak = int(ink.max())
    rows = np.flatnonzero((2 * ink >= peak).any(axis=1))
    columns = np.flatnonzero((2 * ink >= peak).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    crop = np.round(crop * (255 / peak)).astype(np.uint8)
    height, width = crop.shape
    scale = FIELD / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = Image.fromarray(crop, mode="L").resize(size, Image.Resampling.LANCZOS)
    mass = np.asarray(digit, dtype=np.float64)
    centre_row = mass.sum(axis=1) @ np.arange(mass.shape[0]) / mass.sum()
    centre_column = mass.sum(axis=0) @ np.arange(mass.shape[1]) / mass.sum()
    field = Image.new("L", (SIDE, SIDE))
    field.paste(digit, (round(CENTRE - centre_column), round(CENTRE - centre_row)))  # clipped at the edges
    return np.asarray(field, dtype=np.uint8)


def read_idx_samples(path: Path, indices: list[int]) -> list[tuple[int, np.ndarray, int | None]]:
    """(index, 784 pixels, label or None) of each sample; the label from the matching labels file if any."""
    from brain.data import default_labels_path, read_idx
    from brain.data.idx import IMAGES_MAGIC, LABELS_MAGIC

    images = read_idx(path, IMAGES_MAGIC)
    if images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"the IDX images are {images.shape[1:]} pixels, not {SIDE} × {SIDE}", where=path)
    labels = None
    try:
        labels_path = default_labels_path(path)
        if labels_path.exists():
            labels = read_idx(labels_path, LABELS_MAGIC)
    except DataError:
        labels = None  # a name off the MNIST convention: classify without the known label
    samples = []
    for index in indices:
        if index >= len(images):
            raise UserError(
                f"--index {index} is past the last sample", where=path, allowed=f"0 … {len(images) - 1}"
            )
        label = None if labels is None or index >= len(labels) else int(labels[index])
        samples.append((index, images[index].reshape(-1), label))
    return samples


def classify(network: Persisted, pixels: np.ndarray) -> Prediction:
    """Run one sample through ``network`` with the math it was trained with."""
    outputs = _outputs(network, pixels)
    digit = int(np.argmax(outputs))
    return Prediction(digit, float(outputs[digit]), outputs)


def _outputs(network: Persisted, pixels: np.ndarray) -> np.ndarray:
    if network.semantics == Semantics.MODERN.recorded:
        from brain.modern import Modern
        from brain.modern.forward import forward, matrices
        from brain.modern.inputs import gather_inputs

        hyper = Modern(preprocessing=network.preprocessing, elu_alpha=network.elu_alpha)
        x = gather_inputs(pixels.reshape(1, -1), np.zeros(1, np.int64), network.preprocessing, np.float64)
        return forward(matrices(network.weights, network.layout), network.layout, x, hyper)[-1][0]
    from brain.connectome import Connectome
    from brain.hyper import Hyper
    from brain.reference import forward

    hyper = Hyper(preprocessing=network.preprocessing, elu_alpha=network.elu_alpha)
    values = forward(Connectome(network.layout, np.asarray(network.weights, np.float64)), pixels, hyper)
    return values[-1][: network.layout.layers[-1].neurons]


def describe(name: str, prediction: Prediction) -> str:
    """``name: 7 (0.981), 9 (0.012), 2 (0.004)`` — the answer first, then the runners-up."""
    return f"{name}: " + ", ".join(f"{digit} ({value:.3f})" for digit, value in prediction.top())
