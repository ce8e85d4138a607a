"""Temperature scaling (``calibration.py``): the fit finds the temperature that made the data, and calibrated
probabilities are as often right as they say."""

from __future__ import annotations

import torch

from mnist_classifier.inference.calibration import UNSURE_BELOW, Calibration
from mnist_classifier.training.calibration import ece, fit


def overconfident(temperature: float, n: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities whose classes were drawn from ``softmax(logits / temperature)``: a model that is
    ``temperature`` times too sure of itself."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=generator) * 4
    targets = torch.multinomial(torch.softmax(logits / temperature, 1), 1, generator=generator).flatten()
    return torch.log_softmax(logits, 1), targets


def test_the_fit_finds_the_temperature_and_calibrates() -> None:
    log_probabilities, targets = overconfident(2.0)
    calibration = fit(log_probabilities, targets)
    assert abs(calibration.temperature - 2.0) < 0.1, calibration
    assert calibration.images == 20000 and calibration.nll[1] < calibration.nll[0]
    assert calibration.ece[1] < 0.02 < calibration.ece[0]
    assert fit(log_probabilities, targets) == calibration, "the same every time"
    calibrated = calibration.probabilities(log_probabilities)
    assert torch.equal(torch.as_tensor(calibrated.argmax(1)), log_probabilities.argmax(1)), "no answer changes"
    assert ece(calibrated, targets) == calibration.ece[1]


def test_releases_without_calibration_keep_their_probabilities() -> None:
    legacy = Calibration.from_dict(None)
    assert legacy.temperature == 1.0 and legacy.unsure_below == UNSURE_BELOW and legacy.images == 0
    log_probabilities = torch.log_softmax(torch.randn(5, 10), 1)
    assert torch.allclose(torch.as_tensor(legacy.probabilities(log_probabilities)), log_probabilities.exp())
    state = fit(*overconfident(0.5)).to_dict()
    assert Calibration.from_dict(state).to_dict() == state


def test_the_status_says_no_digit_when_none_stands_out() -> None:
    """``Calibration.status``: no ink is no digit; a release trained with glyphs of no digit (``no_digit_below``
    set) also calls an answer spread over many digits no digit, but not one split between two; without it such an
    answer is only unsure."""
    import numpy as np

    from mnist_classifier.inference.calibration import NO_DIGIT_BELOW

    spread = np.array([0.3, 0.2, 0.15] + [0.05] * 7)  # the two likeliest: 50%
    split = np.array([0.5, 0.45] + [0.05 / 8] * 8)  # a 4 or a 9: 95%
    sure = np.array([0.9] + [0.1 / 9] * 9)
    glyphs, plain = Calibration(no_digit_below=NO_DIGIT_BELOW), Calibration()
    assert [glyphs.status(p, ink=True) for p in (spread, split, sure)] == ["no digit", "unsure", "sure"]
    assert [plain.status(p, ink=True) for p in (spread, split, sure)] == ["unsure", "unsure", "sure"]
    assert glyphs.status(sure, ink=False) == plain.status(sure, ink=False) == "no digit"
    assert 0.5 < NO_DIGIT_BELOW < 0.95
    assert Calibration.from_dict({"temperature": 0.5}).no_digit_below == 0.0, "releases made before it never do"
    assert Calibration.from_dict(glyphs.to_dict()) == glyphs
