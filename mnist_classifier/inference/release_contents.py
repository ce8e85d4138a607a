"""What a release says beside its weights, with no torch: ``ReleaseContents``. A release file holds it in its
``others``; an ONNX export holds the same in its ``config.json`` and in ``model.onnx``'s metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calibration import Calibration
from .strokes import MNIST_STROKE_WIDTH


@dataclass
class ReleaseContents:
    """What an MNIST release holds beside its weights: the app's ``release_others`` writes it and
    ``ReleasedModel`` reads it, so this class is the format. ``from_dict`` fills in what older releases lack."""

    architecture: dict[str, Any]  # {"name": a registered model, "class", "kwargs", "input_shape"}
    mean: float
    std: float
    class_names: list[str]
    dataset: str = "mnist"
    box: int = 20  # the digit's box in 28x28 and how it is centred: what pictures are brought to
    centre: str = "mass"
    stroke_width: float | None = MNIST_STROKE_WIDTH  # of the training images' strokes (drawn datasets only)
    test_accuracy: float | None = None
    calibration: Calibration = field(default_factory=Calibration)

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "dataset": self.dataset,
                "normalization": {"mean": [self.mean], "std": [self.std]},
                "preprocessing": {"box": self.box, "centre": self.centre, "stroke_width": self.stroke_width},
                "class_names": list(self.class_names), "test_accuracy": self.test_accuracy,
                "calibration": self.calibration.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ReleaseContents:
        """A ``KeyError``, ``TypeError`` or ``ValueError`` when ``state`` describes no model."""
        dataset = str(state.get("dataset", "mnist"))
        preprocessing = state.get("preprocessing", {"box": 20, "centre": "mass"})  # older releases: MNIST's
        # releases older than stroke widths: MNIST's digits are redrawn with its training images' width
        width = preprocessing.get("stroke_width", MNIST_STROKE_WIDTH if dataset == "mnist" else None)
        return cls(dict(state["architecture"]), float(state["normalization"]["mean"][0]),
                   float(state["normalization"]["std"][0]), [str(name) for name in state["class_names"]], dataset,
                   int(preprocessing["box"]), str(preprocessing["centre"]), float(width) if width else None,
                   state.get("test_accuracy"), Calibration.from_dict(state.get("calibration")))
