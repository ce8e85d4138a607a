"""Pictures of a test: the confusion matrix and a grid of misclassified digits, drawn with PIL (no plotting
library needed), saved under ``results/`` and shown in TensorBoard's Images tab."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw, ImageFont

from ..framework import Experiment
from ..framework.storage import atomic_write

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans.ttf")


def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in _FONTS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def confusion_image(confusion: torch.Tensor, class_names: list[str], cell: int = 36) -> Image.Image:
    """Rows are true classes, columns predictions; each cell's blue is its share of the row.

    Margins grow to fit the class names; names wider than a cell ("T-shirt/top") label the columns vertically.
    """
    classes = len(class_names)
    font = _font(cell // 3)
    widths = [font.getlength(name) for name in class_names]
    left = max(cell, int(max(widths)) + 12)
    vertical = max(widths) > cell - 4
    top = left if vertical else cell
    image = Image.new("RGB", (left + classes * cell, top + classes * cell + 16), "white")
    draw = ImageDraw.Draw(image)
    shares = confusion.double() / confusion.sum(1, keepdim=True).clamp(min=1)
    for row in range(classes):
        draw.text((left - 6, top + row * cell + cell // 2), class_names[row], fill="black", font=font, anchor="rm")
        centre = left + row * cell + cell // 2
        if vertical:
            label = Image.new("L", (int(widths[row]) + 4, cell), 0)
            ImageDraw.Draw(label).text((2, cell // 2), class_names[row], fill=255, font=font, anchor="lm")
            label = label.rotate(90, expand=True)
            image.paste((0, 0, 0), (centre - cell // 2, top - 6 - label.size[1]), label)
        else:
            draw.text((centre, top // 2), class_names[row], fill="black", font=font, anchor="mm")
        for col in range(classes):
            level = int(255 * (1 - float(shares[row, col])))
            box = (left + col * cell, top + row * cell, left + (col + 1) * cell - 1, top + (row + 1) * cell - 1)
            draw.rectangle(box, fill=(level, level, 255), outline=(220, 220, 220))
            draw.text((box[0] + cell // 2, box[1] + cell // 2), str(int(confusion[row, col])),
                      fill="white" if level < 128 else "black", font=font, anchor="mm")
    draw.text((left, top + classes * cell + 2), "rows: true, columns: predicted", fill="gray", font=_font(11))
    return image


def misclassified_image(images: torch.Tensor, true: list[str], predicted: list[str], columns: int = 8,
                        scale: int = 2) -> Image.Image:
    """Misclassified images (``[N, 28, 28]`` uint8), each titled ``true→predicted`` (on two lines, in wider
    tiles, when the class names are too long for one)."""
    count = max(len(images), 1)
    rows = (count + columns - 1) // columns
    font = _font(12)
    captions = [f"{t}→{p}" for t, p in zip(true, predicted, strict=True)]
    picture_size = 28 * scale
    two_lines = any(font.getlength(caption) > picture_size - 2 for caption in captions)
    if two_lines:
        captions = [f"{t}\n→{p}" for t, p in zip(true, predicted, strict=True)]
    widest = max((font.getlength(line) for caption in captions for line in caption.split("\n")), default=0)
    tile = max(picture_size, int(widest) + 6)
    caption = 30 if two_lines else 16
    sheet = Image.new("L", (columns * tile, rows * (picture_size + caption)), 255)
    draw = ImageDraw.Draw(sheet)
    if not len(images):
        draw.text((4, 4), "none", fill=0, font=font)
    for index, digit in enumerate(images):
        x, y = (index % columns) * tile, (index // columns) * (picture_size + caption)
        picture = Image.frombytes("L", (28, 28), digit.to(torch.uint8).cpu().contiguous().numpy().tobytes())
        sheet.paste(picture.resize((picture_size, picture_size), Image.Resampling.NEAREST),
                    (x + (tile - picture_size) // 2, y + caption))
        draw.multiline_text((x + tile // 2, y + caption // 2), captions[index], fill=0, font=font, anchor="mm",
                            align="center", spacing=1)
    return sheet.convert("RGB")


def as_tensor(image: Image.Image) -> torch.Tensor:
    """HWC uint8, as ``SummaryWriter.add_image(..., dataformats='HWC')`` takes it."""
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.size[1], image.size[0], 3)


def save_test_figures(experiment: Experiment, writer: SummaryWriter, confusion: torch.Tensor,
                      mistakes: tuple[torch.Tensor, torch.Tensor, torch.Tensor], class_names: list[str],
                      epoch: int) -> None:
    """``results/confusion-<epoch>.png`` and ``results/misclassified-<epoch>.png``, also in TensorBoard."""
    images, true, predicted = mistakes
    figures = {"confusion": confusion_image(confusion, class_names),
               "misclassified": misclassified_image(images, [class_names[int(t)] for t in true],
                                                    [class_names[int(p)] for p in predicted])}
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.save(buffer, format="PNG")
        atomic_write(experiment.results_path / f"{name}-{epoch}.png", buffer.getvalue())
        writer.add_image(f"test/{name}", as_tensor(figure), epoch, dataformats="HWC")
