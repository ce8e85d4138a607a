"""``train``: train up to ``--max-epochs``, resuming from the newest checkpoint (or ``--epoch``), one writer at a
time; SIGINT and SIGTERM stop after the current step with everything saved."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from ..cli import Pipeline, add_epoch, add_num_workers, add_runtime, int_at_least
from ..context import Context
from ..logs import attach_log_file
from ..reports import train_summary

if TYPE_CHECKING:
    from ..runner import Runner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-epochs", type=int_at_least(1), default=10, help="train up to this epoch (default: 10)")
    add_epoch(parser, "resume from")
    parser.add_argument("--log-period", type=int_at_least(1), default=100,
                        help="log the training loss every K iterations (default: 100)")
    add_num_workers(parser)
    add_runtime(parser, several=True)


@contextmanager
def stop_on_signals(runner: Runner) -> Iterator[None]:
    """SIGINT/SIGTERM only ask ``runner`` to stop after its current step (a second one changes nothing)."""
    def ask(signum: int, frame: FrameType | None) -> None:
        if runner.stop_signal is None:
            runner.stop_signal = signum

    previous = {signum: signal.signal(signum, ask) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(ctx: Context) -> int:
    args = ctx.args
    experiment = ctx.experiment()
    if args.epoch is not None:
        experiment.resolve_epoch(args.epoch)
    runtime = ctx.runtime  # checked (and the other processes joined) before the experiment is touched
    with ctx.lock(experiment), ctx.logging_into(experiment):
        if runtime.is_main:
            experiment.remove_temporaries()
        data = ctx.data(experiment.configuration, experiment, args.num_workers, splits=("train", "validation"))
        runner = ctx.runner(experiment, data, training=True)
        with stop_on_signals(runner):
            runner.load_states(args.epoch)
            attach_log_file(ctx.logger, experiment.log_file)
            where = f"{runtime.group.world_size} processes ({runtime.device.type})" if runtime.group.active \
                else str(runtime.device)
            ctx.logger.info(f"Training '{experiment.name}' on {where} from epoch {runner.counters['epoch']} "
                            f"to {args.max_epochs}")
            try:
                runner.train(args.max_epochs, args.log_period)
            finally:
                experiment.close()
                runner.close()
    if runtime.is_main:
        for line in train_summary(experiment.name, runner.history, ctx.app.judged_by,
                                  experiment.checkpoint_epochs()):
            ctx.report(line)
    return 0


PIPELINE = Pipeline("train", "train, resuming from the newest checkpoint", add_arguments, run, distributed=True)
