"""``App``: an application's declaration (its name, its ``Data`` and ``Runner``, the metric it is judged by, its
own pipelines) and the entry point that runs one command with the framework's error handling.

Bad input never shows a traceback: it is one ``error: <what>, <what to do>`` line on stderr and exit status 2.
A hook that breaks its contract is one line naming the hook, status 1. ``--debug`` shows the traceback instead.
In a group of processes (torchrun), the lines of ranks other than 0 start with ``rank N:``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .cli import Pipeline, build_parser
from .context import Context
from .distributed import group_from_environment
from .errors import HookError, Interrupted, UserError
from .logs import setup_logging
from .metrics import VALIDATION_LOSS, Metric
from .pipelines import BUILT_IN

if TYPE_CHECKING:
    from .data import Data
    from .runner import Runner


class App:
    """``App("name", make_data, make_runner, judged_by=Metric(...)).run()``.

    The factories are called only by the pipelines that need them, so ``--help`` and ``info`` stay free of torch
    when the app imports its classes inside them. ``judged_by`` picks the best epoch, what retention keeps, what
    early stopping watches by default, HParams and the wording of ``info`` and the train summary; the default
    is the validation loss, lower being better. ``name`` names the logger and, by default, the program.
    ``command`` starts the app again, once per device, for ``--device`` with several devices (default:
    ``python -m <name>``, so ``name`` should be the app's package).
    """

    def __init__(self, name: str, make_data: Callable[[], Data], make_runner: Callable[[], Runner],
                 judged_by: Metric = VALIDATION_LOSS, pipelines: Sequence[Pipeline] = (),
                 prog: str | None = None, command: Sequence[str] | None = None) -> None:
        self.name = name
        self.make_data = make_data
        self.make_runner = make_runner
        self.judged_by = judged_by
        self.prog = prog or f"python -m {name}"
        self.command = list(command or (sys.executable, "-m", name))
        self.pipelines: dict[str, Pipeline] = {pipeline.name: pipeline for pipeline in BUILT_IN}
        for pipeline in pipelines:
            self.add_pipeline(pipeline)

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Add an app's own pipeline (or replace a built-in one of the same name)."""
        self.pipelines[pipeline.name] = pipeline

    def run(self, argv: Sequence[str] | None = None) -> int:
        """Parse ``argv`` (default: the command line), run the pipeline, return the exit status."""
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(self.prog, list(self.pipelines.values())).parse_args(argv)
        rank, fail, logger = 0, _fail, logging.getLogger(self.name)
        try:
            group = group_from_environment()
            rank = group.rank
            fail = _fail if group.is_main else (lambda message: _fail(message, f"rank {rank}: "))
            logger = setup_logging(self.name, args.verbose, rank)
            if group.active:  # c10d's own warnings (a socket that timed out...) would bury the one-line errors
                os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
            pipeline = self.pipelines[args.pipeline]
            if group.active and not pipeline.distributed:
                raise UserError(f"{pipeline.name} runs in one process, run it without torchrun")
            devices = getattr(args, "device", None)
            if pipeline.distributed and isinstance(devices, list) and len(devices) > 1 and not group.active:
                from .launcher import launch

                return launch(self.command + argv, devices, args.dist_timeout)
            return pipeline.run(Context(args, self, logger))
        except UserError as error:
            if args.debug:
                raise
            logger.error(str(error))
            fail(str(error))
            return 2
        except Interrupted as stop:
            logger.info(f"Interrupted: {stop}")
            if not rank:
                print(f"interrupted: {stop}; run the same {args.pipeline} command to continue", file=sys.stderr,
                      flush=True)
            return 128 + stop.signum
        except KeyboardInterrupt:
            fail("interrupted, run the same command again to continue")
            return 130
        except HookError as error:  # the app's code, not the user's input
            if args.debug:
                raise
            logger.error(str(error))
            fail(str(error))
            return 1
        except Exception as error:  # a bug, not bad input: still one line, with a pointer to the traceback
            if args.debug:
                raise
            if _lost_a_peer(error):
                logger.error(f"lost contact with the other processes: {error}")
                fail("lost contact with the other processes (one of them stopped or failed: see its error), run "
                     "the same command again to go on from the last saved state")
                return 1
            logger.exception("unexpected error")
            fail(f"unexpected {type(error).__name__}: {error}, rerun with --debug for the traceback and report it")
            return 1
        finally:
            if "torch.distributed" in sys.modules:
                from .distributed import leave

                leave()


def _lost_a_peer(error: Exception) -> bool:
    """Whether ``error`` is a collective failing because another process of the group went away."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is None or not distributed.is_available() or not distributed.is_initialized():
        return False
    return isinstance(error, distributed.DistError) or \
        (isinstance(error, RuntimeError) and any(sign in str(error) for sign in ("by peer", "remote worker")))


def _fail(message: str, prefix: str = "") -> None:
    sys.stderr.write(prefix + "error: " + " ".join(message.split()) + "\n")  # one write: processes share stderr
    sys.stderr.flush()
