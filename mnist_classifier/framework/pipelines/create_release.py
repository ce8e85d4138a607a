"""``create_release``: a checkpoint reduced to what using the model needs (``Runner.release_state``)."""

from __future__ import annotations

import argparse

from ..cli import Pipeline, add_epoch
from ..context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_epoch(parser, "release")


def run(ctx: Context) -> int:
    """The checkpoint is read once, on the CPU (a release is made of its tensors; nothing is computed)."""
    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    with experiment.lock("create_release"), ctx.logging_into(experiment):
        runner = ctx.runner(experiment, ctx.data(experiment.configuration, experiment), training=False)
        path = runner.create_release(runner.load_states(epoch))
    ctx.show(f"Saved release {path}")
    return 0


PIPELINE = Pipeline("create_release", "write a release checkpoint: only what is needed to use the model",
                    add_arguments, run)
