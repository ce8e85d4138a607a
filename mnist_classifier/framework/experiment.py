"""The experiment folder: its layout, creation (all or nothing), loading and the summary shown by ``info``.

Everything here is JSON or a ``weights_only`` checkpoint; this module itself never imports torch, so ``info`` is fast.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from . import checkpoints
from .configuration import Configuration
from .errors import UserError
from .lock import ExperimentLock
from .metrics import VALIDATION_LOSS, Metric, best_epoch
from .storage import DIR_MODE, fsync_dir, read_json, remove_temporaries, write_json

_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
FORMAT_VERSION = 1
DATA_FORMAT_VERSION = 2  # data.json: {"format": 2, "state": ..., "description": ...}; version 1 was the state alone


def check_name(name: str | None) -> str:
    """An experiment name is one path component: letters, digits, ``-``, ``_``, ``.``, not starting with ``.``."""
    if not name:
        raise UserError("--experiment-name is required here, give the experiment's name")
    if not _NAME_RE.fullmatch(name):
        raise UserError(
            f"invalid experiment name '{name}', use up to 100 letters, digits, '-', '_' or '.' (not first)"
        )
    return name


class Experiment:
    """Paths and files of ``<experiments_path>/<name>/``."""

    def __init__(self, experiments_path: Path, name: str | None) -> None:
        self.name = check_name(name)
        self.experiments_path = Path(experiments_path)
        self.path = self.experiments_path / self.name
        self.configuration: Configuration | None = None
        self.overrides: list[str] = []  # the init's --set options, as a record

    # Layout -----------------------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def data_file(self) -> Path:
        return self.path / "data.json"

    @property
    def checkpoints_path(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_path(self) -> Path:
        return self.path / "tensorboard"

    @property
    def results_path(self) -> Path:
        return self.path / "results"

    @property
    def log_file(self) -> Path:
        return self.path / "verbose.log"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def interrupted_path(self) -> Path:
        return checkpoints.interrupted_path(self.checkpoints_path)

    def lock(self, pipeline: str) -> ExperimentLock:
        """``with experiment.lock('train'):`` makes this process the experiment's only writer."""
        return ExperimentLock(self.lock_file, self.name, pipeline)

    def remove_temporaries(self) -> None:
        """Clear half-written files a killed process left (call with the lock held)."""
        for folder in (self.path, self.checkpoints_path, self.results_path):
            remove_temporaries(folder)

    # Creation and loading ---------------------------------------------------------------------------------------
    def create(self, config: dict, seed: int, data_state: dict, overrides: list[str] | None = None,
               data_description: dict[str, Any] | None = None) -> None:
        """Build the folder next to its final place and rename it in, so a failed ``init`` leaves nothing.

        ``config`` is final (overrides applied, defaults filled in); ``overrides`` are kept as a record of how.
        ``data_state`` is what ``Data.save`` returned, ``data_description`` what ``Data.describe`` did (as a dict).
        """
        if self.path.exists():
            raise UserError(
                f"experiment '{self.name}' already exists in {self.experiments_path}, choose another name"
            )
        try:
            self.experiments_path.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".init", dir=self.experiments_path))
            staging.chmod(DIR_MODE)
        except OSError as error:
            raise UserError(f"cannot create {self.experiments_path} ({error.strerror}), check the path") from None
        try:
            for folder in ("checkpoints", "tensorboard", "results"):
                (staging / folder).mkdir()
            created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            write_json(staging / "config.json",
                       {"format": FORMAT_VERSION, "created": created, "seed": seed, "config": config,
                        "overrides": list(overrides or [])})
            write_json(staging / "data.json", {"format": DATA_FORMAT_VERSION, "state": data_state,
                                               "description": data_description or {"splits": {}, "details": {}}})
            (staging / "verbose.log").touch()
            (staging / ".lock").touch()
            staging.rename(self.path)
            fsync_dir(self.experiments_path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.configuration = Configuration(config, seed)

    def load(self) -> Configuration:
        """Read ``config.json``; a missing or damaged experiment is a ``UserError``."""
        if not self.path.is_dir():
            raise UserError(
                f"experiment '{self.name}' does not exist in {self.experiments_path}, create it with init"
            )
        try:
            stored = read_json(self.config_file)
            self.configuration = Configuration(stored["config"], int(stored["seed"]))
            self.overrides = [str(item) for item in stored.get("overrides", [])]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(
                f"{self.config_file} is missing or damaged ({type(error).__name__}: {error}), "
                "restore it or create a new experiment"
            ) from None
        return self.configuration

    def _read_data_file(self) -> dict:
        try:
            stored = read_json(self.data_file)
        except (OSError, ValueError) as error:
            raise UserError(f"{self.data_file} is missing or damaged ({error}), recreate the experiment") from None
        if not isinstance(stored, dict) or (stored.get("format") == DATA_FORMAT_VERSION
                                            and not isinstance(stored.get("state"), dict)):
            raise UserError(f"{self.data_file} is damaged (not a data state), recreate the experiment")
        if "format" in stored and stored["format"] != DATA_FORMAT_VERSION:
            raise UserError(f"{self.data_file} has format {stored['format']!r}, which this version does not know "
                            "(made by a newer version?), use the version that made the experiment")
        return stored

    def load_data_state(self) -> dict:
        """The persisted data state (``Data.save()`` at ``init``: splits...)."""
        stored = self._read_data_file()
        return stored["state"] if stored.get("format") == DATA_FORMAT_VERSION else stored

    def data_description(self) -> dict[str, Any]:
        """What ``Data.describe()`` said at ``init``: ``{"splits": {name: size}, "details": {name: value}}``.

        Experiments made by version 0.1 stored no description: their lists named ``<split>_indexes`` were the
        splits, and their other values the details.
        """
        stored = self._read_data_file()
        if stored.get("format") == DATA_FORMAT_VERSION:
            description = stored.get("description") or {}
            return {"splits": dict(description.get("splits") or {}), "details": dict(description.get("details") or {})}
        return {"splits": {key[: -len("_indexes")]: len(value) for key, value in stored.items()
                           if key.endswith("_indexes") and isinstance(value, list)},
                "details": {key: value for key, value in stored.items() if not key.endswith("_indexes")}}

    # Checkpoints and results ------------------------------------------------------------------------------------
    def checkpoint_epochs(self) -> list[int]:
        return checkpoints.list_checkpoints(self.checkpoints_path)

    def release_epochs(self) -> list[int]:
        return checkpoints.list_releases(self.checkpoints_path)

    def checkpoint_path(self, epoch: int) -> Path:
        return checkpoints.checkpoint_path(self.checkpoints_path, epoch)

    def release_path(self, epoch: int) -> Path:
        return checkpoints.release_path(self.checkpoints_path, epoch)

    def resolve_epoch(self, epoch: int | None) -> int:
        """The epoch asked for, checked to have a checkpoint; ``None`` means the newest one."""
        epochs = self.checkpoint_epochs()
        if not epochs:
            raise UserError(f"experiment '{self.name}' has no checkpoints yet, train it first")
        if epoch is None:
            return epochs[-1]
        if epoch not in epochs:
            raise UserError(
                f"epoch {epoch} has no checkpoint in '{self.name}', use one of {_ranges(epochs)}"
            )
        return epoch

    def epoch_metrics_file(self, epoch: int) -> Path:
        return self.results_path / f"epoch-{epoch}.json"

    def write_epoch_metrics(self, epoch: int, metrics: dict[str, Any]) -> None:
        write_json(self.epoch_metrics_file(epoch), metrics)

    def write_test_results(self, epoch: int, results: dict[str, Any]) -> None:
        """``results/test-<epoch>.json``: what ``test`` measured, with its details."""
        write_json(self.results_path / f"test-{epoch}.json", results)

    def read_trial(self) -> dict[str, Any] | None:
        """``trial.json`` when the experiment is a sweep's trial: its sweep, number, parameters and state."""
        try:
            return read_json(self.path / "trial.json")
        except (OSError, ValueError):
            return None

    def read_epoch_metrics(self, epoch: int) -> dict[str, Any]:
        try:
            return read_json(self.epoch_metrics_file(epoch))
        except (OSError, ValueError):
            return {}

    # Summary ----------------------------------------------------------------------------------------------------
    def info(self, judged_by: Metric = VALIDATION_LOSS) -> dict[str, Any]:
        """What ``info`` shows: configuration, seed, the data's description and every checkpoint with its epoch
        metrics, the best one by ``judged_by`` marked."""
        configuration = self.configuration or self.load()
        description = self.data_description()
        checkpoint_entries = [{"epoch": e, "file": self.checkpoint_path(e).name, **self.read_epoch_metrics(e)}
                              for e in self.checkpoint_epochs()]
        best = best_epoch(checkpoint_entries, judged_by)
        for entry in checkpoint_entries:
            entry["best"] = entry["epoch"] == best
        return {
            "name": self.name,
            "path": str(self.path),
            "seed": configuration.seed,
            "config": configuration.values,
            "overrides": self.overrides,
            "data": description["details"],
            "splits": description["splits"],
            "judged_by": {"metric": judged_by.key, "higher_is_better": judged_by.higher_is_better},
            "best_epoch": best,
            "checkpoints": checkpoint_entries,
            "releases": [{"epoch": e, "file": self.release_path(e).name, **self.read_epoch_metrics(e)}
                         for e in self.release_epochs()],
            "interrupted": self.interrupted_path.exists(),
            **({"trial": trial} if (trial := self.read_trial()) else {}),
            "damaged": sorted(p.name for p in self.checkpoints_path.glob(f"*{checkpoints.DAMAGED_SUFFIX}*")),
        }


def _ranges(epochs: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1-3, 5'``: short enough for a one-line error."""
    parts, start = [], epochs[0]
    for previous, current in zip(epochs, epochs[1:] + [None], strict=True):
        if current is None or current != previous + 1:
            parts.append(f"{start}-{previous}" if previous != start else str(start))
            start = current
    return ", ".join(parts)
