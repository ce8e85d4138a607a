"""The ``Runner`` base class: the training loop, checkpoint state and the hooks an application fills in.

Hooks, as in Skeltorch: ``init_model``, ``init_optimizer``, ``init_others``, ``train_step``, ``validate``,
``train_before_epoch_tasks``, ``train_iteration_log``, ``train_after_epoch_tasks``, ``train_early_stopping``,
``save_states_others``, ``load_states_others``, ``test``, ``test_sample``, ``release_others``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

import torch

from . import checkpoints
from .data import Data
from .errors import UserError
from .experiment import Experiment

CHECKPOINT_FORMAT = 1
_SPLIT_METRIC_RE = re.compile(r"(train|validation|test)_(\w+)")


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

    def init(self, experiment: Experiment, data: Data, logger: logging.Logger, device: torch.device) -> None:
        """Build model, optimizer and the rest from a seeded RNG, so a fresh start is reproducible."""
        self.experiment, self.data, self.logger, self.device = experiment, data, logger, device
        torch.manual_seed(experiment.configuration.seed)
        self.init_model(device)
        self.init_optimizer(device)
        self.init_others(device)

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
        return False

    # Training ---------------------------------------------------------------------------------------------------
    def train_before_epoch_tasks(self, device: torch.device) -> None:
        self.metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        self.data.set_epoch(self.counters["epoch"])
        self.logger.info(f"Epoch {self.counters['epoch']} | training with lr {self.metrics['lr']:.6g}")

    def train_iteration_log(self, losses: list[torch.Tensor], log_period: int, device: torch.device) -> None:
        """Every ``log_period`` iterations: the mean loss of the period (TensorBoard gets every step at epoch end)."""
        loss = torch.stack(losses[-log_period:]).mean().item()
        self.logger.info(f"Epoch {self.counters['epoch']} | iteration {self.counters['iteration']} | loss {loss:.4f}")

    def log_iteration_losses(self, losses: list[torch.Tensor]) -> float:
        """Send every step's loss to TensorBoard with one device sync; return the epoch's mean loss."""
        values = torch.stack(losses).tolist()
        first = self.counters["iteration"] - len(values) + 1
        for offset, value in enumerate(values):
            self.experiment.tbx.add_scalar("loss/iteration/train", value, first + offset)
        return sum(values) / len(values)

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
        """Train from the loaded state up to epoch ``max_epochs``, checkpointing after every epoch."""
        if self.counters["epoch"] >= max_epochs:
            self.logger.info(f"Already trained to epoch {self.counters['epoch']}; raise --max-epochs to go on")
            return
        while self.counters["epoch"] < max_epochs:
            self.counters["epoch"] += 1
            self.metrics = {"epoch": self.counters["epoch"]}
            started = time.perf_counter()
            self.train_before_epoch_tasks(device)
            self.model.train()
            losses: list[torch.Tensor] = []
            for it_data in self.data.loaders["train"]:
                self.counters["iteration"] += 1
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.train_step(it_data, device)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
                if self.counters["iteration"] % log_period == 0:
                    self.train_iteration_log(losses, log_period, device)
            train_loss = self.log_iteration_losses(losses)
            if not math.isfinite(train_loss):
                raise UserError(f"the training loss became {train_loss} in epoch {self.counters['epoch']}, "
                                "lower training.lr; the last good checkpoint is kept")
            self.metrics["train_loss"] = train_loss
            self.model.eval()
            with torch.inference_mode():
                self.metrics.update({f"validation_{k}": v for k, v in self.validate(device).items()})
            self.train_after_epoch_tasks(device)
            self.metrics["epoch_seconds"] = round(time.perf_counter() - started, 3)
            self.history.append(self.metrics)
            self.save_states()
            self.logger.info(f"Epoch {self.counters['epoch']} done | " + " | ".join(
                f"{k} {v:.4f}" for k, v in self.metrics.items() if isinstance(v, float)))
            if self.train_early_stopping():
                self.logger.info(f"Early stopping after epoch {self.counters['epoch']}")
                break

    # Checkpoints ------------------------------------------------------------------------------------------------
    def save_states(self) -> None:
        """Write the epoch's metrics (JSON, for ``info``) and then its checkpoint, both atomically."""
        epoch = self.counters["epoch"]
        self.experiment.write_epoch_metrics(epoch, self.metrics)
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
            "others": self.save_states_others(),
        }
        checkpoints.save(self.experiment.checkpoint_path(epoch), state)
        self.logger.info(f"Saved checkpoint {self.experiment.checkpoint_path(epoch)}")

    def load_states(self, epoch: int | None, device: torch.device) -> None:
        """Restore a checkpoint (``None``: the newest, or a fresh start when there is none)."""
        if epoch is None and not self.experiment.checkpoint_epochs():
            return
        epoch = self.experiment.resolve_epoch(epoch)
        path = self.experiment.checkpoint_path(epoch)
        state = checkpoints.load(path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.counters = dict(state["counters"])
            self.history = list(state["history"])
            torch.set_rng_state(state["rng"]["torch"])
            if torch.cuda.is_available() and len(state["rng"]["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            self.load_states_others(state["others"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"checkpoint {path} does not fit this experiment ({reason}), use another epoch") from None
        self.logger.info(f"Loaded checkpoint {path} (epoch {self.counters['epoch']})")

    def create_release(self, epoch: int) -> Any:
        """Write ``<epoch>.checkpoint.release.pkl``: weights plus what is needed to use them, no training state."""
        checkpoint = checkpoints.load(self.experiment.checkpoint_path(epoch))
        release = {"format": CHECKPOINT_FORMAT, "kind": "release", "epoch": epoch,
                   "model": checkpoint["model"], **self.release_others(checkpoint)}
        path = self.experiment.release_path(epoch)
        checkpoints.save(path, release)
        self.logger.info(f"Saved release {path}")
        return path
