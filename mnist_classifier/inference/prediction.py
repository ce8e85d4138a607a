"""One answer of a model to one picture, the same whichever runtime computed it (PyTorch for a release file,
ONNX Runtime for an export): ``Prediction`` and ``answer``, with numpy alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import Calibration


@dataclass
class Prediction:
    label: str
    probability: float  # the model's own
    top: list[tuple[str, float]] = field(default_factory=list)  # the k most likely (label, probability)
    input: np.ndarray | None = field(default=None, compare=False, repr=False)  # the [28, 28] uint8 it saw
    confidence: float = 1.0  # the label's calibrated probability (see ``calibration``)
    status: str = "sure"  # "sure", "unsure" (confidence below the release's threshold) or "no digit" (see
    # ``Calibration.status``)

    def to_json(self) -> dict[str, Any]:
        """The fields ``predict --json`` prints for one image, and ``serve``'s ``/predict`` answers."""
        return {"label": self.label, "probability": self.probability, "confidence": self.confidence,
                "status": self.status, "top_k": [{"label": label, "probability": p} for label, p in self.top]}


def answer(log_probabilities: np.ndarray, image: np.ndarray, class_names: list[str], calibration: Calibration,
           top_k: int) -> Prediction:
    """The prediction for one ``[28, 28]`` input ``image`` from the model's ``[classes]`` log-probabilities: the
    ``top_k`` most likely classes (ties to the lower index), the calibrated confidence of the first, and whether
    it is sure, unsure, or no digit at all (``Calibration.status``)."""
    log_probabilities = np.asarray(log_probabilities, dtype=np.float32)
    probabilities = np.exp(log_probabilities)
    k = max(1, min(top_k, len(class_names)))
    indexes = np.argsort(-probabilities, kind="stable")[:k]
    calibrated = calibration.probabilities(log_probabilities[None])[0]
    return Prediction(class_names[int(indexes[0])], float(probabilities[indexes[0]]),
                      [(class_names[int(j)], float(probabilities[j])) for j in indexes], image,
                      float(calibrated[indexes[0]]), calibration.status(calibrated, bool(image.any())))


NO_DIGIT = "x"  # a labelled picture's name starts with it when it shows no digit


def read_right(label: str, status: str, expected: str) -> bool:
    """Whether an answer (its ``label`` and ``status``) is right for a picture whose label is ``expected``, the first
    character of its file name as in ``benchmarks/pictures/``: ``x`` is a picture of no digit, read right when the
    answer is not sure of any."""
    return status != "sure" if expected == NO_DIGIT else label == expected
