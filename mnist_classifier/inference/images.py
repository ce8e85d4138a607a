"""Turning a real image (a photo, a scan, a drawing) into a 28x28 image the way the dataset's own were made.

The object, light on black, is cropped, scaled so its longer side is ``box`` pixels, and placed in 28x28: MNIST
digits fill a 20-pixel box with their centre of mass at the centre; Fashion-MNIST and KMNIST images fill the 28
pixels, centred as a box. A drawn digit (a stroke width given) is first found as ink (``strokes.digit_ink``);
anything else is its grayscale difference from the background.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
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
             ) -> torch.Tensor:
    """A ``[28, 28]`` uint8 tensor: light object on black, longer side ``box`` pixels, centred by its centre of
    mass (``centre='mass'``, as MNIST) or by its bounding box (``'box'``).

    With ``stroke_width`` (a drawn dataset's pen, pixels of 28x28), the picture is read as a drawn digit: its ink
    found under uneven light, specks dropped, faint strokes kept (see ``strokes``). Without it, the object is its
    brightness difference from the background, as for Fashion-MNIST's photographed clothes.
    """
    if stroke_width:
        coverage = digit_ink(flatten(image, "L" if image.mode in ("L", "1", "I", "F") else "RGB"))
        if coverage is None:
            return torch.zeros(28, 28, dtype=torch.uint8)
        digit = place(torch.from_numpy(coverage * 255), box, centre).float()
        # a thin pen's strokes turn grey when reduced to 28x28: MNIST's pen is full ink at its middle
        return (digit * (255 / max(float(digit.max()), 1.0))).round().to(torch.uint8)
    gray = torch.frombuffer(bytearray(to_grayscale(image).tobytes()), dtype=torch.uint8)
    gray = gray.view(image.size[1], image.size[0]).float()
    border = torch.cat([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(border.median())
    if background > 127:  # dark digit on light paper: MNIST is the other way round
        gray, background = 255 - gray, 255 - background
    ink = (gray - background).clamp(min=0)
    if float(ink.max()) < 1:  # a blank image: nothing to centre
        return torch.zeros(28, 28, dtype=torch.uint8)
    return place(ink * (255 / float(ink.max())), box, centre)


def place(ink: torch.Tensor, box: int, centre: str) -> torch.Tensor:
    """Light-on-black ``ink`` (floats 0-255, any size) cropped to its object, scaled so its longer side is ``box``
    pixels, and placed in 28x28 by ``centre`` (see ``to_mnist``)."""
    rows = torch.nonzero((ink > 0.2 * 255).any(1)).flatten()
    cols = torch.nonzero((ink > 0.2 * 255).any(0)).flatten()
    ink = ink[int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = Image.frombytes("L", (width, height), ink.round().to(torch.uint8).numpy().tobytes())
    digit = torch.frombuffer(bytearray(digit.resize(size, Image.Resampling.LANCZOS).tobytes()), dtype=torch.uint8)
    digit = digit.view(size[1], size[0]).float()
    if centre == "mass":
        ys, xs = torch.meshgrid(torch.arange(size[1]), torch.arange(size[0]), indexing="ij")
        mass = float(digit.sum()) or 1.0
        centre_y, centre_x = float((digit * ys).sum()) / mass, float((digit * xs).sum()) / mass
    else:
        centre_y, centre_x = size[1] / 2, size[0] / 2
    top = min(max(round(14 - centre_y), 0), 28 - size[1])
    left = min(max(round(14 - centre_x), 0), 28 - size[0])
    canvas = torch.zeros(28, 28)
    canvas[top:top + size[1], left:left + size[0]] = digit
    return canvas.round().clamp(0, 255).to(torch.uint8)


def as_mnist_batch(images: list, box: int = 20, centre: str = "mass", stroke_width: float | None = None
                   ) -> torch.Tensor:
    """Paths, PIL images or tensors to a ``[N, 28, 28]`` uint8 batch.

    A tensor that is already ``[28, 28]`` (or ``[1, 28, 28]``) uint8 is taken as a dataset image as it is;
    anything else goes through ``to_mnist(image, box, centre, stroke_width)``.
    """
    batch = []
    for item in images:
        if isinstance(item, torch.Tensor):
            tensor = item.squeeze(0) if item.dim() == 3 else item
            if tensor.shape == (28, 28) and tensor.dtype == torch.uint8:
                batch.append(tensor.cpu())
                continue
            if tensor.is_floating_point():
                tensor = (tensor.clamp(0, 1) * 255).round()
            item = Image.fromarray(tensor.to(torch.uint8).cpu().numpy())
        elif not isinstance(item, Image.Image):
            item = open_image(item)
        batch.append(to_mnist(ImageOps.exif_transpose(item) or item, box, centre, stroke_width))
    return torch.stack(batch) if batch else torch.zeros(0, 28, 28, dtype=torch.uint8)
