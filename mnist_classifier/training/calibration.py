"""Fitting the temperature of a release's calibration (``inference/calibration.py`` says what it is for) on the
validation split, when ``create_release`` makes a release."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ..inference.calibration import UNSURE_BELOW, Calibration

BINS = 15  # for the expected calibration error


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
    confidence, predicted = torch.as_tensor(probabilities).max(dim=1)
    right = (predicted == targets).double()
    bins = (confidence.double() * BINS).long().clamp(max=BINS - 1)
    error = 0.0
    for b in range(BINS):
        inside = bins == b
        if inside.any():
            error += float(inside.double().mean()) * abs(float(right[inside].mean() - confidence[inside].mean()))
    return error


def fit(log_probabilities: torch.Tensor, targets: torch.Tensor, unsure_below: float = UNSURE_BELOW,
        no_digit_below: float = 0.0) -> Calibration:
    """The temperature that minimises the NLL of ``targets``, with the thresholds given. The NLL is convex in the
    inverse temperature, so a golden-section search over it (0.05 to 20) finds the minimum, the same every time."""
    if not len(targets):
        return Calibration(unsure_below=unsure_below, no_digit_below=no_digit_below)
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
        temperature, unsure_below, no_digit_below, len(targets),
        (nll(log_probabilities, targets, 1.0), nll(log_probabilities, targets, temperature)),
        (ece(before.probabilities(log_probabilities), targets), ece(after.probabilities(log_probabilities), targets)))
