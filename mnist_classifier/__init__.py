"""MNIST digit classifier built on a Skeltorch-style experiment framework (``mnist_classifier.framework``).

``from mnist_classifier import load_release``; ``load_release(path).predict(images)`` classifies image files,
PIL images or tensors. Importing the package itself stays free of torch, so the CLI starts fast.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_release"]


def __getattr__(name: str) -> Any:
    if name in ("load_release", "ReleasedModel", "Prediction"):
        from .inference import release

        return getattr(release, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
