"""Progress bars (tqdm) on a terminal; nothing otherwise, where the log lines every ``--log-period`` serve."""

from __future__ import annotations

import os
import sys
from typing import Any


class Progress:
    """``with Progress(enabled, total, 'epoch 3') as bar: bar.update(images, loss=...)``; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            try:
                size = os.get_terminal_size(sys.stderr.fileno())
            except OSError:
                size = os.terminal_size((0, 0))
            # a terminal that reports no size (some containers' ttys) would hide the bar: assume 80x24
            known = size.columns > 0 and size.lines > 0
            self.bar = tqdm(total=total, desc=description, unit="img", unit_scale=True, file=sys.stderr,
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
