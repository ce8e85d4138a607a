"""MNIST digit classifier built on a Skeltorch-style experiment framework (``mnist_classifier.framework``).

``from mnist_classifier import load_release``; ``load_release(path).predict(images)`` classifies image files,
PIL images or arrays, from a release file (on PyTorch) or an ONNX export (on ONNX Runtime alone). Importing
the package itself stays free of torch, so the CLI starts fast.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_release"]


def __getattr__(name: str) -> Any:
    if name == "load_release":  # a release file on PyTorch, an ONNX export without it
        from .inference.load import load_release

        return load_release
    modules = {"ReleasedModel": "release", "Prediction": "prediction", "OnnxModel": "onnx_model"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f".inference.{modules[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
