"""Font digits written on paper, photographed and prepared as ``predict`` prepares a picture (config
``data.typed_digits.photographed``).

A photo's preparation (``strokes.digit_ink``) keeps what it can tell from the paper: under blur, noise, JPEG and
uneven light a hairline may fade into the paper while a thick stroke stays. Digits rendered cleanly never show a
model what the preparation leaves of a photographed one; these do, since they go through the code that prepares
``predict``'s pictures, so training sees such inputs as they will be. The camera is this module's own: ink and paper
of several colours, a turn, uneven light and a shadow, blur, noise and JPEG, each drawn per picture (the benchmark's
photos, ``benchmarks/make_pictures.py``, are made by other code with other ranges).
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageFont

from ..inference.images import to_mnist
from ..inference.strokes import MNIST_STROKE_WIDTH
from .typed_digits import each_digit, each_not_digit, glyph_ink, slant, variant

TRIES = 4  # photos drawn for a digit before its clean variant stands in (the preparation found nothing in them)


def draw(path: Path, name: str, count: int, seed: int) -> np.ndarray | None:
    """Each digit of the font file at ``path`` photographed ``count`` times and prepared, as ``[10 * count, 28,
    28]`` uint8, digit by digit; ``None`` if the font cannot be opened or draws no digits (as ``typed_digits.draw``,
    from a generator seeded by ``seed`` and ``name`` of its own)."""
    return each_digit(path, count, random.Random(f"{seed}-{name}-photographed"), prepared)


def draw_not_digits(path: Path, name: str, count: int, seed: int) -> np.ndarray | None:
    """``count`` glyphs of no digit of the font file at ``path`` (``typed_digits.NOT_DIGITS``) photographed and
    prepared, as ``[count, 28, 28]`` uint8, so that the model learns what the preparation makes of a photo of a
    letter too, not only of a digit (config ``data.typed_digits.photographed_not_digits``); ``None`` if the font
    has none of them."""
    return each_not_digit(path, count, random.Random(f"{seed}-{name}-photographed-not-digits"), prepared)


def prepared(path: Path, text: str, rng: random.Random) -> np.ndarray:
    """``text`` photographed (``photograph``) and brought to 28x28 as ``predict`` brings a picture; a photo in
    which the preparation finds no digit is taken again, up to ``TRIES`` times, then the clean variant stands in."""
    for _ in range(TRIES):
        image = to_mnist(photograph(path, text, rng), stroke_width=MNIST_STROKE_WIDTH)
        if image.any():
            return image
    return variant(path, text, rng)


def photograph(path: Path, text: str, rng: random.Random) -> Image.Image:
    """``text`` in the font at ``path`` written on paper (a size of 40-160 pixels, a slant, a turn, a margin) and
    photographed: each of uneven light with a shadow, blur, noise and JPEG happens to about half the pictures."""
    size = rng.randint(40, 160)
    stroke = round(rng.uniform(0.02, 0.05) * size) if rng.random() < 1 / 4 else 0
    ink = slant(glyph_ink(ImageFont.truetype(str(path), size), text, stroke), rng.uniform(-12, 12)) / 255
    margin = round(size * rng.uniform(0.2, 0.6))
    coverage = Image.fromarray(np.pad(ink * 255, margin).astype(np.uint8))
    coverage = np.asarray(coverage.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC), np.float32) / 255
    paper = np.array([rng.uniform(215, 255) for _ in range(3)], np.float32)
    pen = rng.choice([(25, 25, 30), (30, 40, 130), (95, 95, 100), (150, 25, 30), (40, 90, 50)])
    pen = np.array(pen, np.float32) * rng.uniform(0.6, 1.2)
    strength = rng.uniform(0.55, 1.0)  # faint pens and pencils leave less than full ink
    rgb = paper * (1 - strength * coverage[..., None]) + pen * strength * coverage[..., None]
    generator = np.random.default_rng(rng.getrandbits(32))
    if rng.random() < 0.5:
        rgb *= light(coverage.shape, rng)[..., None]
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2) * max(1.0, size / 60)))
    if rng.random() < 0.5:
        noisy = np.asarray(image, np.float32) + generator.normal(0, rng.uniform(4, 22), (*coverage.shape, 1))
        image = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(10, 70))
        image = Image.open(buffer).convert("RGB")
    return image


def light(shape: tuple[int, int], rng: random.Random) -> np.ndarray:
    """How much light falls on each pixel, 0.3-1: a gradient one way across the paper, and now and then the soft
    edge of a shadow."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * math.pi)
    along = math.cos(angle) * (xs - 0.5) + math.sin(angle) * (ys - 0.5)
    falling = 1 - rng.uniform(0.1, 0.5) * (0.5 + along)
    if rng.random() < 0.4:
        edge = rng.uniform(-0.4, 0.4)
        across = -math.sin(angle) * (xs - 0.5) + math.cos(angle) * (ys - 0.5)
        falling *= 1 - rng.uniform(0.2, 0.45) / (1 + np.exp((across - edge) * rng.uniform(15, 60)))
    return np.clip(falling, 0.3, 1).astype(np.float32)
