"""How ``predict`` reads the digits 0–9 rendered from fonts: a figure for the README, not a test.

    python -m actors.study.font_check --persistence NET.npz [--font FILE.ttf]…

Each digit is drawn black on white into a 200 × 200 image, from each font, at a few
sizes (the height of the digit's box) and positions (centred, near the top-left
corner, near the bottom-right corner), saved as PNG and read back exactly as
``predict`` reads an image (``read_image``, ``classify``).  Prints one Markdown row per
font and size: how many of the 10 digits are read right at each position, and the
misreadings (``4→9``: a 4 read as 9).  Without ``--font`` it uses Pillow's own font
and the DejaVu fonts found under ``/usr/share/fonts``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from actors.study.predict import classify, load_network, read_image

CANVAS = 200
SIZES = (40, 100, 160)  # pixels: a small, a middling and a page-filling digit
POSITIONS = ("centre", "top-left", "bottom-right")
MARGIN = 10  # pixels between a corner and the digit placed near it
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")


def render(digit: int, font, position: str) -> object:
    """A white 200 × 200 Pillow image with ``digit`` in black at ``position``."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    width, height = right - left, bottom - top
    x, y = {
        "centre": ((CANVAS - width) // 2, (CANVAS - height) // 2),
        "top-left": (MARGIN, MARGIN),
        "bottom-right": (CANVAS - MARGIN - width, CANVAS - MARGIN - height),
    }[position]
    draw.text((x - left, y - top), str(digit), font=font, fill=0)
    return image


def fonts(files: Sequence[Path]) -> list[tuple[str, Callable[[int], object]]]:
    """(name, size → font) for each file, or Pillow's own font and the DejaVu fonts present."""
    from PIL import ImageFont

    if files:
        return [(file.stem, lambda size, file=file: ImageFont.truetype(str(file), size)) for file in files]
    found: list[tuple[str, Callable[[int], object]]] = [("Pillow default", _default_font)]
    for name in FONTS:
        if (DEJAVU / name).exists():
            found.append(
                (Path(name).stem, lambda size, path=DEJAVU / name: ImageFont.truetype(str(path), size))
            )
    return found


def _default_font(size: int) -> object:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fitting(make: Callable[[int], object], height: int) -> object:
    """The font at the size whose digits' box is ``height`` pixels high (the tallest of 0–9)."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    size = height
    for _ in range(5):  # converges in two or three steps: glyph height is nearly proportional to size
        font = make(size)
        tallest = max(
            box[3] - box[1] for box in (draw.textbbox((0, 0), str(d), font=font) for d in range(10))
        )
        size = max(1, round(size * height / tallest))
    return make(size)


def check(persistence: Path, files: Sequence[Path] = ()) -> list[str]:
    """The Markdown table (lines) of digits read right, per font, size and position."""
    network = load_network(persistence)
    lines = [
        "| font | digit height | " + " | ".join(POSITIONS) + " | misread |",
        "|---|---|" + "---|" * len(POSITIONS) + "---|",
    ]
    total = right = 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digit.png"
        for name, make in fonts(files):
            for height in SIZES:
                font = _fitting(make, height)
                counts, wrong = [], []
                for position in POSITIONS:
                    read = []
                    for digit in range(10):
                        render(digit, font, position).save(path)
                        read.append(classify(network, read_image(path)).digit)
                    counts.append(sum(answer == digit for digit, answer in enumerate(read)))
                    wrong += [f"{digit}→{answer}" for digit, answer in enumerate(read) if answer != digit]
                total += 10 * len(POSITIONS)
                right += sum(counts)
                misread = ", ".join(sorted(set(wrong), key=wrong.index)) or "—"
                lines.append(
                    f"| {name} | {height} px | " + " | ".join(f"{c}/10" for c in counts) + f" | {misread} |"
                )
    lines.append(f"| all | | {right} of {total} read right ({100 * right / total:.0f} %) | | | |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.study.font_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--persistence", type=Path, required=True, help="a trained network (.npz)")
    parser.add_argument(
        "--font", type=Path, action="append", default=[], help="a TrueType font file (repeatable)"
    )
    args = parser.parse_args(argv)
    for line in check(args.persistence, args.font):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
