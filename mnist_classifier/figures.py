"""Pictures of a test: the confusion matrix and a grid of misclassified digits, drawn with PIL (no plotting
library needed), saved under ``results/`` and shown in TensorBoard's Images tab."""

from __future__ import annotations

import os

import torch
from PIL import Image, ImageDraw, ImageFont

_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans.ttf")


def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in _FONTS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def confusion_image(confusion: torch.Tensor, class_names: list[str], cell: int = 36) -> Image.Image:
    """Rows are true classes, columns predictions; each cell's blue is its share of the row."""
    classes = len(class_names)
    margin = cell
    image = Image.new("RGB", (margin + classes * cell, margin + classes * cell + 16), "white")
    draw = ImageDraw.Draw(image)
    font = _font(cell // 3)
    shares = confusion.double() / confusion.sum(1, keepdim=True).clamp(min=1)
    for row in range(classes):
        draw.text((margin // 2, margin + row * cell + cell // 2), class_names[row], fill="black", font=font,
                  anchor="mm")
        draw.text((margin + row * cell + cell // 2, margin // 2), class_names[row], fill="black", font=font,
                  anchor="mm")
        for col in range(classes):
            level = int(255 * (1 - float(shares[row, col])))
            box = (margin + col * cell, margin + row * cell, margin + (col + 1) * cell - 1,
                   margin + (row + 1) * cell - 1)
            draw.rectangle(box, fill=(level, level, 255), outline=(220, 220, 220))
            draw.text((box[0] + cell // 2, box[1] + cell // 2), str(int(confusion[row, col])),
                      fill="white" if level < 128 else "black", font=font, anchor="mm")
    draw.text((margin, margin + classes * cell + 2), "rows: true, columns: predicted", fill="gray",
              font=_font(11))
    return image


def misclassified_image(images: torch.Tensor, true: list[str], predicted: list[str], columns: int = 8,
                        scale: int = 2) -> Image.Image:
    """Misclassified digits (``[N, 28, 28]`` uint8), each titled ``true→predicted``."""
    count = max(len(images), 1)
    rows = (count + columns - 1) // columns
    tile, caption = 28 * scale, 16
    sheet = Image.new("L", (columns * tile, rows * (tile + caption)), 255)
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    if not len(images):
        draw.text((4, 4), "none", fill=0, font=font)
    for index, digit in enumerate(images):
        x, y = (index % columns) * tile, (index // columns) * (tile + caption)
        picture = Image.frombytes("L", (28, 28), digit.to(torch.uint8).cpu().contiguous().numpy().tobytes())
        sheet.paste(picture.resize((tile, tile), Image.Resampling.NEAREST), (x, y + caption))
        draw.text((x + tile // 2, y + caption // 2), f"{true[index]}→{predicted[index]}", fill=0, font=font,
                  anchor="mm")
    return sheet.convert("RGB")


def as_tensor(image: Image.Image) -> torch.Tensor:
    """HWC uint8, as ``SummaryWriter.add_image(..., dataformats='HWC')`` takes it."""
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.size[1], image.size[0], 3)
