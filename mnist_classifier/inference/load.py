"""``load_release(path)``: a release file on PyTorch, or an ONNX export on ONNX Runtime (torch never imported)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .onnx_model import OnnxModel, is_export

if TYPE_CHECKING:
    from .release import ReleasedModel


def load_release(path: str | Path, device: Any = "cpu") -> ReleasedModel | OnnxModel:
    """The model at ``path``: a ``*.checkpoint.release.pkl`` (built on ``device``) or an export folder or its
    ``model.onnx`` (on the CPU). Both answer ``predict(images, top_k)`` and ``prepare(images)`` alike."""
    if is_export(path):
        if str(device) != "cpu":
            from ..framework.errors import UserError

            raise UserError(f"an ONNX export runs on the CPU, not on {device}, leave --device out")
        return OnnxModel(path)
    from .release import load_release as load_release_file

    return load_release_file(path, device)
