"""How many processes train one model, as one object the loop asks: ``SingleProcess``, or ``DataParallel`` for a
group that torchrun (or ``--device`` with several devices) started, the way Lightning's strategies hold DDP.

The loop reads the same with 1 or N processes: it wraps the model for the step, shares buffers after an
epoch, votes on stopping, averages losses and gathers random number generators through these methods, each a
no-op (or this process's own answer) in a single process. Every method of ``DataParallel`` is a collective:
every process calls it at the same point. Rank 0 is the one that writes (``is_main``) and the one that decides
what only one process may (``decide``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from .distributed import gather_tensors, max_over_processes, share_text, sum_over_processes
from .sampling import process_seed

if TYPE_CHECKING:
    from .runtime import Runtime


class SingleProcess:
    """One process: it writes, decides, and every agreement is its own."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        self.rank, self.world_size = 0, 1

    @property
    def active(self) -> bool:
        """Whether other processes train with this one."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the experiment's files and takes the decisions of ``decide``."""
        return self.rank == 0

    def setup(self, model: torch.nn.Module, training: bool, seed: int) -> None:
        """Called once the model is built (and seeded by ``seed``)."""

    @contextmanager
    def training_model(self, holder: object) -> Iterator[None]:
        """While ``train_step`` runs, ``holder.model`` is the model whose ``backward`` trains every process."""
        yield

    def share_buffers(self, model: torch.nn.Module) -> None:
        """After an epoch's steps: every process holds the same buffers (batch norm's statistics)."""

    def agreed_stop(self, signal: int | None) -> int | None:
        """The stop signal any process got (``None``: go on), the same in every process."""
        return signal

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set in any process: one decision for all."""
        return flag

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` averaged over the processes (each process's losses of the same steps)."""
        return values

    def differs(self, values: torch.Tensor) -> bool:
        """Whether some process holds other ``values`` (float64, one per metric) than this one."""
        return False

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor``, by rank."""
        return [tensor]

    def decide(self, choose: Callable[[], str | None]) -> str | None:
        """What ``choose`` answers on rank 0, on every process; only rank 0 calls it (which checkpoint to load,
        whether the experiment's lock was free)."""
        return choose()

    def close(self) -> None:
        """Drop what holds the process group, while it still exists."""


class DataParallel(SingleProcess):
    """A group of processes, each on its shard of the data, with the model in ``DistributedDataParallel`` for
    ``train_step``: ``backward`` averages the gradients over the processes."""

    def __init__(self, device: torch.device, rank: int, world_size: int) -> None:
        super().__init__(device)
        self.rank, self.world_size = rank, world_size
        self._parallel: torch.nn.Module | None = None

    def setup(self, model: torch.nn.Module, training: bool, seed: int) -> None:
        """Wrap the model for training, and give each process its own random numbers (dropout masks...) from
        here."""
        from torch.nn.parallel import DistributedDataParallel

        if training:
            self._parallel = DistributedDataParallel(
                model, device_ids=[self.device] if self.device.type == "cuda" else None)
        torch.manual_seed(process_seed(seed, self.rank))

    @contextmanager
    def training_model(self, holder: object) -> Iterator[None]:
        if self._parallel is None:
            yield
            return
        model, holder.model = holder.model, self._parallel
        try:
            yield
        finally:
            holder.model = model

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers everywhere. DDP sends them at each forward, but every process then updates its own
        from its shard: validation, test and the checkpoint must all see the one model that rank 0 saves."""
        if self._parallel is not None:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, 0)

    def agreed_stop(self, signal: int | None) -> int | None:
        # A signal may land while the vote is under way: it counts at the next vote, never overwritten here.
        return max_over_processes(signal or 0, self.device) or None

    def any(self, flag: bool) -> bool:
        return bool(max_over_processes(int(bool(flag)), self.device))

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        return sum_over_processes(values) / self.world_size

    def differs(self, values: torch.Tensor) -> bool:
        count = len(values)  # every process takes the same branches below: they depend on agreed numbers only
        differs = int(max_over_processes(count, self.device) != -max_over_processes(-count, self.device))
        if not differs and count:
            first = gather_tensors(values.to(self.device))[0].cpu()
            differs = int(not torch.allclose(first, values, rtol=1e-9, atol=0.0))
        return bool(max_over_processes(differs, self.device))

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return [each.cpu() for each in gather_tensors(tensor.to(self.device))]

    def decide(self, choose: Callable[[], str | None]) -> str | None:
        return share_text(choose() if self.is_main else None, self.device)

    def close(self) -> None:
        self._parallel = None


def make_strategy(runtime: Runtime) -> SingleProcess:
    """The strategy of this process's runtime: ``DataParallel`` in a group, else ``SingleProcess``."""
    if runtime.group.active:
        return DataParallel(runtime.device, runtime.group.rank, runtime.group.world_size)
    return SingleProcess(runtime.device)
