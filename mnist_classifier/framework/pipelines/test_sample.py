"""``test_sample``: the app's ``test_sample`` hook on one test example; it only reads the experiment."""

from __future__ import annotations

import argparse

from ..cli import Pipeline, add_epoch, add_runtime, int_at_least
from ..context import Context
from ..errors import HookError
from ..results import SampleResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=int_at_least(0), required=True, help="index of the test example")
    add_epoch(parser, "use")
    add_runtime(parser, progress=False)


def run(ctx: Context) -> int:
    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    runtime = ctx.runtime
    with ctx.logging_into(experiment):
        runner = ctx.runner(experiment, ctx.data(experiment.configuration, experiment, 0), training=False)
        result = runner.test_sample(ctx.args.sample, epoch, runtime.device)
        if not isinstance(result, SampleResult):
            raise HookError(f"{type(runner).__name__}.test_sample returned {type(result).__name__}, return a "
                            "SampleResult(summary, details) (see the README's framework guide)")
        if runner.counters["epoch"] != epoch:
            raise HookError(f"{type(runner).__name__}.test_sample was asked for epoch {epoch} but used epoch "
                            f"{runner.counters['epoch']}, call self.load_states(epoch) first when epoch is not None")
        ctx.logger.info(result.summary)
    ctx.show(result.summary)
    return 0


PIPELINE = Pipeline("test_sample", "prediction for one test example", add_arguments, run)
