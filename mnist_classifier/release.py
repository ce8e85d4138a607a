"""Using a trained model: ``load_release(path).predict(images)``, needing nothing but the release file.

A release holds weights, architecture (a registered model's name and arguments), normalisation, the
preprocessing that makes real pictures look like the training images (box, centring, stroke width), class
names, and the calibration that says when an answer is unsure (``calibration.py``); it is read with
``torch.load(weights_only=True)`` and mapped to the CPU, so one made on a GPU predicts anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .calibration import Calibration
from .datasets import MNIST_STROKE_WIDTH
from .framework import UserError, checkpoints
from .images import as_mnist_batch
from .model import MODELS, build_model, to_model_input


@dataclass
class Prediction:
    label: str
    probability: float  # the model's own
    top: list[tuple[str, float]] = field(default_factory=list)  # the k most likely (label, probability)
    input: torch.Tensor | None = field(default=None, compare=False, repr=False)  # the [28, 28] uint8 it saw
    confidence: float = 1.0  # the label's calibrated probability (see ``calibration``)
    status: str = "sure"  # "sure", "unsure" (confidence below the release's threshold) or "no digit" (no ink)


class ReleasedModel:
    def __init__(self, state: dict[str, Any], device: torch.device | str = "cpu",
                 model: torch.nn.Module | None = None) -> None:
        """Build the model a release state describes (see ``Runner.release_state``), or use ``model``, one
        already built with these weights (``predict --experiment-name`` builds one model, not two)."""
        self.device = torch.device(device)
        try:
            architecture = state["architecture"]
            if model is None:
                if architecture["name"] not in MODELS:
                    raise KeyError(f"model '{architecture['name']}' is not registered")
                model = build_model(architecture["name"], architecture.get("kwargs", {}))
                model.load_state_dict(state["model"])
            self.model = model
            self.mean = float(state["normalization"]["mean"][0])
            self.std = float(state["normalization"]["std"][0])
            self.class_names = [str(name) for name in state["class_names"]]
            preprocessing = state.get("preprocessing", {"box": 20, "centre": "mass"})  # older releases: MNIST
            self.box, self.centre = int(preprocessing["box"]), str(preprocessing["centre"])
            self.dataset = str(state.get("dataset", "mnist"))
            # releases older than stroke widths: MNIST's digits are redrawn with its training images' width
            width = preprocessing.get("stroke_width", MNIST_STROKE_WIDTH if self.dataset == "mnist" else None)
            self.stroke_width = float(width) if width else None
            self.model_name = str(architecture["name"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise UserError(f"the release does not describe a model this version can build ({error}), "
                            "make it again with create_release") from None
        self.model = self.model.to(self.device, memory_format=torch.channels_last).eval()
        self.epoch = state.get("epoch")
        self.test_accuracy = state.get("test_accuracy")
        self.calibration = Calibration.from_dict(state.get("calibration"))

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
    if state.get("kind") != "release":
        raise UserError(f"{path} is not a release checkpoint, make one with create_release")
    return ReleasedModel(state, device)
