"""Finding a written or typed digit in a picture, and redrawing it with the dataset's own stroke width.

A photo is not a dataset image: its light is uneven, its paper tinted, its ink any colour, its strokes as thin as
a pencil's or as bold as a marker's, with specks of dirt and noise around. ``digit_strokes`` turns it into what
the dataset's images were made from, a digit drawn with a pen of one width:

1. **Ink, not brightness.** The paper's own brightness is estimated at each point by a grey closing (a running
   maximum then minimum over a window wider than any stroke) of a blurred copy, per colour channel, and ink is
   the share of light the ink absorbs there, in its most absorbing channel: shadows and gradients cancel out,
   and a yellow glyph on white paper is as much ink as a black one. Light ink on dark paper is inverted first.
   Once the strokes are found, the window shrinks to five stroke widths, to follow a shadow's edge.
2. **The digit, not the noise.** Otsu's threshold, kept above the paper's own noise, with hysteresis (faint
   ink joined to strong ink counts); pieces of ink grouped when they nearly touch are kept when they hold at
   least a tenth of the largest group's ink, so specks and dirt go. Outlined lettering (a light glyph in a
   darker line) is read by its fill: the line makes the glyph so bold that a 6's hook joins its bowl.
3. **The dataset's pen.** A digit whose strokes are far from the dataset's width (measured on its training
   images, ``dataset_stroke_width``) has its skeleton redrawn with a pen that wide, so a bold font keeps the
   holes of its 6, 8 and 9 and a pencil line is as heavy as MNIST's; one already close keeps its own ink. The
   aspect ratio is kept, so a 1 stays thin.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import skeletonize

WORK_SCALE = 4  # strokes are found and redrawn at this many times the dataset's resolution
MAX_SIDE = 512  # pictures are reduced to this longer side first: a digit needs no more, and it keeps work fast
MIN_CONTRAST = 0.04  # less ink than this anywhere: a blank picture
LIKE_DATASET = (0.67, 1.5)  # strokes this many times the dataset's width are not redrawn
OUTLINE_CONTRAST = 0.3  # an edge this much inkier than the inside, in some channel, is an outline


def reduce(image: Image.Image) -> Image.Image:
    """``image`` with its longer side at most ``MAX_SIDE``."""
    if max(image.size) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BOX)


def channel_inks(image: Image.Image, window: int | None = None) -> np.ndarray:
    """Ink coverage 0-1 of each pixel of an RGB or L image in each colour channel, ``[H, W, channels]`` (see
    step 1 above). The paper is estimated over ``window`` pixels (default: a third of the shorter side), which
    must be wider than the strokes."""
    pixels = np.asarray(image, dtype=np.float32) / 255
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    light = channels.mean(axis=2)
    border = np.concatenate([light[0], light[-1], light[:, 0], light[:, -1]])
    if np.median(border) < 0.5:  # light ink on dark paper: make it dark on light
        channels = 1 - channels
    height, width = light.shape
    window = window or max(3, min(height, width) // 3)
    noise = min(max(0.3, min(height, width) / 250), 2.0)  # blurs pixel noise, not strokes
    inks = []
    for channel in np.moveaxis(channels, 2, 0):
        # the paper's brightness from a blurred copy: a running maximum of raw noise would overestimate it
        paper = ndimage.grey_closing(ndimage.gaussian_filter(channel, 2 * noise), size=(window, window),
                                     mode="nearest")
        inks.append(1 - ndimage.gaussian_filter(channel, noise) / np.maximum(paper, 0.02))
    return np.stack(inks, axis=2).clip(0, 1)


def ink_map(image: Image.Image, window: int | None = None) -> np.ndarray:
    """Ink coverage 0-1 of each pixel: the light absorbed in its most absorbing channel (``channel_inks``)."""
    return channel_inks(image, window).max(axis=2)


def digit_mask(ink: np.ndarray) -> np.ndarray | None:
    """The digit's pixels (step 2 above), or ``None`` for a blank picture."""
    if float(ink.max()) < MIN_CONTRAST:
        return None
    paper = float(np.median(ink))
    spread = 1.4826 * float(np.median(np.abs(ink - paper)))  # the paper's noise, robustly
    high = max(threshold_otsu(ink), paper + 6 * spread, MIN_CONTRAST)
    # faint ink counts where it joins strong ink (a pencil line's light parts), noise does not
    mask = apply_hysteresis_threshold(ink, max(high / 2, paper + 3 * spread), high)
    reach = max(1, round(min(ink.shape) / 40))  # pieces this close belong together (a broken pencil line)
    groups, count = ndimage.label(ndimage.binary_dilation(mask, iterations=reach), structure=np.ones((3, 3)))
    if count > 1:
        sizes = ndimage.sum(mask, groups, index=np.arange(1, count + 1))
        keep = np.flatnonzero(sizes >= 0.1 * sizes.max()) + 1
        mask &= np.isin(groups, keep)
    return mask if mask.any() else None


def outlined_fill(inks: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """The fill of outlined lettering (a light glyph inside a darker line), or ``None`` for any other digit.
    The line makes the glyph bolder than its letterform, so bold that a 6's hook touches its bowl; its fill is
    the letterform. It is recognised by colour: the digit's edge absorbs more light, in some channel, than its
    inside does (blur and anti-aliasing make an edge lighter, never darker)."""
    inner = ndimage.binary_erosion(mask, iterations=max(1, round(stroke_width(mask) / 6)))
    if inner.sum() < 0.2 * mask.sum():  # thin strokes: no room for a line and a fill
        return None
    edge_colour, inside_colour = np.median(inks[mask & ~inner], axis=0), np.median(inks[inner], axis=0)
    if float((edge_colour - inside_colour).max()) < OUTLINE_CONTRAST:
        return None
    fill = mask & (((inks - inside_colour) ** 2).sum(axis=2) < ((inks - edge_colour) ** 2).sum(axis=2))
    fill = ndimage.binary_opening(fill)  # the line's anti-aliased edges
    return fill if fill.sum() >= 0.2 * mask.sum() else None


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of a drawing's strokes, in pixels: its area over the length of its skeleton."""
    length = int(skeletonize(mask).sum())
    return float(mask.sum()) / max(length, 1)


def dataset_stroke_width(images: torch.Tensor, sample: int = 2000, seed: int = 0) -> float:
    """The median stroke width of a dataset's ``[N, 28, 28]`` uint8 images, in pixels of 28x28, measured as
    pictures are (at ``WORK_SCALE``, ink over half the brightest pixel) on a seeded sample of them."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:sample]
    widths = []
    for image in images[order]:
        large = Image.fromarray(image.numpy()).resize((28 * WORK_SCALE,) * 2, Image.Resampling.BILINEAR)
        if (width := measured_width(np.asarray(large, dtype=np.float32))) > 0:
            widths.append(width)
    return float(np.median(widths)) if widths else 0.0


def measured_width(large: np.ndarray) -> float:
    """The stroke width of an image at ``WORK_SCALE``, in pixels at 1x: of its ink over half its brightest."""
    return stroke_width(large > 0.5 * large.max()) / WORK_SCALE if large.max() > 0 else 0.0


def redraw(skeleton: np.ndarray, width: float) -> np.ndarray:
    """A pen of ``width`` pixels drawn along ``skeleton``: coverage 0-1 with a one-pixel soft edge."""
    pad = int(np.ceil(width / 2)) + 2
    skeleton = np.pad(skeleton, pad)
    distance = ndimage.distance_transform_edt(~skeleton)
    return (width / 2 + 0.5 - distance).clip(0, 1).astype(np.float32)


def digit_strokes(image: Image.Image, box: int, width: float) -> np.ndarray | None:
    """The digit in ``image`` (RGB or L) as ink coverage 0-1, cropped, for a digit whose longer side will be
    ``box`` pixels, at ``WORK_SCALE`` times that size, with strokes ``width`` pixels wide at that size (redrawn
    unless they are already close, see ``LIKE_DATASET``); ``None`` for a blank picture."""
    image = reduce(image)
    inks = channel_inks(image)
    mask = digit_mask(inks.max(axis=2))
    if mask is None:
        return None
    # again with the paper estimated over a few stroke widths: it then follows shadows closely
    window = max(5, round(5 * stroke_width(mask)))
    if window < min(mask.shape) // 3:
        inks = channel_inks(image, window)
        mask = digit_mask(inks.max(axis=2))
        if mask is None:
            return None
    ink = inks.max(axis=2)
    if (fill := outlined_fill(inks, mask)) is not None:
        ink, mask = fill.astype(np.float32), digit_mask(fill.astype(np.float32))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    soft = ink[crop] * ndimage.binary_dilation(mask, iterations=2)[crop]  # the digit's ink, specks dropped
    mask = mask[crop]
    work = box * WORK_SCALE
    scale = work / max(mask.shape)
    size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)
    mask = np.asarray(resized) >= 128
    if not mask.any():
        return None
    like_dataset = LIKE_DATASET[0] <= stroke_width(mask) / WORK_SCALE / width <= LIKE_DATASET[1]
    if like_dataset or not 0 < width < box / 4:
        # a pen like the dataset's already: its own ink, with its shading, reads better than any redrawing
        # (and a "pen" a quarter of the digit wide, measured on images that are not strokes, draws no digit)
        soft = Image.fromarray(soft / max(float(soft.max()), 1e-6)).resize(size, Image.Resampling.BILINEAR)
        return np.asarray(soft, np.float32).clip(0, 1)
    skeleton = skeletonize(mask)
    extent = max(np.ptp(np.flatnonzero(skeleton.any(1))), np.ptp(np.flatnonzero(skeleton.any(0)))) + 1
    # drawn with this pen, the digit's extent becomes extent + pen, which is scaled back to `work`
    pen = width * WORK_SCALE * extent / max(work - width * WORK_SCALE, 1.0)
    drawing = redraw(skeleton, pen)
    # measured as the dataset's images are (at their resolution, soft edges and all), correct the pen once
    small = Image.fromarray(drawing * 255).resize((max(1, drawing.shape[1] // WORK_SCALE),
                                                    max(1, drawing.shape[0] // WORK_SCALE)), Image.Resampling.BOX)
    seen = measured_width(np.asarray(small.resize(drawing.shape[::-1], Image.Resampling.BILINEAR), np.float32))
    return redraw(skeleton, pen * width / seen) if seen > 0 else drawing
