"""Reading digits in real pictures (``strokes.py``): ink under uneven light, specks, faint strokes, low
resolution, and the dataset's pen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold
from skimage.morphology import skeletonize

from mnist_classifier.inference import images as preparation
from mnist_classifier.inference import strokes
from mnist_classifier.inference.strokes import (
    channel_inks,
    dataset_stroke_width,
    detail_size,
    digit_mask,
    hollow_fill,
    ink_map,
    native_size,
    outlined_fill,
)

WIDTH = 2.76  # MNIST's, as its releases carry it


def to_mnist(*args, **kwargs) -> torch.Tensor:
    """``preparation.to_mnist`` (a numpy array) as a tensor, as these tests compare them."""
    return torch.from_numpy(preparation.to_mnist(*args, **kwargs))


def ring(width: int, size: int = 200, ink=(20, 20, 20), paper=(250, 250, 250),
         box: tuple[int, int, int, int] = (60, 30, 140, 170)) -> Image.Image:
    """A 0: an ellipse in ``box`` drawn with a pen ``width`` pixels wide."""
    image = Image.new("RGB", (size, size), paper)
    ImageDraw.Draw(image).ellipse(box, outline=ink, width=width)
    return image


def closest(a: torch.Tensor, b: torch.Tensor) -> float:
    """The mean difference of two 28x28 inputs, ``b`` moved by up to a pixel to match ``a``: centring by the
    centre of mass rounds to whole pixels, and a thin ring moved by one differs everywhere."""
    return min(float((a.float() - torch.roll(b.float(), (dy, dx), (0, 1))).abs().mean())
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def width_of(image: torch.Tensor) -> float:
    return dataset_stroke_width(image[None])


def test_the_dataset_width_is_measured_in_pixels_of_28x28() -> None:
    """Rings (closed strokes: no ends, whose caps area over skeleton length would count) 2 and 4 pixels wide."""
    images = []
    for pen in (2, 4):
        image = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(image).ellipse((3, 3, 24, 24), outline=255, width=pen)
        images.append(torch.from_numpy(np.asarray(image).copy()))
    assert width_of(images[0]) == pytest.approx(2, rel=0.2) and width_of(images[1]) == pytest.approx(4, rel=0.2)
    assert dataset_stroke_width(torch.stack(images + [images[1]])) == pytest.approx(4, rel=0.2), "the median"


@pytest.mark.parametrize("pen", [3, 12, 30])
def test_a_pen_keeps_its_own_strokes_and_holes_stay_open(pen: int) -> None:
    """Nothing is redrawn, so nothing takes a new shape: a thin, a medium and a bold pen keep their order of
    widths, the 0 keeps its hole, and the strokes are full ink however thin (MNIST's contrast)."""
    digit = to_mnist(ring(pen), stroke_width=WIDTH)
    assert digit[13:15, 13:15].max() < 60, "the hole of the 0 stays open"
    assert holes(digit) == 1
    assert int(digit.max()) == 255
    if pen == 30:
        widths = [width_of(to_mnist(ring(p), stroke_width=WIDTH)) for p in (3, 12, 30)]
        assert widths == sorted(widths) and widths[2] > 2 * widths[0], widths


def test_faint_strokes_stay_strokes() -> None:
    """The left half of a 0 drawn in a faint grey (a pencil's light side): its grey is kept, as the pen's, so
    the 0 stays closed, and its faint half is ink the model sees, not paper."""
    image = Image.new("L", (200, 200), 250)
    draw = ImageDraw.Draw(image)
    draw.arc((60, 30, 140, 170), 90, 270, fill=180, width=6)  # 70 grey levels below the paper
    draw.arc((60, 30, 140, 170), 270, 90, fill=20, width=6)
    digit = to_mnist(image, stroke_width=WIDTH)
    assert holes(digit, level=16) == 1, "the faint half closes the 0"
    left, right = digit[:, :14].float(), digit[:, 14:].float()
    assert left.max() > 64 and left.sum() > 0.2 * right.sum(), "the faint half is ink"


def optdigit(image: Image.Image) -> Image.Image:
    """As UCI's digits were made: a 32x32 binary scan counted in 4x4 blocks, 0-16, as an 8x8 picture."""
    binary = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR)) < 128
    counts = binary.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    return Image.fromarray((255 - counts * 255 // 16).astype(np.uint8))


def test_a_low_resolution_digit_is_read_at_its_own_resolution() -> None:
    """An 8x8 digit, as it is or blown up blockily or smoothly, is the same smooth digit to the model: blocks
    are not strokes, and a picture is as detailed as its detail. It is enlarged as a whole, never skeletonised,
    so its 0 keeps its hole."""
    small = optdigit(ring(10).crop((50, 20, 150, 180)))
    assert native_size(small.resize((64, 64), Image.Resampling.NEAREST)).size == (8, 8)
    assert native_size(ring(6)).size == (200, 200), "a picture that was not blown up stays as it is"
    assert detail_size(small.resize((96, 96), Image.Resampling.BICUBIC)).size[0] <= 32, "smooth: its detail's"
    assert detail_size(ring(6)).size == (200, 200), "a drawing's edges are detail"
    as_is = to_mnist(small, stroke_width=WIDTH).float()
    blocky = to_mnist(small.resize((128, 128), Image.Resampling.NEAREST), stroke_width=WIDTH).float()
    assert (as_is - blocky).abs().mean() < 4
    assert holes(to_mnist(small, stroke_width=WIDTH)) == 1
    for side in (64, 160):  # enlarged smoothly, the digit filling the picture to its edges, as UCI's do
        smooth = to_mnist(small.resize((side, side), Image.Resampling.BICUBIC), stroke_width=WIDTH)
        assert holes(smooth) == 1 and closest(smooth, as_is.to(torch.uint8)) < 12, f"{side} pixels"


def test_uneven_light_and_coloured_ink_are_ink_and_shadows_are_not() -> None:
    image = np.asarray(ring(6, ink=(30, 40, 140)), dtype=np.float32)
    ys, xs = np.mgrid[0:200, 0:200]
    shadow = 1 / (1 + np.exp((np.hypot(xs - 40, ys - 160) - 60) / 6))  # a soft-edged shadow, as a hand casts
    light = np.clip(1 - 0.5 * xs / 200 - 0.3 * shadow, 0.2, 1)
    shaded = Image.fromarray((image * light[..., None]).astype(np.uint8))
    ink = ink_map(shaded, window=30)  # five stroke widths, as the second look at a picture uses
    stroke = np.asarray(ring(6, ink=(0, 0, 0), paper=(255, 255, 255)).convert("L")) < 128
    paper = ~ndimage.binary_dilation(stroke, iterations=3)  # beyond the strokes' blurred edges
    assert ink[stroke].mean() > 0.5 and np.percentile(ink[paper], 99) < 0.15, "the shadow is paper"
    difference = closest(to_mnist(shaded, stroke_width=WIDTH), to_mnist(ring(6), stroke_width=WIDTH))
    assert difference < 8, "the model sees the digit as if it were evenly lit"
    yellow = Image.new("RGB", (100, 100), (255, 255, 255))
    ImageDraw.Draw(yellow).rectangle((40, 20, 60, 80), fill=(255, 220, 0))
    assert ink_map(yellow)[50, 50] > 0.9, "a yellow glyph absorbs blue light: ink, though nearly as bright"


def test_a_pencil_line_beside_a_soft_shadow_is_the_digit_and_the_shadow_is_not() -> None:
    """A phone's shadow has an edge softer than a pen's stroke: seen over a third of the picture, its crescent
    holds more ink than a thin pencil 1 beside it. Looked at again over half that window, the strokes are thin,
    and the paper then follows the shadow."""
    image = Image.new("RGB", (160, 160), (245, 242, 235))
    ImageDraw.Draw(image).line((70, 25, 62, 135), fill=(110, 110, 115), width=2)
    ys, xs = np.mgrid[0:160, 0:160] / 160
    shadow = 0.35 / (1 + np.exp(((xs - 0.3) ** 2 + (ys - 0.5) ** 2 - 0.5 ** 2) * 40))  # make_pictures' hand
    light = np.clip((1 - 0.4 * xs) * (1 - shadow), 0.2, 1)
    shaded = Image.fromarray((np.asarray(image, dtype=np.float32) * light[..., None]).astype(np.uint8))
    ink = strokes.digit_ink(shaded.filter(ImageFilter.GaussianBlur(0.6)))
    assert ink is not None and ink.shape[0] > 4 * ink.shape[1], f"the 1 alone, not the crescent: {ink.shape}"


def test_specks_and_noise_are_dropped() -> None:
    rng = np.random.default_rng(0)
    clean = np.asarray(ring(6).convert("L"), dtype=np.float32)
    noisy = clean + rng.normal(0, 25, clean.shape)
    for y, x in rng.integers(5, 195, (12, 2)):  # dirt: small dots around the digit
        if not 20 < y < 180 or not 50 < x < 150:
            noisy[y:y + 3, x:x + 3] = 30
    picture = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    mask = digit_mask(ink_map(picture))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert (rows[0], cols[0]) >= (25, 55) and (rows[-1], cols[-1]) <= (175, 145), "only the digit is left"
    assert closest(to_mnist(picture, stroke_width=WIDTH), to_mnist(ring(6), stroke_width=WIDTH)) < 8


def test_a_thin_one_stays_thin_and_a_blank_page_blank() -> None:
    one = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(one).line((100, 20, 100, 180), fill=0, width=5)
    digit = to_mnist(one, stroke_width=WIDTH)
    cols = torch.nonzero(digit.max(0).values > 64).flatten()
    rows = torch.nonzero(digit.max(1).values > 64).flatten()
    assert int(rows[-1] - rows[0]) + 1 >= 19 and int(cols[-1] - cols[0]) + 1 <= 4, "the aspect ratio is kept"
    assert to_mnist(Image.new("RGB", (80, 60), (240, 235, 220)), stroke_width=WIDTH).sum() == 0


def test_a_dataset_like_pen_keeps_its_own_ink() -> None:
    """Strokes already as wide as the dataset's are not redrawn: the picture's own shading is kept."""
    digit = torch.zeros(28, 28, dtype=torch.uint8)
    digit[4:24, 13:16] = torch.tensor([120, 255, 120], dtype=torch.uint8)  # a 1 with soft edges, MNIST-like
    again = to_mnist(Image.fromarray(digit.numpy()), stroke_width=WIDTH)
    assert (again.float() - digit.float()).abs().mean() < 6


def outlined_c(fill: tuple[int, int, int], line: tuple[int, int, int]) -> Image.Image:
    """A bold C in a 12-pixel line, its mouth 20 pixels wide: the line closes the C into an O."""
    y, x = np.mgrid[:200, :200]
    radius = np.hypot(y - 100, x - 100)
    shape = (radius > 36) & (radius < 60) & ~((x > 100) & (np.abs(y - 100) < 10))
    around = ndimage.binary_dilation(shape, iterations=12) & ~shape
    pixels = np.full((200, 200, 3), 255, np.uint8)
    pixels[shape], pixels[around] = fill, line
    return Image.fromarray(pixels)


def holes(digit: torch.Tensor, level: int = 96) -> int:
    """Paper enclosed by the digit's ink (pixels above ``level``) in a 28x28 input."""
    return ndimage.label(~np.pad(digit.numpy() > level, 1))[1] - 1


@pytest.mark.parametrize("fill", [(255, 210, 0), (120, 220, 255)])
def test_outlined_lettering_is_read_by_its_fill(fill: tuple[int, int, int]) -> None:
    """A light glyph in a dark line: the line joins what the letterform keeps apart, so the fill is read."""
    picture = outlined_c(fill, (0, 0, 0))
    assert holes(to_mnist(picture.convert("L").point(lambda v: 0 if v < 250 else 255))) == 1, "solid: an O"
    assert holes(to_mnist(picture, stroke_width=WIDTH)) == 0, "read by its fill: a C"
    solid = outlined_c((0, 0, 0), (0, 0, 0))
    assert outlined_fill(channel_inks(solid), digit_mask(ink_map(solid))) is None, "one colour: no outline"
    blurred = solid.filter(ImageFilter.GaussianBlur(3))
    assert outlined_fill(channel_inks(blurred), digit_mask(ink_map(blurred))) is None, "a blurred edge is lighter"


def hollow(shape: np.ndarray, line: int = 5) -> tuple[Image.Image, Image.Image]:
    """``shape`` (a 200x200 mask) as hollow lettering (its outline, ``line`` pixels, alone) and as solid."""
    outline = ndimage.binary_dilation(shape, iterations=line) & ~shape
    hollow_picture, solid = np.full((200, 200), 250, np.uint8), np.full((200, 200), 250, np.uint8)
    hollow_picture[outline], solid[outline | shape] = 20, 20
    return Image.fromarray(hollow_picture), Image.fromarray(solid)


def drawn(draw_on) -> np.ndarray:
    image = Image.new("L", (200, 200), 0)
    draw_on(ImageDraw.Draw(image))
    return np.asarray(image) > 0


SEVEN = drawn(lambda d: d.line([(55, 40), (145, 40), (85, 170)], fill=255, width=22))  # a bold 7
ZERO = drawn(lambda d: d.ellipse((50, 25, 150, 175), outline=255, width=22))  # a bold 0: a ring


def flagged_one(stem: int, flag: int) -> np.ndarray:
    """A typed 1: a stem ``stem`` pixels wide, and a flag as thick reaching ``flag`` pixels left and down."""
    top = 30 + stem // 2
    return drawn(lambda d: (d.line([(100, top), (100, 175)], fill=255, width=stem),
                            d.line([(100, top), (100 - flag, top + flag)], fill=255, width=stem)))


@pytest.mark.parametrize("shape, line, bowls", [
    (SEVEN, 5, 0),
    (ZERO, 5, 1),
    (flagged_one(16, 12), 5, 0),  # a bold 1, a short flag: its inside fills 77% of its convex hull
    (flagged_one(22, 34), 5, 0),  # bolder: its inside is 5.4 times longer than wide
    # a light 1: the paper inside 0.7 times as wide as the outline
    (drawn(lambda d: d.line([(70, 60), (100, 30), (100, 170)], fill=255, width=10)), 12, 0),
])
def test_hollow_lettering_is_filled_in(shape: np.ndarray, line: int, bowls: int) -> None:
    """The outline of a bold 7, 0 or 1, the glyph paper inside, is read as the solid glyph: the paper it
    encloses in the shape of a stroke is filled, the bowl of the 0 is not (a written digit's bowl fills 87% of
    its hull or more). A hollow 1 is the least bent hollow glyph, a straight stroke and a flag: short and nearly
    convex when the 1 is bold, narrower than the outline when it is light; its outline alone looks like a 0 or
    an 8."""
    hollow_picture, solid = hollow(shape, line)
    assert holes(to_mnist(hollow_picture, stroke_width=WIDTH)) == bowls
    assert closest(to_mnist(hollow_picture, stroke_width=WIDTH), to_mnist(solid, stroke_width=WIDTH)) < 12


@pytest.mark.parametrize("pen, box", [(8, (85, 20, 115, 180)), (20, (70, 20, 130, 180)), (3, (60, 30, 140, 170))])
def test_a_narrow_or_thin_written_zero_keeps_its_hole(pen: int, box: tuple[int, int, int, int]) -> None:
    """A 0 written narrow, or thin, encloses paper long and thin like a stroke, but a round bowl: never filled.
    Nor is a written 4's closed triangle."""
    assert holes(to_mnist(ring(pen, box=box), stroke_width=WIDTH)) == 1
    four = drawn(lambda d: d.line([(130, 175), (130, 25), (50, 130), (160, 130)], fill=255, width=pen))
    assert hollow_fill(four) is None and hollow_fill(drawn(lambda d: d.ellipse(box, outline=255, width=pen))) is None


def test_the_percentile_from_counts_is_numpys() -> None:
    """``detail_size`` counts the differences instead of sorting them, and decides as ``np.percentile`` does,
    also where the 99th percentile falls between the values either side of the limit."""
    rng = np.random.default_rng(0)
    for trial in range(300):
        counts = rng.integers(0, 40, 256) * (rng.random(256) < 0.3)
        counts[:12] += rng.integers(0, 3000)  # most pixels barely change
        if trial % 2:  # as many above the limit as the 99th percentile allows, give or take a few
            counts[12:] = 0
            above = max(0, round((0.01 * counts.sum() + 1) / 0.99) + int(rng.integers(-3, 4)))
            first, second = rng.integers(12, 256, 2)
            counts[first] += above // 2
            counts[second] += above - above // 2
        values = np.repeat(np.arange(256, dtype=np.float32), counts)
        if values.size:
            assert strokes.percentile_below(counts, 99, 12) == (np.percentile(values, 99) < 12), counts


def test_the_shortcuts_change_no_pixel() -> None:
    """Blurring once for both windows, a grey picture's channels once, hysteresis and skeletons within the
    digit's box: the same numbers as the plain computation."""
    rng = np.random.default_rng(1)
    shade = rng.uniform(0.8, 1, (200, 200, 1))  # uneven paper
    colour = Image.fromarray((np.asarray(ring(6, ink=(30, 90, 160))) * shade).astype(np.uint8))
    for picture in (colour, colour.convert("L").convert("RGB"), colour.convert("L")):
        pixels = np.atleast_3d(np.asarray(picture, dtype=np.float32) / 255)
        for window in (None, 30):
            plain = np.stack([1 - ndimage.gaussian_filter(channel, 0.8) / np.maximum(ndimage.grey_closing(
                ndimage.gaussian_filter(channel, 1.6), size=(window or 66,) * 2, mode="nearest"), 0.02)
                for channel in np.moveaxis(pixels, 2, 0)], axis=2).clip(0, 1)
            inks = channel_inks(picture, window)
            assert np.array_equal(inks, plain) and np.array_equal(ink_map(picture, window), plain.max(axis=2))
    ink = ndimage.gaussian_filter(rng.random((120, 90)), 2)
    groups, count = ndimage.label(ink > 0.5)
    assert np.array_equal(strokes.touching(groups, count, ink > 0.55), apply_hysteresis_threshold(ink, 0.5, 0.55))
    mask = np.asarray(ring(6).convert("L")) < 128
    assert strokes.stroke_width(mask) == mask.sum() / skeletonize(mask).sum()
