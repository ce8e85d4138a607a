"""Checkpoint files: naming, listing, atomic saving and safe (``weights_only``) loading.

A checkpoint is a ``torch.save`` file of plain containers and tensors only, so ``torch.load(weights_only=True)``
can read it without ever running code found in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import UserError
from .storage import atomic_write

CHECKPOINT_SUFFIX = ".checkpoint.pkl"
RELEASE_SUFFIX = ".checkpoint.release.pkl"
INTERRUPTED_NAME = "interrupted.checkpoint.pkl"  # the mid-epoch state saved on SIGINT/SIGTERM
DAMAGED_SUFFIX = ".damaged"
_CHECKPOINT_RE = re.compile(r"^(\d+)" + re.escape(CHECKPOINT_SUFFIX) + "$")
_RELEASE_RE = re.compile(r"^(\d+)" + re.escape(RELEASE_SUFFIX) + "$")


def checkpoint_path(folder: Path, epoch: int) -> Path:
    return Path(folder) / f"{epoch}{CHECKPOINT_SUFFIX}"


def release_path(folder: Path, epoch: int) -> Path:
    return Path(folder) / f"{epoch}{RELEASE_SUFFIX}"


def _list(folder: Path, pattern: re.Pattern) -> list[int]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name)))


def list_checkpoints(folder: Path) -> list[int]:
    """Epochs that have a standard checkpoint, oldest first."""
    return _list(folder, _CHECKPOINT_RE)


def list_releases(folder: Path) -> list[int]:
    """Epochs that have a release checkpoint, oldest first."""
    return _list(folder, _RELEASE_RE)


def interrupted_path(folder: Path) -> Path:
    return Path(folder) / INTERRUPTED_NAME


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.damaged`` (``.damaged.2``...) so nothing ever overwrites or deletes it."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{number}")
    path.rename(target)
    return target


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically ``torch.save`` ``state``; an unwritable folder or a full disk is a ``UserError``.

    The state is serialised in memory first, so a failing disk surfaces as a plain ``OSError`` from the write.
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write(Path(path), buffer.getbuffer())
    except OSError as error:
        raise UserError(
            f"cannot write {path} ({error.strerror or error}), free disk space or fix the folder's permissions"
        ) from None


_REMEDIES = {  # kind: what to do when the file is missing, when it is damaged
    "checkpoint": ("list the available ones with the info pipeline", "use another epoch or retrain it"),
    "release": ("check the path (create_release writes releases into the experiment's checkpoints folder)",
                "make it again with create_release, or copy it again"),
}


def load(path: Path, kind: str = "checkpoint") -> dict[str, Any]:
    """Load a checkpoint or release (``kind``, for the messages) onto the CPU without unpickling arbitrary
    objects."""
    import pickle

    import torch

    path = Path(path)
    if_missing, if_damaged = _REMEDIES[kind]
    if not path.is_file():
        raise UserError(f"{kind} {path} does not exist, {if_missing}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error))
        if unsafe:  # the file asks to call or build something: refused before anything ran
            raise UserError(f"{path} was refused: loading it would run {unsafe.group(1)}, "
                            "use only checkpoints and releases made by this tool") from None
        raise UserError(f"{kind} {path} is damaged and cannot be loaded (not a {kind}), {if_damaged}") from None
    except Exception as error:  # torch raises RuntimeError, EOFError, zipfile errors... for damaged files
        raise UserError(f"{kind} {path} is damaged and cannot be loaded ({type(error).__name__}), {if_damaged}"
                        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{kind} {path} does not hold a {kind}, use a file made by this tool")
    return state
