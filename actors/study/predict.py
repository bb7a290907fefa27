"""``predict``: classify images of digits with a trained network (a persistence file).

An image becomes one MNIST sample: grayscale, 28 × 28, a white digit on black,
pixel values 0–255.  A larger image is padded to a square with its background and
scaled down (Lanczos); a smaller one is refused.  A black-on-white image — paper,
most drawing programs — is recognised by its border: if the median pixel of the
outermost ring is brighter than mid-grey, the image is inverted first.  Transparent
pixels count as white paper.

The answer is the output neuron with the largest value, and that value: a
probability for a SoftMax output layer, as in the thesis' network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.errors import DataError, UserError
from brain.persistence import Persisted, load_persistence

SIDE = 28  # MNIST images are 28 × 28 pixels


@dataclass(frozen=True)
class Prediction:
    digit: int
    probability: float  # the winning output neuron's value
    outputs: np.ndarray


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
    """The image at ``path`` as 784 uint8 pixels, MNIST's way round (see the module's docstring)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = _on_white(opened)
    except FileNotFoundError:
        raise UserError("image not found", where=path) from None
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
            allowed=f"{SIDE} × {SIDE} pixels or larger (scaled down)",
        )
    pixels = np.asarray(image, dtype=np.uint8)
    if _is_dark_on_light(pixels):
        pixels = 255 - pixels
    return _to_mnist_size(pixels).reshape(-1)


def _on_white(image):
    """Grayscale, transparent pixels composited onto white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def _is_dark_on_light(pixels: np.ndarray) -> bool:
    ring = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(ring)) > 127


def _to_mnist_size(pixels: np.ndarray) -> np.ndarray:
    """Pad to a square with black (the background, after any inversion) and scale to 28 × 28."""
    from PIL import Image

    height, width = pixels.shape
    if (height, width) == (SIDE, SIDE):
        return pixels
    side = max(height, width)
    square = np.zeros((side, side), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = pixels
    scaled = Image.fromarray(square, mode="L").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.asarray(scaled, dtype=np.uint8)


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
    if network.semantics == "modern":
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
    return f"{name}: {prediction.digit} (probability {prediction.probability:.3f})"
