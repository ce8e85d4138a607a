"""``create_release``: a checkpoint reduced to what using the model needs (``Runner.release_state``, a
``training_state.Release``)."""

from __future__ import annotations

import argparse

from ..cli import Pipeline, add_epoch
from ..context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_epoch(parser, "release")


def run(ctx: Context) -> int:
    """The checkpoint is read once, on the CPU. The data's loaders are built (no workers), validation among
    them, so ``release_others`` can compute on it (the MNIST app fits its calibration there)."""
    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    with experiment.lock("create_release"), ctx.logging_into(experiment):
        data = ctx.data(experiment.configuration, experiment, 0, splits=("validation",))
        runner = ctx.runner(experiment, data, training=False)
        path = runner.create_release(runner.load_states(epoch))
    ctx.show(f"Saved release {path}")
    return 0


PIPELINE = Pipeline("create_release", "write a release checkpoint: only what is needed to use the model",
                    add_arguments, run)
