"""An experiment's training state on disk: a checkpoint per finished epoch, the state of an interrupted one, the
newest state that still loads, and retention. ``checkpoints.py`` is the file format underneath.

The runner decides what a state holds (``Runner.state_dict``); this module decides where it goes and what to
do when a file is damaged, stale or no longer kept. In a group of processes only the first one writes (and only
it calls ``load_newest``, which may set files aside): the others' saves do nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import checkpoints
from .errors import UserError
from .experiment import Experiment


class CheckpointManager:
    def __init__(self, experiment: Experiment, logger: logging.Logger, writes: bool = True) -> None:
        self.experiment = experiment
        self.logger = logger
        self.writes = writes

    def save_epoch(self, epoch: int, metrics: dict[str, Any], state: dict[str, Any]) -> None:
        """Write the epoch's metrics (JSON, for ``info``) and then its checkpoint, both atomically; the state of
        an interrupted epoch is superseded and removed."""
        if not self.writes:
            return
        self.experiment.write_epoch_metrics(epoch, metrics)
        path = self.experiment.checkpoint_path(epoch)
        self.logger.info(f"Saving checkpoint {path}")
        checkpoints.save(path, state)
        self.experiment.interrupted_path.unlink(missing_ok=True)
        self.logger.info(f"Saved checkpoint {path}")

    def save_interrupted(self, state: dict[str, Any]) -> None:
        """Write the state of an unfinished epoch (it carries its ``resume_point``)."""
        if not self.writes:
            return
        self.logger.info(f"Saving interrupted state {self.experiment.interrupted_path}")
        checkpoints.save(self.experiment.interrupted_path, state)

    def load_epoch(self, epoch: int) -> tuple[dict[str, Any], Path]:
        """The checkpoint of ``epoch`` (which must exist); a damaged file is a ``UserError``."""
        path = self.experiment.checkpoint_path(self.experiment.resolve_epoch(epoch))
        return checkpoints.load(path), path

    def load_newest(self) -> tuple[dict[str, Any], Path] | None:
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
