"""Evaluating the classifier over a whole split: loss, confusion matrix and some misclassified images, accumulated
on the device with one sync at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..framework import sum_over_processes


@dataclass
class Evaluation:
    loss: float
    correct: int
    total: int
    confusion: torch.Tensor  # [true, predicted] counts
    seconds: float
    mistakes: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # images, true, predicted (some)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total  # over images, not batches

    def details(self) -> dict[str, Any]:
        per_class = self.confusion.diag().double() / self.confusion.sum(1).clamp(min=1)
        return {"correct": self.correct, "total": self.total, "per_class_accuracy": per_class.tolist(),
                "confusion_matrix": self.confusion.tolist(), "seconds": round(self.seconds, 4),
                "images_per_second": round(self.total / self.seconds, 1)}


def evaluate(model: torch.nn.Module, batches: Iterable, prepare: Callable, classes: int, device: torch.device,
             autocast: AbstractContextManager, bar: Any, keep_mistakes: int = 0) -> Evaluation:
    """``model`` over ``batches`` (``prepare`` makes each one the model's input and targets on ``device``), under
    ``autocast``, counting images on the progress ``bar``; with ``keep_mistakes``, up to that many misclassified
    images too (in a group of processes, this process's own; the counts and the loss are everyone's)."""
    confusion = torch.zeros(classes * classes, dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    mistakes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode(), autocast:
        for it_data in batches:
            images, targets = prepare(it_data, device)
            output = model(images)
            predicted = output.argmax(1)
            loss_sum += F.nll_loss(output, targets, reduction="sum")
            confusion += torch.bincount(targets * classes + predicted, minlength=classes * classes)
            if keep_mistakes:
                wrong = predicted != targets
                raw = it_data[0]  # on the CPU when workers feed a GPU: index it with a mask from there
                mistakes.append((raw[wrong.to(raw.device)][:keep_mistakes], targets[wrong][:keep_mistakes],
                                 predicted[wrong][:keep_mistakes]))
            bar.update(len(targets))
    sum_over_processes(confusion)  # in a group, each process saw its shard: exact counts over all of them
    sum_over_processes(loss_sum)
    confusion = confusion.view(classes, classes).cpu()
    total = int(confusion.sum())
    kept = None
    if keep_mistakes:
        kept = tuple(torch.cat([m[i] for m in mistakes])[:keep_mistakes].cpu() for i in range(3))
    return Evaluation(loss_sum.item() / max(total, 1), int(confusion.diag().sum()), total, confusion,
                      time.perf_counter() - started, kept)
