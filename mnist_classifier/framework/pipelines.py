"""The pipelines behind the CLI: init, train, test, test_sample, info, create_release, tensorboard.

Each one checks everything it can (experiment, epoch, device, data, checkpoint) before it starts writing to the
experiment, so a command that fails on bad input leaves the folder as it was. ``info`` and ``tensorboard`` never
import torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .configuration import Configuration, apply_overrides, read_json_file, validate
from .errors import UserError
from .experiment import Experiment
from .history import best_epoch
from .logs import attach_log_file

if TYPE_CHECKING:
    import torch

    from .data import Data
    from .runner import Runner


@dataclass
class Context:
    args: argparse.Namespace
    make_data: Callable[[], "Data"]
    make_runner: Callable[[], "Runner"]
    logger: logging.Logger

    def report(self, line: str) -> None:
        """A result the user asked for: logged, and printed even without ``--verbose``."""
        self.logger.info(line)
        self.show(line)

    def show(self, line: str) -> None:
        """Print a line that was already logged, unless ``--verbose`` has printed it."""
        if not self.args.verbose:
            print(line, flush=True)


def _experiment(ctx: Context) -> Experiment:
    experiment = Experiment(ctx.args.experiments_path, ctx.args.experiment_name)
    experiment.load()
    return experiment


def _data(ctx: Context, configuration: Configuration, experiment: Experiment | None = None,
          num_workers: int | None = None, device: "torch.device | None" = None) -> "Data":
    """The app's ``Data``: its persisted state restored, and datasets and loaders built when ``num_workers`` is set."""
    data = ctx.make_data()
    data.init(configuration, ctx.logger, device)
    if experiment is not None:
        data.load(experiment.load_data_state())
    if num_workers is not None:
        data.load_datasets(Path(ctx.args.data_path))
        data.load_loaders(Path(ctx.args.data_path), num_workers)
    return data


def _device(ctx: Context) -> "torch.device":
    from .devices import resolve_device

    return resolve_device(getattr(ctx.args, "device", None))


def _init_runner(ctx: Context, runner: "Runner", experiment: Experiment, data: "Data",
                 device: "torch.device", training: bool) -> None:
    from .progress import wanted

    runner.init(experiment, data, ctx.logger, device, precision=getattr(ctx.args, "precision", "fp32"),
                compile_model=getattr(ctx.args, "compile", False), training=training)
    runner.show_progress = wanted(getattr(ctx.args, "no_progress", True))


@contextmanager
def _stop_on_signals(runner: "Runner") -> Iterator[None]:
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


def init(ctx: Context) -> int:
    args = ctx.args
    experiment = Experiment(args.experiments_path, args.experiment_name)
    if experiment.path.exists():
        raise UserError(f"experiment '{experiment.name}' already exists in {args.experiments_path}, "
                        "choose another name or delete that folder")
    config = read_json_file(args.config_path, "configuration file")
    schema = read_json_file(args.config_schema_file, "schema file")
    if not isinstance(schema, dict):
        raise UserError(f"schema file {args.config_schema_file} must hold a JSON object, fix the file")
    config, origins = apply_overrides(config, args.set or [])
    values = validate(config, schema, f"configuration file {args.config_path}", origins)
    configuration = Configuration(values, args.seed)
    ctx.logger.info(f"Creating experiment '{experiment.name}' with seed {args.seed}")
    data = _data(ctx, configuration)
    data.create(Path(args.data_path))
    experiment.create(values, args.seed, data.save(), overrides=args.set or [])
    attach_log_file(ctx.logger, experiment.log_file)
    ctx.report(f"Created experiment '{experiment.name}' in {experiment.path}")
    return 0


def train(ctx: Context) -> int:
    args = ctx.args
    experiment = _experiment(ctx)
    if args.epoch is not None:
        experiment.resolve_epoch(args.epoch)
    device = _device(ctx)
    runner = ctx.make_runner()
    with experiment.lock("train"), _stop_on_signals(runner):
        experiment.remove_temporaries()
        data = _data(ctx, experiment.configuration, experiment, args.num_workers, device)
        _init_runner(ctx, runner, experiment, data, device, training=True)
        runner.load_states(args.epoch, device)
        attach_log_file(ctx.logger, experiment.log_file)
        ctx.logger.info(f"Training '{experiment.name}' on {device} from epoch {runner.counters['epoch']} "
                        f"to {args.max_epochs}")
        try:
            runner.train(args.max_epochs, args.log_period, device)
        finally:
            experiment.close()
    for line in train_summary(experiment, runner.history):
        ctx.report(line)
    return 0


def train_summary(experiment: Experiment, history: list[dict[str, Any]]) -> list[str]:
    """The end of ``train`` on one screen: where it stopped, the best epoch and its accuracies, time per epoch and
    the checkpoints left."""
    if not history:
        return [f"'{experiment.name}' has no finished epoch yet"]
    last = history[-1]
    stopped = " (stopped early: the validation loss stopped improving)" if last.get("stopped_early") else ""
    lines = [f"Trained '{experiment.name}' to epoch {last['epoch']}{stopped}"]
    best = best_epoch(history)
    if best is not None:
        entry = next(item for item in history if item.get("epoch") == best)
        shown = [key for key in entry if key.endswith("_accuracy")] + ["validation_loss"]
        metrics = [f"{key.replace('_', ' ')} {_format_metric(key, entry[key])}"
                   for key in sorted(shown, key=lambda k: (not k.endswith("accuracy"), not k.startswith("validation")))
                   if isinstance(entry.get(key), (int, float))]
        lines.append(f"Best epoch {best}: " + " | ".join(metrics))
    timed = [item for item in history if isinstance(item.get("epoch_seconds"), (int, float))]
    if timed:
        mean = sum(item["epoch_seconds"] for item in timed) / len(timed)
        steps = [item["train_seconds"] for item in timed if isinstance(item.get("train_seconds"), (int, float))]
        detail = f", of which training steps {_seconds(sum(steps) / len(steps))}" if steps else ""
        epochs = f"{len(timed)} epoch" + ("s" if len(timed) > 1 else "")
        lines.append(f"Time per epoch: {_seconds(mean)} (mean of {epochs}{detail})")
    kept = experiment.checkpoint_epochs()
    if kept:
        lines.append("Checkpoints kept: epochs " + ", ".join(map(str, kept))
                     + (f" (best {best})" if best in kept else ""))
    return lines


def _loaded_runner(ctx: Context, experiment: Experiment, epoch: int, device: "torch.device",
                   num_workers: int | None) -> "Runner":
    data = _data(ctx, experiment.configuration, experiment, num_workers, device)
    runner = ctx.make_runner()
    _init_runner(ctx, runner, experiment, data, device, training=False)
    runner.load_states(epoch, device)
    return runner


def test(ctx: Context) -> int:
    experiment = _experiment(ctx)
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    device = _device(ctx)
    with experiment.lock("test"):
        runner = _loaded_runner(ctx, experiment, epoch, device, ctx.args.num_workers)
        attach_log_file(ctx.logger, experiment.log_file)
        try:
            result = runner.test(None, device)
        finally:
            experiment.close()
    ctx.show(result["summary"])
    return 0


def test_sample(ctx: Context) -> int:
    experiment = _experiment(ctx)
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    runner = _loaded_runner(ctx, experiment, epoch, _device(ctx), 0)
    result = runner.test_sample(ctx.args.sample, None, runner.device)
    attach_log_file(ctx.logger, experiment.log_file)
    ctx.show(result["summary"])
    return 0


def create_release(ctx: Context) -> int:
    experiment = _experiment(ctx)
    epoch = experiment.resolve_epoch(ctx.args.epoch)
    with experiment.lock("create_release"):
        runner = _loaded_runner(ctx, experiment, epoch, _device(ctx), None)
        attach_log_file(ctx.logger, experiment.log_file)
        path = runner.create_release(epoch)
    ctx.show(f"Saved release {path}")
    return 0


def info(ctx: Context) -> int:
    summary = _experiment(ctx).info()
    print(json.dumps(summary, indent=2) if ctx.args.json else format_info(summary))
    return 0


def format_info(summary: dict[str, Any]) -> str:
    lines = [f"Experiment '{summary['name']}' in {summary['path']}", f"Seed: {summary['seed']}", "Configuration:"]
    lines += [f"  {key} = {json.dumps(value)}" for key, value in _flatten(summary["config"])]
    if summary.get("overrides"):
        lines.append("Set at init: " + " ".join(f"--set {item}" for item in summary["overrides"]))
    if summary.get("data"):
        lines.append("Data: " + " | ".join(f"{key.replace('_', ' ')} {_format_value(value)}"
                                           for key, value in summary["data"].items()))
    lines.append("Splits: " + ", ".join(f"{name} {size}" for name, size in summary["splits"].items()))
    if summary["checkpoints"]:
        best = summary.get("best_epoch")
        lines.append("Checkpoints:" + (f" (best: epoch {best}, by validation accuracy)" if best is not None else ""))
    else:
        lines.append("Checkpoints: none yet (run train)")
    lines += [_format_checkpoint(checkpoint) for checkpoint in summary["checkpoints"]]
    lines.append("Releases:" if summary["releases"] else "Releases: none (run create_release)")
    lines += [_format_checkpoint(release) for release in summary["releases"]]
    if summary.get("interrupted"):
        lines.append("Interrupted: an epoch was stopped part-way; train resumes it from the batch it reached")
    if summary.get("damaged"):
        lines.append("Damaged files set aside: " + ", ".join(summary["damaged"]))
    return "\n".join(lines)


def _format_checkpoint(entry: dict[str, Any]) -> str:
    metrics = [f"{key.replace('_', ' ')} {_format_metric(key, value)}" for key, value in entry.items()
               if key not in ("epoch", "file") and isinstance(value, (int, float)) and not isinstance(value, bool)]
    flags = [key.replace("_", " ") for key in ("stopped_early",) if entry.get(key) is True]
    marker = " [best]" if entry.get("best") else ""
    return (f"  epoch {entry['epoch']} ({entry['file']}){marker}: "
            + (" | ".join(metrics + flags) or "no metrics recorded"))


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _format_metric(key: str, value: float) -> str:
    if key.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    if key.endswith("seconds"):
        return f"{value:.1f}"
    return f"{value:.4g}"


def _flatten(values: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(values, dict):
        return [(prefix, values)]
    items: list[tuple[str, Any]] = []
    for key, value in values.items():
        items += _flatten(value, f"{prefix}.{key}" if prefix else key)
    return items


def tensorboard(ctx: Context) -> int:
    import importlib.util

    args = ctx.args
    if args.compare:
        logdir = Path(args.experiments_path)
        if not logdir.is_dir():
            raise UserError(f"experiments folder {logdir} does not exist, create an experiment with init first")
    else:
        logdir = _experiment(ctx).tensorboard_path
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("TensorBoard is not installed, install it with 'pip install tensorboard'")
    try:
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as error:
        reason = str(error.strerror or error).split(" (while attempting")[0]
        raise UserError(f"cannot listen on {args.host}:{args.port} ({reason}), choose another --port or --host"
                        ) from None
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", args.host, "--port", str(args.port)]
    ctx.report(f"TensorBoard for {logdir} at http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    process = subprocess.Popen(command)  # an argument list: no shell ever sees the paths
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
