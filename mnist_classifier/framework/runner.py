"""The ``Runner`` base class: the hooks an application fills in, and the training loop that calls them.

Hooks, as in Skeltorch: ``init_model``, ``init_optimizer``, ``init_others``, ``train_step``, ``validate``,
``train_before_epoch_tasks``, ``train_iteration_log``, ``train_after_epoch_tasks``, ``train_early_stopping``,
``save_states_others``, ``load_states_others``, ``test``, ``test_sample``, ``release_others``, plus
``early_stopping_patience``, ``checkpoints_to_keep`` and ``example_input``. The README's framework guide lists
when each runs, what it receives and what it must return; the framework checks each return and names the hook
that got it wrong (``HookError``). Files on disk are ``checkpoint_manager.py``'s job, TensorBoard
``tensorboard_log.py``'s.

In a group of processes (torchrun) every process runs the same loop on its shard of the data, with the model
wrapped in ``DistributedDataParallel`` for ``train_step``; they agree on when to stop, reduce the losses they
log, and only the first (``is_main``) writes. The collectives sit at points every process reaches.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .checkpoint_manager import CheckpointManager
from .data import Data
from .distributed import gather_tensors, max_over_processes, share_text, sum_over_processes
from .errors import HookError, HookNotImplementedError, Interrupted, UserError
from .experiment import Experiment
from .metrics import VALIDATION_LOSS, Metric, best_epoch, epochs_without_improvement, number
from .progress import Progress, count_items
from .results import SampleResult, TestResult
from .runtime import Runtime
from .sampling import epoch_seed, is_epoch_seeded, loader_sampler, process_seed
from .storage import is_json, write_json
from .tensorboard_log import TensorBoardLog

CHECKPOINT_FORMAT = 1


class Runner:
    early_stopping_metric: Metric | None = None  # what patience watches; None: the metric the app is judged by

    def __init__(self) -> None:
        self.experiment: Experiment | None = None
        self.data: Data | None = None
        self.logger: logging.Logger = logging.getLogger(__name__)
        self.runtime: Runtime | None = None
        self.judged_by: Metric = VALIDATION_LOSS  # set from the App's declaration by ``init``
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.counters: dict[str, int] = {"epoch": 0, "iteration": 0}
        self.history: list[dict[str, Any]] = []  # one metrics dict per finished epoch
        self.metrics: dict[str, Any] = {}  # the epoch in progress
        self.stop_signal: int | None = None  # set by a SIGINT/SIGTERM handler: stop after the current step
        self.resume_point: dict[str, Any] | None = None  # where an interrupted epoch stopped
        self.checkpoints: CheckpointManager | None = None
        self.tensorboard: TensorBoardLog | None = None
        self._tests_running = 0
        self._parallel: torch.nn.Module | None = None  # the DistributedDataParallel wrapper, in a group

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every ``test`` an app defines goes through ``_checked_test``, whoever calls it (the ``test`` pipeline or
        the app's own ``train_after_epoch_tasks``), so its result is checked and recorded the same way."""
        super().__init_subclass__(**kwargs)
        if not getattr(cls.test, "checked_by_the_framework", False):  # defined here, or in a mixin
            cls.test = _checked_test(cls.test)

    def init(self, experiment: Experiment, data: Data, logger: logging.Logger, runtime: Runtime,
             judged_by: Metric = VALIDATION_LOSS, training: bool = True) -> None:
        """Build model, optimizer and the rest from a seeded RNG, so a fresh start is reproducible.

        ``training=False`` builds the model alone, for the pipelines that only evaluate: a torch optimizer's first
        parameter group imports ``torch._dynamo``, which costs them 1.5 s for nothing.
        """
        self.experiment, self.data, self.logger, self.runtime = experiment, data, logger, runtime
        self.judged_by = judged_by
        self.checkpoints = CheckpointManager(experiment, logger, writes=runtime.is_main)
        self.tensorboard = TensorBoardLog(experiment)
        torch.manual_seed(experiment.configuration.seed)
        self.init_model(self.device)
        if not isinstance(self.model, torch.nn.Module):
            raise self.hook_error("init_model", f"left self.model as {type(self.model).__name__}",
                                  "set it to a torch.nn.Module on the device it is given")
        if training:
            self.init_optimizer(self.device)
            if not isinstance(self.optimizer, torch.optim.Optimizer):
                raise self.hook_error("init_optimizer", f"left self.optimizer as {type(self.optimizer).__name__}",
                                      "set it to a torch.optim.Optimizer over self.model's parameters")
            self.init_others(self.device)
        if runtime.compile_model:  # in place: parameter names, so checkpoints, stay those of the plain model
            self.model.compile()
        if runtime.group.active:
            self._join_group(training)

    def _join_group(self, training: bool) -> None:
        """Wrap the model for training (its gradients are averaged over the processes in ``backward``), and give
        each process its own random numbers (dropout masks...) from here."""
        from torch.nn.parallel import DistributedDataParallel

        if training:
            self._parallel = DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        torch.manual_seed(process_seed(self.experiment.configuration.seed, self.runtime.group.rank))

    def close(self) -> None:
        """Drop the ``DistributedDataParallel`` wrapper while its process group still exists (``train`` calls this
        however training ends)."""
        self._parallel = None

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes: the only one, or rank 0 of a group. An app's own files (figures...) are
        written only ``if self.is_main``; TensorBoard calls elsewhere go nowhere by themselves."""
        return self.runtime.is_main

    def autocast(self) -> torch.autocast:
        """The context for forward passes: bf16 autocast with ``--precision bf16``, a no-op otherwise."""
        return self.runtime.autocast()

    def get_conf(self, *keys: str, default: Any = None) -> Any:
        return self.experiment.configuration.get(*keys, default=default)

    def hook_error(self, hook: str, what: str, instead: str) -> HookError:
        return HookError(f"{type(self).__name__}.{hook} {what}, {instead} (see the README's framework guide)")

    # Hooks to implement -----------------------------------------------------------------------------------------
    def init_model(self, device: torch.device) -> None:
        """Set ``self.model`` (a ``torch.nn.Module``) on ``device``."""
        raise HookNotImplementedError(f"{type(self).__name__}.init_model")

    def init_optimizer(self, device: torch.device) -> None:
        """Set ``self.optimizer`` over ``self.model``'s parameters (training only)."""
        raise HookNotImplementedError(f"{type(self).__name__}.init_optimizer")

    def init_others(self, device: torch.device) -> None:
        """Schedulers and anything else training needs; save their state in ``save_states_others``."""

    def save_states_others(self) -> dict[str, Any]:
        """Tensors, numbers, strings, lists and dicts to add to each checkpoint (read back with weights_only)."""
        return {}

    def load_states_others(self, checkpoint: dict[str, Any]) -> None:
        """Restore what ``save_states_others`` returned."""

    def train_step(self, it_data: Any, device: torch.device) -> torch.Tensor:
        """The loss of one batch as a scalar tensor; the loop does zero_grad, backward and the optimizer step."""
        raise HookNotImplementedError(f"{type(self).__name__}.train_step")

    def validate(self, device: torch.device) -> dict[str, float]:
        """Metrics of the validation split by name, recorded as ``validation_<name>``; runs in eval and inference
        mode. In a group each process sees its shard: reduce sums and counts with ``sum_over_processes`` so every
        process returns the same numbers. The default is the mean ``train_step`` loss over the batches."""
        with self.autocast():
            losses = [self.train_step(it_data, device) for it_data in self.data.loaders["validation"]]
        losses = torch.stack(losses) if losses else torch.zeros(0, device=device)  # a shard may be empty
        if not self.runtime.group.active:
            return {"loss": losses.mean().item()}
        totals = sum_over_processes(torch.stack([losses.double().sum(), losses.new_tensor(len(losses)).double()]))
        return {"loss": (totals[0] / totals[1]).item()}

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        """Evaluate on the test split: first restore ``epoch`` with ``self.load_states(epoch)`` when it is not
        ``None`` (``None``: the model as it is, e.g. after an epoch of training). Return a ``TestResult``."""
        raise HookNotImplementedError(f"{type(self).__name__}.test")

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> SampleResult:
        """One test example's prediction, restoring ``epoch`` as ``test`` does. Return a ``SampleResult``."""
        raise HookNotImplementedError(f"{type(self).__name__}.test_sample")

    def release_others(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """What a release needs besides the weights to be used on its own (architecture, normalisation...)."""
        return {}

    def early_stopping_patience(self) -> int | None:
        """Stop after this many epochs in a row without a better ``early_stopping_metric``; ``None``: never."""
        return None

    def train_early_stopping(self) -> bool:
        """After each epoch (its metrics are ``self.history[-1]``): ``True`` ends training there, for good. Set
        ``self.metrics['stop_reason']`` to say why. The default applies ``early_stopping_patience``."""
        patience = _count_or_none(self, "early_stopping_patience", self.early_stopping_patience())
        metric = self.early_stopping_metric or self.judged_by
        if patience is not None and metric.key not in self.metrics:
            raise HookError(f"early stopping watches {metric.key}, which epoch {self.counters['epoch']} does not "
                            f"have, set {type(self).__name__}.early_stopping_metric to one of its metrics")
        if patience is None or epochs_without_improvement(self.history, metric) < patience:
            return False
        better = "higher" if metric.higher_is_better else "lower"
        self.logger.info(f"No {better} {metric.label} in the last {patience} epochs: stopping early")
        self.metrics["stop_reason"] = f"the {metric.label} stopped improving"
        return True

    def checkpoints_to_keep(self) -> int | None:
        """Keep only the newest K epoch checkpoints plus the best one; ``None``: keep all."""
        return None

    def example_input(self, device: torch.device) -> torch.Tensor | None:
        """A model input for TensorBoard's graph (drawn once, at a fresh start); ``None`` skips the graph."""
        return None

    def progress(self, split: str, description: str) -> Progress:
        """A progress bar over a split's loader, counting ``Data.unit``s (a no-op unless a person watches)."""
        loader = self.data.loaders[split]
        sampler = loader_sampler(loader)
        total = len(sampler) if hasattr(sampler, "__len__") else len(getattr(loader, "dataset", ()))
        return Progress(self.runtime.show_progress, total, description, unit=self.data.unit)

    # Training ---------------------------------------------------------------------------------------------------
    def train_before_epoch_tasks(self, device: torch.device) -> None:
        """Before each epoch, after the loop has set the loaders' epoch and recorded ``lr``; the default logs."""
        self.logger.info(f"Epoch {self.counters['epoch']} | training with lr {self.metrics['lr']:.6g}")

    def train_iteration_log(self, losses: list[float], log_period: int, device: torch.device) -> None:
        """Every ``log_period`` iterations: the mean loss of the period (TensorBoard gets every step)."""
        loss = sum(losses[-log_period:]) / len(losses[-log_period:])
        self.logger.info(f"Epoch {self.counters['epoch']} | iteration {self.counters['iteration']} | loss {loss:.4f}")

    def train_after_step(self, device: torch.device) -> None:
        """After each optimizer step, before the stop vote, so an interruption saves what it changed: step a
        per-step learning-rate schedule (one-cycle) here. Draw no random numbers unless every resume must."""

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        """After validation, whose metrics the loop has recorded: step schedulers and call
        ``self.test(None, device)`` here. The default does nothing."""

    def train(self, max_epochs: int, log_period: int) -> None:
        """Train from the loaded state up to epoch ``max_epochs``, checkpointing after every epoch.

        After ``stop_signal`` is set (SIGINT/SIGTERM) the current step finishes, the position inside the epoch is
        saved to ``interrupted.checkpoint.pkl`` and ``Interrupted`` is raised; the next ``train`` goes on from there.
        """
        if self.history and self.history[-1].get("stopped_early") and self.resume_point is None:
            self.logger.info(f"Training stopped early at epoch {self.counters['epoch']}; nothing more to do "
                             "(train --epoch E goes on from an earlier epoch)")
            return
        if self.counters["epoch"] >= max_epochs:
            more = " (its interrupted epoch waits)" if self.resume_point else ""
            self.logger.info(f"Already trained to epoch {self.counters['epoch']}{more}; raise --max-epochs to go on")
            return
        self._check_train_order()
        self._log_run_start()
        while self.counters["epoch"] < max_epochs:
            self._stop_if_asked(None)
            self.counters["epoch"] += 1
            resume, self.resume_point = self.resume_point or {}, None
            self.metrics = dict(resume.get("metrics") or {"epoch": self.counters["epoch"]})
            started = time.perf_counter() - resume.get("seconds", 0.0)
            self.metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            self.data.set_epoch(self.counters["epoch"])  # here, not in a hook an app may override
            self.train_before_epoch_tasks(self.device)
            losses, seconds = self._train_epoch(list(resume.get("losses", [])), log_period, started)
            self._share_buffers()
            self.metrics["train_loss"] = sum(losses) / len(losses)
            self.metrics["train_seconds"] = round(seconds, 3)  # the steps alone
            self.model.eval()
            with torch.inference_mode():
                self.metrics.update({f"validation_{k}": v for k, v in self._checked_validate().items()})
            if self.judged_by.split != "test":
                self._check_judged_metric("validate")
            self.tensorboard.epoch_metrics(self.metrics, self.counters["epoch"])
            self.train_after_epoch_tasks(self.device)
            self.metrics["epoch_seconds"] = round(time.perf_counter() - started, 3)
            self._check_judged_metric("test, through TestResult.metrics,")
            self.history.append(self.metrics)
            stop = self.train_early_stopping()
            if self.runtime.group.active:  # one decision: an app's own train_early_stopping may look elsewhere
                stop = bool(max_over_processes(int(bool(stop)), self.device))
            if stop:  # recorded in the checkpoint, so a later train does not go on
                self.metrics["stopped_early"] = True
                self.metrics.setdefault("stop_reason", f"{type(self).__name__}.train_early_stopping said so")
            self.save_states()
            keep = _count_or_none(self, "checkpoints_to_keep", self.checkpoints_to_keep())
            self.checkpoints.remove_old(self.counters["epoch"], keep, best_epoch(self.history, self.judged_by))
            self.logger.info(f"Epoch {self.counters['epoch']} done | " + " | ".join(
                f"{k} {v:.4f}" for k, v in self.metrics.items() if isinstance(v, float)))
            self.tensorboard.hparams(self.experiment.configuration, self.metrics, self.judged_by,
                                     self.counters["epoch"])
            self._stop_if_asked(f"the end of epoch {self.counters['epoch']}")
            if stop:
                self.logger.info(f"Early stopping after epoch {self.counters['epoch']}")
                break

    def _train_epoch(self, losses: list[float], log_period: int, started: float) -> tuple[list[float], float]:
        """One pass over the train loader, skipping the ``len(losses)`` batches an interruption already did;
        returns every step's loss and the seconds the steps took."""
        self.model.train()
        pending: list[torch.Tensor] = []  # this epoch's losses still on the device
        loop_started = time.perf_counter()
        # Making the loader's iterator draws its workers' base seed from the global RNG: a resumed run would make
        # it after restoring the RNG of the middle of the epoch, an unbroken one at its start. Drawn from a fork
        # seeded by (seed, epoch), it is the same in both and leaves the RNG the steps use alone. (Persistent
        # workers keep the seed of the first epoch a process runs: randomness inside them does not resume.)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(self.experiment.configuration.seed, self.counters["epoch"]))
            batches = iter(self.data.loaders["train"])
        with self.progress("train", f"epoch {self.counters['epoch']}") as bar:
            for batch, it_data in enumerate(batches):
                if batch < len(losses):  # done before the interruption: same order, so skip it
                    continue
                self.counters["iteration"] += 1
                self.optimizer.zero_grad(set_to_none=True)
                with self.autocast(), self._model_for_training():
                    loss = self.train_step(it_data, self.device)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0 or not loss.requires_grad:
                    raise self.hook_error("train_step", f"returned {_shape_of(loss)}",
                                          "return the batch's loss as a scalar tensor that requires grad")
                loss.backward()
                self.optimizer.step()
                self.train_after_step(self.device)
                pending.append(loss.detach())
                postfix = {}
                if self.counters["iteration"] % log_period == 0:
                    losses += self._collect_losses(pending)
                    self.train_iteration_log(losses, log_period, self.device)
                    postfix = {"loss": f"{losses[-1]:.4f}"}
                bar.update(count_items(it_data), **postfix)
                if self._agreed_stop():  # every process, after the same step
                    losses += self._collect_losses(pending)
                    self.save_interrupted(losses, time.perf_counter() - started)
                    raise Interrupted(self.stop_signal, f"stopped at epoch {self.counters['epoch']}, after batch "
                                      f"{batch + 1}, everything is saved")
        losses += self._collect_losses(pending)
        if not losses:
            raise UserError(f"the train split served no batch in epoch {self.counters['epoch']}, "
                            "check the data and training.batch_size")
        return losses, time.perf_counter() - loop_started

    def _share_buffers(self) -> None:
        """In a group, give every process rank 0's buffers (batch norm's running statistics). DDP sends them at
        each forward, but every process then updates its own from its shard: validation, test and the
        checkpoint must all see the one model that rank 0 saves."""
        if self._parallel is not None:
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, 0)

    @contextmanager
    def _model_for_training(self) -> Iterator[None]:
        """In a group, ``self.model`` is the ``DistributedDataParallel`` wrapper while ``train_step`` runs: its
        forward is what makes ``backward`` average the gradients."""
        if self._parallel is None:
            yield
            return
        model, self.model = self.model, self._parallel
        try:
            yield
        finally:
            self.model = model

    def _agreed_stop(self) -> bool:
        """Whether to stop here: a signal reached this process, or (in a group) any process. Every process calls
        it at the same points, so all stop after the same step."""
        if not self.runtime.group.active:
            return self.stop_signal is not None
        # A signal may land while the vote is under way: it counts at the next vote, never overwritten here.
        agreed = max_over_processes(self.stop_signal or 0, self.device)
        if agreed:
            self.stop_signal = agreed  # every process stops with the same status
        return bool(agreed)

    def _collect_losses(self, pending: list[torch.Tensor]) -> list[float]:
        """Move the steps' losses off the device in one sync (in a group: their mean over the processes), stop on
        NaN/inf, and log each to TensorBoard."""
        if not pending:
            return []
        stacked = torch.stack(pending)
        if self.runtime.group.active:
            stacked = sum_over_processes(stacked) / self.runtime.group.world_size
        values = stacked.tolist()
        first = self.counters["iteration"] - len(values) + 1
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                raise UserError(
                    f"the training loss became {value} at epoch {self.counters['epoch']}, iteration {first + offset}, "
                    f"lower training.lr or check the data; the last good checkpoint is kept")
        self.tensorboard.step_losses(values, first)
        pending.clear()
        return values

    def _checked_validate(self) -> dict[str, float]:
        metrics = self.validate(self.device)
        if not isinstance(metrics, dict):
            raise self.hook_error("validate", f"returned {_shape_of(metrics)}",
                                  "return a dict of finite numbers by name, such as {'loss': 0.1}")
        _check_numbers(self, "validate", metrics)
        self._check_same_everywhere("validate", metrics)
        return metrics

    def _check_same_everywhere(self, hook: str, metrics: dict[str, Any]) -> None:
        """In a group, every process must return the same metrics (each saw its shard: they reduce sums and counts
        with ``sum_over_processes``); otherwise rank 0 would record its shard's numbers as the split's."""
        if not self.runtime.group.active:
            return
        values = torch.tensor([float(metrics[key]) for key in sorted(metrics)], dtype=torch.float64)
        count = len(values)  # every process takes the same branches below: they depend on agreed numbers only
        differs = int(max_over_processes(count, self.device) != -max_over_processes(-count, self.device))
        if not differs and count:
            first = gather_tensors(values.to(self.device))[0].cpu()
            differs = int(not torch.allclose(first, values, rtol=1e-9, atol=0.0))
        if max_over_processes(differs, self.device):
            raise self.hook_error(hook, "returned other metrics in each process (each sees its shard of the split)",
                                  "add sums and counts over the processes with sum_over_processes(tensor) "
                                  "before dividing")

    def _check_judged_metric(self, hook: str) -> None:
        """Before anything of the epoch is written: the metric the app is judged by must be there."""
        if self.judged_by.key not in self.metrics:
            known = ", ".join(k for k in self.metrics if k.startswith(("validation_", "test_"))) or "none"
            raise HookError(f"the app is judged by {self.judged_by.key} but epoch {self.counters['epoch']} has only "
                            f"{known}, return '{self.judged_by.name}' from {hook} "
                            f"or declare another metric in App(judged_by=...)")

    def _check_train_order(self) -> None:
        if not is_epoch_seeded(self.data.loaders["train"]):
            sampler = type(loader_sampler(self.data.loaders["train"])).__name__
            if self.runtime.group.active:
                raise HookError(f"the train loader's order ({sampler}) is not an EpochSampler's, so each of the "
                                f"{self.runtime.group.world_size} processes would train on all of it, order it with "
                                "an EpochSampler (see the README's framework guide)")
            self.logger.warning(f"the train loader's order ({sampler}) does not depend on (seed, epoch) alone, so a "
                                "resumed run will not reproduce an unbroken one; order it with an EpochSampler")

    def _log_run_start(self) -> None:
        """TensorBoard: the configuration as text, and the model's graph once, at a fresh start."""
        self.tensorboard.configuration(self.experiment.configuration, self.counters["epoch"])
        if self.counters["epoch"] == 0 and self.resume_point is None:
            example = self.example_input(self.device)
            if example is not None:
                self.tensorboard.graph(self.model, example)

    def _stop_if_asked(self, where: str | None) -> None:
        if self._agreed_stop():
            raise Interrupted(self.stop_signal, f"stopped at {where}, everything is saved" if where else
                              "stopped before training began")

    # Testing ----------------------------------------------------------------------------------------------------
    def _record_test(self, result: Any, epoch: int | None) -> TestResult:
        """Check what ``test`` returned, then log it, add it to the epoch's metrics and TensorBoard, and write
        ``results/test-<epoch>.json``."""
        if not isinstance(result, TestResult):
            raise self.hook_error("test", f"returned {_shape_of(result)}", "return a TestResult(summary, metrics)")
        if epoch is not None and self.counters["epoch"] != epoch:
            raise self.hook_error("test", f"was asked for epoch {epoch} but tested epoch {self.counters['epoch']}",
                                  "call self.load_states(epoch) first when epoch is not None")
        if not isinstance(result.summary, str) or not isinstance(result.metrics, dict) \
                or not isinstance(result.details, dict):
            raise self.hook_error("test", "returned a TestResult whose summary is not a str or whose metrics or "
                                  "details are not a dict", "give it a line, a dict of numbers and a dict")
        _check_numbers(self, "test", result.metrics)
        self._check_same_everywhere("test", result.metrics)
        clashes = sorted(set(result.details) & ({"epoch"} | set(result.metrics)))
        if clashes or not is_json(result.details):
            what = f"details {clashes} that clash with the epoch or a metric" if clashes else \
                "details that JSON cannot hold"
            raise self.hook_error("test", f"returned {what}", "give details their own names and plain values")
        tested = self.counters["epoch"]
        self.logger.info(result.summary)
        self.metrics.update({f"test_{name}": value for name, value in result.metrics.items()})
        self.tensorboard.epoch_metrics({f"test_{name}": value for name, value in result.metrics.items()}, tested)
        if self.is_main:
            write_json(self.experiment.results_path / f"test-{tested}.json",
                       {"epoch": tested, **result.metrics, **result.details})
        return result

    # Checkpoints ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds: everything training goes on from, as tensors and plain containers. In a group
        every process calls it (it gathers each one's random number generators) and the first one saves it."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": dict(self.counters),
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "others": self._checked_others(),
        }
        if self.runtime.group.active:
            state["processes"] = self.runtime.group.world_size
            state["rng"]["ranks"] = self._gathered_rng_states()
        return state

    def _gathered_rng_states(self) -> list[dict[str, torch.Tensor]]:
        """Every process's generators, by rank: its CPU one and that of its GPU (empty on the CPU)."""
        cpus = [state.cpu() for state in gather_tensors(torch.get_rng_state().to(self.device))]
        gpus = [state.cpu() for state in gather_tensors(torch.cuda.get_rng_state(self.device).to(self.device))] \
            if self.device.type == "cuda" else [torch.empty(0, dtype=torch.uint8)] * len(cpus)
        return [{"torch": cpu, "cuda": gpu} for cpu, gpu in zip(cpus, gpus, strict=True)]

    def _checked_others(self) -> dict[str, Any]:
        others = self.save_states_others()
        if not isinstance(others, dict) or not _is_plain(others):
            raise self.hook_error("save_states_others", f"returned {_shape_of(others)} holding more than tensors, "
                                  "numbers, strings, lists and dicts", "return a dict of those (state_dict() is)")
        return others

    def save_states(self) -> None:
        """The finished epoch's metrics and checkpoint."""
        self.checkpoints.save_epoch(self.counters["epoch"], self.metrics, self.state_dict())

    def save_interrupted(self, losses: list[float], seconds: float) -> None:
        """The state after the current step, with the position inside the epoch, to resume exactly there."""
        state = self.state_dict()
        state["counters"]["epoch"] -= 1  # the epoch is not finished
        state["resume_point"] = {"epoch": self.counters["epoch"], "losses": losses, "seconds": seconds,
                                 "metrics": self.metrics}
        self.checkpoints.save_interrupted(state)

    def load_states(self, epoch: int | None) -> dict[str, Any] | None:
        """Restore a checkpoint: ``epoch``, or (``None``) the newest usable state; returns the state loaded, or
        ``None`` for a fresh start. Without an optimizer (evaluation) only the model, counters and history."""
        if epoch is None:
            found = self._newest_state()
            if found is None:
                return None
            state, path = found
        else:
            state, path = self.checkpoints.load_epoch(epoch)
        try:
            self.model.load_state_dict(state["model"])
            self.counters = dict(state["counters"])
            self.history = list(state["history"])
            if self.optimizer is not None:  # built for training: restore everything it continues from
                self.optimizer.load_state_dict(state["optimizer"])
                self._restore_rng(state)
                self.load_states_others(state["others"])
            self.resume_point = state.get("resume_point")
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"checkpoint {path} does not fit this experiment ({reason}), use another epoch") from None
        if self.resume_point:
            self.logger.info(f"Loaded {path}: epoch {self.resume_point['epoch']} resumes after batch "
                             f"{len(self.resume_point['losses'])}")
        else:
            self.logger.info(f"Loaded checkpoint {path} (epoch {self.counters['epoch']})")
        return state

    def _newest_state(self) -> tuple[dict[str, Any], Path] | None:
        """The newest usable state: in a group the first process chooses it (setting damaged files aside) and the
        others load the file it names."""
        from . import checkpoints

        if not self.runtime.group.active:
            return self.checkpoints.load_newest()
        found = self.checkpoints.load_newest() if self.is_main else None
        chosen = share_text(str(found[1]) if found else None, self.device)
        if found is None and chosen is not None:
            found = checkpoints.load(Path(chosen)), Path(chosen)
        return found

    def _restore_rng(self, state: dict[str, Any]) -> None:
        """This process's generators as the checkpoint saved them; when it was saved by another number of
        processes, fresh ones seeded by (seed, epoch, rank), and one line that says so."""
        group = self.runtime.group
        saved = state.get("processes", 1)
        rng = state["rng"]["ranks"][group.rank] if saved == group.world_size > 1 else state["rng"]
        if saved != group.world_size and self.is_main:
            self.logger.warning(f"the checkpoint was trained by {saved} process{'es' * (saved > 1)} and this run has "
                             f"{group.world_size}: from here each process's data shard and random numbers differ "
                             f"from a run that kept {saved}, so the results will not be bit-identical to one")
        if saved != group.world_size:
            if group.active:
                torch.manual_seed(process_seed(epoch_seed(self.experiment.configuration.seed,
                                                          self.counters["epoch"]), group.rank))
                return
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and group.active:
            if len(rng["cuda"]):
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        elif torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def release_state(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """What a release of a loaded checkpoint holds: weights plus what is needed to use them, no training
        state."""
        others = self.release_others(checkpoint)
        if not isinstance(others, dict) or not _is_plain(others):
            raise self.hook_error("release_others", f"returned {_shape_of(others)} holding more than tensors, numbers, "
                                  "strings, lists and dicts", "return a dict of those")
        return {"format": CHECKPOINT_FORMAT, "kind": "release", "epoch": checkpoint["counters"]["epoch"],
                "model": checkpoint["model"], **others}

    def create_release(self, checkpoint: dict[str, Any]) -> Path:
        """Write ``<epoch>.checkpoint.release.pkl`` (see ``release_state``)."""
        from . import checkpoints

        state = self.release_state(checkpoint)
        path = self.experiment.release_path(state["epoch"])
        checkpoints.save(path, state)
        self.logger.info(f"Saved release {path}")
        return path


def _checked_test(test: Callable[..., Any]) -> Callable[..., TestResult]:
    """Wrap an app's ``test`` so its result is checked and recorded once, by the outermost call."""
    @functools.wraps(test)
    def checked(self: Runner, epoch: int | None, device: torch.device) -> TestResult:
        self._tests_running += 1
        try:
            result = test(self, epoch, device)
        finally:
            self._tests_running -= 1
        return result if self._tests_running else self._record_test(result, epoch)
    checked.checked_by_the_framework = True
    return checked


def _check_numbers(runner: Runner, hook: str, metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if not isinstance(key, str) or number(value) is None:
            hint = " (a tensor: use .item())" if isinstance(value, torch.Tensor) else ""
            raise runner.hook_error(hook, f"returned metric {key!r} = {value!r}{hint}",
                                    "give each metric a name and a finite number")


def _count_or_none(runner: Runner, hook: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise runner.hook_error(hook, f"returned {value!r}", "return a whole number of at least 1, or None")
    return value


def _is_plain(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` will read ``value`` back: tensors, numbers, strings, None, and
    lists, tuples and dicts of them."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (torch.Tensor, int, float, str, bool))


def _shape_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}" + ("" if value.requires_grad else " without grad")
    return "None" if value is None else f"a {type(value).__name__}"
