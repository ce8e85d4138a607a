"""Turning ``--device`` into a ``torch.device``, with a clear error when it is not there (or, for a list of
devices, when they cannot be one per process)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch


def resolve_device(spec: str | None) -> "torch.device":
    """``None`` picks ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    import torch

    if spec is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", spec)
    if not match or (match.group(1) == "cpu" and match.group(2) is not None):
        raise UserError(f"unknown device '{spec}', use cpu, cuda or cuda:N")
    if match.group(1) == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"device {spec} is not available (no CUDA GPU found), use --device cpu")
    index = int(match.group(2) or 0)
    if index >= torch.cuda.device_count():
        raise UserError(
            f"device {spec} is not available (this machine has {torch.cuda.device_count()} CUDA GPUs), "
            "use a smaller index"
        )
    return torch.device("cuda", index)


def check_devices(devices: Sequence[str]) -> None:
    """Several devices are all ``cpu`` or all distinct CUDA devices."""
    if all(device == "cpu" for device in devices):
        return
    if not all(re.fullmatch(r"cuda:\d+", device) for device in devices):
        raise UserError(f"--device {' '.join(devices)} mixes kinds, name cuda:N for each GPU or cpu for each process")
    if len(set(devices)) != len(devices):
        raise UserError(f"--device {' '.join(devices)} names a GPU twice, name each GPU once")
