"""``train``: train up to ``--max-epochs`` (or the configuration's ``training.max_epochs``), resuming from the
newest checkpoint (or ``--epoch``), one writer at a time; SIGINT and SIGTERM stop after the current step with
everything saved."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from ..cli import Pipeline, add_epoch, add_num_workers, add_runtime, int_at_least
from ..context import Context
from ..errors import UserError
from ..logs import attach_log_file
from ..reports import train_summary

if TYPE_CHECKING:
    from ..configuration import Configuration
    from ..experiment import Experiment
    from ..runner import Runner


DEFAULT_MAX_EPOCHS = 10


def max_epochs(args: argparse.Namespace, configuration: Configuration) -> int:
    """``--max-epochs``, else the number a configuration sets for its own recipe (``training.max_epochs``: a
    one-cycle schedule is made for a number of epochs), else 10."""
    if args.max_epochs is not None:
        return args.max_epochs
    configured = configuration.get("training", "max_epochs")
    if configured is None:
        return DEFAULT_MAX_EPOCHS
    if not isinstance(configured, int) or isinstance(configured, bool) or configured < 1:
        raise UserError(f"training.max_epochs is {configured!r} in the configuration, not a whole number of at "
                        "least 1, give --max-epochs")
    return configured


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-epochs", type=int_at_least(1), default=None,
                        help=f"train up to this epoch (default: the configuration's training.max_epochs, else "
                             f"{DEFAULT_MAX_EPOCHS})")
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
    until = max_epochs(args, experiment.configuration)
    if args.epoch is not None:
        experiment.resolve_epoch(args.epoch)
    runtime = ctx.runtime  # checked (and the other processes joined) before the experiment is touched
    runner = train_experiment(ctx, experiment, until, args.epoch, args.log_period, args.num_workers)
    if runtime.is_main:
        for line in train_summary(experiment.name, runner.history, ctx.app.judged_by,
                                  experiment.checkpoint_epochs()):
            ctx.report(line)
    return 0


def train_experiment(ctx: Context, experiment: Experiment, until: int, epoch: int | None = None,
                     log_period: int = 100, num_workers: int = 0,
                     after_epoch: Callable[[Runner], bool] | None = None) -> Runner:
    """Train ``experiment`` up to epoch ``until`` from ``epoch`` (``None``: its newest state), holding its lock,
    with signals asking for a stop after the current step; ``after_epoch`` as ``loop.train`` takes it. ``train``
    and each trial of a sweep train here."""
    from ..loop import train  # torch: not imported by --help

    runtime = ctx.runtime
    with ctx.lock(experiment), ctx.logging_into(experiment):
        if runtime.is_main:
            experiment.remove_temporaries()
        data = ctx.data(experiment.configuration, experiment, num_workers, splits=("train", "validation"))
        runner = ctx.runner(experiment, data, training=True)
        with stop_on_signals(runner):
            runner.load_states(epoch)
            attach_log_file(ctx.logger, experiment.log_file)
            where = f"{runtime.group.world_size} processes ({runtime.device.type})" if runtime.group.active \
                else str(runtime.device)
            ctx.logger.info(f"Training '{experiment.name}' on {where} from epoch {runner.counters['epoch']} "
                            f"to {until}")
            try:
                train(runner, until, log_period, after_epoch)
            finally:
                runner.close()
    return runner


PIPELINE = Pipeline("train", "train, resuming from the newest checkpoint", add_arguments, run, distributed=True)
