"""The ``export`` pipeline: an experiment's checkpoint, or a release file, as a folder that runs anywhere
(``model.onnx``, ``model.safetensors``, ``config.json``, a model card and a page; see ``export/``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from ..framework import Context, Pipeline, UserError
from ..framework.cli import add_epoch

PACKAGES = ("onnx", "onnxscript", "onnxruntime", "safetensors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="DIR", help="the export folder to write (absent or empty)")
    parser.add_argument("--release", help="export this release file instead of an experiment's checkpoint")
    add_epoch(parser, "export, with --experiment-name")
    parser.add_argument("--pictures", metavar="DIR", help="also measure the export on these labelled pictures "
                                                         "(a file's label is its name's first character)")


def run(ctx: Context) -> int:
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"export needs {', '.join(missing)}, install them with pip install "
                        "'mnist_classifier[export]'")
    from ..export.writer import Source, export
    from ..inference.onnx_model import is_export
    from ..training.datasets import DATASETS, load_split
    from .predict import load_model

    args = ctx.args
    if args.release and is_export(args.release):
        raise UserError(f"{args.release} is a folder or an ONNX file, not a release file, give a "
                        ".checkpoint.release.pkl")
    model = load_model(ctx)  # on the CPU: export has no --device
    training = None
    if args.release:
        description = f"release {Path(args.release).name}"
        stored = Path(args.release).resolve().parents[1] / "config.json"  # a release inside its experiment
        if stored.is_file():
            values = json.loads(stored.read_text())
            training = {"config": values.get("config"), "seed": values.get("seed")} if "config" in values else None
    else:
        configuration = ctx.experiment().configuration
        description = f"experiment '{args.experiment_name}', epoch {model.epoch}"
        training = {"config": configuration.values, "seed": configuration.seed}
    if model.dataset not in DATASETS:
        raise UserError(f"the release's dataset '{model.dataset}' is not one this version knows, export it with "
                        "the version that made it")
    test = load_split(ctx.data_path, DATASETS[model.dataset], train=False)
    source = Source(model, description, test.inputs.numpy(), test.targets.numpy(), training)
    config = export(source, Path(args.to), Path(args.pictures) if args.pictures else None)
    verification, evaluation = config["verification"], config["evaluation"]
    ctx.show(f"Exported {description} to {args.to}: ONNX Runtime agrees with PyTorch on {verification['images']} "
             f"test images (largest difference {verification['max_difference']:.1e}), test accuracy "
             f"{100 * evaluation['accuracy']:.2f}%")
    return 0


EXPORT = Pipeline("export", "write an ONNX export (model.onnx, safetensors, model card, browser page) of a "
                            "checkpoint or release, verified against PyTorch", add_arguments, run)
