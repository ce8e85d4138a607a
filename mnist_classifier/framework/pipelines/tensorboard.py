"""``tensorboard``: TensorBoard on one experiment's logs (a sweep's: all its trials; every experiment with
``--compare``), as a subprocess started from an argument list, never through a shell. No torch."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from ..cli import Pipeline, port
from ..context import Context
from ..errors import UserError
from ..network import listen
from ..sweep import Sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port, default=6006, help="port (default: 6006)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--compare", action="store_true", help="show all experiments of --experiments-path")


def run(ctx: Context) -> int:
    args = ctx.args
    sweep = None if args.compare else Sweep(args.experiments_path, args.experiment_name)
    if args.compare:
        logdir = Path(args.experiments_path)
        if not logdir.is_dir():
            raise UserError(f"experiments folder {logdir} does not exist, create an experiment with init first")
        where = ["--logdir", str(logdir)]
    elif sweep.exists():  # every trial, named as compare names it, so HParams ranks them side by side
        logdir, trials = sweep.path, sweep.trial_names()
        if not trials:
            raise UserError(f"sweep '{sweep.name}' has no trial yet, run it first")
        where = ["--logdir_spec", ",".join(f"{name}:{Path(args.experiments_path) / name / 'tensorboard'}"
                                           for name in trials)]
    else:
        logdir = ctx.experiment().tensorboard_path
        where = ["--logdir", str(logdir)]
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("TensorBoard is not installed, install it with 'pip install tensorboard'")
    listen(args.host, args.port).close()  # a busy port or a bad host is one line here, not TensorBoard's output
    command = [sys.executable, "-m", "tensorboard.main", *where, "--host", args.host, "--port", str(args.port)]
    ctx.report(f"TensorBoard for {logdir} at http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    process = subprocess.Popen(command)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


PIPELINE = Pipeline("tensorboard", "run TensorBoard on the experiment's logs", add_arguments, run)
