"""One writer per experiment: an exclusive ``fcntl.flock`` on ``<experiment>/.lock``; and ``turn``, a short
section that processes take one after another.

The holder writes its PID and pipeline into the file and empties it on release; the kernel drops the lock when
a process dies, so a crash never leaves the experiment locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .errors import UserError
from .storage import FILE_MODE


class ExperimentLock:
    def __init__(self, path: Path, name: str, pipeline: str) -> None:
        self.path = Path(path)
        self.name = name
        self.pipeline = pipeline
        self.fd: int | None = None

    def __enter__(self) -> ExperimentLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"experiment '{self.name}' is in use by {holder}, "
                            "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.pipeline})".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


@contextmanager
def turn(path: Path) -> Iterator[None]:
    """Wait until no other process holds ``path``'s ``flock``, then hold it while the block runs: a few
    milliseconds of work that must not interleave with another process's (a dead holder's lock is dropped)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
