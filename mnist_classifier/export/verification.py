"""Checking an ONNX graph against the PyTorch model it came from, on the dataset's test images, and measuring
the graph itself: what ``export`` refuses to ship without."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..framework.errors import UserError
from ..inference.onnx_model import normalised
from .onnx_graph import INPUT

TOLERANCE = 1e-4  # the largest difference of a log-probability accepted between ONNX Runtime and PyTorch
BATCH_SIZES = (1, 7, 64)
IMAGES = 1000  # test images each batch size runs


@dataclass
class Verification:
    images: int
    batch_sizes: list[int]
    max_difference: float  # of the log-probabilities, over every image and batch size
    disagreements: int  # images whose predicted class differs, over every batch size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(session: Any, model: torch.nn.Module, images: np.ndarray, mean: float, std: float) -> Verification:
    """ONNX Runtime's ``session`` and PyTorch's ``model`` on the first ``IMAGES`` of ``images``, in batches of
    each of ``BATCH_SIZES``: every image must get the same class, and every log-probability agree within
    ``TOLERANCE``, or a ``UserError`` says by how much."""
    x = normalised(images[:IMAGES], mean, std)
    batches = [x[start:start + size] for size in BATCH_SIZES for start in range(0, len(x), size)]
    ours = [session.run(None, {INPUT: batch})[0] for batch in batches]  # each runtime in turn: never both at once
    model = model.cpu().eval()
    with torch.inference_mode():
        theirs = [model(torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)).float().numpy()
                  for batch in batches]
    largest = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))
    disagreements = sum(int((a.argmax(1) != b.argmax(1)).sum()) for a, b in zip(ours, theirs, strict=True))
    result = Verification(len(x), list(BATCH_SIZES), largest, disagreements)
    if disagreements or largest > TOLERANCE:
        raise UserError(f"the ONNX model does not match PyTorch: {disagreements} of {len(x)} images classified "
                        f"otherwise, log-probabilities up to {largest:.2e} apart (at most {TOLERANCE:g} allowed); "
                        "nothing was exported, report it")
    return result


def accuracy(session: Any, images: np.ndarray, targets: np.ndarray, mean: float, std: float,
             class_names: list[str]) -> dict[str, Any]:
    """The ONNX graph's own accuracy over ``images``, in all and per class."""
    predicted = np.concatenate([session.run(None, {INPUT: normalised(images[start:start + 500], mean, std)})[0]
                                .argmax(1) for start in range(0, len(images), 500)]) if len(images) else np.zeros(0)
    right = predicted == targets
    per_class = {name: float(right[targets == index].mean()) if (targets == index).any() else None
                 for index, name in enumerate(class_names)}
    return {"images": int(len(images)), "accuracy": float(right.mean()) if len(right) else None,
            "per_class_accuracy": per_class}
