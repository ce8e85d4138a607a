"""Ruled and squared notebook paper and a form's boxes: the printed lines a digit is written on, or in, taken out.

A digit written in a notebook sits on lines about as dark as a pencil, which cross the whole picture; left in,
they join the digit or become a digit of their own. A ruling line is straight, thin, inked nearly all along its
length with paper beside it, and a page has several, parallel and far apart: a digit's strokes are never all
of these. Lines are looked for near the rows and near the columns, turned by up to ``MAX_TILT`` degrees, each
at its own tilt; where they are found, each line's pixels keep only the ink beyond the line's own, and at least
the ink just beside the line, so a stroke that crosses the line stays whole and the paper stays paper. A box
printed around the digit (a form's field) is a piece of the digit's mask of its own, made of straight lines
around the rest, or what step 2 left of it, bars beside or above and below the rest: ``without_frames`` drops
it.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

MAX_TILT = 6.0  # degrees a page may be turned from the picture's rows and columns
STRIP = 12  # pixels: lines are followed across strips this wide, in which a turned line drifts a pixel or two
ALONG = 0.8  # share of the strips a ruling line is seen in (a digit's strokes cross it in some, hide it in none)
STROKE = 1.5  # a line holding this many times its own ink has a stroke on it
MIN_LINES = 2  # a page has lines, parallel; one straight stroke across a picture may be a digit's
PARALLEL = 2.0  # degrees a page's lines may turn from each other in a photo's perspective
APART = 1.5  # a page's lines are this many times further apart than they reach from their middles, paper between
CORNERS = 0.05  # share of a form's box that is not its long straight lines (where they join)
ENCLOSED = 0.3  # a box holds a digit at least this share of its height
SAME = 0.85  # a box's opposite sides are this alike in length and place


class Line(NamedTuple):
    """A near-horizontal line: its row at the picture's middle column, its slope, and how far it reaches
    above and below its middle (pixels)."""

    row: float
    slope: float
    half: int


class Ruling(NamedTuple):
    """The lines of a page: near its rows, and near its columns (as lines of the transposed picture)."""

    rows: list[Line]
    columns: list[Line]


def find_ruling(ink: np.ndarray) -> Ruling | None:
    """The ruling in ``ink`` (``[H, W]``, 0-1), or ``None`` for plain paper."""
    rows, columns = ruling_lines(ink), ruling_lines(ink.T)
    return Ruling(rows, columns) if rows or columns else None


def without_ruling(ink: np.ndarray, ruling: Ruling | None) -> np.ndarray:
    """``ink`` with ``ruling``'s lines taken out, or ``ink`` itself for ``None``."""
    if ruling is None:
        return ink
    return np.ascontiguousarray(erased(erased(ink, ruling.rows).T, ruling.columns).T)


def ruling_lines(ink: np.ndarray) -> list[Line]:
    """The near-horizontal lines of a page in ``ink``: none unless there are ``MIN_LINES`` of them."""
    height, width = ink.shape
    strips = width // STRIP
    if strips < 5 or height < 20:
        return []
    left = (width - strips * STRIP) // 2
    profile = ink[:, left:left + strips * STRIP].reshape(height, strips, STRIP).mean(axis=2)  # [row, strip]
    thin = max(7, round(height / 25)) | 1  # ridges narrower than this are lines, broader ones shading or strokes
    base = ndimage.grey_opening(profile, size=(thin, 1))  # what is beside each row: paper, or a broad shape
    ridge = profile - base
    spread = 1.4826 * float(np.median(np.abs(ridge - np.median(ridge))))
    seen = ridge > max(float(np.median(ridge)) + 8 * spread, 0.02)
    centres = left + STRIP * (np.arange(strips) + 0.5) - width / 2  # each strip's middle, from the picture's
    middles, slopes, votes = voted_lines(seen, centres, width, thin)
    if len(middles) < MIN_LINES:
        return []
    centre = np.rint(middles[:, None] + slopes[:, None] * centres).astype(np.int64)  # [line, strip]
    crossing = (centre >= 0) & (centre < height)
    first, last = crossing.argmax(axis=1), strips - 1 - crossing[:, ::-1].argmax(axis=1)
    strip = np.clip(np.arange(strips), first[:, None], last[:, None])  # a strip it misses: its nearest one's
    centre = np.take_along_axis(centre, strip, axis=1)
    path = (centre[:, None, :] + np.arange(-thin, thin + 1)[:, None]).clip(0, height - 1)  # [line, across, strip]
    across = np.median(ridge[path, strip[:, None, :]], axis=2)  # each line's ridge, and beside it
    strength = across[:, thin:thin + 1]
    # how far it reaches: where its ridge has faded on both sides, or on one where the other is off the picture
    faded = np.stack([across[:, thin - 1::-1], across[:, thin + 1:]]) < strength / 3  # [side, line, distance - 1]
    halves = np.where(faded.any(axis=2), faded.argmax(axis=2) + 1, 0).max(axis=0)
    halves[halves == 0] = thin
    # a line drawn on paper has paper beside it along most of its length, a fold or seam in a shape has the shape
    on_paper = np.median(base[centre, strip], axis=1) - float(np.median(profile)) <= strength[:, 0] / 2
    lines = [(Line(float(middle), float(slope), int(half)), int(vote))
             for middle, slope, half, vote, keep in zip(middles, slopes, halves, votes, on_paper, strict=True) if keep]
    return page_lines(lines, thin, ink.shape)


def voted_lines(seen: np.ndarray, centres: np.ndarray, width: int, thin: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lines through most of the strips where ``seen`` (``[row, strip]``, each strip's middle at ``centres``
    from the middle of a picture ``width`` wide) holds a ridge: their rows at the picture's middle column, their
    slopes, and how many strips saw them. Each ridge pixel votes, for every slope, for the line through it; each
    row keeps its best slope (a photo's perspective turns a page's lines apart), and a line is the most voted
    for of the rows ``thin`` around it. A line through a corner has its middle up to ``reach`` rows above or
    below the picture, and is seen in a share of the strips it crosses."""
    height, strips = seen.shape
    steps = max(1, math.ceil(width * math.tan(math.radians(MAX_TILT)) / 2))  # two pixels' drift a step
    slopes = np.linspace(-1, 1, 2 * steps + 1) * math.tan(math.radians(MAX_TILT))
    reach = math.ceil(abs(slopes[0] * centres[0])) + 1
    seen_rows, seen_strips = np.nonzero(seen)
    at = np.rint(seen_rows - slopes[:, None] * centres[seen_strips]).astype(np.int64) + reach  # [slope, vote]
    rows = height + 2 * reach
    at += np.arange(len(slopes))[:, None] * rows  # each slope's rows after the last's
    counts = np.bincount(at.ravel(), minlength=len(slopes) * rows).reshape(len(slopes), rows)
    middles = np.arange(rows) - reach
    crossed = np.full(counts.shape, strips)  # how many strips each line crosses inside the picture: near the
    near_edge = np.unique(np.r_[:3 * reach, rows - 3 * reach:rows].clip(0, rows - 1))  # top and bottom, fewer
    on = np.rint(middles[near_edge, None] + slopes[:, None, None] * centres)  # [slope, row, strip]
    crossed[:, near_edge] = ((on >= 0) & (on < height)).sum(axis=2)
    best, votes = counts.argmax(axis=0), counts.max(axis=0)
    crossed = crossed[best, np.arange(rows)]
    share = np.where(crossed >= strips / 2, votes / np.maximum(crossed, 1), 0)  # a line crosses half the picture
    found = np.flatnonzero((share >= ALONG) & (votes == ndimage.maximum_filter1d(votes, thin)))
    return middles[found].astype(float), slopes[best[found]], votes[found]


def page_lines(lines: list[tuple[Line, int]], thin: int, shape: tuple[int, int]) -> list[Line]:
    """Of ``lines`` (each with its votes) in a picture of ``shape``, those of a page: parallel, or nearly (a
    photo's perspective), where a shape's edges and folds are not; with paper between them (``APART``), the line
    seen more kept of two closer ones (a fold beside a fold); and ``MIN_LINES`` of them inside the picture, as a
    line along its edge may be a page's edge or a photo's frame."""
    height, width = shape
    turn = float(np.median([line.slope for line, _ in lines])) if lines else 0.0
    parallel = [(line, vote) for line, vote in lines if abs(line.slope - turn) <= math.tan(math.radians(PARALLEL))]
    kept: list[Line] = []
    for line, _ in sorted(parallel, key=lambda seen: -seen[1]):
        if all(abs(line.row - other.row) >= APART * (line.half + other.half) for other in kept):
            kept.append(line)
    ends = [(line.row - line.slope * width / 2, line.row + line.slope * width / 2) for line in kept]
    inside = [min(end) >= thin and max(end) < height - thin for end in ends]
    return sorted(kept) if sum(inside) >= MIN_LINES else []


def erased(ink: np.ndarray, lines: list[Line]) -> np.ndarray:
    """``ink`` with each of its near-horizontal ``lines`` taken out: the line's pixels keep what they hold beyond
    the line's own ink, and at least the lesser ink just above and below it (a stroke that crosses the line)."""
    if not lines:
        return ink
    height, width = ink.shape
    out = ink.copy()
    columns = np.arange(width)
    for line in lines:
        middle = np.rint(line.row + line.slope * (columns - width / 2)).astype(np.int64)
        band = middle + np.arange(-line.half - 1, line.half + 2)[:, None]  # [row across the line, column]
        inside = (band >= 0) & (band < height)
        inks = ink[band.clip(0, height - 1), columns]
        # the lesser ink beside the line, or the one side's at the picture's edge
        beside = np.where(inside[0] & inside[-1], np.minimum(inks[0], inks[-1]), np.where(inside[0], inks[0], inks[-1]))
        whole = inside.all(axis=0)  # the columns where all of the line is in the picture
        if not whole.any():
            continue
        # the line's own ink, at each distance from its middle: where the line holds no more than its own (a
        # turned line's pixels hold more or less of it), it is what is beside it; where a stroke crosses it or runs
        # along it, the stroke keeps what is its
        own = np.median(inks[1:-1, whole] - beside[whole], axis=1, keepdims=True)
        stroke = inks[1:-1].max(axis=0) - beside > STROKE * own.max()
        kept = np.where(stroke, np.maximum(beside, inks[1:-1] - own), beside)
        at = inside[1:-1]
        out[band[1:-1][at], np.broadcast_to(columns, at.shape)[at]] = kept[at]
    return out


def without_frames(mask: np.ndarray) -> np.ndarray:
    """``mask`` (a digit's pixels, ``strokes.digit_mask``) without a form's printed field around the digit: pieces
    of it made of long straight lines along the rows and columns (all but ``CORNERS`` of them, their joins) that
    either enclose the rest, at least ``ENCLOSED`` as tall as they are (a box), or run past the rest at both ends
    on one side of it (what is left of a box once step 2 took out its sides as a page's lines), and pairs of
    such pieces ``alike`` that ``flank`` the rest (a box's sides once step 2 took its top and bottom, a row of
    boxes' teeth). A 7's bar ends where its stem starts, a 5's flag on the stem, a dot in a 0 is small, a 1 as
    tall as the bars beside it is one of them with nothing between: they stay; so does a box or line along the
    picture's edge (a shadow's edge, the picture's own). A digit that touches its box is one piece with it, and
    stays as it is."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count < 2:
        return mask
    boxes = ndimage.find_objects(pieces)
    straight = [is_straight(pieces[box] == index) for index, box in enumerate(boxes, start=1)]
    written = [box for box, lines in zip(boxes, straight, strict=True) if not lines]
    dropped = {index for index, (box, lines) in enumerate(zip(boxes, straight, strict=True), start=1)
               if lines and (encloses(box, [other for other in boxes if other != box], mask.shape)
                             or runs_past(box, written, mask.shape))}
    bars = [index for index, lines in enumerate(straight, start=1) if lines and index not in dropped]
    for axis in (0, 1):  # a box's top and bottom (bars along the rows), or its sides (along the columns)
        for first, second in itertools.combinations(bars, 2):
            if {first, second} & dropped or not alike(boxes[first - 1], boxes[second - 1], axis):
                continue
            # the pair and the bars alike them: a row of boxes' other sides, or a 1 as tall as the sides
            teeth = {index for index in bars if alike(boxes[first - 1], boxes[index - 1], axis)}
            rest = [box for index, box in enumerate(boxes, start=1) if index not in dropped | teeth]
            if flank(boxes[first - 1], boxes[second - 1], rest, axis):
                dropped |= teeth
    return mask & ~np.isin(pieces, list(dropped)) if dropped else mask


def encloses(box: tuple[slice, slice], others: list[tuple[slice, slice]], shape: tuple[int, int]) -> bool:
    """Whether the box (``find_objects``' rows and columns) holds some of ``others`` well inside it, together at
    least ``ENCLOSED`` as tall as it is, and is not the picture's own edge (in a picture of ``shape``)."""
    if all(part.start == 0 and part.stop == side for part, side in zip(box, shape, strict=True)):
        return False
    inside = [other for other in others if all(part.start > outer.start and part.stop < outer.stop
                                               for part, outer in zip(other, box, strict=True))]
    if not inside:
        return False
    tall = max(other[0].stop for other in inside) - min(other[0].start for other in inside)
    return tall >= ENCLOSED * span(box[0])


def runs_past(box: tuple[slice, slice], written: list[tuple[slice, slice]], shape: tuple[int, int]) -> bool:
    """Whether a line's box lies above, below or beside all the ``written`` pieces' boxes and runs past them at
    both ends (by 5% of their size, 3 pixels at least), not along the edge of the picture (of ``shape``: a
    shadow's edge, or the picture's own)."""
    if not written:
        return False
    top, bottom = min(other[0].start for other in written), max(other[0].stop for other in written)
    left, right = min(other[1].start for other in written), max(other[1].stop for other in written)
    margin = max(3, round(0.05 * max(bottom - top, right - left)))
    rows, columns = box
    across = columns.start <= left - margin and columns.stop >= right + margin and (
        rows.stop <= top or rows.start >= bottom) and 0 < rows.start and rows.stop < shape[0]
    along = rows.start <= top - margin and rows.stop >= bottom + margin and (
        columns.stop <= left or columns.start >= right) and 0 < columns.start and columns.stop < shape[1]
    return across or along


def alike(one: tuple[slice, slice], other: tuple[slice, slice], axis: int) -> bool:
    """Whether two pieces' boxes (``find_objects``') are bars alike along ``axis`` (1: the columns, upright; 0:
    the rows): each at least three times as long as it is thick (a digit's strokes that cross are not a bar),
    their lengths and places along it the same within ``SAME`` of the longer (two sides of a box, or the teeth
    of a row of boxes)."""
    along, across = 1 - axis, axis  # the boxes' slices: an upright bar is long in its rows
    if any(span(box[along]) < 3 * span(box[across]) for box in (one, other)):
        return False
    shared = min(one[along].stop, other[along].stop) - max(one[along].start, other[along].start)
    return shared >= SAME * max(span(one[along]), span(other[along]))


def span(part: slice) -> int:
    """How many rows or columns a ``find_objects`` slice covers."""
    return part.stop - part.start


def flank(one: tuple[slice, slice], other: tuple[slice, slice], rest: list[tuple[slice, slice]], axis: int
          ) -> bool:
    """Whether two ``alike`` straight pieces (their boxes) are two sides of a printed box around all of
    ``rest``: across ``axis`` (1: side by side; 0: one above the other) with ``rest`` between them, and along
    them within their length, give or take ``1 - SAME`` of it (what is left of a form's box once step 2 took
    its other sides for a page's lines)."""
    if not rest:
        return False
    if axis == 0:  # the same question of the transposed picture
        one, other, rest = one[::-1], other[::-1], [box[::-1] for box in rest]
    (rows, columns), (rows_2, columns_2) = sorted((one, other), key=lambda box: box[1].start)
    top, bottom = min(rows.start, rows_2.start), max(rows.stop, rows_2.stop)
    margin = (1 - SAME) * (bottom - top)
    return all(columns.stop <= box[1].start and box[1].stop <= columns_2.start and top - margin <= box[0].start
               and box[0].stop <= bottom + margin for box in rest)


def is_straight(piece: np.ndarray) -> bool:
    """Whether ``piece`` (a boolean picture of one piece) is long straight lines along its rows and columns, all
    but ``CORNERS`` of it: a printed line or box, not a written stroke."""
    height, width = piece.shape
    if max(height, width) < 12:
        return False
    long = max(8, round(0.4 * max(height, width)))
    lines = ndimage.binary_opening(piece, np.ones((1, long))) | ndimage.binary_opening(piece, np.ones((long, 1)))
    return bool((piece & ~ndimage.binary_dilation(lines, iterations=2)).sum() <= CORNERS * piece.sum())
