"""The metric an application is judged by, and reading a run's per-epoch metrics with it: which epoch is best,
and for how many epochs a value has not improved. Plain dicts only, so ``info`` uses it without torch.

Epoch metrics are named ``<split>_<name>``: ``train_loss``, ``validation_accuracy``, ``test_loss``... The best
epoch has the best value of the judged metric; ties go to the lower ``validation_loss``, then the earlier epoch.
An epoch without the judged metric ranks below every epoch with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Metric:
    """An epoch metric's key (``validation_accuracy``) and whether higher values are better."""

    key: str
    higher_is_better: bool

    def __post_init__(self) -> None:
        split, _, name = self.key.partition("_")
        if split not in SPLITS or not name:
            raise ValueError(f"metric '{self.key}' must be named <split>_<name> with split one of {SPLITS}")

    @property
    def split(self) -> str:
        return self.key.partition("_")[0]

    @property
    def name(self) -> str:
        """The key without its split: ``accuracy`` for ``validation_accuracy``."""
        return self.key.partition("_")[2]

    @property
    def label(self) -> str:
        return self.key.replace("_", " ")

    def score(self, value: float) -> float:
        """``value`` turned so that larger is better."""
        return value if self.higher_is_better else -value


VALIDATION_LOSS = Metric("validation_loss", higher_is_better=False)


def number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_epoch(history: list[dict[str, Any]], metric: Metric = VALIDATION_LOSS) -> int | None:
    """The epoch of the best entry (see the module's docstring), or ``None`` when none has validation metrics."""
    ranked = []
    for entry in history:
        value, loss = number(entry.get(metric.key)), number(entry.get("validation_loss"))
        if entry.get("epoch") is None or (value is None and loss is None):
            continue
        ranked.append((metric.score(value) if value is not None else -math.inf,
                       -loss if loss is not None else -math.inf, -int(entry["epoch"])))
    return -max(ranked)[2] if ranked else None


def epochs_without_improvement(history: list[dict[str, Any]], metric: Metric = VALIDATION_LOSS) -> int:
    """How many of the last epochs did not bring ``metric`` past its best so far (0: the last epoch did)."""
    best, since = -math.inf, 0
    for entry in history:
        value = number(entry.get(metric.key))
        if value is not None and metric.score(value) > best:
            best, since = metric.score(value), 0
        else:
            since += 1
    return since
