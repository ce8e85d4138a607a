"""What training goes on from, and what a release holds: the records a checkpoint, an interrupted epoch's resume
point and a release are, and ``CheckpointManager``, which saves them, loads them, finds the newest usable one,
restores every process's random number generators and applies retention.

Each record's ``to_dict`` is its file format (plain containers and tensors, read back with ``weights_only``),
and its ``from_dict`` reads every version written so far, with the defaults of older files inside it. The file
itself (names, atomic save, safe load) is ``checkpoints.py``'s. Only the process that writes (rank 0) saves; in
a group it also chooses the state every process loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import checkpoints
from .errors import UserError
from .experiment import Experiment
from .sampling import epoch_seed, process_seed
from .strategy import SingleProcess

CHECKPOINT_FORMAT = 1  # the version written into every checkpoint and release; files without one are version 1


@dataclass
class ResumePoint:
    """Where an interrupted epoch stopped: the epoch, the losses of the steps it did, the seconds they took and
    the epoch's metrics so far. ``train`` goes on after the last of those steps."""

    epoch: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "losses": self.losses, "seconds": self.seconds, "metrics": self.metrics}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ResumePoint:
        return cls(int(state.get("epoch", 0)), list(state.get("losses", [])), float(state.get("seconds", 0.0)),
                   dict(state.get("metrics") or {}))


@dataclass
class RngStates:
    """The generators a run goes on with: this process's CPU one and every GPU's; in a group, each process's
    CPU and GPU ones by rank (``ranks``; the GPU one is empty on the CPU)."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor]
    ranks: list[dict[str, torch.Tensor]] | None = None

    @classmethod
    def capture(cls, strategy: SingleProcess) -> RngStates:
        """This process's generators and, in a group, every process's (a collective)."""
        states = cls(torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
        if strategy.active:
            cpus = strategy.gather(torch.get_rng_state())
            gpus = strategy.gather(torch.cuda.get_rng_state(strategy.device)) if strategy.device.type == "cuda" \
                else [torch.empty(0, dtype=torch.uint8)] * len(cpus)
            states.ranks = [{"torch": cpu, "cuda": gpu} for cpu, gpu in zip(cpus, gpus, strict=True)]
        return states

    def to_dict(self) -> dict[str, Any]:
        state = {"torch": self.cpu, "cuda": self.cuda}
        if self.ranks is not None:
            state["ranks"] = self.ranks
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RngStates:
        return cls(state["torch"], state["cuda"], state.get("ranks"))


@dataclass
class Checkpoint:
    """Everything training goes on from: weights, optimizer, counters, the metrics of every finished epoch, the
    random number generators, the app's own state (``save_states_others``), how many processes trained, with
    how many CPU threads each (``None`` on a GPU: another count rounds the sums otherwise), and where an
    interrupted epoch stopped."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    counters: dict[str, int]
    history: list[dict[str, Any]]
    rng: RngStates | None
    others: dict[str, Any] = field(default_factory=dict)
    processes: int = 1
    resume_point: ResumePoint | None = None
    format: int = CHECKPOINT_FORMAT
    threads: int | None = None

    @property
    def epoch(self) -> int:
        """The last finished epoch."""
        return int(self.counters["epoch"])

    def to_dict(self) -> dict[str, Any]:
        state = {"format": self.format, "model": self.model, "optimizer": self.optimizer,
                 "counters": dict(self.counters), "history": self.history,
                 "rng": self.rng.to_dict() if self.rng is not None else None, "others": self.others}
        if self.processes > 1:
            state["processes"] = self.processes
        if self.resume_point is not None:
            state["resume_point"] = self.resume_point.to_dict()
        if self.threads is not None:
            state["threads"] = self.threads
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Checkpoint:
        """A ``KeyError``, ``TypeError`` or ``ValueError`` when ``state`` is not a checkpoint."""
        point = state.get("resume_point")
        return cls(dict(state["model"]), dict(state.get("optimizer") or {}), dict(state["counters"]),
                   list(state["history"]), RngStates.from_dict(state["rng"]) if state.get("rng") else None,
                   dict(state.get("others") or {}), int(state.get("processes", 1)),
                   ResumePoint.from_dict(point) if point is not None else None,
                   int(state.get("format", CHECKPOINT_FORMAT)),
                   int(state["threads"]) if state.get("threads") is not None else None)


@dataclass
class Release:
    """A model to use on its own: its epoch, its weights, and what the app's ``release_others`` adds
    (``contents``: architecture, normalisation...), stored beside them. No training state."""

    epoch: int | None
    model: dict[str, Any]
    contents: dict[str, Any] = field(default_factory=dict)
    format: int = CHECKPOINT_FORMAT

    KIND = "release"  # a release's "kind": what tells it from a checkpoint
    OWN_KEYS = ("format", "kind", "epoch", "model")  # the rest of a release's dict is its contents

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.KIND, "epoch": self.epoch, "model": self.model, **self.contents}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Release:
        """A ``ValueError`` when ``state`` is not a release (a checkpoint, say), a ``KeyError`` when damaged."""
        if state.get("kind") != cls.KIND:
            raise ValueError("not a release")
        contents = {key: value for key, value in state.items() if key not in cls.OWN_KEYS}
        return cls(state.get("epoch"), dict(state["model"]), contents, int(state.get("format", CHECKPOINT_FORMAT)))


class CheckpointManager:
    """An experiment's training state on disk: a checkpoint per finished epoch, the state of an interrupted one,
    the newest state that still loads, releases, and retention. Saves do nothing in a process that does not
    write (``strategy.is_main``)."""

    def __init__(self, experiment: Experiment, logger: logging.Logger, strategy: SingleProcess | None = None) -> None:
        self.experiment = experiment
        self.logger = logger
        self.strategy = strategy or SingleProcess()

    @property
    def writes(self) -> bool:
        return self.strategy.is_main

    def save_epoch(self, checkpoint: Checkpoint, metrics: dict[str, Any]) -> None:
        """Write the epoch's metrics (JSON, for ``info``) and then its checkpoint, both atomically; the state of
        an interrupted epoch is superseded and removed."""
        if not self.writes:
            return
        self.experiment.write_epoch_metrics(checkpoint.epoch, metrics)
        path = self.experiment.checkpoint_path(checkpoint.epoch)
        self.logger.info(f"Saving checkpoint {path}")
        checkpoints.save(path, checkpoint.to_dict())
        self.experiment.interrupted_path.unlink(missing_ok=True)
        self.logger.info(f"Saved checkpoint {path}")

    def save_interrupted(self, checkpoint: Checkpoint) -> None:
        """Write the state of an unfinished epoch (it carries its ``resume_point``)."""
        if not self.writes:
            return
        self.logger.info(f"Saving interrupted state {self.experiment.interrupted_path}")
        checkpoints.save(self.experiment.interrupted_path, checkpoint.to_dict())

    def save_release(self, release: Release) -> Path:
        """Write ``<epoch>.checkpoint.release.pkl``."""
        path = self.experiment.release_path(release.epoch)
        checkpoints.save(path, release.to_dict())
        self.logger.info(f"Saved release {path}")
        return path

    def load(self, epoch: int | None) -> tuple[Checkpoint, Path] | None:
        """The checkpoint of ``epoch`` (which must exist), or (``None``) the newest usable state, ``None`` for a
        fresh start. In a group rank 0 chooses that state (setting damaged files aside) and the others load the
        file it names. A file that is not a checkpoint is a ``UserError``."""
        if epoch is not None:
            path = self.experiment.checkpoint_path(self.experiment.resolve_epoch(epoch))
            return _checkpoint(checkpoints.load(path), path), path
        found = None

        def choose() -> str | None:
            nonlocal found
            found = self._load_newest()
            return str(found[1]) if found else None

        chosen = self.strategy.decide(choose)  # every process has the answer before any can fail on it
        if chosen is None:
            return None
        state, path = found if found is not None else (checkpoints.load(Path(chosen)), Path(chosen))
        return _checkpoint(state, path), path

    def _load_newest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest state that loads: an interrupted epoch beyond the last checkpoint, else the newest
        checkpoint; ``None`` for a fresh start.

        A file that does not load is reported and set aside as ``*.damaged``, never overwritten or deleted. An
        interrupted state whose epoch has been finished since is stale and removed.
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
                path.unlink()
                continue
            return state, path
        if candidates:
            self.logger.warning("no checkpoint could be loaded, training starts from the beginning")
        return None

    def restore_rng(self, checkpoint: Checkpoint, seed: int) -> None:
        """This process's generators as ``checkpoint`` saved them; when it was saved by another number of
        processes, fresh ones seeded by (seed, epoch, rank), and one line that says so. One line too when the CPU
        ran another number of threads, which adds the same numbers in another order."""
        strategy, saved = self.strategy, checkpoint.processes
        if checkpoint.rng is None:
            raise KeyError("rng")
        if saved != strategy.world_size and strategy.is_main:
            self.logger.warning(f"the checkpoint was trained by {saved} process{'es' * (saved > 1)} and this run has "
                                f"{strategy.world_size}: from here each process's data shard and random numbers "
                                f"differ from a run that kept {saved}, so the results will not be bit-identical to "
                                "one")
        threads = torch.get_num_threads()
        if saved == strategy.world_size and strategy.device.type == "cpu" and strategy.is_main \
                and checkpoint.threads not in (None, threads):
            self.logger.warning(f"the checkpoint was trained with {checkpoint.threads} CPU thread"
                                f"{'s' * (checkpoint.threads > 1)} per process and this run has {threads}, which "
                                "add numbers in another order, so the results will not be bit-identical to an "
                                f"unbroken run's; resume with OMP_NUM_THREADS={checkpoint.threads} (or on as many "
                                "cores as before) to match")
        if saved != strategy.world_size and strategy.active:
            torch.manual_seed(process_seed(epoch_seed(seed, checkpoint.epoch), strategy.rank))
            return
        if saved == strategy.world_size > 1:
            mine = checkpoint.rng.ranks[strategy.rank]
            cpu, cuda = mine["torch"], mine["cuda"]
        else:
            cpu, cuda = checkpoint.rng.cpu, checkpoint.rng.cuda
        torch.set_rng_state(cpu)
        if strategy.device.type == "cuda" and strategy.active:
            if len(cuda):
                torch.cuda.set_rng_state(cuda, strategy.device)
        elif torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def remove_old(self, epoch: int, keep: int | None, best: int | None) -> None:
        """Retention: delete epoch checkpoints beyond the newest ``keep`` except ``best``; ``None`` keeps all.

        Runs after the new checkpoint is safely written. Epochs after ``epoch`` (left by an earlier run that
        ``train --epoch`` went back from) are not this run's to judge, and releases are never touched.
        """
        if keep is None or not self.writes:
            return
        ours = [e for e in self.experiment.checkpoint_epochs() if e <= epoch]
        kept = set(ours[-keep:]) | {best}
        for old in ours:
            if old not in kept:
                self.experiment.checkpoint_path(old).unlink(missing_ok=True)
                self.logger.info(f"Removed checkpoint of epoch {old} (keeping the newest {keep} and the best)")


def _checkpoint(state: dict[str, Any], path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_dict(state)
    except (KeyError, TypeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"checkpoint {path} does not fit this experiment ({reason}), use another epoch") from None
