"""Atomic file writes: a crash at any instant leaves either the old file or the new one, never a torn one.

``EXPERIMENT_TEST_WRITE_DELAY`` (seconds) pauses every write halfway, so the fault-injection tests can kill
a process while a file is half written; it is unset in normal use.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create owner-only files; what we write should get the usual permissions instead.
FILE_MODE = 0o666 & ~_current_umask()
DIR_MODE = 0o777 & ~_current_umask()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX needs the directory itself synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TEMPORARY_SUFFIX = ".tmp"
WRITE_DELAY_VARIABLE = "EXPERIMENT_TEST_WRITE_DELAY"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path``, fsync it, rename it into place, fsync the folder."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            delay = float(os.environ.get(WRITE_DELAY_VARIABLE) or 0)
            if delay:
                file.write(data[: len(data) // 2])
                file.flush()
                time.sleep(delay)
                data = data[len(data) // 2:]
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete what a killed ``atomic_write`` left behind (``.NAME.XXXX.tmp``); only call while holding the lock."""
    removed = [p for p in Path(folder).glob(f".*{TEMPORARY_SUFFIX}") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (human-readable, diff-able, never pickled)."""
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def is_json(value: Any) -> bool:
    """Whether ``write_json`` can write ``value`` (checked before anything is written)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def read_json(path: Path) -> Any:
    """Read a JSON file the framework wrote."""
    with open(path, encoding="utf-8") as file:
        return json.load(file)
