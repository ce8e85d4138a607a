"""Reading a run's per-epoch metrics (``Runner.history``, ``results/epoch-E.json``): which epoch is best, and
for how many epochs a monitored value has not improved. Plain dicts only, so ``info`` uses it without torch.

The best epoch has the highest ``validation_accuracy`` (ties: the lower ``validation_loss``, then the earlier
epoch); when ``validate`` reports no accuracy, the lowest ``validation_loss``.
"""

from __future__ import annotations

import math
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch of the best entry (see the module's docstring), or ``None`` when none has validation metrics."""
    ranked = []
    for entry in history:
        accuracy, loss = _number(entry.get("validation_accuracy")), _number(entry.get("validation_loss"))
        if entry.get("epoch") is None or (accuracy is None and loss is None):
            continue
        ranked.append((accuracy if accuracy is not None else -math.inf,
                       -loss if loss is not None else -math.inf, -int(entry["epoch"])))
    return -max(ranked)[2] if ranked else None


def epochs_without_improvement(history: list[dict[str, Any]], key: str = "validation_loss") -> int:
    """How many of the last epochs did not bring ``key`` below its best so far (0: the last epoch did)."""
    best, since = math.inf, 0
    for entry in history:
        value = _number(entry.get(key))
        if value is not None and value < best:
            best, since = value, 0
        else:
            since += 1
    return since
