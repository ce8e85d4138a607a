"""Digits written on ruled and squared notebook paper or in a form's box (``ruling.py``): the page's lines are
found at a tilt and taken out, a box is dropped, the digit's strokes stay whole, and nothing else is taken for
a page's lines or a box."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_classifier.inference import images as preparation
from mnist_classifier.inference import ruling, strokes
from mnist_classifier.inference.ruling import find_ruling, without_ruling
from mnist_classifier.inference.strokes import ink_map

WIDTH = 2.76  # MNIST's pen, as releases carry it
SIZE = 240
PAPER = (250, 250, 246)
BLUE = (150, 180, 230)


def page(ruling: str, tilt: float, spacing: int = 40, line: int = 2, offset: int = 7) -> np.ndarray:
    """A notebook page ``SIZE`` pixels square as RGB floats: ``lined`` or ``squared`` (or ``plain``) in light
    blue lines ``line`` pixels wide, ``spacing`` apart, turned by ``tilt`` degrees."""
    paper = np.empty((SIZE, SIZE, 3))
    paper[:] = PAPER
    if ruling == "plain":
        return paper
    y, x = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    angle = math.radians(tilt)
    across, along = y * math.cos(angle) - x * math.sin(angle), x * math.cos(angle) + y * math.sin(angle)
    lines = (across + offset) % spacing < line
    if ruling == "squared":
        lines |= (along + 11) % spacing < line
    paper[lines] = paper[lines] * 0.4 + np.asarray(BLUE) * 0.6
    return paper


def written(paper: np.ndarray, draw, ink: tuple[int, int, int] = (40, 40, 60)) -> Image.Image:
    """``draw(ImageDraw)``'s strokes (white on black) in ``ink`` on ``paper``, the way ink absorbs light."""
    strokes_ = Image.new("L", (SIZE, SIZE), 0)
    draw(ImageDraw.Draw(strokes_))
    cover = np.asarray(strokes_, dtype=np.float64)[..., None] / 255
    return Image.fromarray(np.round(paper * (1 - cover) + np.asarray(ink) * cover).astype(np.uint8))


def four(draw: ImageDraw.ImageDraw, pen: int = 5) -> None:
    draw.line([(140, 50), (80, 150), (170, 150)], fill=255, width=pen, joint="curve")
    draw.line([(140, 50), (140, 200)], fill=255, width=pen)


def seven(draw: ImageDraw.ImageDraw, pen: int = 5) -> None:
    draw.line([(70, 60), (165, 60), (110, 200)], fill=255, width=pen, joint="curve")


def prepared(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(preparation.to_mnist(image, stroke_width=WIDTH)).float()


@pytest.mark.parametrize("ruling, tilt, spacing", [("lined", 0.0, 40), ("lined", -4.0, 40), ("squared", 2.5, 40),
                                                   ("squared", -5.5, 40), ("lined", 2.0, 16), ("squared", 2.0, 20)])
@pytest.mark.parametrize("digit", [four, seven])
def test_a_digit_on_ruled_paper_is_read_as_on_plain(ruling: str, tilt: float, spacing: int, digit,
                                                    monkeypatch) -> None:
    """The page's lines are as dark as a pencil and cross the digit, a few or many (graph paper); taken out,
    what the model sees is the digit on plain paper. Left in (the rule off), they join the digit."""
    plain = prepared(written(page("plain", 0), digit))
    on_page = written(page(ruling, tilt, spacing), digit)
    difference = float((prepared(on_page) - plain).abs().mean())
    assert difference < 3, difference
    monkeypatch.setattr(strokes, "find_ruling", lambda ink: None)
    assert float((prepared(on_page) - plain).abs().mean()) > 6, "the test sees the lines"


def test_a_stroke_crossing_a_line_stays_whole() -> None:
    """Where a pen stroke crosses a line, the stroke keeps its ink; the line beside it is paper."""
    ink = ink_map(written(page("lined", 0, line=3), lambda draw: draw.line([(120, 20), (120, 220)], fill=255,
                                                                          width=6)))
    found = find_ruling(ink)
    assert found is not None and len(found.rows) == 6 and not found.columns
    cleaned = without_ruling(ink, found)
    stroke = cleaned[30:211, 119:122]  # its middle, from end to end
    assert stroke.min() > 0.9 * ink[30:211, 119:122].min(), "the stroke is whole where it crosses the lines"
    beside = np.r_[0:100, 140:SIZE]
    assert cleaned[:, beside].max() < 0.05 < ink[:, beside].max(), "the lines are gone"


def test_a_line_through_a_corner_is_taken_out_too() -> None:
    """A turned page's line that leaves the picture through its top is a page's line as well: left in, it would
    be a long stroke beside the digit."""
    ink = ink_map(written(page("lined", -5.0, offset=0), seven))
    found = find_ruling(ink)
    assert found is not None
    ends = [(line.row - line.slope * SIZE / 2, line.row + line.slope * SIZE / 2) for line in found.rows]
    assert any(min(end) < 0 <= max(end) for end in ends), ends
    assert without_ruling(ink, found)[:20].max() < 0.05 < ink[:20].max()


def test_what_is_not_a_page_keeps_its_lines() -> None:
    """A digit alone, a digit underlined once, stripes on a shape (a shirt) and a photo's frame at the picture's
    edges are not a notebook's page."""
    assert find_ruling(ink_map(written(page("plain", 0), four))) is None

    def underlined(draw: ImageDraw.ImageDraw) -> None:
        seven(draw)
        draw.line([(0, 215), (SIZE, 212)], fill=255, width=3)
    assert find_ruling(ink_map(written(page("plain", 0), underlined))) is None

    shirt = page("plain", 0)
    shirt[90:150] = (150, 150, 150)  # a grey shape across the picture, striped darker
    shirt[100:150:20] = shirt[101:150:20] = (60, 60, 60)
    assert find_ruling(ink_map(Image.fromarray(shirt.astype(np.uint8)))) is None

    framed = page("plain", 0)
    framed[:, :4] = framed[:, -4:] = (90, 90, 90)  # a page photographed on a darker table, edge to edge
    assert find_ruling(ink_map(written(framed, four))) is None


def boxed(digit, box: tuple[int, int, int, int]):
    """``digit`` drawn in a form's printed ``box``."""
    def draw(canvas: ImageDraw.ImageDraw) -> None:
        digit(canvas)
        canvas.rectangle(box, outline=255, width=2)
    return draw


@pytest.mark.parametrize("box", [(45, 25, 200, 222), (58, 40, 188, 212)])
@pytest.mark.parametrize("digit", [four, seven])
def test_a_digit_in_a_forms_box_is_read_as_on_plain(box: tuple[int, int, int, int], digit, monkeypatch) -> None:
    """The printed box around a digit is not the digit's: left in (the rule off), the model sees a small digit
    in a frame. A box as tall as the picture loses its sides to the rule for a page's lines, and its top and
    bottom to the rule for boxes; a shorter one goes whole."""
    plain = prepared(written(page("plain", 0), digit))
    in_box = written(page("plain", 0), boxed(digit, box))
    difference = float((prepared(in_box) - plain).abs().mean())
    assert difference < 3, difference
    monkeypatch.setattr(strokes, "without_frames", lambda mask: mask)
    assert float((prepared(in_box) - plain).abs().mean()) > 6, "the test sees the box"


def comb(digit, teeth: tuple[int, ...] = (45, 200), top: int = 44, bottom: int = 206):
    """``digit`` written in one of a form's row of boxes: lines across the picture at ``top`` and ``bottom``,
    and the boxes' sides (``teeth``) between them."""
    def draw(canvas: ImageDraw.ImageDraw) -> None:
        digit(canvas)
        for row in (top, bottom):
            canvas.line([(0, row), (SIZE, row)], fill=255, width=2)
        for column in teeth:
            canvas.line([(column, top), (column, bottom)], fill=255, width=2)
    return draw


@pytest.mark.parametrize("teeth", [(45, 200), (45, 200, 12), (60, 185)])
@pytest.mark.parametrize("digit", [four, seven])
def test_a_digit_in_a_row_of_boxes_is_read_as_on_plain(teeth: tuple[int, ...], digit, monkeypatch) -> None:
    """In a row of boxes, step 2 takes the lines across the picture for a page's and leaves the boxes' sides,
    bars on either side of a digit as tall as they nearly are (and a neighbouring box's beyond): alike, with
    the digit between them, they go too. Left in (the rule off), the model sees the digit between bars."""
    plain = prepared(written(page("plain", 0), digit))
    in_comb = written(page("plain", 0), comb(digit, teeth))
    difference = float((prepared(in_comb) - plain).abs().mean())
    assert difference < 3, difference
    monkeypatch.setattr(ruling, "flank", lambda *arguments: False)
    assert float((prepared(in_comb) - plain).abs().mean()) > 6, "the test sees the boxes' sides"


def test_a_digits_crossing_strokes_are_not_a_boxs_side() -> None:
    """A 4 written in two strokes, its stem crossing its bar as tall as the boxes' sides nearly are: the
    crossing strokes are no bar, and stay with the 4's other stroke while the sides go."""
    def parted_four(draw: ImageDraw.ImageDraw) -> None:
        draw.line([(85, 55), (85, 128)], fill=255, width=5)
        draw.line([(85, 140), (178, 140)], fill=255, width=5)
        draw.line([(150, 52), (150, 198)], fill=255, width=5)
    plain = prepared(written(page("plain", 0), parted_four))
    difference = float((prepared(written(page("plain", 0), comb(parted_four))) - plain).abs().mean())
    assert difference < 3, difference


def test_a_1_as_tall_as_its_box_is_kept() -> None:
    """A 1 nearly as tall as the boxes' sides is alike them, one more bar: nothing is left between two bars to
    be a digit, so all stay (the model sees bars beside the 1, not an empty picture)."""
    def tall_one(draw: ImageDraw.ImageDraw) -> None:
        draw.line([(120, 48), (120, 202)], fill=255, width=5)
    ink = ink_map(written(page("plain", 0), comb(tall_one)))
    mask = strokes.digit_mask(without_ruling(ink, find_ruling(ink)))
    assert mask is not None and mask[50:200, 119:122].all()


def test_a_digits_own_straight_strokes_are_not_a_box(monkeypatch) -> None:
    """A 7 whose bar was written apart from its stem, also underlined, a 5 whose flag was, and a 0 with a dot
    inside keep every stroke: the bar ends where the stem starts and is shorter than the line, the flag ends
    on the stem, and the dot is small."""
    def parted_seven(draw: ImageDraw.ImageDraw) -> None:
        draw.line([(70, 60), (165, 60)], fill=255, width=6)
        draw.line([(160, 72), (105, 200)], fill=255, width=6)

    def parted_five(draw: ImageDraw.ImageDraw) -> None:
        draw.line([(95, 60), (170, 60)], fill=255, width=6)
        draw.arc((80, 100, 170, 200), 200, 150, fill=255, width=6)
        draw.line([(92, 70), (90, 120)], fill=255, width=6)

    def underlined_parted_seven(draw: ImageDraw.ImageDraw) -> None:  # the bar and the line are not alike
        parted_seven(draw)
        draw.line([(100, 215), (160, 215)], fill=255, width=6)

    def dotted_zero(draw: ImageDraw.ImageDraw) -> None:
        draw.rectangle((70, 40, 170, 200), outline=255, width=6)
        draw.ellipse((106, 106, 134, 134), fill=255)  # a tenth of the 0's ink at least: not a speck

    pictures = [written(page("plain", 0), drawn)
                for drawn in (parted_seven, parted_five, underlined_parted_seven, dotted_zero)]
    with_rule = [prepared(picture) for picture in pictures]
    monkeypatch.setattr(strokes, "without_frames", lambda mask: mask)
    for kept, picture in zip(with_rule, pictures, strict=True):
        assert torch.equal(kept, prepared(picture))
