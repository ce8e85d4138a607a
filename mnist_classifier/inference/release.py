"""Using a trained model: ``load_release(path).predict(images)``, needing nothing but the release file.

A release holds weights, architecture (a registered model's name and arguments), normalisation, the
preprocessing that makes real pictures look like the training images (box, centring, stroke width), class
names, and the calibration that says when an answer is unsure or no digit stands out (``calibration.py``):
``ReleaseContents`` (``release_contents.py``), beside the weights in a ``Release``. It is read with
``torch.load(weights_only=True)`` and mapped to the CPU, so one made on a GPU predicts anywhere. An ONNX export of
it is read by ``onnx_model.py``, without torch; ``load.py`` tells them apart.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..framework import UserError, checkpoints
from ..framework.training_state import Release
from .images import as_mnist_batch
from .model import MODELS, build_model, to_model_input
from .prediction import Prediction, answer
from .release_contents import ReleaseContents


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
        return torch.from_numpy(as_mnist_batch(list(images), self.box, self.centre, self.stroke_width))

    def predict(self, images: list, top_k: int = 1) -> list[Prediction]:
        """Classify file paths, PIL images or tensors (real photos are brought to MNIST's form first).

        Each image goes through the model on its own: a batched convolution rounds differently, and an image's
        answer must not depend on the others sent with it (``serve`` answers exactly as ``predict``).
        """
        batch = self.prepare(images)
        predictions = []
        with torch.inference_mode():
            for image in batch:
                log_probabilities = self.model(to_model_input(image[None], self.mean, self.std, self.device))
                predictions.append(answer(log_probabilities[0].float().cpu().numpy(), image.numpy(),
                                          self.class_names, self.calibration, top_k))
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
