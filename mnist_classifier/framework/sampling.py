"""Seeded sampling over a persisted split: the order of every epoch depends on (seed, epoch) alone.

That is what makes a resumed run see exactly the batches an unbroken one would, whatever the global RNG did in
between and whatever the number of DataLoader workers. ``Data.set_epoch`` calls ``set_epoch`` on every
``EpochSampler`` of the loaders before each training epoch, and ``train`` warns when the train loader is not
ordered by one.

In a group of W processes each serves a disjoint shard of the same order: process r takes positions r, r + W,
r + 2W... With a per-process batch of B/W, its k-th batch is then its share of the k-th batch of B a single
process would take, so a recipe's batch means the same on 1 or W processes. A shuffled epoch first leaves out
its last (length mod W) positions, fewer than W and different ones each epoch, so every process takes as many
steps as the others; an unshuffled split (validation, test) is served whole, every item exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from .distributed import current


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of an epoch's order."""
    return (seed * 1_000_003 + epoch) % 2**63


def process_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s own random numbers in a group (its dropout masks differ from the others')."""
    return (seed * 998_244_353 + 7_919 * (rank + 1)) % 2**63


class EpochSampler(Sampler[int]):
    """The indexes of a split (``Data``'s persisted ``train_indexes``...), shuffled by (seed, epoch) only.

    ``shuffle=False`` serves them in the given order, for validation and test. Use it as a DataLoader's
    ``sampler`` instead of ``shuffle=True`` or ``SubsetRandomSampler``, whose orders depend on the global RNG.
    In a group of processes it serves this process's shard (see above), so the splits of every loader are
    divided between the processes without the app doing anything.
    """

    epoch_seeded = True  # what ``is_epoch_seeded`` looks for: a custom sampler may declare it too

    def __init__(self, indexes: Sequence[int], seed: int, shuffle: bool = True) -> None:
        self.indexes = list(indexes)
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        group = current()
        if self.shuffle:
            return len(self.indexes) // group.world_size
        return len(range(group.rank, len(self.indexes), group.world_size))

    def __iter__(self) -> Iterator[int]:
        group = current()
        if not self.shuffle:
            yield from self.indexes[group.rank::group.world_size]
            return
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        # Version 0.1 shared this generator with its DataLoader, which drew one number before the permutation;
        # drawing it too keeps the orders (and so the results) of experiments made then.
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        order = torch.randperm(len(self.indexes), generator=generator)
        for position in order[:len(order) - len(order) % group.world_size][group.rank::group.world_size].tolist():
            yield self.indexes[position]


def loader_sampler(loader: Any) -> Any:
    """The sampler that orders a DataLoader's items (inside its batch sampler when it has one)."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    return getattr(batch_sampler, "sampler", None) or getattr(loader, "sampler", None)


def is_epoch_seeded(loader: Any) -> bool:
    """Whether ``loader`` serves its items in an order that depends on (seed, epoch) only."""
    return bool(getattr(loader_sampler(loader), "epoch_seeded", False))
