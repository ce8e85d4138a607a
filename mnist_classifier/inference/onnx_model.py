"""Predicting with an ONNX export (``export``), on ONNX Runtime, with no torch: ``OnnxModel`` answers as
``ReleasedModel`` does, with the same preparation (``images.py``) and calibration, from ``model.onnx`` alone.

What the model needs beside its graph (class names, normalisation, preparation, calibration) is the export's
``config.json``, also kept as the ``mnist_classifier`` entry of ``model.onnx``'s metadata, so that the file
works without its folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..framework.errors import UserError
from .images import as_mnist_batch
from .prediction import Prediction, answer
from .release_contents import ReleaseContents

FORMAT = "mnist_classifier export"
METADATA_KEY = "mnist_classifier"  # model.onnx's metadata entry holding config.json
MODEL_FILE = "model.onnx"


def normalised(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``[N, 28, 28]`` uint8 images as the model's ``[N, 1, 28, 28]`` float32 input, as ``model.to_model_input``
    makes it for PyTorch."""
    return (images.astype(np.float32)[:, None] - np.float32(255 * mean)) / np.float32(255 * std)


def is_export(path: str | Path) -> bool:
    """Whether ``path`` names an export (its folder, or an ``.onnx`` file) rather than a release file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".onnx"


def model_file(path: str | Path) -> Path:
    """The ``model.onnx`` of an export folder, or the ``.onnx`` file given."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
        if not path.is_file():
            raise UserError(f"{path.parent} is not an export (it has no {MODEL_FILE}), make one with export")
    elif not path.is_file():
        raise UserError(f"{path} does not exist, give an export folder or its {MODEL_FILE}")
    return path


class OnnxModel:
    def __init__(self, path: str | Path) -> None:
        """The export at ``path`` (its folder or its ``model.onnx``) on ONNX Runtime's CPU provider."""
        try:
            import onnxruntime
        except ImportError:
            raise UserError("an ONNX export needs ONNX Runtime, install it with pip install onnxruntime (or the "
                            "package's export extra)") from None
        file = model_file(path)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings are about graph rewrites, not about the user's input
        try:
            self.session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 (ONNX Runtime raises its own classes for a bad file)
            raise UserError(f"{file} is not an ONNX model ONNX Runtime can load "
                            f"({str(error).splitlines()[0][:200]}), export it again") from None
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        try:
            config = json.loads(text) if text else None
            if not isinstance(config, dict) or config.get("format") != FORMAT:
                raise ValueError(f"no '{METADATA_KEY}' metadata")
            contents = ReleaseContents.from_dict(config["release"])
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{file} is not an export of this package ({error}), make one with export") from None
        self.config: dict[str, Any] = config
        self.contents = contents
        self.input_name = self.session.get_inputs()[0].name
        self.model_name = str(contents.architecture["name"])
        self.mean, self.std, self.class_names = contents.mean, contents.std, contents.class_names
        self.box, self.centre, self.stroke_width = contents.box, contents.centre, contents.stroke_width
        self.dataset, self.test_accuracy, self.calibration = contents.dataset, contents.test_accuracy, \
            contents.calibration
        self.epoch = config.get("epoch")

    def prepare(self, images: list) -> np.ndarray:
        """File paths, PIL images or arrays as the ``[N, 28, 28]`` uint8 images this model reads."""
        return as_mnist_batch(list(images), self.box, self.centre, self.stroke_width)

    def log_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """``[N, classes]`` log-probabilities of ``[N, 28, 28]`` uint8 images, normalised as in training."""
        return self.session.run(None, {self.input_name: normalised(batch, self.mean, self.std)})[0]

    def predict(self, images: list, top_k: int = 1) -> list[Prediction]:
        """Classify file paths, PIL images or arrays, each on its own, as ``ReleasedModel.predict`` does."""
        return [answer(self.log_probabilities(image[None])[0], image, self.class_names, self.calibration, top_k)
                for image in self.prepare(images)]
