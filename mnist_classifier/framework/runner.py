"""The ``Runner`` base class: the training loop, checkpoint state and the hooks an application fills in.

Hooks, as in Skeltorch: ``init_model``, ``init_optimizer``, ``init_others``, ``train_step``, ``validate``,
``train_before_epoch_tasks``, ``train_iteration_log``, ``train_after_epoch_tasks``, ``train_early_stopping``,
``save_states_others``, ``load_states_others``, ``test``, ``test_sample``, ``release_others``, and
``checkpoints_to_keep`` for retention.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from . import checkpoints
from .data import Data
from .errors import Interrupted, UserError
from .experiment import Experiment
from .history import best_epoch
from .progress import Progress

CHECKPOINT_FORMAT = 1
_SPLIT_METRIC_RE = re.compile(r"(train|validation|test)_(\w+)")


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """``{'training': {'lr': 1}}`` -> ``{'training.lr': 1}`` (HParams takes flat numbers, strings and bools)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


class Runner:
    def __init__(self) -> None:
        self.experiment: Experiment | None = None
        self.data: Data | None = None
        self.logger: logging.Logger = logging.getLogger(__name__)
        self.device = torch.device("cpu")
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.counters: dict[str, int] = {"epoch": 0, "iteration": 0}
        self.history: list[dict[str, Any]] = []  # one metrics dict per finished epoch
        self.metrics: dict[str, Any] = {}  # the epoch in progress
        self.stop_signal: int | None = None  # set by a SIGINT/SIGTERM handler: stop after the current step
        self.resume_point: dict[str, Any] | None = None  # where an interrupted epoch stopped
        self.precision = "fp32"
        self.show_progress = False  # tqdm bars (set by the CLI when stderr is a terminal)

    def init(self, experiment: Experiment, data: Data, logger: logging.Logger, device: torch.device,
             precision: str = "fp32", compile_model: bool = False, training: bool = True) -> None:
        """Build model, optimizer and the rest from a seeded RNG, so a fresh start is reproducible.

        ``precision='bf16'`` runs forward passes under bf16 autocast (CUDA); ``compile_model`` compiles the
        model's forward with ``torch.compile`` in place, so checkpoints keep their plain parameter names.
        ``training=False`` builds the model alone, for test and release: a torch optimizer's first parameter
        group imports ``torch._dynamo``, which costs those commands 1.5 s for nothing.
        """
        if precision == "bf16" and device.type != "cuda":
            raise UserError("--precision bf16 needs a CUDA device, use --device cuda or the default fp32")
        self.experiment, self.data, self.logger, self.device = experiment, data, logger, device
        self.precision = precision
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
            torch.backends.cuda.matmul.allow_tf32 = True
        else:  # optimizer states and gradients decay into denormals, which x86 computes many times slower
            torch.set_flush_denormal(True)
        torch.manual_seed(experiment.configuration.seed)
        self.init_model(device)
        if training:
            self.init_optimizer(device)
            self.init_others(device)
        if compile_model:
            _check_compiler(device)
            self.model.compile()

    def autocast(self) -> torch.autocast:
        """The context for forward passes: bf16 autocast when asked for, a no-op otherwise."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def get_conf(self, *keys: str, default: Any = None) -> Any:
        return self.experiment.configuration.get(*keys, default=default)

    # Hooks to implement -----------------------------------------------------------------------------------------
    def init_model(self, device: torch.device) -> None:
        raise NotImplementedError

    def init_optimizer(self, device: torch.device) -> None:
        raise NotImplementedError

    def init_others(self, device: torch.device) -> None:
        """Schedulers and anything else; save their state in ``save_states_others``."""

    def save_states_others(self) -> dict[str, Any]:
        return {}

    def load_states_others(self, checkpoint: dict[str, Any]) -> None:
        pass

    def train_step(self, it_data: Any, device: torch.device) -> torch.Tensor:
        """Return the loss of one batch; the loop does zero_grad, backward and step."""
        raise NotImplementedError

    def validate(self, device: torch.device) -> dict[str, float]:
        """Metrics of the validation split (called in eval and inference mode); default: the mean loss."""
        with self.autocast():
            losses = [self.train_step(it_data, device) for it_data in self.data.loaders["validation"]]
        return {"loss": torch.stack(losses).mean().item()}

    def test(self, epoch: int | None, device: torch.device) -> dict[str, Any]:
        raise NotImplementedError

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> dict[str, Any]:
        raise NotImplementedError

    def release_others(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """What a release needs besides the weights to be used on its own (architecture, normalisation...)."""
        return {}

    def train_early_stopping(self) -> bool:
        """After each epoch (its metrics are ``self.history[-1]``): ``True`` ends training there, for good."""
        return False

    def checkpoints_to_keep(self) -> int | None:
        """Keep only the newest K epoch checkpoints plus the best one (see ``history.best_epoch``); ``None``: all."""
        return None

    def example_input(self, device: torch.device) -> torch.Tensor | None:
        """A model input for TensorBoard's graph (drawn once, at a fresh start); ``None`` skips the graph."""
        return None

    @staticmethod
    def batch_count(it_data: Any) -> int:
        """Items in a batch (for images/s): the length of its last element, e.g. the targets."""
        return len(it_data[-1]) if isinstance(it_data, (tuple, list)) else len(it_data)

    def progress(self, split: str, description: str) -> Progress:
        """A progress bar over a split's loader (a no-op unless ``show_progress``)."""
        loader = self.data.loaders[split]
        total = len(loader.sampler) if hasattr(loader.sampler, "__len__") else len(loader.dataset)
        return Progress(self.show_progress, total, description)

    # Training ---------------------------------------------------------------------------------------------------
    def train_before_epoch_tasks(self, device: torch.device) -> None:
        self.metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        self.data.set_epoch(self.counters["epoch"])
        self.logger.info(f"Epoch {self.counters['epoch']} | training with lr {self.metrics['lr']:.6g}")

    def train_iteration_log(self, losses: list[float], log_period: int, device: torch.device) -> None:
        """Every ``log_period`` iterations: the mean loss of the period (TensorBoard gets every step)."""
        loss = sum(losses[-log_period:]) / len(losses[-log_period:])
        self.logger.info(f"Epoch {self.counters['epoch']} | iteration {self.counters['iteration']} | loss {loss:.4f}")

    def _collect_losses(self, pending: list[torch.Tensor]) -> list[float]:
        """Move the steps' losses off the device in one sync, stop on NaN/inf, and log each to TensorBoard."""
        if not pending:
            return []
        values = torch.stack(pending).tolist()
        first = self.counters["iteration"] - len(values) + 1
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                step = first + offset
                raise UserError(
                    f"the training loss became {value} at epoch {self.counters['epoch']}, iteration {step}, "
                    f"lower training.lr or check the data; the last good checkpoint is kept")
            self.experiment.tbx.add_scalar("loss/iteration/train", value, first + offset)
        pending.clear()
        return values

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        """Log the epoch's metrics; subclasses step schedulers and test here (call ``super()`` first)."""
        self.log_epoch_metrics({k: v for k, v in self.metrics.items() if not k.startswith("test_")})

    def log_epoch_metrics(self, metrics: dict[str, Any]) -> None:
        """``validation_accuracy`` goes to TensorBoard as ``accuracy/epoch/validation``, ``lr`` as ``lr/epoch``."""
        epoch = self.counters["epoch"]
        for key, value in metrics.items():
            if key == "lr":
                self.experiment.tbx.add_scalar("lr/epoch", value, epoch)
            elif (match := _SPLIT_METRIC_RE.fullmatch(key)) and isinstance(value, (int, float)):
                self.experiment.tbx.add_scalar(f"{match.group(2)}/epoch/{match.group(1)}", value, epoch)

    def train(self, max_epochs: int, log_period: int, device: torch.device) -> None:
        """Train from the loaded state up to epoch ``max_epochs``, checkpointing after every epoch.

        After ``stop_signal`` is set (SIGINT/SIGTERM) the current step finishes, the position inside the epoch is
        saved to ``interrupted.checkpoint.pkl`` and ``Interrupted`` is raised; the next ``train`` goes on from there.
        """
        if self.history and self.history[-1].get("stopped_early") and self.resume_point is None:
            self.logger.info(f"Training stopped early at epoch {self.counters['epoch']}; nothing more to do "
                             "(train --epoch E goes on from an earlier epoch)")
            return
        if self.counters["epoch"] >= max_epochs and self.resume_point is None:
            self.logger.info(f"Already trained to epoch {self.counters['epoch']}; raise --max-epochs to go on")
            return
        self.log_run_start(device)
        while self.counters["epoch"] < max_epochs:
            self._stop_if_asked(None)
            self.counters["epoch"] += 1
            resume, self.resume_point = self.resume_point or {}, None
            self.metrics = dict(resume.get("metrics") or {"epoch": self.counters["epoch"]})
            started = time.perf_counter() - resume.get("seconds", 0.0)
            self.train_before_epoch_tasks(device)
            self.model.train()
            losses: list[float] = list(resume.get("losses", []))  # this epoch's steps, already off the device
            pending: list[torch.Tensor] = []
            loop_started = time.perf_counter()
            with self.progress("train", f"epoch {self.counters['epoch']}") as bar:
                for batch, it_data in enumerate(self.data.loaders["train"]):
                    if batch < len(losses):  # done before the interruption: same order, so skip it
                        continue
                    self.counters["iteration"] += 1
                    self.optimizer.zero_grad(set_to_none=True)
                    with self.autocast():
                        loss = self.train_step(it_data, device)
                    loss.backward()
                    self.optimizer.step()
                    pending.append(loss.detach())
                    postfix = {}
                    if self.counters["iteration"] % log_period == 0:
                        losses += self._collect_losses(pending)
                        self.train_iteration_log(losses, log_period, device)
                        postfix = {"loss": f"{losses[-1]:.4f}"}
                    bar.update(self.batch_count(it_data), **postfix)
                    if self.stop_signal is not None:
                        losses += self._collect_losses(pending)
                        self.save_interrupted(losses, time.perf_counter() - started)
                        self._stop_if_asked(f"epoch {self.counters['epoch']}, after batch {batch + 1}")
            losses += self._collect_losses(pending)
            self.metrics["train_loss"] = sum(losses) / len(losses)
            self.metrics["train_seconds"] = round(time.perf_counter() - loop_started, 3)  # the steps alone
            self.model.eval()
            with torch.inference_mode():
                self.metrics.update({f"validation_{k}": v for k, v in self.validate(device).items()})
            self.train_after_epoch_tasks(device)
            self.metrics["epoch_seconds"] = round(time.perf_counter() - started, 3)
            self.history.append(self.metrics)
            stop = self.train_early_stopping()
            if stop:  # recorded in the checkpoint, so a later train does not go on
                self.metrics["stopped_early"] = True
            self.save_states()
            self.remove_old_checkpoints()
            self.logger.info(f"Epoch {self.counters['epoch']} done | " + " | ".join(
                f"{k} {v:.4f}" for k, v in self.metrics.items() if isinstance(v, float)))
            self.log_hparams()
            self._stop_if_asked(f"the end of epoch {self.counters['epoch']}")
            if stop:
                self.logger.info(f"Early stopping after epoch {self.counters['epoch']}")
                break

    def log_run_start(self, device: torch.device) -> None:
        """TensorBoard: the configuration as text, and the model's graph once, at a fresh start."""
        configuration = self.experiment.configuration
        text = json.dumps({"seed": configuration.seed, **configuration.values}, indent=2)
        self.experiment.tbx.add_text("config", "```\n" + text + "\n```", self.counters["epoch"])
        if self.counters["epoch"] == 0 and self.resume_point is None:
            example = self.example_input(device)
            if example is not None:
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                        warnings.catch_warnings(), _eager(self.model):
                    warnings.simplefilter("ignore")  # add_graph traces with torch.jit, which warns it is old
                    self.model.eval()
                    self.experiment.tbx.add_graph(self.model, example)

    def log_hparams(self) -> None:
        """TensorBoard's HParams tab: the configuration against the latest epoch's validation and test accuracy,
        so ``tensorboard --compare`` can rank experiments."""
        from torch.utils.tensorboard.summary import hparams

        values = {"seed": self.experiment.configuration.seed}
        values.update(_flatten(self.experiment.configuration.values))
        metrics = {f"{m.group(2)}/epoch/{m.group(1)}": value for key, value in self.metrics.items()
                   if (m := _SPLIT_METRIC_RE.fullmatch(key)) and m.group(2) == "accuracy"}
        if metrics:
            writer = self.experiment.tbx._get_file_writer()
            for summary in hparams(values, metrics):
                writer.add_summary(summary, self.counters["epoch"])

    def _stop_if_asked(self, where: str | None) -> None:
        if self.stop_signal is not None:
            raise Interrupted(self.stop_signal, f"stopped at {where}, everything is saved" if where else
                              "stopped before training began")

    # Checkpoints ------------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": dict(self.counters),
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "others": self.save_states_others(),
        }

    def save_states(self) -> None:
        """Write the epoch's metrics (JSON, for ``info``) and then its checkpoint, both atomically."""
        epoch = self.counters["epoch"]
        self.experiment.write_epoch_metrics(epoch, self.metrics)
        path = self.experiment.checkpoint_path(epoch)
        self.logger.info(f"Saving checkpoint {path}")
        checkpoints.save(path, self._state())
        interrupted = self.experiment.interrupted_path
        if interrupted.exists():  # superseded by the finished epoch
            interrupted.unlink()
        self.logger.info(f"Saved checkpoint {path}")

    def remove_old_checkpoints(self) -> None:
        """Retention: delete epoch checkpoints beyond the newest ``checkpoints_to_keep()`` except the best.

        Runs after the new checkpoint is safely written. Epochs after the current one (left by an earlier run that
        ``train --epoch`` went back from) are not this run's to judge, and releases are never touched.
        """
        keep = self.checkpoints_to_keep()
        if keep is None:
            return
        epoch = self.counters["epoch"]
        ours = [e for e in self.experiment.checkpoint_epochs() if e <= epoch]
        kept = set(ours[-keep:]) | {best_epoch(self.history)}
        for old in ours:
            if old not in kept:
                self.experiment.checkpoint_path(old).unlink(missing_ok=True)
                self.logger.info(f"Removed checkpoint of epoch {old} (keeping the newest {keep} and the best)")

    def save_interrupted(self, losses: list[float], seconds: float) -> None:
        """Save the state after the current step, with the position inside the epoch, to resume exactly there."""
        state = self._state()
        state["counters"]["epoch"] -= 1  # the epoch is not finished
        state["resume_point"] = {"epoch": self.counters["epoch"], "losses": losses, "seconds": seconds,
                                 "metrics": self.metrics}
        self.logger.info(f"Saving interrupted state {self.experiment.interrupted_path}")
        checkpoints.save(self.experiment.interrupted_path, state)

    def _load_usable(self) -> tuple[dict[str, Any], Path] | None:
        """The newest state that loads: an interrupted epoch beyond the last checkpoint, else the newest checkpoint.

        A file that does not load is reported and set aside as ``*.damaged``, never overwritten or deleted.
        """
        epochs = self.experiment.checkpoint_epochs()
        candidates = [self.experiment.checkpoint_path(e) for e in reversed(epochs)]
        if self.experiment.interrupted_path.exists():
            candidates.insert(0, self.experiment.interrupted_path)
        for path in candidates:
            try:
                state = checkpoints.load(path)
            except UserError as error:
                aside = checkpoints.set_aside(path)
                self.logger.warning(f"{error}; kept it as {aside.name} and trying an older checkpoint")
                continue
            point = state.get("resume_point")
            if point is not None and epochs and point.get("epoch", 0) <= epochs[-1]:
                path.unlink()  # an epoch that was finished since: stale
                continue
            return state, path
        if candidates:
            self.logger.warning("no checkpoint could be loaded, training starts from the beginning")
        return None

    def load_states(self, epoch: int | None, device: torch.device) -> None:
        """Restore a checkpoint: ``epoch``, or (``None``) the newest usable state, or nothing for a fresh start."""
        if epoch is None:
            found = self._load_usable()
            if found is None:
                return
            state, path = found
        else:
            path = self.experiment.checkpoint_path(self.experiment.resolve_epoch(epoch))
            state = checkpoints.load(path)
        try:
            self.model.load_state_dict(state["model"])
            self.counters = dict(state["counters"])
            self.history = list(state["history"])
            if self.optimizer is not None:  # built for training: restore everything it continues from
                self.optimizer.load_state_dict(state["optimizer"])
                torch.set_rng_state(state["rng"]["torch"])
                if torch.cuda.is_available() and len(state["rng"]["cuda"]) == torch.cuda.device_count():
                    torch.cuda.set_rng_state_all(state["rng"]["cuda"])
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

    def release_state(self, epoch: int) -> dict[str, Any]:
        """What a release of ``epoch`` holds: weights plus what is needed to use them, no training state."""
        checkpoint = checkpoints.load(self.experiment.checkpoint_path(epoch))
        return {"format": CHECKPOINT_FORMAT, "kind": "release", "epoch": epoch,
                "model": checkpoint["model"], **self.release_others(checkpoint)}

    def create_release(self, epoch: int) -> Any:
        """Write ``<epoch>.checkpoint.release.pkl`` (see ``release_state``)."""
        path = self.experiment.release_path(epoch)
        checkpoints.save(path, self.release_state(epoch))
        self.logger.info(f"Saved release {path}")
        return path


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


def _check_compiler(device: torch.device) -> None:
    """``torch.compile`` builds C++ kernels on CPU, and Triton builds its launchers with a C compiler on CUDA, at
    the first call; without a compiler that fails deep inside Inductor, so say it before anything runs."""
    if device.type == "cpu":
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found"
        names, wanted = (os.environ.get("CXX", "g++"),), "a C++ compiler (g++, or name one in CXX)"
    else:
        names, wanted = (os.environ["CC"],) if "CC" in os.environ else ("clang", "gcc", "cc"), \
            "a C compiler (gcc, or name one in CC)"
    if not any(shutil.which(name) for name in names):
        raise UserError(f"--compile on {device.type} needs {wanted}, install one or drop --compile")
