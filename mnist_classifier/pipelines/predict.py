"""The ``predict`` pipeline: classify image files with a release file alone, or with an experiment's checkpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..framework import Context, Pipeline, UserError
from ..framework.cli import add_epoch, int_at_least

if TYPE_CHECKING:
    from ..inference.onnx_model import OnnxModel
    from ..inference.prediction import Prediction
    from ..inference.release import ReleasedModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP... files of any size and mode")
    parser.add_argument("--release", help="a release file, or an export folder or its model.onnx (run on ONNX "
                                           "Runtime, without torch); then no experiment or dataset is needed")
    add_epoch(parser, "use with --experiment-name")
    parser.add_argument("--top-k", type=int_at_least(1), default=1, help="show the K most likely classes")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.add_argument("--show-input", metavar="DIR",
                        help="write the 28x28 image the model received for each IMAGE into DIR, as NAME.png")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def load_model(ctx: Context) -> ReleasedModel | OnnxModel:
    """The model ``--release PATH`` names, or the checkpoint ``--experiment-name NAME [--epoch E]`` names, on the
    pipeline's ``--device`` (``predict`` and ``serve``). An export runs on ONNX Runtime: torch is not imported."""
    from ..inference.load import load_release
    from ..inference.onnx_model import is_export

    args = ctx.args
    if args.release and is_export(args.release):
        return load_release(args.release, args.device)
    from ..inference.release import ReleasedModel

    device = ctx.runtime.device
    if args.release:
        return load_release(args.release, device)
    if args.experiment_name:
        experiment = ctx.experiment()
        epoch = experiment.resolve_epoch(args.epoch)
        data = ctx.data(experiment.configuration, experiment, 0, splits=("validation",))  # for the calibration
        runner = ctx.runner(experiment, data, training=False)
        return ReleasedModel(runner.release_state(runner.load_states(epoch)), device, model=runner.model)
    raise UserError(f"{args.pipeline} needs a model, give --release PATH or --experiment-name NAME")


def as_text(prediction: Prediction) -> str:
    """How ``predict`` prints one answer: the most likely classes with the model's probabilities, the first
    followed by ``?`` when the answer is unsure (its calibrated confidence is below the release's threshold), or
    that no digit was found."""
    top = ", ".join(f"{label}{'?' if i == 0 and prediction.status == 'unsure' else ''} ({100 * p:.1f}%)"
                    for i, (label, p) in enumerate(prediction.top))
    if prediction.status != "no digit":
        return top
    if prediction.input is None or not prediction.input.any():
        return "no digit found (the picture holds no ink)"
    return f"no digit found (no digit stands out: {top})"


def input_folder(text: str) -> Path:
    """``--show-input DIR``, created now: a folder that cannot be written is an error before any work."""
    folder = Path(text)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --show-input folder {folder} ({error.strerror or error}), choose another"
                        ) from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write into --show-input folder {folder} (permission denied), choose another")
    return folder


def save_input(prediction: Prediction, folder: Path, path: str, written: set[Path]) -> Path:
    """The model's 28x28 input for the image at ``path`` as ``folder/<its name>.png``; names that two images
    share get ``-2``, ``-3``... so that no input of this run replaces another."""
    from PIL import Image

    stem, number = Path(path).stem or "image", 1
    target = folder / f"{stem}.png"
    while target in written:
        number += 1
        target = folder / f"{stem}-{number}.png"
    written.add(target)
    Image.fromarray(prediction.input, mode="L").save(target)
    return target


def run(ctx: Context) -> int:
    args = ctx.args
    shown = input_folder(args.show_input) if args.show_input else None
    model = load_model(ctx)
    prepared, problems, written = {}, {}, set()
    for path in args.images:  # one unreadable file must not stop the others
        try:
            prepared[path] = model.prepare([path])[0]
        except UserError as error:
            problems[path] = str(error)
    predictions = dict(zip(prepared, model.predict(list(prepared.values()), args.top_k), strict=True))
    results = []
    for path in args.images:
        if path in problems:
            print(f"error: {problems[path]}", file=sys.stderr)
            results.append({"path": path, "error": problems[path]})
            continue
        prediction = predictions[path]
        results.append({"path": path, **prediction.to_json()})
        if shown is not None:
            results[-1]["input"] = str(save_input(prediction, shown, path, written))
        if not args.json:
            print(f"{path}: {as_text(prediction)}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if problems else 0


PREDICT = Pipeline("predict", "classify image files with a release or an experiment's checkpoint",
                   add_arguments, run)
