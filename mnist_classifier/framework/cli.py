"""Command line: global arguments, one sub-command per pipeline, dispatch and error handling.

Bad input never shows a traceback: it is one ``error: <what>, <what to do>`` line on stderr and a non-zero exit.
``--debug`` shows the traceback instead. Importing this module does not import torch, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from . import pipelines
from .errors import Interrupted, UserError
from .logs import setup_logging

if TYPE_CHECKING:
    from .data import Data
    from .runner import Runner


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(2, f"error: {message}, see '{self.prog} --help'\n")


@dataclass
class Pipeline:
    """A pipeline an application adds to the framework's: its name, help, arguments and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[pipelines.Context], int]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``, with a clear message otherwise."""
    return _int_at_least(minimum)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value
    return parse


def _port(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def _seed(text: str) -> int:
    value = _int_at_least(0)(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"{value} is too large for a seed (below 2**63)")
    return value


def _add_global_arguments(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Global options; also accepted after the pipeline name (``train --verbose``)."""
    def default(value):
        return argparse.SUPPRESS if suppress else value
    group = parser.add_argument_group("global options")
    group.add_argument("--experiment-name", default=default(None), help="name of the experiment folder")
    group.add_argument("--experiments-path", default=default("experiments"),
                       help="folder holding the experiments (default: experiments)")
    group.add_argument("--data-path", default=default("data"), help="folder holding the datasets (default: data)")
    group.add_argument("--verbose", action="store_true", default=default(False),
                       help="also log to stdout (verbose.log always gets everything)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show the traceback of an error")


def build_parser(prog: str, extra: Sequence[Pipeline] = ()) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Create, train, test, inspect and release experiments.")
    _add_global_arguments(parser, suppress=False)
    sub = parser.add_subparsers(dest="pipeline", metavar="PIPELINE", required=True, parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        _add_global_arguments(command, suppress=True)
        return command

    def add_device(command: argparse.ArgumentParser) -> None:
        command.add_argument("--device", default=None,
                             help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
        command.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                             help="bf16: forward passes under bf16 autocast, CUDA only (default: fp32)")
        command.add_argument("--compile", action="store_true", help="compile the model with torch.compile")

    def add_no_progress(command: argparse.ArgumentParser) -> None:
        command.add_argument("--no-progress", action="store_true",
                             help="no progress bars (they only show when stderr is a terminal anyway)")

    def add_epoch(command: argparse.ArgumentParser, what: str) -> None:
        command.add_argument("--epoch", type=_int_at_least(1), default=None,
                             help=f"epoch whose checkpoint to {what} (default: the newest)")

    command = add("init", "create an experiment from a configuration file")
    command.add_argument("--config-path", default="config.default.json",
                         help="configuration JSON (default: config.default.json)")
    command.add_argument("--config-schema-file", "--config-schema-path", dest="config_schema_file",
                         default="config.schema.json", help="JSON Schema to validate it (default: config.schema.json)")
    command.add_argument("--seed", type=_seed, default=0,
                         help="seed for splits, initialisation and shuffling (default: 0)")
    command.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a configuration value before validation, e.g. --set training.lr=0.5 "
                              "--set model.name=mlp (dotted key, JSON value; repeatable)")

    command = add("train", "train, resuming from the newest checkpoint")
    command.add_argument("--max-epochs", type=_int_at_least(1), default=10, help="train up to this epoch (default: 10)")
    add_epoch(command, "resume from")
    command.add_argument("--log-period", type=_int_at_least(1), default=100,
                         help="log the training loss every K iterations (default: 100)")
    command.add_argument("--num-workers", type=_int_at_least(0), default=0,
                         help="DataLoader worker processes (default: 0)")
    add_device(command)
    add_no_progress(command)

    command = add("test", "test-set accuracy of a checkpoint")
    add_epoch(command, "test")
    command.add_argument("--num-workers", type=_int_at_least(0), default=0, help="DataLoader worker processes")
    add_device(command)
    add_no_progress(command)

    command = add("test_sample", "prediction for one test image")
    command.add_argument("--sample", type=_int_at_least(0), required=True, help="index of the test image")
    add_epoch(command, "use")
    add_device(command)

    command = add("info", "configuration, splits, checkpoints and releases of an experiment")
    command.add_argument("--json", action="store_true", help="print as JSON")

    command = add("create_release", "write a release checkpoint: only what is needed to use the model")
    add_epoch(command, "release")

    command = add("tensorboard", "run TensorBoard on the experiment's logs")
    command.add_argument("--port", type=_port, default=6006, help="port (default: 6006)")
    command.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    command.add_argument("--compare", action="store_true", help="show all experiments of --experiments-path")

    for pipeline in extra:
        pipeline.add_arguments(add(pipeline.name, pipeline.help))
    return parser


class App:
    """``App(make_data, make_runner).run()``: the framework's entry point for an application.

    The factories are called only by pipelines that need them, so ``--help`` and ``info`` stay free of torch.
    """

    def __init__(self, make_data: Callable[[], "Data"], make_runner: Callable[[], "Runner"],
                 prog: str = "python -m mnist_classifier", extra_pipelines: Sequence[Pipeline] = ()) -> None:
        self.make_data = make_data
        self.make_runner = make_runner
        self.prog = prog
        self.extra_pipelines = {pipeline.name: pipeline for pipeline in extra_pipelines}

    def run(self, argv: Sequence[str] | None = None) -> int:
        args = build_parser(self.prog, list(self.extra_pipelines.values())).parse_args(argv)
        logger = setup_logging(args.verbose)
        ctx = pipelines.Context(args, self.make_data, self.make_runner, logger)
        try:
            if args.pipeline in self.extra_pipelines:
                return self.extra_pipelines[args.pipeline].run(ctx)
            return getattr(pipelines, args.pipeline)(ctx)
        except UserError as error:
            if args.debug:
                raise
            logger.error(str(error))
            _fail(str(error))
            return 2
        except Interrupted as stop:
            logger.info(f"Interrupted: {stop}")
            print(f"interrupted: {stop}; run the same train command to continue", file=sys.stderr, flush=True)
            return 128 + stop.signum
        except KeyboardInterrupt:
            _fail("interrupted, run the same command again to continue")
            return 130
        except Exception as error:  # a bug, not bad input: still one line, with a pointer to the traceback
            if args.debug:
                raise
            logger.exception("unexpected error")
            _fail(f"unexpected {type(error).__name__}: {error}, rerun with --debug for the traceback and report it")
            return 1


def _fail(message: str) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr, flush=True)
