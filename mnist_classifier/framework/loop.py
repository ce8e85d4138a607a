"""The training loop: epochs of steps over the train loader, validation, the checkpoint after every epoch, and
stopping (at ``max_epochs``, early, or on a signal with the position inside the epoch saved).

It calls the ``Runner``'s hooks in the order ``docs/framework.md`` gives and reads the same with one process or
many: whatever differs is the runner's ``strategy`` (``strategy.py``). Every collective sits at a point every
process reaches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from . import contracts
from .errors import Interrupted, UserError
from .metrics import best_epoch
from .progress import count_items
from .sampling import epoch_seed
from .training_state import Checkpoint, ResumePoint, RngStates

if TYPE_CHECKING:
    from .runner import Runner


def train(runner: Runner, max_epochs: int, log_period: int,
          after_epoch: Callable[[Runner], bool] | None = None) -> None:
    """Train from the loaded state up to epoch ``max_epochs``, checkpointing after every epoch; after each
    checkpoint, ``after_epoch(runner)`` (a sweep's pruner) may end training there by returning ``True``.

    After ``runner.stop_signal`` is set (SIGINT/SIGTERM) the current step finishes, the position inside the epoch
    is saved to ``interrupted.checkpoint.pkl`` and ``Interrupted`` is raised; the next ``train`` goes on there.
    """
    epoch = runner.counters["epoch"]
    if runner.history and runner.history[-1].get("stopped_early") and runner.resume_point is None:
        runner.logger.info(f"Training stopped early at epoch {epoch}; nothing more to do "
                           "(train --epoch E goes on from an earlier epoch)")
        return
    if epoch >= max_epochs:
        more = " (its interrupted epoch waits)" if runner.resume_point else ""
        runner.logger.info(f"Already trained to epoch {epoch}{more}; raise --max-epochs to go on")
        return
    contracts.check_train_order(runner, runner.strategy.world_size)
    runner.tensorboard.configuration(runner.experiment.configuration, epoch)
    if epoch == 0 and runner.resume_point is None:  # the model's graph, once, at a fresh start
        example = runner.example_input(runner.device)
        if example is not None:
            runner.tensorboard.graph(runner.model, example)
    while runner.counters["epoch"] < max_epochs:
        _stop_if_asked(runner, None)
        stop = _train_epoch(runner, log_period)
        _stop_if_asked(runner, f"the end of epoch {runner.counters['epoch']}")
        if after_epoch is not None and after_epoch(runner):
            break
        if stop:
            runner.logger.info(f"Early stopping after epoch {runner.counters['epoch']}")
            break


def _train_epoch(runner: Runner, log_period: int) -> bool:
    """One epoch, from its resume point if it was interrupted: steps, validation, ``train_after_epoch_tasks``, the
    checkpoint and retention. Returns whether training stops early here."""
    runner.counters["epoch"] += 1
    epoch, device = runner.counters["epoch"], runner.device
    resume, runner.resume_point = runner.resume_point or ResumePoint(epoch), None
    runner.metrics = metrics = dict(resume.metrics or {"epoch": epoch})
    started = time.perf_counter() - resume.seconds
    metrics["lr"] = runner.optimizer.param_groups[0]["lr"]
    runner.data.set_epoch(epoch)  # here, not in a hook an app may override
    runner.train_before_epoch_tasks(device)
    losses, seconds = _train_steps(runner, list(resume.losses), log_period, started)
    runner.strategy.share_buffers(runner.model)
    metrics["train_loss"] = sum(losses) / len(losses)
    metrics["train_seconds"] = round(seconds, 3)  # the steps alone
    runner.model.eval()
    with torch.inference_mode():
        validated = contracts.check_metrics(runner, "validate", runner.validate(device), runner.strategy)
    metrics.update({f"validation_{name}": value for name, value in validated.items()})
    if runner.judged_by.split != "test":
        contracts.check_judged_metric(runner, "validate")
    runner.tensorboard.epoch_metrics(metrics, epoch)
    runner.train_after_epoch_tasks(device)
    metrics["epoch_seconds"] = round(time.perf_counter() - started, 3)
    contracts.check_judged_metric(runner, "test, through TestResult.metrics,")
    runner.history.append(metrics)
    stop = runner.strategy.any(runner.train_early_stopping())  # one decision, wherever the app looked
    if stop:  # recorded in the checkpoint, so a later train does not go on
        metrics["stopped_early"] = True
        metrics.setdefault("stop_reason", f"{type(runner).__name__}.train_early_stopping said so")
    runner.checkpoints.save_epoch(_checkpoint(runner), metrics)
    keep = contracts.count_or_none(runner, "checkpoints_to_keep", runner.checkpoints_to_keep())
    runner.checkpoints.remove_old(epoch, keep, best_epoch(runner.history, runner.judged_by))
    runner.logger.info(f"Epoch {epoch} done | " + " | ".join(
        f"{key} {value:.4f}" for key, value in metrics.items() if isinstance(value, float)))
    runner.tensorboard.hparams(runner.experiment.configuration, metrics, runner.judged_by, epoch)
    return bool(stop)


def _train_steps(runner: Runner, losses: list[float], log_period: int, started: float) -> tuple[list[float], float]:
    """One pass over the train loader, skipping the ``len(losses)`` batches an interruption already did;
    returns every step's loss and the seconds the steps took."""
    runner.model.train()
    pending: list[torch.Tensor] = []  # this epoch's losses still on the device
    epoch, device, optimizer = runner.counters["epoch"], runner.device, runner.optimizer
    loop_started = time.perf_counter()
    # Making the loader's iterator draws its workers' base seed from the global RNG: a resumed run would make
    # it after restoring the RNG of the middle of the epoch, an unbroken one at its start. Drawn from a fork
    # seeded by (seed, epoch), it is the same in both and leaves the RNG the steps use alone. (Persistent
    # workers keep the seed of the first epoch a process runs: randomness inside them does not resume.)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(epoch_seed(runner.experiment.configuration.seed, epoch))
        batches = iter(runner.data.loaders["train"])
    with runner.progress("train", f"epoch {epoch}") as bar:
        for batch, it_data in enumerate(batches):
            if batch < len(losses):  # done before the interruption: same order, so skip it
                continue
            runner.counters["iteration"] += 1
            optimizer.zero_grad(set_to_none=True)
            with runner.autocast(), runner.strategy.training_model(runner):
                loss = runner.train_step(it_data, device)
            contracts.check_loss(runner, loss)
            loss.backward()
            optimizer.step()
            runner.train_after_step(device)
            pending.append(loss.detach())
            postfix = {}
            if runner.counters["iteration"] % log_period == 0:
                losses += _collect_losses(runner, pending)
                runner.train_iteration_log(losses, log_period, device)
                postfix = {"loss": f"{losses[-1]:.4f}"}
            bar.update(count_items(it_data), **postfix)
            if _agreed_stop(runner):  # every process, after the same step
                losses += _collect_losses(runner, pending)
                checkpoint = _checkpoint(runner)
                checkpoint.counters["epoch"] -= 1  # the epoch is not finished
                checkpoint.resume_point = ResumePoint(epoch, losses, time.perf_counter() - started, runner.metrics)
                runner.checkpoints.save_interrupted(checkpoint)
                raise Interrupted(runner.stop_signal, f"stopped at epoch {epoch}, after batch {batch + 1}, "
                                  "everything is saved")
    losses += _collect_losses(runner, pending)
    if not losses:
        raise UserError(f"the train split served no batch in epoch {epoch}, check the data and training.batch_size")
    return losses, time.perf_counter() - loop_started


def _collect_losses(runner: Runner, pending: list[torch.Tensor]) -> list[float]:
    """Move the steps' losses off the device in one sync (in a group: their mean over the processes), stop on
    NaN/inf, and log each to TensorBoard."""
    if not pending:
        return []
    values = runner.strategy.mean(torch.stack(pending)).tolist()
    first = runner.counters["iteration"] - len(values) + 1
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            raise UserError(f"the training loss became {value} at epoch {runner.counters['epoch']}, iteration "
                            f"{first + offset}, lower training.lr or check the data; the last good checkpoint is kept")
    runner.tensorboard.step_losses(values, first)
    pending.clear()
    return values


def _checkpoint(runner: Runner) -> Checkpoint:
    """What training goes on from, now. In a group every process calls it (it gathers each one's random number
    generators) and the first one saves it."""
    return Checkpoint(runner.model.state_dict(), runner.optimizer.state_dict(), dict(runner.counters),
                      runner.history, RngStates.capture(runner.strategy),
                      contracts.check_plain(runner, "save_states_others", runner.save_states_others(),
                                            " (state_dict() is)"),
                      processes=runner.strategy.world_size,
                      threads=torch.get_num_threads() if runner.strategy.device.type == "cpu" else None)


def _agreed_stop(runner: Runner) -> bool:
    """Whether to stop here: a signal reached this process, or (in a group) any process. Every process calls it
    at the same points, so all stop after the same step, with the same status."""
    agreed = runner.strategy.agreed_stop(runner.stop_signal)
    if agreed:
        runner.stop_signal = agreed
    return agreed is not None


def _stop_if_asked(runner: Runner, where: str | None) -> None:
    if _agreed_stop(runner):
        raise Interrupted(runner.stop_signal, f"stopped at {where}, everything is saved" if where else
                          "stopped before training began")
