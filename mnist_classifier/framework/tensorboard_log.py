"""What the framework sends to TensorBoard: step losses, epoch metrics by split, the configuration, the model's
graph and the HParams row. An app adds its own (images...) through ``writer``, the same ``SummaryWriter``. Only the
process that writes (rank 0) has one: elsewhere every call goes nowhere, so one run writes one event file.

Epoch metrics named ``<split>_<name>`` become ``<name>/epoch/<split>`` (``validation_accuracy`` ->
``accuracy/epoch/validation``), and ``lr`` becomes ``lr/epoch``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .configuration import Configuration
from .experiment import Experiment
from .metrics import SPLITS, Metric
from .reports import flatten

if TYPE_CHECKING:
    import torch
    from torch.utils.tensorboard import SummaryWriter

_SPLIT_METRIC_RE = re.compile(rf"({'|'.join(SPLITS)})_(\w+)")


def _hparams(values: dict[str, Any]) -> dict[str, Any]:
    """The configuration as HParams takes it: dotted keys of numbers, strings and bools (anything else as JSON)."""
    return {key: value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
            for key, value in flatten(values)}


class TensorBoardLog:
    def __init__(self, experiment: Experiment, writes: bool = True) -> None:
        self.experiment = experiment
        self.writes = writes
        self._writer: SummaryWriter | None = None

    @property
    def writer(self) -> SummaryWriter:
        """The experiment's ``SummaryWriter``, created on first use (importing it is slow); where this process
        does not write, a stand-in whose every call does nothing."""
        if self._writer is None:
            if not self.writes:
                return _Discard()
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.experiment.tensorboard_path), flush_secs=10)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def step_losses(self, losses: list[float], first_iteration: int) -> None:
        for offset, value in enumerate(losses):
            self.writer.add_scalar("loss/iteration/train", value, first_iteration + offset)

    def epoch_metrics(self, metrics: dict[str, Any], epoch: int) -> None:
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if key == "lr":
                self.writer.add_scalar("lr/epoch", value, epoch)
            elif match := _SPLIT_METRIC_RE.fullmatch(key):
                self.writer.add_scalar(f"{match.group(2)}/epoch/{match.group(1)}", value, epoch)

    def configuration(self, configuration: Configuration, epoch: int) -> None:
        text = json.dumps({"seed": configuration.seed, **configuration.values}, indent=2)
        self.writer.add_text("config", "```\n" + text + "\n```", epoch)

    def graph(self, model: torch.nn.Module, example: torch.Tensor) -> None:
        """The model's graph, traced without touching the RNG the training goes on with."""
        import torch

        devices = [example.device] if example.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), warnings.catch_warnings(), _eager(model):
            warnings.simplefilter("ignore")  # add_graph traces with torch.jit, which warns it is old
            model.eval()
            self.writer.add_graph(model, example)

    def hparams(self, configuration: Configuration, metrics: dict[str, Any], judged_by: Metric, epoch: int) -> None:
        """The configuration against the judged metric on validation and test, so ``tensorboard --compare`` ranks
        experiments by it."""
        from torch.utils.tensorboard.summary import hparams

        values = {"seed": configuration.seed, **_hparams(configuration.values)}
        keys = {f"{judged_by.name}/epoch/{split}": f"{split}_{judged_by.name}" for split in ("validation", "test")}
        shown = {tag: metrics[key] for tag, key in keys.items() if isinstance(metrics.get(key), (int, float))}
        if shown:
            writer = self.writer._get_file_writer()
            for summary in hparams(values, shown):
                writer.add_summary(summary, epoch)


class _Discard:
    """Accepts any call and does nothing (``SummaryWriter``'s stand-in where another process writes)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: _Discard()


@contextmanager
def _eager(module: torch.nn.Module) -> Iterator[None]:
    """Calls of ``module`` skip what ``Module.compile`` installed: ``torch.jit.trace`` (TensorBoard's graph)
    refuses a module compiled in place, on every device."""
    compiled = getattr(module, "_compiled_call_impl", None)
    module._compiled_call_impl = None
    try:
        yield
    finally:
        module._compiled_call_impl = compiled
