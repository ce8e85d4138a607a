"""Turning a real image (a photo, a scan, a drawing) into a 28x28 image the way the dataset's own were made.

The object, light on black, is cropped, scaled so its longer side is ``box`` pixels, and placed in 28x28: MNIST
digits fill a 20-pixel box with their centre of mass at the centre; Fashion-MNIST and KMNIST images fill the 28
pixels, centred as a box. A drawn digit (a stroke width given) is first found as ink (``strokes.digit_ink``);
anything else is its grayscale difference from the background.

It needs numpy, Pillow, SciPy and scikit-image, never torch: an ONNX export predicts with it alone.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..framework import UserError
from .strokes import MAX_SIDE, digit_ink


class ImageTooLargeError(UserError):
    """An image with more pixels than ``MAX_PIXELS``: refused before it is decoded."""


MAX_PIXELS = 50_000_000  # a few kilobytes of PNG can unpack to gigabytes; a 50-megapixel photo still passes


def open_image(source: Path | str | bytes, what: str | None = None, reduce_to: int | None = MAX_SIDE
               ) -> Image.Image:
    """Open an image file, or an image's bytes, fully, with a one-line ``UserError`` for anything that is not a
    readable image (``what`` names it in the message; default: the path, or "the image"). A JPEG larger than
    ``reduce_to`` pixels a side is decoded at a fraction of its size, no smaller (``None``: full size): a
    12-megapixel photo decodes several times faster, and preprocessing reduces it anyway."""
    what = what or ("the image" if isinstance(source, bytes) else str(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ImageTooLargeError(f"{what} has {image.width}x{image.height} pixels, more than "
                                        f"{MAX_PIXELS // 1_000_000} million, scale it down")
                if reduce_to is not None and min(image.size) > reduce_to:
                    image.draft(None, (reduce_to, reduce_to))
                image.load()
                return image.copy()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLargeError(f"{what} has more than {MAX_PIXELS // 1_000_000} million pixels, scale it down"
                            ) from None
    except FileNotFoundError:
        raise UserError(f"{what} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} is a directory, not an image") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        empty = len(source) == 0 if isinstance(source, bytes) else Path(source).is_file() and \
            Path(source).stat().st_size == 0
        reason = "empty file" if empty else type(error).__name__
        raise UserError(f"{what} is not an image PIL can read ({reason})") from None


def flatten(image: Image.Image, mode: str = "L") -> Image.Image:
    """``image`` in ``mode`` ("L" or "RGB"), transparency composed over white paper."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert(mode)


def to_grayscale(image: Image.Image) -> Image.Image:
    return flatten(image, "L")


def to_mnist(image: Image.Image, box: int = 20, centre: str = "mass", stroke_width: float | None = None
             ) -> np.ndarray:
    """A ``[28, 28]`` uint8 array: light object on black, longer side ``box`` pixels, centred by its centre of
    mass (``centre='mass'``, as MNIST) or by its bounding box (``'box'``).

    With ``stroke_width`` (a drawn dataset's pen, pixels of 28x28), the picture is read as a drawn digit: its ink
    found under uneven light, specks dropped, faint strokes kept (see ``strokes``). Without it, the object is its
    brightness difference from the background, as for Fashion-MNIST's photographed clothes.
    """
    if stroke_width:
        coverage = digit_ink(flatten(image, "L" if image.mode in ("L", "1", "I", "F") else "RGB"))
        if coverage is None:
            return np.zeros((28, 28), dtype=np.uint8)
        digit = place(coverage * 255, box, centre).astype(np.float32)
        # a thin pen's strokes turn grey when reduced to 28x28: MNIST's pen is full ink at its middle
        return np.round(digit * (255 / max(float(digit.max()), 1.0))).astype(np.uint8)
    gray = np.asarray(to_grayscale(image), dtype=np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:  # dark digit on light paper: MNIST is the other way round
        gray, background = 255 - gray, 255 - background
    ink = np.clip(gray - background, 0, None)
    if float(ink.max()) < 1:  # a blank image: nothing to centre
        return np.zeros((28, 28), dtype=np.uint8)
    return place(ink * (255 / float(ink.max())), box, centre)


def place(ink: np.ndarray, box: int, centre: str) -> np.ndarray:
    """Light-on-black ``ink`` (floats 0-255, any size) cropped to its object, scaled so its longer side is ``box``
    pixels, and placed in 28x28 by ``centre`` (see ``to_mnist``), as uint8."""
    rows = np.flatnonzero((ink > 0.2 * 255).any(axis=1))
    cols = np.flatnonzero((ink > 0.2 * 255).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = Image.fromarray(np.round(ink).astype(np.uint8))
    digit = np.asarray(digit.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    if centre == "mass":
        mass = float(digit.sum()) or 1.0
        centre_y = float((digit.sum(axis=1) * np.arange(size[1])).sum()) / mass
        centre_x = float((digit.sum(axis=0) * np.arange(size[0])).sum()) / mass
    else:
        centre_y, centre_x = size[1] / 2, size[0] / 2
    top = min(max(round(14 - centre_y), 0), 28 - size[1])
    left = min(max(round(14 - centre_x), 0), 28 - size[0])
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + size[1], left:left + size[0]] = digit
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def as_mnist_batch(images: list, box: int = 20, centre: str = "mass", stroke_width: float | None = None
                   ) -> np.ndarray:
    """Paths, bytes, PIL images or arrays (numpy or torch) to a ``[N, 28, 28]`` uint8 batch.

    An array that is already ``[28, 28]`` (or ``[1, 28, 28]``) uint8 is taken as a dataset image as it is;
    anything else goes through ``to_mnist(image, box, centre, stroke_width)`` (float arrays hold 0-1).
    """
    batch = []
    for item in images:
        if not isinstance(item, (Image.Image, str, Path, bytes)) and hasattr(item, "shape"):
            array = np.asarray(item.detach().cpu() if hasattr(item, "detach") else item)
            array = array[0] if array.ndim == 3 else array
            if array.shape == (28, 28) and array.dtype == np.uint8:
                batch.append(array)
                continue
            if np.issubdtype(array.dtype, np.floating):
                array = np.round(np.clip(array, 0, 1) * 255)
            item = Image.fromarray(array.astype(np.uint8))
        elif not isinstance(item, Image.Image):
            item = open_image(item)
        batch.append(to_mnist(ImageOps.exif_transpose(item) or item, box, centre, stroke_width))
    return np.stack(batch) if batch else np.zeros((0, 28, 28), dtype=np.uint8)
