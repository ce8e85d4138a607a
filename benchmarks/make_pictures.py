"""Make the real-picture test set in ``benchmarks/pictures/``: digits as people type and write them, as files for
``predict`` (``benchmarks/pictures.py`` scores a release on them).

- ``typed/``: each digit in 14 fonts (sans, serif, mono, narrow, italic, regular to black weights, a calligraphic
  one), each drawn in three of five looks: black on white, coloured on tinted paper, white on dark, outlined
  (a light-coloured glyph in a dark or red outline), and photographed (tilted, unevenly lit, blurred, JPEG).
- ``handwritten/``: each digit drawn 36 times from stroke templates (two or three ways to write most digits: a 1
  with or without a flag, a 7 with or without a bar, an open or closed 4...) with random shape jitter, slant,
  rotation and pressure, in three pens (pencil, ballpoint, felt marker), each photographed one of six ways:
  clean scan, blurred, noisy, unevenly lit (a light gradient and a shadow), heavily JPEG-compressed, or all of
  these at once like a phone photo.

A file's name starts with its digit and ends with its look: ``typed/6-nimbus-sans-bold-outlined.png``,
``handwritten/4-marker-uneven-light-17.jpg``. The set is committed; this script makes it again, the same,
from its seed, given the fonts of Debian's ``fonts-dejavu-core fonts-liberation fonts-urw-base35`` packages:

    python benchmarks/make_pictures.py [--out benchmarks/pictures]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"),
             Path("/usr/share/fonts/opentype/urw-base35"))
FONTS = {  # name: file
    "dejavu-sans": "DejaVuSans.ttf", "dejavu-sans-bold": "DejaVuSans-Bold.ttf",
    "dejavu-serif": "DejaVuSerif.ttf", "dejavu-sans-mono-bold": "DejaVuSansMono-Bold.ttf",
    "dejavu-sans-oblique": "DejaVuSans-Oblique.ttf", "liberation-sans": "LiberationSans-Regular.ttf",
    "liberation-serif-bold": "LiberationSerif-Bold.ttf", "liberation-mono": "LiberationMono-Regular.ttf",
    "nimbus-sans-bold": "NimbusSans-Bold.otf", "nimbus-sans-narrow": "NimbusSansNarrow-Regular.otf",
    "century-schoolbook": "C059-Roman.otf", "palatino-italic": "P052-Italic.otf",
    "bookman-demi": "URWBookman-Demi.otf", "chancery": "Z003-MediumItalic.otf",
}
TYPED_LOOKS = ("white", "tinted", "dark", "outlined", "photo")
PENS = ("pencil", "ballpoint", "marker")
CONDITIONS = ("scan", "blur", "noise", "uneven-light", "jpeg", "phone")
HANDWRITTEN_PER_DIGIT = 36

# Strokes of each digit in a unit box (x right, y down); a stroke is drawn as a smooth curve through its points.
# Several ways to write most digits, as people do.
STROKES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(0.5, 0.04), (0.24, 0.15), (0.16, 0.5), (0.26, 0.86), (0.5, 0.96), (0.74, 0.85), (0.84, 0.5),
          (0.74, 0.14), (0.48, 0.05), (0.4, 0.1)]]],
    1: [[[(0.52, 0.04), (0.5, 0.96)]],
        [[(0.3, 0.24), (0.55, 0.04)], [(0.55, 0.04), (0.52, 0.96)]],
        [[(0.3, 0.22), (0.54, 0.04)], [(0.54, 0.04), (0.54, 0.95)], [(0.32, 0.95), (0.76, 0.95)]]],
    2: [[[(0.18, 0.25), (0.32, 0.08), (0.55, 0.04), (0.76, 0.16), (0.77, 0.38), (0.55, 0.62), (0.17, 0.94)],
         [(0.17, 0.94), (0.5, 0.93), (0.86, 0.94)]],
        [[(0.2, 0.22), (0.4, 0.05), (0.68, 0.07), (0.78, 0.28), (0.6, 0.55), (0.3, 0.8), (0.2, 0.93),
          (0.36, 0.86), (0.6, 0.88), (0.86, 0.95)]]],
    3: [[[(0.2, 0.14), (0.45, 0.04), (0.72, 0.1), (0.76, 0.3), (0.48, 0.47)],
         [(0.48, 0.47), (0.78, 0.6), (0.8, 0.82), (0.55, 0.96), (0.18, 0.88)]],
        [[(0.2, 0.06), (0.78, 0.06), (0.45, 0.42)], [(0.45, 0.42), (0.76, 0.56), (0.8, 0.8), (0.55, 0.96),
                                                     (0.2, 0.88)]]],
    4: [[[(0.62, 0.04), (0.14, 0.66)], [(0.14, 0.66), (0.88, 0.66)], [(0.66, 0.3), (0.66, 0.97)]],
        [[(0.22, 0.04), (0.18, 0.58)], [(0.18, 0.58), (0.84, 0.56)], [(0.68, 0.06), (0.66, 0.97)]]],
    5: [[[(0.76, 0.05), (0.3, 0.06)], [(0.3, 0.06), (0.25, 0.46)],
         [(0.25, 0.46), (0.52, 0.38), (0.76, 0.5), (0.8, 0.76), (0.55, 0.95), (0.18, 0.88)]],
        [[(0.3, 0.06), (0.25, 0.46)], [(0.25, 0.46), (0.52, 0.38), (0.76, 0.5), (0.8, 0.76), (0.55, 0.95),
                                       (0.18, 0.88)], [(0.3, 0.06), (0.8, 0.04)]]],
    6: [[[(0.72, 0.06), (0.45, 0.18), (0.26, 0.48), (0.26, 0.78), (0.46, 0.95), (0.7, 0.86), (0.76, 0.64),
          (0.55, 0.5), (0.28, 0.62)]]],
    7: [[[(0.16, 0.07), (0.84, 0.07)], [(0.84, 0.07), (0.6, 0.48), (0.42, 0.96)]],
        [[(0.16, 0.07), (0.84, 0.07)], [(0.84, 0.07), (0.6, 0.48), (0.42, 0.96)], [(0.34, 0.5), (0.78, 0.48)]]],
    8: [[[(0.52, 0.47), (0.26, 0.3), (0.3, 0.1), (0.5, 0.04), (0.7, 0.1), (0.72, 0.3), (0.5, 0.47),
          (0.24, 0.65), (0.25, 0.86), (0.5, 0.96), (0.76, 0.86), (0.76, 0.65), (0.52, 0.47)]]],
    9: [[[(0.74, 0.3), (0.58, 0.46), (0.34, 0.45), (0.24, 0.27), (0.35, 0.08), (0.6, 0.05), (0.74, 0.2),
          (0.74, 0.3)], [(0.74, 0.22), (0.72, 0.6), (0.62, 0.96)]],
        [[(0.74, 0.28), (0.56, 0.44), (0.32, 0.42), (0.26, 0.22), (0.42, 0.06), (0.66, 0.08), (0.74, 0.28)],
         [(0.74, 0.28), (0.74, 0.96)]]],
}


def catmull_rom(points: list[tuple[float, float]], steps: int = 24) -> np.ndarray:
    """A smooth curve through ``points`` (its ends repeated), as ``[M, 2]`` positions."""
    if len(points) == 2:
        t = np.linspace(0, 1, steps)[:, None]
        return np.asarray(points[0]) * (1 - t) + np.asarray(points[1]) * t
    p = np.asarray([points[0], *points, points[-1]], dtype=float)
    curve = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, steps, endpoint=False)[:, None]
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        curve.append(0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2
                            + (3 * b - a - 3 * c + d) * t ** 3))
    curve.append(p[-2][None])
    return np.concatenate(curve)


def smooth_noise(rng: random.Random, length: int, amount: float) -> np.ndarray:
    """A slowly varying factor around 1 along a stroke: the pen's pressure."""
    knots = np.asarray([1 + rng.uniform(-amount, amount) for _ in range(5)])
    return np.interp(np.linspace(0, 4, length), np.arange(5), knots)


def write_digit(digit: int, rng: random.Random, pen: str, size: int = 480) -> tuple[np.ndarray, tuple]:
    """A digit as ink coverage 0-1 on a ``size`` square (drawn 2x larger, then reduced), and the pen's colour."""
    style = rng.choice(STROKES[digit])
    slant, rotation = math.radians(rng.uniform(-22, 18)), math.radians(rng.uniform(-8, 8))
    aspect, height = rng.uniform(0.75, 1.15), rng.uniform(0.45, 0.7)
    jitter = 0.025
    width_share, colour = {"pencil": (rng.uniform(0.012, 0.022), (85, 85, 92)),
                           "ballpoint": (rng.uniform(0.022, 0.035), rng.choice([(25, 35, 120), (20, 20, 25)])),
                           "marker": (rng.uniform(0.05, 0.085), rng.choice([(15, 15, 15), (150, 20, 25)]))}[pen]
    big = 2 * size
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    centre = (rng.uniform(0.4, 0.6) * big, rng.uniform(0.42, 0.58) * big)
    cos, sin = math.cos(rotation), math.sin(rotation)
    for stroke in style:
        points = [(x + rng.gauss(0, jitter), y + rng.gauss(0, jitter)) for x, y in stroke]
        curve = catmull_rom(points)
        x = (curve[:, 0] - 0.5) * aspect - (curve[:, 1] - 0.5) * math.tan(slant)
        y = curve[:, 1] - 0.5
        x, y = x * cos - y * sin, x * sin + y * cos
        px, py = centre[0] + x * height * big, centre[1] + y * height * big
        radius = width_share * height * big / 2 * smooth_noise(rng, len(px), 0.25 if pen != "marker" else 0.08)
        for i in range(len(px)):
            draw.ellipse((px[i] - radius[i], py[i] - radius[i], px[i] + radius[i], py[i] + radius[i]), fill=255)
            if i:
                draw.line((px[i - 1], py[i - 1], px[i], py[i]), fill=255, width=max(1, round(2 * radius[i])))
    coverage = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=float) / 255
    if pen == "pencil":  # graphite leaves grainy, lighter ink
        grain = np.asarray([rng.uniform(0.55, 1.0) for _ in range(size * size)]).reshape(size, size)
        coverage *= np.asarray(Image.fromarray((grain * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(0.7)), dtype=float) / 255 * 1.1
    return coverage.clip(0, 1), colour


def lighting(rng: random.Random, size: tuple[int, int], shadow: bool) -> np.ndarray:
    """Light falling on the paper, 0-1: a gradient across it, and a soft shadow (of a hand or a phone)."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w] / max(w, h)
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 - rng.uniform(0.3, 0.5) * (0.5 + 0.5 * (np.cos(angle) * (xs - 0.5) + np.sin(angle) * (ys - 0.5)) * 2)
    if shadow:
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.3, 0.6)
        light *= 1 - rng.uniform(0.25, 0.4) / (1 + np.exp(((xs - cx) ** 2 + (ys - cy) ** 2 - r ** 2) * 40))
    return light.clip(0.2, 1)


def photograph(ink: np.ndarray, colour: tuple, paper: tuple, rng: random.Random, condition: str) -> Image.Image:
    """Ink coverage composed on paper, then what a scanner or a camera does to it; an RGB image."""
    h, w = ink.shape
    paper_rgb = np.asarray(paper, dtype=float)
    if condition in ("uneven-light", "phone"):
        paper_rgb = paper_rgb * rng.uniform(0.9, 1.0)
    rgb = paper_rgb * (1 - ink[..., None]) + np.asarray(colour, dtype=float) * ink[..., None]
    if condition in ("uneven-light", "phone"):
        rgb = rgb * lighting(rng, (w, h), shadow=True)[..., None]
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    if condition in ("blur", "phone"):
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0) if condition == "blur" else 1.2))
    if condition in ("noise", "phone"):
        sigma = rng.uniform(12, 25) if condition == "noise" else 8
        noise = np.asarray([rng.gauss(0, sigma) for _ in range(h * w)]).reshape(h, w, 1)
        image = Image.fromarray((np.asarray(image, dtype=float) + noise).clip(0, 255).astype(np.uint8))
    if condition in ("jpeg", "phone"):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(8, 20) if condition == "jpeg" else 60)
        image = Image.open(buffer).convert("RGB")
    return image


def handwritten(out: Path, rng: random.Random) -> int:
    count = 0
    for digit in range(10):
        for n in range(HANDWRITTEN_PER_DIGIT):
            pen, condition = PENS[n % 3], CONDITIONS[(n // 3) % 6]
            ink, colour = write_digit(digit, rng, pen, size=rng.choice([128, 160, 200]))
            paper = rng.choice([(250, 250, 248), (245, 240, 225), (235, 238, 240)])
            image = photograph(ink, colour, paper, rng, condition)
            image.save(out / f"{digit}-{pen}-{condition}-{n}.jpg", quality=85)
            count += 1
    return count


def font_path(file: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / file).exists():
            return folder / file
    raise SystemExit(f"font {file} is missing: apt-get install fonts-dejavu-core fonts-liberation fonts-urw-base35")


def type_digit(digit: int, font: ImageFont.FreeTypeFont, look: str, rng: random.Random) -> Image.Image:
    """A typed digit on a 200x200 label, in ``look``."""
    size = 200
    paper, ink, outline = {"white": ((255, 255, 255), (0, 0, 0), None),
                           "tinted": (rng.choice([(255, 243, 200), (214, 234, 248), (226, 245, 220)]),
                                      rng.choice([(30, 60, 140), (120, 30, 30), (40, 40, 40)]), None),
                           "dark": (rng.choice([(20, 20, 25), (30, 40, 70)]), (245, 245, 245), None),
                           "outlined": ((255, 255, 255), rng.choice([(255, 210, 0), (120, 220, 255)]),
                                        rng.choice([(0, 0, 0), (200, 0, 0)])),
                           "photo": ((240, 238, 230), (20, 20, 20), None)}[look]
    image = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(image)
    stroke = max(2, font.size // 22) if outline else 0
    draw.text((size / 2 + rng.uniform(-15, 15), size / 2 + rng.uniform(-10, 10)), str(digit), font=font,
              fill=ink, anchor="mm", stroke_width=stroke, stroke_fill=outline)
    if look == "photo":
        image = image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, fillcolor=paper)
        light = lighting(rng, image.size, shadow=False)[..., None]
        image = Image.fromarray((np.asarray(image, dtype=float) * light).astype(np.uint8))
        image = image.filter(ImageFilter.GaussianBlur(1.0))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=50)
        image = Image.open(buffer).convert("RGB")
    return image


def typed(out: Path, rng: random.Random) -> int:
    count = 0
    for f, (name, file) in enumerate(FONTS.items()):
        for digit in range(10):
            font = ImageFont.truetype(str(font_path(file)), rng.randint(100, 150))
            for k in range(3):
                look = TYPED_LOOKS[(f + digit + 2 * k) % len(TYPED_LOOKS)]
                image = type_digit(digit, font, look, rng)
                suffix = "jpg" if look == "photo" else "png"
                options = {"quality": 85} if suffix == "jpg" else {"optimize": True}
                image.save(out / f"{digit}-{name}-{look}.{suffix}", **options)
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "pictures")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    for kind, make in (("typed", typed), ("handwritten", handwritten)):
        folder = args.out / kind
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"{kind}: {make(folder, random.Random(f'{args.seed}-{kind}'))} files in {folder}")


if __name__ == "__main__":
    main()
