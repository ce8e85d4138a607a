"""The ``Data`` base class: datasets, the splits persisted at ``init``, and the loaders that serve them.

Subclasses implement ``create`` (runs once, at ``init``), ``load_datasets`` and ``load_loaders``, and name in
``persisted`` the attributes that ``create`` computes; those are saved as JSON in ``data.json``, never pickled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .configuration import Configuration


class Data:
    persisted: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.configuration: Configuration | None = None
        self.logger: logging.Logger = logging.getLogger(__name__)
        self.datasets: dict[str, Any] = {}
        self.loaders: dict[str, Any] = {}
        self.device: Any = None  # where training runs, so loaders may keep data there (None: unknown, CPU)

    def init(self, configuration: Configuration, logger: logging.Logger, device: Any = None) -> None:
        self.configuration = configuration
        self.logger = logger
        self.device = device

    def get_conf(self, *keys: str, default: Any = None) -> Any:
        return self.configuration.get(*keys, default=default)

    @property
    def seed(self) -> int:
        return self.configuration.seed

    # Persistence: JSON-able attributes only ----------------------------------------------------------------------
    def save(self) -> dict[str, Any]:
        """The state written to ``data.json``: every attribute named in ``persisted``."""
        return {name: getattr(self, name) for name in self.persisted}

    def load(self, state: dict[str, Any]) -> None:
        """Restore what ``save`` returned."""
        for name in self.persisted:
            setattr(self, name, state.get(name))

    # Hooks ------------------------------------------------------------------------------------------------------
    def create(self, data_path: Path) -> None:
        """Once, at ``init``: compute what must stay fixed for the experiment's life (the splits)."""
        raise NotImplementedError

    def load_datasets(self, data_path: Path) -> None:
        """Fill ``self.datasets`` with ``train``, ``validation`` and ``test``."""
        raise NotImplementedError

    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        """Fill ``self.loaders`` with one ``DataLoader`` for each split."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called before each training epoch so shuffling can depend on (seed, epoch) alone: exact resumes."""
