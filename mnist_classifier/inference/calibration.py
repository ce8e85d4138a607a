"""Probabilities a person can trust: temperature scaling (Guo et al., 2017) fitted on the validation split.

A network trained to low loss is over-confident: its 99% answers are right less often than 99 times in 100, and
a picture that is no digit at all can still get 99%. Dividing its log-probabilities by one temperature, fitted
to minimise the negative log-likelihood of the validation images (which it never trained on), makes the
probabilities calibrated without changing any answer. ``create_release`` fits it and stores it in the release;
``predict`` and ``serve`` then call an answer *unsure* when its calibrated probability is below
``UNSURE_BELOW``, and say *no digit* when a picture holds no ink at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

UNSURE_BELOW = 0.8  # a calibrated probability under this: the answer is unsure
BINS = 15  # for the expected calibration error


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature, the threshold ``predict`` applies, and how well the validation images fit."""

    temperature: float = 1.0
    unsure_below: float = UNSURE_BELOW
    images: int = 0  # validation images it was fitted on (0: not fitted, as in releases made before it)
    nll: tuple[float, float] = (0.0, 0.0)  # validation NLL before and after
    ece: tuple[float, float] = (0.0, 0.0)  # validation expected calibration error before and after

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "unsure_below": self.unsure_below, "images": self.images,
                "nll": list(self.nll), "ece": list(self.ece)}

    @classmethod
    def from_dict(cls, state: dict | None) -> Calibration:
        """A release's ``calibration``; releases made before calibration existed: temperature 1."""
        if not state:
            return cls()
        return cls(float(state["temperature"]), float(state.get("unsure_below", UNSURE_BELOW)),
                   int(state.get("images", 0)), tuple(state.get("nll", (0.0, 0.0))),
                   tuple(state.get("ece", (0.0, 0.0))))

    def probabilities(self, log_probabilities: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities of a model's ``[N, classes]`` log-probabilities."""
        return torch.softmax(log_probabilities.float() / self.temperature, dim=-1)


def outputs(model: torch.nn.Module, batches: Iterable, prepare: Callable, device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's log-probabilities and the targets over ``batches``, on the CPU."""
    model.eval()
    logits, targets = [], []
    with torch.inference_mode():
        for it_data in batches:
            images, target = prepare(it_data, device)
            logits.append(model(images).float().cpu())
            targets.append(target.cpu())
    return torch.cat(logits), torch.cat(targets)


def nll(log_probabilities: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    return float(torch.nn.functional.cross_entropy(log_probabilities.double() / temperature, targets))


def ece(probabilities: torch.Tensor, targets: torch.Tensor) -> float:
    """Expected calibration error: over ``BINS`` bins of confidence, how far accuracy is from confidence."""
    confidence, predicted = probabilities.max(dim=1)
    right = (predicted == targets).double()
    bins = (confidence.double() * BINS).long().clamp(max=BINS - 1)
    error = 0.0
    for b in range(BINS):
        inside = bins == b
        if inside.any():
            error += float(inside.double().mean()) * abs(float(right[inside].mean() - confidence[inside].mean()))
    return error


def fit(log_probabilities: torch.Tensor, targets: torch.Tensor, unsure_below: float = UNSURE_BELOW) -> Calibration:
    """The temperature that minimises the NLL of ``targets``. The NLL is convex in the inverse temperature, so a
    golden-section search over it (0.05 to 20) finds the minimum, the same every time."""
    if not len(targets):
        return Calibration(unsure_below=unsure_below)
    low, high = 0.05, 20.0
    ratio = (5 ** 0.5 - 1) / 2
    for _ in range(80):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(log_probabilities, targets, 1 / a) < nll(log_probabilities, targets, 1 / b):
            high = b
        else:
            low = a
    temperature = round(2 / (low + high), 6)
    before, after = Calibration(), Calibration(temperature)
    return Calibration(
        temperature, unsure_below, len(targets),
        (nll(log_probabilities, targets, 1.0), nll(log_probabilities, targets, temperature)),
        (ece(before.probabilities(log_probabilities), targets), ece(after.probabilities(log_probabilities), targets)))
