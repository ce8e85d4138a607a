"""Where and how this process computes, decided once per process from the command line.

Every hook's ``device`` argument, ``Runner.device`` and ``Data.device`` are this object's ``device``: there is
no second place a device could come from. ``make_runtime`` also checks what the chosen device can do (bf16, a
compiler for ``--compile``) before anything runs, sets torch's per-device speed switches and, in one of several
processes (torchrun), joins their group: ``group`` says which process this is.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .devices import check_devices, resolve_device
from .distributed import SINGLE, Group, join
from .errors import UserError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast (CUDA)
    compile_model: bool = False  # compile the model with torch.compile once it is built
    show_progress: bool = False  # tqdm bars (a person watches stderr)
    group: Group = SINGLE  # this process among those training together (a single one by default)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the experiment's files (the only one, or rank 0)."""
        return self.group.is_main

    def autocast(self) -> torch.autocast:
        """The context for forward passes: bf16 autocast when asked for, a no-op otherwise."""
        import torch

        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")


def make_runtime(device: str | list[str] | None = None, precision: str = "fp32", compile_model: bool = False,
                 show_progress: bool = False, group: Group = SINGLE, timeout: float = 600) -> Runtime:
    """Resolve ``--device`` (``None``: CUDA when available), check the options against it, set torch up; in a
    group, pick this process's device and join the others (waiting at most ``timeout`` seconds for them)."""
    import torch

    resolved = resolve_device(device_of_process(device, group))
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}', use one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and resolved.type != "cuda":
        raise UserError("--precision bf16 needs a CUDA device, use --device cuda or the default fp32")
    if compile_model:
        _check_compiler(resolved)
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
    else:  # optimizer states and gradients decay into denormals, which x86 computes many times slower
        torch.set_flush_denormal(True)
        if group.active:  # torchrun sets OMP_NUM_THREADS=1: share this machine's cores out instead
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // group.local_world_size))
    if group.active:
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)  # NCCL and DDP use the current device
        join(group, resolved, timeout)
    return Runtime(resolved, precision, compile_model, show_progress and group.is_main, group)


def device_of_process(devices: str | list[str] | None, group: Group) -> str | None:
    """This process's entry of ``--device``: one per process of this machine (``--device cuda:0 cuda:1``), or
    one for all (``cpu``; ``cuda`` or the default, which mean ``cuda:LOCAL_RANK`` in a group)."""
    if not isinstance(devices, list):
        devices = [devices] if devices is not None else []
    if len(devices) > 1:
        check_devices(devices)
        if len(devices) != group.local_world_size:
            raise UserError(f"--device names {len(devices)} devices for {group.local_world_size} processes on this "
                            "machine, name one per process or a single one for all")
        return devices[group.local_rank]
    device = devices[0] if devices else None
    if not group.active:
        return device
    import torch

    if device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{group.local_rank}"
    if device is not None and device.startswith("cuda:") and group.local_world_size > 1:
        raise UserError(f"--device {device} would put every process of this machine on one GPU, use --device cuda "
                        "(each process takes cuda:LOCAL_RANK)")
    return device


def _check_compiler(device: torch.device) -> None:
    """``torch.compile`` builds C++ kernels on CPU, and Triton builds its launchers with a C compiler on CUDA, at
    the first call; without a compiler that fails deep inside Inductor, so say it before anything runs."""
    if device.type == "cpu":
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found"
        names, wanted = (os.environ.get("CXX", "g++"),), "a C++ compiler (g++, or name one in CXX)"
    else:
        names, wanted = (os.environ["CC"],) if "CC" in os.environ else ("clang", "gcc", "cc"), \
            "a C compiler (gcc, or name one in CC)"
    if not any(shutil.which(name) for name in names):
        raise UserError(f"--compile on {device.type} needs {wanted}, install one or drop --compile")
