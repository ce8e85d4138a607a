"""Writing an export folder: the ONNX graph verified against PyTorch, then the weights, ``config.json``, the
model card and the page. Everything is written into a sibling folder first and renamed into place at the end,
so a failed export leaves nothing behind."""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import __version__
from ..framework.errors import UserError
from ..inference.onnx_model import FORMAT, METADATA_KEY, MODEL_FILE, OnnxModel
from ..inference.prediction import NO_DIGIT, read_right
from . import web_runtime
from .model_card import model_card
from .onnx_graph import INPUT, OPSET, OUTPUT, set_metadata, to_onnx
from .verification import accuracy, verify

if TYPE_CHECKING:
    from ..inference.release import ReleasedModel

PAGE = Path(__file__).parent.parent / "web" / "page"
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class Source:
    """What is exported: the model, where it came from, the dataset's test split, and (when known) the
    experiment's configuration and seed."""

    model: ReleasedModel
    description: str
    test_images: np.ndarray  # [N, 28, 28] uint8
    test_targets: np.ndarray  # [N] int
    training: dict[str, Any] | None = None  # {"config": ..., "seed": ...}


def export(source: Source, to: Path, pictures: Path | None = None) -> dict[str, Any]:
    """Write the export of ``source`` into the folder ``to`` (absent or empty); returns its ``config.json``."""
    to = Path(to)
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise UserError(f"{to} exists and is not an empty folder, choose another --to or remove it")
    if pictures is not None and not Path(pictures).is_dir():
        raise UserError(f"--pictures {pictures} is not a folder, give a folder of labelled pictures")
    partial = to.with_name(f".{to.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        config = _write(source, partial, pictures)
        if to.exists():
            to.rmdir()
        partial.rename(to)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return config


def _write(source: Source, folder: Path, pictures: Path | None) -> dict[str, Any]:
    import onnxruntime
    from safetensors.torch import save_file

    model = source.model
    graph = to_onnx(model.model, model.model_name)
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # its threads leave torch the cores
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    verification = verify(session, model.model, source.test_images, model.mean, model.std)
    evaluation = accuracy(session, source.test_images, source.test_targets, model.mean, model.std,
                          model.class_names)
    config = {"format": FORMAT, "format_version": 1, "exported_by": f"mnist_classifier {__version__}",
              "torch": torch.__version__.split("+")[0], "opset": OPSET, "source": source.description,
              "epoch": model.epoch, "python": platform.python_version(),
              "input": {"name": INPUT, "shape": ["batch", 1, 28, 28], "dtype": "float32"},
              "output": {"name": OUTPUT, "shape": ["batch", len(model.class_names)], "dtype": "float32"},
              "release": model.contents.to_dict(), "verification": verification.to_dict(),
              "evaluation": evaluation}
    (folder / MODEL_FILE).write_bytes(set_metadata(graph, {METADATA_KEY: json.dumps(config)}))
    weights = {key: value.detach().cpu().contiguous() for key, value in model.model.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"),
              metadata={"format": "pt", "architecture": json.dumps(model.contents.architecture)})
    if pictures is not None:
        config["pictures"] = read_pictures(OnnxModel(folder), Path(pictures))
        (folder / MODEL_FILE).write_bytes(set_metadata(graph, {METADATA_KEY: json.dumps(config)}))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "README.md").write_text(model_card(config, source.training))
    write_page(folder)
    return config


def read_pictures(model: OnnxModel, folder: Path) -> dict[str, Any]:
    """The share of the pictures under ``folder`` that ``model`` reads right, in all and per sub-folder; a
    picture's label is the first character of its file name, as in ``benchmarks/pictures/``, where ``x`` is a
    picture of no digit: read right when called unsure (or no digit), and not counted in "all"."""
    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise UserError(f"--pictures {folder} holds no pictures, give a folder of labelled PNG or JPEG files")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in files:
        answer = model.predict([path])[0]
        labelled = path.name[0] != NO_DIGIT
        right = read_right(answer.label, answer.status, path.name[0])
        for group in ("all", str(path.parent.relative_to(folder)))[0 if labelled else 1:]:
            counts[group][0] += right
            counts[group][1] += 1
    return {"folder": str(folder), "groups": {group: (right / total, total) for group, (right, total)
                                              in sorted(counts.items()) if group != "."}}


def write_page(folder: Path) -> None:
    """``index.html`` and ``page/``: serve's page, with ONNX Runtime Web and ``classifier.js`` answering in place
    of the server, every path relative so that any static host (or a sub-folder of one) serves it."""
    (folder / "page").mkdir()
    for name in ("page.css", "page.js", "classifier.js"):
        shutil.copyfile(PAGE / name, folder / "page" / name)
    web_runtime.copy_into(folder / "page" / "ort")
    html = (PAGE / "index.html").read_text().replace('"/page/', '"page/')
    scripts = ('  <script src="page/ort/ort.wasm.min.js" defer></script>\n'
               '  <script src="page/classifier.js" defer></script>\n  <script src="page/page.js" defer></script>')
    html = html.replace('  <script src="page/page.js" defer></script>', scripts)
    if scripts not in html:
        raise UserError("serve's page has changed its script tag, so the export's page cannot be made: report it")
    (folder / "index.html").write_text(html)
