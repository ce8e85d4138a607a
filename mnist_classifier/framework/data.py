"""The ``Data`` base class: datasets, the splits persisted at ``init``, and the loaders that serve them.

Hooks, as in Skeltorch: ``create`` (once, at ``init``), ``load_datasets``, ``load_loaders``, ``set_epoch`` and
``describe``. The attributes named in ``persisted`` are what ``create`` computes; they are saved as JSON in
``data.json`` (never pickled) and restored before any other hook runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .configuration import Configuration
from .errors import HookNotImplementedError, UserError

if TYPE_CHECKING:
    import torch

    from .runtime import Runtime


@dataclass
class DataDescription:
    """What ``info`` shows about an experiment's data: split sizes by name, and other facts by name (a dataset's
    name, its statistics...). Computed once at ``init`` and stored with the splits, so ``info`` needs no torch."""

    splits: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)


class Data:
    HOOKS = ("create", "load_datasets", "load_loaders", "set_epoch", "describe")
    persisted: tuple[str, ...] = ()  # attributes ``create`` computes, saved to data.json as JSON
    unit: str = "item"  # what one example is called in progress bars ("img", "sample", "doc"...)

    def __init__(self) -> None:
        self.configuration: Configuration | None = None
        self.logger: logging.Logger = logging.getLogger(__name__)
        self.runtime: Runtime | None = None
        self.datasets: dict[str, Any] = {}
        self.loaders: dict[str, Any] = {}

    def init(self, configuration: Configuration, logger: logging.Logger, runtime: Runtime | None = None) -> None:
        """``runtime`` is ``None`` where nothing computes (``init`` only creates the splits)."""
        self.configuration = configuration
        self.logger = logger
        self.runtime = runtime

    @property
    def device(self) -> torch.device | None:
        """Where the runner computes (loaders may keep data there); ``None`` at ``init``."""
        return self.runtime.device if self.runtime is not None else None

    def get_conf(self, *keys: str, default: Any = None) -> Any:
        return self.configuration.get(*keys, default=default)

    def process_batch_size(self, batch_size: int, name: str = "training.batch_size") -> int:
        """This process's share of a batch of ``batch_size`` items that one optimizer step takes across all
        processes: the train loader's ``batch_size``. It is the whole batch in a single process; in a group of W,
        ``batch_size / W``, and a ``UserError`` naming the config key ``name`` when W does not divide it."""
        processes = self.runtime.group.world_size if self.runtime is not None else 1
        if batch_size % processes:
            raise UserError(f"{name} {batch_size} does not divide between {processes} processes, set it to a "
                            f"multiple of {processes} (it is the batch of one step across all processes)")
        return batch_size // processes

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
        """Once, at ``init``: compute what must stay fixed for the experiment's life (the splits), into the
        attributes named in ``persisted``."""
        raise HookNotImplementedError(f"{type(self).__name__}.create")

    def load_datasets(self, data_path: Path) -> None:
        """Fill ``self.datasets`` (``train``, ``validation``, ``test``)."""
        raise HookNotImplementedError(f"{type(self).__name__}.load_datasets")

    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        """Fill ``self.loaders`` with one iterable of batches per split: ``train`` and ``validation`` are required
        for training, ``test`` for testing. A batch may be a tensor, a tuple or list, or a dict of tensors.

        Order every loader with an ``EpochSampler`` (over the persisted train indexes for ``train``): otherwise
        ``train`` warns that a resumed run will not reproduce an unbroken one, and several processes refuse to
        run, since each would see the whole split. Give the train loader ``process_batch_size(batch_size)``.
        """
        raise HookNotImplementedError(f"{type(self).__name__}.load_loaders")

    def set_epoch(self, epoch: int) -> None:
        """Before each training epoch: the default tells every loader's ``EpochSampler`` (or any sampler with
        ``set_epoch``) which epoch it is, so its order depends on (seed, epoch) alone."""
        from .sampling import loader_sampler  # torch: not imported by info

        for loader in self.loaders.values():
            sampler = loader_sampler(loader)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def describe(self) -> DataDescription:
        """At ``init``, after ``create``: what ``info`` shows, the sizes of the splits ``create`` made first. The
        default describes nothing (only the app knows its splits)."""
        return DataDescription(splits={})
