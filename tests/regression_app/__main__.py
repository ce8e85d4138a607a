"""The app's declaration: its data and runner, the metric it is judged by, and one pipeline of its own."""

from __future__ import annotations

import argparse
import sys

from mnist_classifier.framework import App, Context, Metric, Pipeline, UserError
from mnist_classifier.framework.cli import add_epoch


def make_data():
    from .data import RegressionData

    return RegressionData()


def make_runner():
    from .runner import RegressionRunner

    return RegressionRunner()


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("x", nargs=4, type=float, metavar="X", help="the four inputs")
    add_epoch(parser, "use")


def predict(ctx: Context) -> int:
    """``predict X0 X1 X2 X3``: the model's output for one point, from the experiment's checkpoint."""
    import torch

    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    runner = ctx.runner(experiment, ctx.data(experiment.configuration, experiment), training=False)
    runner.load_states(epoch)
    if any(abs(value) > 1 for value in ctx.args.x):
        raise UserError("the inputs must lie in [-1, 1], give four numbers in that range")
    with torch.inference_mode():
        print(f"{float(runner.model.eval()(torch.tensor([ctx.args.x]))[0]):.4f}")
    return 0


APP = App("regression_app", make_data, make_runner, judged_by=Metric("validation_loss", higher_is_better=False),
          pipelines=[Pipeline("predict", "the model's output for one point", add_predict_arguments, predict)])

if __name__ == "__main__":
    sys.exit(APP.run())
