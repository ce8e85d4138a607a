"""Logging to stdout (``--verbose``) and to the experiment's ``verbose.log``.

Records are held in memory until the pipeline commits to its work (``attach_log_file``): a command that fails on
bad input therefore leaves ``verbose.log`` byte-identical. In a group of processes only the first one logs; the
others print their warnings to stderr, prefixed with their rank, and never touch ``verbose.log``.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import BufferingHandler
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _HoldHandler(BufferingHandler):
    """Keeps every record until it is replayed into the log file; never flushes by itself."""

    def __init__(self) -> None:
        super().__init__(capacity=0)

    def shouldFlush(self, record: logging.LogRecord) -> bool:  # noqa: N802 (logging's API name)
        return False


def setup_logging(name: str, verbose: bool, rank: int = 0) -> logging.Logger:
    """Return the logger ``name`` (the app's): to stdout when ``verbose``, and held for ``verbose.log``; in a
    process other than rank 0, only warnings, to stderr, as ``rank N: warning: ...``."""
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if rank:
        warnings = logging.StreamHandler(sys.stderr)
        warnings.addFilter(lambda record: record.levelno == logging.WARNING)
        warnings.setFormatter(logging.Formatter(f"rank {rank}: warning: %(message)s"))
        logger.addHandler(warnings)
        return logger  # holds nothing, so attach_log_file writes nothing
    if verbose:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        logger.addHandler(stream)
    else:  # warnings reach the user even without --verbose (errors are printed by the CLI itself)
        warnings = logging.StreamHandler(sys.stderr)
        warnings.addFilter(lambda record: record.levelno == logging.WARNING)
        warnings.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(warnings)
    logger.addHandler(_HoldHandler())
    return logger


def attach_log_file(logger: logging.Logger, path: Path) -> None:
    """Start appending to ``path``, first writing out what was held since the command started (once: a second
    call for the same file does nothing, and so does a call for a logger that holds nothing: another rank's)."""
    target = os.path.abspath(path)
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == target for h in logger.handlers) or \
            not any(isinstance(h, _HoldHandler) for h in logger.handlers):
        return
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    for handler in list(logger.handlers):
        if isinstance(handler, _HoldHandler):
            for record in handler.buffer:
                file_handler.handle(record)
            logger.removeHandler(handler)
            handler.close()
    logger.addHandler(file_handler)
