"""Several processes training one model: joining the process group torchrun describes, and the few collectives
the framework and apps need, each a no-op in a single process.

A process is part of a group when torchrun (or ``--device`` with several devices, which starts torch's own
elastic launcher) set ``WORLD_SIZE`` above 1 in its environment. Every collective here is called by every
process at the same point of the program: the framework never lets one process skip one.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Group:
    """Where this process stands among those training together (``rank`` 0 is the one that writes)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Group()
_control = None  # on NCCL, a gloo group for the small votes: CPU tensors, no GPU sync at every step


def group_from_environment() -> Group:
    """The group torchrun's variables describe (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``...), or a single process."""
    env = os.environ
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return SINGLE
        return Group(int(env["RANK"]), world_size, int(env.get("LOCAL_RANK", "0")),
                      int(env.get("LOCAL_WORLD_SIZE", str(world_size))))
    except (KeyError, ValueError) as error:
        raise UserError(f"WORLD_SIZE is set but the launcher's {error} is missing or not a number, start the "
                        "processes with torchrun") from None


def join(group: Group, device: torch.device, timeout: float) -> None:
    """Join the process group (NCCL on CUDA, gloo on the CPU) through the store at ``MASTER_ADDR:MASTER_PORT``.

    Keys are prefixed with torchrun's restart count: after ``--max-restarts`` restarts a group, the agent's store
    still holds the old group's addresses, which a new process could otherwise read and hang on.
    """
    import torch.distributed as dist

    address, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), os.environ.get("MASTER_PORT")
    if port is None:
        raise UserError("WORLD_SIZE is set but MASTER_PORT is not, start the processes with torchrun")
    agent_hosts_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    wait = timedelta(seconds=timeout)
    try:
        store = dist.TCPStore(address, int(port), group.world_size, is_master=group.is_main and not agent_hosts_store,
                              timeout=wait, wait_for_workers=False)
        prefixed = dist.PrefixStore(f"attempt{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/", store)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=prefixed, rank=group.rank,
                                world_size=group.world_size, timeout=wait, device_id=device
                                if device.type == "cuda" else None)
        dist.barrier()  # every process has arrived: from here a silent peer is a failure, not a late start
        if device.type == "cuda":
            global _control
            _control = dist.new_group(backend="gloo", timeout=wait)
    except (RuntimeError, ValueError) as error:  # DistStoreError, DistNetworkError: RuntimeErrors
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        what = f"waited {timeout:g} s for the others at {address}:{port}" if "timeout" in reason.lower() else \
            f"could not reach the others through {address}:{port} ({reason})"
        raise UserError(f"process {group.rank} of {group.world_size} {what}, check that every process started "
                        "with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE (raise --dist-timeout to wait "
                        "longer)") from None


def leave() -> None:
    import torch.distributed as dist

    global _control
    _control = None
    if dist.is_available() and dist.is_initialized():
        # A DistributedDataParallel wrapper still waiting in a reference cycle (an error's traceback...) would
        # otherwise outlive the group and tear down its reducer at exit, which can abort the process.
        gc.collect()
        dist.destroy_process_group()


def current() -> Group:
    """The group this process trains in (a single process unless ``join`` ran)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every process, in place (and returned): exact counts, sums of losses... A no-op in a
    single process. Every process must call it at the same point."""
    import torch.distributed as dist

    if current().active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def max_over_processes(value: int, device: torch.device) -> int:
    """The largest of every process's ``value`` (a stop signal, an error flag...)."""
    import torch
    import torch.distributed as dist

    if not current().active:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device="cpu" if _control is not None else device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=_control)
    return int(tensor.item())


def gather_tensors(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every process's ``tensor`` (same shape and dtype everywhere), by rank; ``[tensor]`` in a single process."""
    import torch
    import torch.distributed as dist

    if not current().active:
        return [tensor]
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor)
    return gathered


def share_text(text: str | None, device: torch.device, source: int = 0) -> str | None:
    """Process ``source``'s ``text`` (or ``None``) on every process: a decision only it may take (which checkpoint
    to load, whether it got the experiment's lock) sent as bytes, never pickled."""
    import torch
    import torch.distributed as dist

    if not current().active:
        return text
    data = b"" if text is None else b"\x01" + text.encode()
    length = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(length, source)
    if not length.item():
        return None
    buffer = torch.zeros(int(length.item()), dtype=torch.uint8, device=device)
    if current().rank == source:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, source)
    return bytes(buffer.cpu().tolist())[1:].decode()
