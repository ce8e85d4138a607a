"""Progress bars (tqdm) on a terminal; nothing otherwise, where the log lines every ``--log-period`` serve."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any


class Progress:
    """``with Progress(enabled, total, 'epoch 3', 'img') as bar: bar.update(items, loss=...)``; a no-op when
    disabled."""

    def __init__(self, enabled: bool, total: int, description: str, unit: str = "item") -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            try:
                size = os.get_terminal_size(sys.stderr.fileno())
            except OSError:
                size = os.terminal_size((0, 0))
            # a terminal that reports no size (some containers' ttys) would hide the bar: assume 80x24
            known = size.columns > 0 and size.lines > 0
            self.bar = tqdm(total=total, desc=description, unit=unit, unit_scale=True, file=sys.stderr,
                            leave=False, dynamic_ncols=known, ncols=None if known else 80,
                            nrows=None if known else 24)

    def update(self, count: int, **postfix: Any) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(count)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()


def wanted(no_progress: bool) -> bool:
    """Bars only when a person watches: stderr is a terminal and ``--no-progress`` was not given."""
    return not no_progress and sys.stderr.isatty()


def count_items(batch: Any) -> int:
    """The examples in a batch: the length of a tensor, of a tuple's or list's first element, or of a dict's first
    value (``{"ids": [N, L], "label": [N]}`` holds N)."""
    if isinstance(batch, Mapping):
        return count_items(next(iter(batch.values()))) if batch else 0
    if isinstance(batch, (tuple, list)):
        return count_items(batch[0]) if batch and hasattr(batch[0], "__len__") else len(batch)
    return len(batch)
