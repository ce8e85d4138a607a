"""MNIST's IDX file format: a magic number, big-endian sizes, then the bytes. Read with its header checked against
its size, so a damaged file is named here instead of failing deep inside torch."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import torch

from ..framework import UserError


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Read an IDX file (MNIST's format) as a uint8 tensor, checking its header against its size first.

    A damaged file is named here instead of failing deep inside torch.
    """
    data = path.read_bytes()
    header = 4 + 4 * ndim
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise UserError(f"{path} is not an MNIST IDX file (wrong magic number), delete it and supply the original")
    if len(data) < header:
        raise UserError(f"{path} is truncated (incomplete header), delete it and supply the original")
    sizes = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) != header + math.prod(sizes):
        raise UserError(f"{path} has {len(data)} bytes but its header announces {header + math.prod(sizes)} "
                        "(damaged or truncated), delete it and supply the original")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*sizes)


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (magic 0x0000 08 <ndim>, big-endian sizes, then the bytes)."""
    array = array.to(torch.uint8).contiguous()
    header = bytes([0, 0, 0x08, array.dim()]) + struct.pack(f">{array.dim()}I", *array.shape)
    Path(path).write_bytes(header + array.numpy().tobytes())
