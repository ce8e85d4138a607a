"""The command line: what a pipeline is, the global options, the argument types and the options pipelines share.

Importing this module does not import torch, so ``--help`` is instant. ``app.py`` runs the parsed command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .context import Context


@dataclass(frozen=True)
class Pipeline:
    """A sub-command: its name, one line of help, the options it adds to its parser, and what it runs.

    The built-in pipelines (``framework/pipelines/``) and an app's own are defined the same way; ``run`` gets the
    ``Context`` and returns the exit status. ``distributed``: it runs as several processes under torchrun (or
    ``--device`` with several devices), each calling the same collectives; the others refuse to.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context], int]
    distributed: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(2, f"error: {message}, see '{self.prog} --help'\n")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``, with a clear message otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value
    return parse


def port(text: str) -> int:
    """An argparse type: a TCP port."""
    value = int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def seed(text: str) -> int:
    """An argparse type: a seed torch accepts."""
    value = int_at_least(0)(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"{value} is too large for a seed (below 2**63)")
    return value


def add_epoch(parser: argparse.ArgumentParser, what: str) -> None:
    """``--epoch E``: which checkpoint to ``what`` (default: the newest)."""
    parser.add_argument("--epoch", type=int_at_least(1), default=None,
                        help=f"epoch whose checkpoint to {what} (default: the newest)")


def add_runtime(parser: argparse.ArgumentParser, default_device: str | None = None, progress: bool = True,
                several: bool = False) -> None:
    """``--device``, ``--precision``, ``--compile`` (and ``--no-progress``): what ``Context.runtime`` is made of.
    ``several``: ``--device`` takes one device per process (``cuda:0 cuda:1``, ``cpu cpu``) and ``--dist-timeout``
    bounds the wait for the other processes."""
    where = default_device or "cuda when available, else cpu"
    if several:
        parser.add_argument("--device", nargs="+", default=default_device, metavar="DEVICE",
                            help=f"cpu, cuda or cuda:N; several start one process each (default: {where})")
        parser.add_argument("--dist-timeout", type=int_at_least(1), default=600, metavar="SECONDS",
                            help="with several processes, how long one waits for the others before it gives up "
                                 "(default: 600)")
    else:
        parser.add_argument("--device", default=default_device, help=f"cpu, cuda or cuda:N (default: {where})")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: forward passes under bf16 autocast, CUDA only (default: fp32)")
    parser.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    if progress:
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bars (they only show when stderr is a terminal anyway)")


def add_num_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-workers", type=int_at_least(0), default=0,
                        help="DataLoader worker processes (default: 0)")


def _add_global_arguments(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Global options; also accepted after the pipeline name (``train --verbose``)."""
    def default(value: object) -> object:
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


def build_parser(prog: str, pipelines: Sequence[Pipeline]) -> argparse.ArgumentParser:
    """The global options and one sub-command per pipeline, in order."""
    parser = _Parser(prog=prog, description="Create, train, test, inspect and release experiments.")
    _add_global_arguments(parser, suppress=False)
    sub = parser.add_subparsers(dest="pipeline", metavar="PIPELINE", required=True, parser_class=_Parser)
    for pipeline in pipelines:
        command = sub.add_parser(pipeline.name, help=pipeline.help, description=pipeline.help)
        _add_global_arguments(command, suppress=True)
        pipeline.add_arguments(command)
    return parser
