"""The ``serve`` pipeline: a release (or an experiment's checkpoint) as a web page to draw on and an HTTP API,
served by uvicorn on loopback unless ``--host`` says otherwise. The page and the API are in ``web.py``."""

from __future__ import annotations

import argparse
import importlib.util
import signal
from pathlib import Path

from ..framework import Context, Pipeline, UserError
from ..framework.cli import add_epoch, int_at_least
from ..framework.network import listen, url
from .predict import load_model

WEB_PACKAGES = ("starlette", "uvicorn", "multipart")


def any_port(text: str) -> int:
    """An argparse type: a TCP port, or 0 for any free one."""
    value = int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", help="a release file, or an export folder or its model.onnx (run on ONNX "
                                           "Runtime, without torch); then no experiment or dataset is needed")
    add_epoch(parser, "serve, with --experiment-name")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=any_port, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument("--max-upload-mb", type=int_at_least(1), default=10, metavar="MB",
                        help="largest request body accepted, in MiB (default: 10)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


class _Stop(Exception):  # noqa: N818 (a signal, not an error)
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def run(ctx: Context) -> int:
    missing = [name for name in WEB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"serve needs {', '.join(missing)}, install them with pip install 'mnist_classifier[serve]'")
    import uvicorn

    from ..web.app import create_web_app

    args = ctx.args
    model = load_model(ctx)
    source = str(Path(args.release)) if args.release else f"{args.experiment_name}, epoch {model.epoch}"
    app = create_web_app(model, source, args.max_upload_mb * 2**20)
    sock = listen(args.host, args.port)
    config = uvicorn.Config(app, log_level="warning", access_log=args.verbose, lifespan="off",
                            timeout_graceful_shutdown=3)
    ctx.report(f"serving {source} at {url(sock)} (Ctrl-C to stop)")
    previous = signal.signal(signal.SIGTERM, _stop)  # uvicorn shuts down, then raises the signal it caught again
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    ctx.report("stopped serving")
    return 0


SERVE = Pipeline("serve", "serve a release as a web page to draw on and an HTTP API", add_arguments, run)
