"""The ``Runner`` base class: the hooks an application fills in, each with its contract in its docstring.

As in Skeltorch. The framework calls the hooks (``loop.py`` trains, the pipelines test and release), checks what
each returns (``contracts.py``, a ``HookError`` naming the hook), keeps the training state (``training_state.py``)
and runs one or many processes (``strategy.py``). ``docs/framework.md`` is the guide to all of them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from . import contracts
from .data import Data
from .distributed import sum_over_processes
from .errors import HookNotImplementedError, UserError
from .experiment import Experiment
from .metrics import VALIDATION_LOSS, Metric, epochs_without_improvement
from .progress import Progress
from .results import SampleResult, TestResult
from .runtime import Runtime
from .sampling import loader_sampler
from .strategy import SingleProcess, make_strategy
from .tensorboard_log import TensorBoardLog
from .training_state import Checkpoint, CheckpointManager, Release, ResumePoint


class Runner:
    HOOKS = ("init_model", "init_optimizer", "init_others", "train_step", "validate", "test", "test_sample",
             "train_before_epoch_tasks", "train_iteration_log", "train_after_step", "train_after_epoch_tasks",
             "train_early_stopping", "early_stopping_patience", "checkpoints_to_keep", "save_states_others",
             "load_states_others", "release_others", "example_input")
    early_stopping_metric: Metric | None = None  # what patience watches; None: the metric the app is judged by

    def __init__(self) -> None:
        self.experiment: Experiment | None = None
        self.data: Data | None = None
        self.logger: logging.Logger = logging.getLogger(__name__)
        self.runtime: Runtime | None = None
        self.strategy: SingleProcess = SingleProcess()
        self.judged_by: Metric = VALIDATION_LOSS  # set from the App's declaration by ``init``
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.counters: dict[str, int] = {"epoch": 0, "iteration": 0}
        self.history: list[dict[str, Any]] = []  # one metrics dict per finished epoch
        self.metrics: dict[str, Any] = {}  # the epoch in progress
        self.stop_signal: int | None = None  # set by a SIGINT/SIGTERM handler: stop after the current step
        self.resume_point: ResumePoint | None = None  # where an interrupted epoch stopped
        self.checkpoints: CheckpointManager | None = None
        self.tensorboard: TensorBoardLog | None = None

    def init(self, experiment: Experiment, data: Data, logger: logging.Logger, runtime: Runtime,
             judged_by: Metric = VALIDATION_LOSS, training: bool = True) -> None:
        """Build model, optimizer and the rest from a seeded RNG, so a fresh start is reproducible.

        ``training=False`` builds the model alone, for the pipelines that only evaluate: a torch optimizer's first
        parameter group imports ``torch._dynamo``, which costs them 1.5 s for nothing. From here ``self.test``,
        however it is called, checks and records what the class's ``test`` returns.
        """
        self.experiment, self.data, self.logger, self.runtime = experiment, data, logger, runtime
        self.judged_by, self.strategy = judged_by, make_strategy(runtime)
        self.checkpoints = CheckpointManager(experiment, logger, self.strategy)
        self.tensorboard = TensorBoardLog(experiment, writes=self.strategy.is_main)
        torch.manual_seed(experiment.configuration.seed)
        self.init_model(self.device)
        contracts.check_built(self, training=False)
        if training:
            self.init_optimizer(self.device)
            contracts.check_built(self, training=True)
            self.init_others(self.device)
        if runtime.compile_model:  # in place: parameter names, so checkpoints, stay those of the plain model
            self.model.compile()
        self.strategy.setup(self.model, training, experiment.configuration.seed)
        self.test = self._recorded_test  # the instance's test: the class and its super() calls stay the app's

    def close(self) -> None:
        """Flush TensorBoard and drop the strategy's hold on the process group (``train`` and ``test`` call it
        however they end)."""
        self.tensorboard.close()
        self.strategy.close()

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes: the only one, or rank 0 of a group. An app's own files (figures...) are
        written only ``if self.is_main``; ``self.tensorboard.writer`` goes nowhere elsewhere by itself."""
        return self.strategy.is_main

    def autocast(self) -> torch.autocast:
        """The context for forward passes: bf16 autocast with ``--precision bf16``, a no-op otherwise."""
        return self.runtime.autocast()

    def get_conf(self, *keys: str, default: Any = None) -> Any:
        return self.experiment.configuration.get(*keys, default=default)

    def progress(self, split: str, description: str) -> Progress:
        """A progress bar over a split's loader, counting ``Data.unit``s (a no-op unless a person watches)."""
        loader = self.data.loaders[split]
        sampler = loader_sampler(loader)
        total = len(sampler) if hasattr(sampler, "__len__") else len(getattr(loader, "dataset", ()))
        return Progress(self.runtime.show_progress, total, description, unit=self.data.unit)

    # Building ---------------------------------------------------------------------------------------------------
    def init_model(self, device: torch.device) -> None:
        """First, in every pipeline that computes, after ``torch.manual_seed(seed)``: set ``self.model``, a
        ``torch.nn.Module`` on ``device``, built from the configuration (``self.get_conf``). Required."""
        raise HookNotImplementedError(f"{type(self).__name__}.init_model")

    def init_optimizer(self, device: torch.device) -> None:
        """Training only, after ``init_model``: set ``self.optimizer``, a ``torch.optim.Optimizer`` over
        ``self.model``'s parameters. Required to train."""
        raise HookNotImplementedError(f"{type(self).__name__}.init_optimizer")

    def init_others(self, device: torch.device) -> None:
        """Training only, after ``init_optimizer``: schedulers and anything else training needs (the loaders
        exist). Save their state in ``save_states_others``. The default does nothing."""

    # Checkpoints ------------------------------------------------------------------------------------------------
    def save_states_others(self) -> dict[str, Any]:
        """At every checkpoint: the app's own state (a scheduler's ``state_dict()``...) as a dict of tensors,
        numbers, strings, lists and dicts, read back with ``weights_only``. The default is ``{}``."""
        return {}

    def load_states_others(self, checkpoint: dict[str, Any]) -> None:
        """When training goes on from a checkpoint: restore what ``save_states_others`` returned (``checkpoint``
        is that dict). The default does nothing."""

    def load_states(self, epoch: int | None) -> Checkpoint | None:
        """Restore a checkpoint: ``epoch``, or (``None``) the newest usable state; returns it, or ``None`` for a
        fresh start. Without an optimizer (evaluation) only the model, counters and history. Call it from
        ``test`` and ``test_sample`` when their ``epoch`` is not ``None``; do not override it."""
        found = self.checkpoints.load(epoch)
        if found is None:
            return None
        checkpoint, path = found
        try:
            self.model.load_state_dict(checkpoint.model)
            self.counters, self.history = dict(checkpoint.counters), list(checkpoint.history)
            if self.optimizer is not None:  # built for training: restore everything it continues from
                self.optimizer.load_state_dict(checkpoint.optimizer)
                self.checkpoints.restore_rng(checkpoint, self.experiment.configuration.seed)
                self.load_states_others(checkpoint.others)
            self.resume_point = checkpoint.resume_point
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"checkpoint {path} does not fit this experiment ({reason}), use another epoch") from None
        if self.resume_point:
            self.logger.info(f"Loaded {path}: epoch {self.resume_point.epoch} resumes after batch "
                             f"{len(self.resume_point.losses)}")
        else:
            self.logger.info(f"Loaded checkpoint {path} (epoch {self.counters['epoch']})")
        return checkpoint

    def checkpoints_to_keep(self) -> int | None:
        """After each checkpoint is saved: keep only the newest K epoch checkpoints plus the best one by the
        judged metric (a whole number of at least 1); ``None``, the default, keeps all."""
        return None

    # Training ---------------------------------------------------------------------------------------------------
    def train_before_epoch_tasks(self, device: torch.device) -> None:
        """Before each epoch's first step, after the loop has set the loaders' epoch and recorded
        ``self.metrics['lr']``. The default logs the epoch and its learning rate."""
        self.logger.info(f"Epoch {self.counters['epoch']} | training with lr {self.metrics['lr']:.6g}")

    def train_step(self, it_data: Any, device: torch.device) -> torch.Tensor:
        """For each batch of the train loader (``it_data``, as the loader serves it), in train mode under
        ``self.autocast()``: return its loss, a scalar tensor that requires grad. The loop does ``zero_grad``,
        ``backward`` and the optimizer step; in a group ``self.model`` is then the DDP wrapper. Required."""
        raise HookNotImplementedError(f"{type(self).__name__}.train_step")

    def train_after_step(self, device: torch.device) -> None:
        """After each optimizer step, before the stop vote, so an interruption saves what it changed: step a
        per-step learning-rate schedule (one-cycle) here. Draw no random numbers unless every resume must."""

    def train_iteration_log(self, losses: list[float], log_period: int, device: torch.device) -> None:
        """Every ``log_period`` iterations, with every loss of the epoch so far (each the mean over the
        processes). The default logs the mean loss of the period; TensorBoard gets every step anyway."""
        loss = sum(losses[-log_period:]) / len(losses[-log_period:])
        self.logger.info(f"Epoch {self.counters['epoch']} | iteration {self.counters['iteration']} | loss {loss:.4f}")

    def validate(self, device: torch.device) -> dict[str, float]:
        """After each epoch's steps, in eval and inference mode: the validation split's metrics, finite numbers
        by name, recorded as ``validation_<name>``. In a group each process sees its shard: reduce sums and counts
        with ``sum_over_processes`` so every process returns the same numbers. The default is the mean
        ``train_step`` loss over the validation batches."""
        with self.autocast():
            losses = [self.train_step(it_data, device) for it_data in self.data.loaders["validation"]]
        losses = torch.stack(losses) if losses else torch.zeros(0, device=device)  # a shard may be empty
        if not self.strategy.active:
            return {"loss": losses.mean().item()}
        totals = sum_over_processes(torch.stack([losses.double().sum(), losses.new_tensor(len(losses)).double()]))
        return {"loss": (totals[0] / totals[1]).item()}

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        """After validation, whose metrics the loop has recorded, before the checkpoint: step per-epoch schedulers
        and call ``self.test(None, device)`` here to record test metrics for every epoch. The default does
        nothing."""

    def early_stopping_patience(self) -> int | None:
        """Stop after this many epochs in a row without a better ``early_stopping_metric`` (a whole number of at
        least 1); ``None``, the default, never stops early."""
        return None

    def train_early_stopping(self) -> bool:
        """After each epoch (its metrics are ``self.history[-1]``): ``True`` ends training there, for good (in a
        group, when any process says so). Set ``self.metrics['stop_reason']`` to say why. The default applies
        ``early_stopping_patience`` to ``early_stopping_metric``, else to the judged metric."""
        patience = contracts.count_or_none(self, "early_stopping_patience", self.early_stopping_patience())
        metric = self.early_stopping_metric or self.judged_by
        if patience is not None:
            contracts.check_watched_metric(self, metric.key)
        if patience is None or epochs_without_improvement(self.history, metric) < patience:
            return False
        better = "higher" if metric.higher_is_better else "lower"
        self.logger.info(f"No {better} {metric.label} in the last {patience} epochs: stopping early")
        self.metrics["stop_reason"] = f"the {metric.label} stopped improving"
        return True

    def example_input(self, device: torch.device) -> torch.Tensor | None:
        """At a fresh start of training: a model input for TensorBoard's graph; ``None``, the default, skips it."""
        return None

    # Testing ----------------------------------------------------------------------------------------------------
    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        """The ``test`` pipeline, and whoever calls ``self.test(None, device)`` after an epoch: evaluate the test
        split. First restore ``epoch`` with ``self.load_states(epoch)`` when it is not ``None`` (``None``: the
        model as it is). Return a ``TestResult``; the framework logs its summary, records its metrics as
        ``test_<name>``, sends them to TensorBoard and writes ``results/test-<epoch>.json``. Required to test."""
        raise HookNotImplementedError(f"{type(self).__name__}.test")

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> SampleResult:
        """The ``test_sample`` pipeline: one test example's prediction, restoring ``epoch`` as ``test`` does.
        Return a ``SampleResult``. Required for that pipeline."""
        raise HookNotImplementedError(f"{type(self).__name__}.test_sample")

    def _recorded_test(self, epoch: int | None, device: torch.device) -> TestResult:
        """The class's ``test``, its result checked, then logged, added to the epoch's metrics and TensorBoard,
        and written to ``results/test-<epoch>.json``."""
        result = contracts.check_test_result(self, type(self).test(self, epoch, device), epoch, self.strategy)
        tested, metrics = self.counters["epoch"], {f"test_{name}": value for name, value in result.metrics.items()}
        self.logger.info(result.summary)
        self.metrics.update(metrics)
        self.tensorboard.epoch_metrics(metrics, tested)
        if self.is_main:
            self.experiment.write_test_results(tested, {"epoch": tested, **result.metrics, **result.details})
        return result

    # Releases ---------------------------------------------------------------------------------------------------
    def release_others(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """``create_release``, with ``checkpoint`` loaded and the validation loader built: what a release needs
        besides the weights to be used on its own (architecture, normalisation...), as a dict of tensors,
        numbers, strings, lists and dicts. The default is ``{}``."""
        return {}

    def release_state(self, checkpoint: Checkpoint) -> Release:
        """The release of a loaded checkpoint: its weights and ``release_others``, no training state."""
        contents = contracts.check_plain(self, "release_others", self.release_others(checkpoint))
        contracts.check_release_contents(self, contents)
        return Release(checkpoint.epoch, checkpoint.model, contents)

    def create_release(self, checkpoint: Checkpoint) -> Path:
        """Write ``<epoch>.checkpoint.release.pkl`` (see ``release_state``)."""
        return self.checkpoints.save_release(self.release_state(checkpoint))
