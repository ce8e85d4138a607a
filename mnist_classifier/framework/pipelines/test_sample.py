"""``test_sample``: the app's ``test_sample`` hook on one test example. It writes nothing but its log lines, so it
takes no lock."""

from __future__ import annotations

import argparse
import json

from ..cli import Pipeline, add_epoch, add_runtime, int_at_least
from ..context import Context
from ..contracts import check_sample_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=int_at_least(0), required=True, help="index of the test example")
    add_epoch(parser, "use")
    parser.add_argument("--json", action="store_true", help="print the prediction's details as JSON")
    add_runtime(parser, progress=False)


def run(ctx: Context) -> int:
    experiment = ctx.experiment()
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    runtime = ctx.runtime
    with ctx.logging_into(experiment):
        runner = ctx.runner(experiment, ctx.data(experiment.configuration, experiment, 0), training=False)
        result = check_sample_result(runner, runner.test_sample(ctx.args.sample, epoch, runtime.device), epoch)
        ctx.logger.info(result.summary)
    if ctx.args.json:
        print(json.dumps({"epoch": epoch, "summary": result.summary, **result.details}, indent=2))
    else:
        ctx.show(result.summary)
    return 0


PIPELINE = Pipeline("test_sample", "prediction for one test example", add_arguments, run)
