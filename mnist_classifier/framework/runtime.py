"""Where and how this process computes, decided once per process from the command line.

Every hook's ``device`` argument, ``Runner.device`` and ``Data.device`` are this object's ``device``: there is
no second place a device could come from. ``make_runtime`` also checks what the chosen device can do (bf16, a
compiler for ``--compile``) before anything runs, and sets torch's per-device speed switches.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .devices import resolve_device
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

    def autocast(self) -> torch.autocast:
        """The context for forward passes: bf16 autocast when asked for, a no-op otherwise."""
        import torch

        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")


def make_runtime(device: str | None = None, precision: str = "fp32", compile_model: bool = False,
                 show_progress: bool = False) -> Runtime:
    """Resolve ``--device`` (``None``: CUDA when available), check the options against it, set torch up."""
    import torch

    resolved = resolve_device(device)
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
    return Runtime(resolved, precision, compile_model, show_progress)


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
