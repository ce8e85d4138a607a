"""Using a trained model: ``load_release(path).predict(images)``, needing nothing but the release file.

A release holds weights, architecture (a registered model's name and arguments), normalisation, the
preprocessing that makes real pictures look like the training images (box, centring, stroke width), class
names, and the calibration that says when an answer is unsure (``calibration.py``): ``ReleaseContents``, beside
the weights in a ``Release``. It is read with ``torch.load(weights_only=True)`` and mapped to the CPU, so one made
on a GPU predicts anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..framework import UserError, checkpoints
from ..framework.training_state import Release
from .calibration import Calibration
from .images import as_mnist_batch
from .model import MODELS, build_model, to_model_input
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


@dataclass
class Prediction:
    label: str
    probability: float  # the model's own
    top: list[tuple[str, float]] = field(default_factory=list)  # the k most likely (label, probability)
    input: torch.Tensor | None = field(default=None, compare=False, repr=False)  # the [28, 28] uint8 it saw
    confidence: float = 1.0  # the label's calibrated probability (see ``calibration``)
    status: str = "sure"  # "sure", "unsure" (confidence below the release's threshold) or "no digit" (no ink)

    def to_json(self) -> dict[str, Any]:
        """The fields ``predict --json`` prints for one image, and ``serve``'s ``/predict`` answers."""
        return {"label": self.label, "probability": self.probability, "confidence": self.confidence,
                "status": self.status, "top_k": [{"label": label, "probability": p} for label, p in self.top]}


class ReleasedModel:
    def __init__(self, release: Release, device: torch.device | str = "cpu",
                 model: torch.nn.Module | None = None) -> None:
        """Build the model a release describes, or use ``model``, one already built with these weights
        (``predict --experiment-name`` builds one model, not two)."""
        self.device = torch.device(device)
        try:
            contents = ReleaseContents.from_dict(release.contents)
            if model is None:
                if contents.architecture["name"] not in MODELS:
                    raise KeyError(f"model '{contents.architecture['name']}' is not registered")
                model = build_model(contents.architecture["name"], contents.architecture.get("kwargs", {}))
                model.load_state_dict(release.model)
            self.model_name = str(contents.architecture["name"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise UserError(f"the release does not describe a model this version can build ({error}), "
                            "make it again with create_release") from None
        self.contents = contents
        self.mean, self.std, self.class_names = contents.mean, contents.std, contents.class_names
        self.box, self.centre, self.stroke_width = contents.box, contents.centre, contents.stroke_width
        self.dataset, self.test_accuracy, self.calibration = contents.dataset, contents.test_accuracy, \
            contents.calibration
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.epoch = release.epoch

    def prepare(self, images: list) -> torch.Tensor:
        """File paths, PIL images or tensors as the ``[N, 28, 28]`` uint8 images this model reads (see
        ``images.to_mnist``): what the release says its dataset's images look like."""
        return as_mnist_batch(list(images), self.box, self.centre, self.stroke_width)

    def predict(self, images: list, top_k: int = 1) -> list[Prediction]:
        """Classify file paths, PIL images or tensors (real photos are brought to MNIST's form first).

        Each image goes through the model on its own: a batched convolution rounds differently, and an image's
        answer must not depend on the others sent with it (``serve`` answers exactly as ``predict``).
        """
        batch = self.prepare(images)
        k = max(1, min(top_k, len(self.class_names)))
        predictions = []
        with torch.inference_mode():
            for image in batch:
                log_probabilities = self.model(to_model_input(image[None], self.mean, self.std, self.device)).cpu()
                values, indexes = log_probabilities[0].exp().topk(k)
                confidence = float(self.calibration.probabilities(log_probabilities)[0, indexes[0]])
                status = "no digit" if not image.any() else \
                    "unsure" if confidence < self.calibration.unsure_below else "sure"
                predictions.append(Prediction(
                    self.class_names[int(indexes[0])], float(values[0]),
                    [(self.class_names[int(j)], float(p)) for p, j in zip(values, indexes, strict=True)], image,
                    confidence, status))
        return predictions


def load_release(path: str | Path, device: torch.device | str = "cpu") -> ReleasedModel:
    """Load a ``*.checkpoint.release.pkl`` safely (no code in the file can run) and build its model."""
    state = checkpoints.load(Path(path), "release")
    if state.get("kind") != Release.KIND:
        raise UserError(f"{path} is not a release checkpoint, make one with create_release")
    try:
        release = Release.from_dict(state)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"the release does not describe a model this version can build ({error}), "
                        "make it again with create_release") from None
    return ReleasedModel(release, device)
