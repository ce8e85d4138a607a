"""``test``: the app's ``test`` hook on one checkpoint; the framework records and prints its ``TestResult``."""

from __future__ import annotations

import argparse

from ..cli import Pipeline, add_epoch, add_num_workers, add_runtime
from ..context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_epoch(parser, "test")
    add_num_workers(parser)
    add_runtime(parser, several=True)


def run(ctx: Context) -> int:
    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    runtime = ctx.runtime
    with ctx.lock(experiment), ctx.logging_into(experiment):
        data = ctx.data(experiment.configuration, experiment, ctx.args.num_workers, splits=("test",))
        runner = ctx.runner(experiment, data, training=False)
        try:
            result = runner.test(epoch, runtime.device)
        finally:
            runner.close()
    ctx.show(result.summary)
    return 0


PIPELINE = Pipeline("test", "test-set metrics of a checkpoint", add_arguments, run, distributed=True)
