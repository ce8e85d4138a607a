"""``tensorboard``: TensorBoard on one experiment's logs (or all, ``--compare``), as a subprocess started from an
argument list, never through a shell. No torch."""

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port, default=6006, help="port (default: 6006)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--compare", action="store_true", help="show all experiments of --experiments-path")


def run(ctx: Context) -> int:
    args = ctx.args
    if args.compare:
        logdir = Path(args.experiments_path)
        if not logdir.is_dir():
            raise UserError(f"experiments folder {logdir} does not exist, create an experiment with init first")
    else:
        logdir = ctx.experiment().tensorboard_path
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("TensorBoard is not installed, install it with 'pip install tensorboard'")
    listen(args.host, args.port).close()  # a busy port or a bad host is one line here, not TensorBoard's output
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", args.host, "--port", str(args.port)]
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
