"""The ``predict`` pipeline: classify image files with a release file alone, or with an experiment's checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .framework import Context, Pipeline, UserError
from .framework.cli import add_epoch, int_at_least

if TYPE_CHECKING:
    from .release import Prediction, ReleasedModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP... files of any size and mode")
    parser.add_argument("--release", help="a release file; then no experiment or dataset is needed")
    add_epoch(parser, "use with --experiment-name")
    parser.add_argument("--top-k", type=int_at_least(1), default=1, help="show the K most likely classes")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def load_model(ctx: Context) -> ReleasedModel:
    """The model ``--release PATH`` names, or the checkpoint ``--experiment-name NAME [--epoch E]`` names, on the
    pipeline's ``--device`` (``predict`` and ``serve``)."""
    from .release import ReleasedModel, load_release

    args = ctx.args
    device = ctx.runtime.device
    if args.release:
        return load_release(args.release, device)
    if args.experiment_name:
        experiment = ctx.experiment()
        epoch = experiment.resolve_epoch(args.epoch)
        runner = ctx.runner(experiment, ctx.data(experiment.configuration, experiment), training=False)
        state = runner.load_states(epoch)
        return ReleasedModel(runner.release_state(state), device, model=runner.model)
    raise UserError(f"{args.pipeline} needs a model, give --release PATH or --experiment-name NAME")


def as_json(prediction: Prediction) -> dict[str, Any]:
    """The fields ``predict --json`` prints for one image, and ``serve``'s ``/predict`` answers."""
    return {"label": prediction.label, "probability": prediction.probability,
            "top_k": [{"label": label, "probability": p} for label, p in prediction.top]}


def run(ctx: Context) -> int:
    from .images import as_mnist_batch

    args = ctx.args
    model = load_model(ctx)
    prepared, problems = {}, {}
    for path in args.images:  # one unreadable file must not stop the others
        try:
            prepared[path] = as_mnist_batch([path], model.box, model.centre)[0]
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
        results.append({"path": path, **as_json(prediction)})
        if not args.json:
            print(f"{path}: " + ", ".join(f"{label} ({100 * p:.1f}%)" for label, p in prediction.top))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if problems else 0


PREDICT = Pipeline("predict", "classify image files with a release or an experiment's checkpoint",
                   add_arguments, run)
