"""Finding a written or typed digit in a picture, as the ink a dataset image is made of.

A photo is not a dataset image: its light is uneven, its paper tinted, its ink any colour, with specks of dirt and
noise around, and it may be a few pixels a digit. ``digit_ink`` turns it into what MNIST's images were made
from, the digit's ink on nothing, keeping every grey level of the pen; it never redraws a stroke, so no digit
takes a new shape:

1. **Its own resolution.** A picture enlarged by repeating pixels (a small scan blown up blockily) is taken back
   to the size it had, and one enlarged smoothly to the size that holds its detail; a picture under
   ``SMALL_SIDE`` pixels is enlarged smoothly, and its paper is its border's.
2. **Ink, not brightness.** In a larger picture the paper's own brightness is estimated at each point by a grey
   closing (a running maximum then minimum over a window wider than any stroke) of a blurred copy, per colour
   channel, and ink is the share of light the ink absorbs there, in its most absorbing channel: shadows and
   gradients cancel out, and a yellow glyph on white paper is as much ink as a black one. Light ink on dark
   paper is inverted first. Once the strokes are found, the window shrinks to five stroke widths, to follow a
   shadow's edge; strokes too thick for that are looked at again over half the window, and when they are then
   thin, the first look took a soft shadow's edge for ink (a pencil line beside a phone's shadow). The printed
   lines of ruled or squared notebook paper are taken out of each look's ink (``ruling``).
3. **The digit, not the noise.** Otsu's threshold, kept above the paper's own noise, with hysteresis; pieces of
   ink grouped when they nearly touch are kept when they hold at least a tenth of the largest group's ink, so
   specks and dirt go. Faint ink that touches the digit stays (a pencil's light parts close a 6's loop).
   Outlined lettering (a light glyph in a darker line) is read by its fill: the line makes the glyph so bold
   that a 6's hook joins its bowl. Hollow lettering (the line alone, the glyph paper inside) is filled in: the
   paper it encloses in the shape of a stroke is the glyph, so a hollow 1 is not read as a thin 0 or an 8.
   A form's printed box around the digit is dropped (``ruling.without_frames``).
4. **MNIST's contrast.** The paper's noise is taken off and the ink stretched so that the digit's strong strokes
   are full ink, as in MNIST, however faint the pen.

``dataset_stroke_width`` measures a dataset's pen (MNIST's: 2.78 pixels of 28x28), recorded in ``data.json``
and releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageChops
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import convex_hull_image, skeletonize

from .ruling import Ruling, find_ruling, without_frames, without_ruling

if TYPE_CHECKING:
    import torch

WORK_SCALE = 4  # dataset images are measured at this many times their resolution
MNIST_STROKE_WIDTH = 2.76  # dataset_stroke_width of MNIST's training images: older experiments' and releases'
MAX_SIDE = 512  # pictures are reduced to this longer side first: a digit needs no more, and it keeps work fast
SMALL_SIDE = 48  # a picture with a shorter side is enlarged, and its paper taken from its border
SMALL_TARGET = 96  # ...to about this longer side
DETAIL_SIDES = (8, 12, 16, 24, 32)  # a picture whose detail fits in this many pixels a side is that small
DETAIL_LOSS = 12  # grey levels that reducing a picture to its detail's size may change (in 99% of its pixels)
MIN_CONTRAST = 0.04  # less ink than this anywhere: a blank picture
OUTLINE_CONTRAST = 0.3  # an edge this much inkier than the inside, in some channel, is an outline
STRONG_INK = 90  # the percentile of the digit's ink that becomes full ink
FAINT_INK = 0.15  # ink this share of the strong ink, or less, is paper (what is left of a shadow, a smudge)
HOLLOW_SOLIDITY = 0.8  # enclosed paper filling less of its convex hull than this is shaped like a stroke...
HOLLOW_LENGTH = 5  # ...when also this many times longer than wide, and no wider than a quarter of the digit...
HOLLOW_WIDTH = 0.6  # ...nor narrower than this share of the line (light lettering: outlines thicker than inside)


def reduce(image: Image.Image) -> Image.Image:
    """``image`` with its longer side at most ``MAX_SIDE``."""
    if max(image.size) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BOX)


def blurred_channels(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The colour channels of an RGB or L image, 0-1, dark ink on light paper, ``[channels, H, W]``, blurred to
    hide pixel noise (``fine``) and twice as much (``coarse``, for the paper's brightness): a picture is looked
    at with two windows, and the blurs are the same for both. A grey picture's channels are blurred once, and
    share their memory (a stride of 0)."""
    pixels = np.asarray(image, dtype=np.float32) / 255
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    border = np.concatenate([channels[0], channels[-1], channels[:, 0], channels[:, -1]]).mean(axis=1)
    if np.median(border) < 0.5:  # light ink on dark paper: make it dark on light
        channels = 1 - channels
    channels = np.moveaxis(channels, 2, 0)
    grey = all(np.array_equal(channels[0], channel) for channel in channels[1:])
    noise = min(max(0.3, min(channels.shape[1:]) / 250), 2.0)  # blurs pixel noise, not strokes
    fine, coarse = ([ndimage.gaussian_filter(channel, sigma) for channel in (channels[:1] if grey else channels)]
                    for sigma in (noise, 2 * noise))
    return np.broadcast_to(fine, channels.shape), np.broadcast_to(coarse, channels.shape)


def paper_inks(fine: np.ndarray, coarse: np.ndarray, window: int | None = None) -> np.ndarray:
    """``channel_inks`` from ``blurred_channels``' ``fine`` and ``coarse`` channels."""
    window = window or max(3, min(fine.shape[1:]) // 3)
    distinct = 1 if fine.strides[0] == coarse.strides[0] == 0 else len(fine)  # a grey picture's channels are one
    inks = []
    for light, blurred in zip(fine[:distinct], coarse[:distinct], strict=True):
        # the paper's brightness from a blurred copy: a running maximum of raw noise would overestimate it
        paper = ndimage.grey_closing(blurred, size=(window, window), mode="nearest")
        inks.append(1 - light / np.maximum(paper, 0.02))
    inks *= len(fine) // len(inks)  # a grey picture's one channel, as many times as it has
    return np.stack(inks, axis=2).clip(0, 1)


def channel_inks(image: Image.Image, window: int | None = None) -> np.ndarray:
    """Ink coverage 0-1 of each pixel of an RGB or L image in each colour channel, ``[H, W, channels]`` (see
    step 1 above). The paper is estimated over ``window`` pixels (default: a third of the shorter side), which
    must be wider than the strokes."""
    return paper_inks(*blurred_channels(image), window)


def ink_map(image: Image.Image, window: int | None = None) -> np.ndarray:
    """Ink coverage 0-1 of each pixel: the light absorbed in its most absorbing channel (``channel_inks``)."""
    return most_ink(channel_inks(image, window))


def most_ink(inks: np.ndarray) -> np.ndarray:
    """Each pixel's ink in its most absorbing channel, of ``[H, W, channels]`` inks: ``inks.max(axis=2)``, a
    channel at a time, many times faster (numpy reduces a short last axis slowly)."""
    most = inks[..., 0].copy()
    for channel in range(1, inks.shape[2]):
        np.maximum(most, inks[..., channel], out=most)
    return most


def paper_level(ink: np.ndarray) -> tuple[float, float]:
    """The paper's ink, robustly (the median), and its noise (the median absolute deviation from it)."""
    paper = float(np.median(ink))
    return paper, float(np.median(np.abs(ink - paper)))


def digit_mask(ink: np.ndarray, level: tuple[float, float] | None = None) -> np.ndarray | None:
    """The digit's pixels (step 2 above), or ``None`` for a blank picture; ``level`` is ``paper_level(ink)``
    where the caller has it already."""
    if float(ink.max()) < MIN_CONTRAST:
        return None
    paper, deviation = paper_level(ink) if level is None else level
    spread = 1.4826 * deviation  # the paper's noise as a standard deviation
    high = max(threshold_otsu(ink), paper + 6 * spread, MIN_CONTRAST)
    # faint ink counts where it joins strong ink (a pencil line's light parts), noise does not
    low = min(max(high / 2, paper + 3 * spread), high)
    groups, count = ndimage.label(ink > low)
    mask = touching(groups, count, ink > high)
    if not mask.any():
        return None
    reach = max(1, round(min(ink.shape) / 40))  # pieces this close belong together (a broken pencil line)
    near = around(mask, reach)  # as far as they reach
    groups, count = ndimage.label(ndimage.binary_dilation(mask[near], iterations=reach), structure=np.ones((3, 3)))
    if count > 1:
        sizes = np.bincount(groups[mask[near]], minlength=count + 1)
        mask[near] &= (sizes >= 0.1 * sizes.max())[groups]  # the groups kept, looked up by label
    mask = without_frames(mask)
    return mask if mask.any() else None


def touching(groups: np.ndarray, count: int, seeds: np.ndarray) -> np.ndarray:
    """The pixels of the groups (``ndimage.label``'s ``groups``, ``count`` of them) that hold a ``seeds`` pixel."""
    hit = np.zeros(count + 1, dtype=bool)
    hit[groups[seeds]] = True
    hit[0] = False  # not a group: what is between them
    return hit[groups]


def around(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The rows and columns that hold ``mask``'s pixels, and ``margin`` more on each side within the picture:
    morphology on the mask, reaching at most ``margin`` pixels, need not look at the rest of a large picture."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return slice(0, 0), slice(0, 0)
    return (slice(max(int(rows[0]) - margin, 0), int(rows[-1]) + margin + 1),
            slice(max(int(cols[0]) - margin, 0), int(cols[-1]) + margin + 1))


def outlined_fill(inks: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """The fill of outlined lettering (a light glyph inside a darker line), or ``None`` for any other digit.
    The line makes the glyph bolder than its letterform, so bold that a 6's hook touches its bowl; its fill is
    the letterform. It is recognised by colour: the digit's edge absorbs more light, in some channel, than its
    inside does (blur and anti-aliasing make an edge lighter, never darker)."""
    whole, digit = np.zeros_like(mask), around(mask, 1)  # erosion and opening never leave the digit's box
    inks, mask = inks[digit], mask[digit]
    inner = ndimage.binary_erosion(mask, iterations=max(1, round(stroke_width(mask) / 6)))
    if inner.sum() < 0.2 * mask.sum():  # thin strokes: no room for a line and a fill
        return None
    edge_colour, inside_colour = np.median(inks[mask & ~inner], axis=0), np.median(inks[inner], axis=0)
    if float((edge_colour - inside_colour).max()) < OUTLINE_CONTRAST:
        return None
    fill = mask & (((inks - inside_colour) ** 2).sum(axis=2) < ((inks - edge_colour) ** 2).sum(axis=2))
    fill = ndimage.binary_opening(fill)  # the line's anti-aliased edges
    if fill.sum() < 0.2 * mask.sum():
        return None
    whole[digit] = fill
    return whole


def hollow_fill(mask: np.ndarray) -> np.ndarray | None:
    """The paper inside hollow lettering (a glyph drawn as its outline alone), or ``None`` for any other digit.
    The outline encloses the glyph's strokes: paper in the shape of a stroke, long, thin, about as wide all along
    and bent or branched, so that it fills little of its convex hull. The paper a written 0, 4, 6, 8 or 9
    encloses is a round or pointed bowl, which fills most of its hull (0.87-0.95 for those a looser rule filled
    on the tuning pictures, against 0.17-0.77 for the hollow strokes this one fills there, a bold 1 with a short
    flag among the fullest), and is never filled."""
    box = around(mask, 1)
    digit = mask[box]
    holes, count = ndimage.label(ndimage.binary_fill_holes(digit) & ~digit)
    if not count:
        return None
    line, side = stroke_width(digit), max(digit.shape)
    fill = np.zeros_like(digit)
    for index, where in enumerate(ndimage.find_objects(holes), start=1):
        hole = np.pad(holes[where] == index, 1)  # paper around it, for the distance transform
        area = int(hole.sum())
        if area < HOLLOW_LENGTH * line * line:  # less paper than a stroke as wide as the line and as long
            continue
        length = int(skeletonize(hole).sum())
        width = area / max(length, 1)  # its mean width, as ``stroke_width``'s
        widest = 2 * float(ndimage.distance_transform_edt(hole).max())
        if (HOLLOW_WIDTH * line <= width <= side / 4 and length >= HOLLOW_LENGTH * width and width >= widest / 2
                and area < HOLLOW_SOLIDITY * convex_area(hole)):
            fill[where] |= hole[1:-1, 1:-1]
    if not fill.any():
        return None
    whole = np.zeros_like(mask)
    whole[box] = fill
    return whole


def convex_area(region: np.ndarray) -> int:
    """The pixels of ``region``'s convex hull."""
    return int(convex_hull_image(region).sum())


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of a drawing's strokes, in pixels: its area over the length of its skeleton."""
    length = int(skeletonize(mask[around(mask, 1)]).sum())  # thinning never leaves the drawing's box
    return float(mask.sum()) / max(length, 1)


def dataset_stroke_width(images: torch.Tensor, sample: int = 2000, seed: int = 0) -> float:
    """The median stroke width of a dataset's ``[N, 28, 28]`` uint8 images, in pixels of 28x28, measured as
    pictures are (at ``WORK_SCALE``, ink over half the brightest pixel) on a seeded sample of them."""
    import torch  # training measures it; predicting never does

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


def native_size(image: Image.Image) -> Image.Image:
    """``image`` at the size it had before it was enlarged by repeating each pixel k times (k from 2 to 32, the
    blocks equal within JPEG-like noise), or as it is."""
    pixels = np.asarray(image, dtype=np.int16)
    height, width = pixels.shape[:2]
    for k in (32, 24, 16, 12, 10, 8, 6, 5, 4, 3, 2):
        if height % k or width % k or min(height, width) // k < 5:
            continue
        blocks = pixels.reshape(height // k, k, width // k, k, -1)
        small = blocks[:, k // 2:k // 2 + 1, :, k // 2:k // 2 + 1]  # each block's middle pixel
        middle = len(blocks) // 2  # the row of blocks across the middle first: a photo fails there at once
        if np.abs(blocks[middle] - small[middle]).max() > 24 or np.abs(blocks - small).max() > 24:
            continue
        return image.resize((width // k, height // k), Image.Resampling.NEAREST)
    return image


def border_ink(image: Image.Image) -> np.ndarray:
    """Ink coverage 0-1 of a small picture: the light each pixel absorbs against the paper of its border (the
    median per channel), in its most absorbing channel; light ink on dark paper is inverted first."""
    pixels = np.asarray(image, dtype=np.float32) / 255
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    edge = np.concatenate([channels[0], channels[-1], channels[:, 0], channels[:, -1]])
    if np.median(edge.mean(axis=1)) < 0.5:
        channels, edge = 1 - channels, 1 - edge
    paper = np.median(edge, axis=0)
    return most_ink((1 - channels / np.maximum(paper, 0.02)).clip(0, 1))


def stretch(ink: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """``ink`` scaled so that its ``STRONG_INK``-th percentile over the ``strong`` pixels is full ink."""
    values = ink[strong]
    top = float(np.percentile(values, STRONG_INK)) if values.size else 0.0
    return (ink / max(top, 1e-3)).clip(0, 1).astype(np.float32)


def detail_size(image: Image.Image) -> Image.Image:
    """``image`` at the smallest of ``DETAIL_SIDES`` pixels a side that holds all its detail, or as it is: a
    small scan enlarged smoothly, reduced to that side and enlarged back, differs from itself by less than
    ``DETAIL_LOSS`` grey levels in 99% of its pixels; a photo or a drawing loses its edges. The sides are tried
    from the largest down: what one cannot hold, fewer pixels hold no better, and most pictures are not small
    scans, so one try tells."""
    smallest = image
    for side in reversed(DETAIL_SIDES):
        if max(image.size) < 2 * side:
            continue
        scale = side / max(image.size)
        small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BOX)
        again = small.resize(image.size, Image.Resampling.BICUBIC)
        # how many pixels (of all channels) differ by each number of grey levels: sorting them took long
        counts = np.asarray(ImageChops.difference(again, image).histogram()).reshape(-1, 256).sum(axis=0)
        if not percentile_below(counts, 99, DETAIL_LOSS):
            break
        smallest = small
    return smallest


def percentile_below(counts: np.ndarray, q: float, limit: int) -> bool:
    """Whether ``np.percentile(values, q) < limit`` for the values 0, 1, 2... counted ``counts`` times: from the
    counts where the values on either side of the percentile are both below ``limit``, or neither is."""
    total, above = int(counts.sum()), int(counts[limit:].sum())
    position = q / 100 * (total - 1)  # the percentile is between the sorted values at its floor and ceiling
    if above < total - position - 2:
        return True
    if above > total - position + 1:
        return False
    return bool(np.percentile(np.repeat(np.arange(len(counts), dtype=np.float32), counts), q) < limit)


def digit_ink(image: Image.Image) -> np.ndarray | None:
    """The digit in ``image`` (RGB or L) as ink coverage 0-1, cropped to it (see steps 1-4 above); ``None`` for
    a blank picture."""
    image = detail_size(native_size(reduce(image)))
    if min(image.size) < SMALL_SIDE:
        factor = max(1, round(SMALL_TARGET / max(image.size)))
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.BICUBIC)
        ink = border_ink(image)
        if float(ink.max()) < MIN_CONTRAST:
            return None
        return crop(stretch(ink, ink > 0.2 * ink.max()))
    blurred = blurred_channels(image)  # the same blurs for both windows
    inks = paper_inks(*blurred)
    ink = most_ink(inks)
    ruling = find_ruling(ink)  # a notebook's lines, taken out of each look at the picture
    ink = without_ruling(ink, ruling)
    mask = digit_mask(ink, level := paper_level(ink))
    if mask is None:
        return None
    # again with the paper estimated over a few stroke widths: it then follows shadows closely
    first = min(mask.shape) // 3  # the first look's window (``paper_inks``' default)
    window = max(5, round(5 * stroke_width(mask)))
    if window >= first:  # thick strokes, or thin ones and a shadow's edge taken for ink
        window = thin_window(blurred, max(3, first // 2), ruling) or window
    if window < first:
        inks = paper_inks(*blurred, window)
        ink = without_ruling(most_ink(inks), ruling)
        mask = digit_mask(ink, level := paper_level(ink))
        if mask is None:
            return None
    if (fill := outlined_fill(inks, mask)) is not None:
        ink = fill.astype(np.float32)
        mask = digit_mask(ink, level := paper_level(ink))
        if mask is None:
            return None
    elif (holes := hollow_fill(mask)) is not None:  # filled as strongly as the line is drawn
        ink = np.where(holes, np.percentile(ink[mask], STRONG_INK), ink)
        mask = mask | holes
    paper, deviation = level
    strong = float(np.percentile(ink[mask], STRONG_INK))
    noise = paper + 3 * 1.4826 * deviation  # the paper's noise, robustly
    faint = ink > max(noise, FAINT_INK * strong)  # and above what is left of shadows
    groups, count = ndimage.label(faint, structure=np.ones((3, 3)))
    digit = mask | touching(groups, count, mask & faint)  # faint ink that joins the digit is the digit's
    return crop(stretch((ink - noise).clip(min=0) * digit, mask))


def thin_window(blurred: tuple[np.ndarray, np.ndarray], window: int, ruling: Ruling | None) -> int | None:
    """Five stroke widths, when the strokes found with the paper estimated over ``window`` pixels (half the first
    look's) are that thin: the first look then took a soft shadow's edge, wider than a pen's stroke but narrower
    than its window, for ink. ``None`` when they are not (thick strokes, which a narrower window hollows)."""
    ink = without_ruling(most_ink(paper_inks(*blurred, window)), ruling)
    mask = digit_mask(ink)
    if mask is None:
        return None
    thin = max(5, round(5 * stroke_width(mask)))
    return thin if thin <= window else None


def crop(ink: np.ndarray) -> np.ndarray | None:
    """``ink`` cropped to where it is, or ``None`` when there is none."""
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0), np.flatnonzero(ink.max(axis=0) > 0)
    if not rows.size:
        return None
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
