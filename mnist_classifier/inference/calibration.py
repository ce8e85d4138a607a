"""Probabilities a person can trust: temperature scaling (Guo et al., 2017) fitted on the validation split.

A network trained to low loss is over-confident: its 99% answers are right less often than 99 times in 100, and
a picture that is no digit at all can still get 99%. Dividing its log-probabilities by one temperature, fitted
to minimise the negative log-likelihood of the validation images (which it never trained on), makes the
probabilities calibrated without changing any answer. ``create_release`` fits it and stores it in the release;
``predict`` and ``serve`` then call an answer *unsure* when its calibrated probability is below
``UNSURE_BELOW``, and say *no digit* when a picture holds no ink at all, or, for a release trained with glyphs of
no digit (``data.typed_digits.not_digits``), when no digit stands out: its two likeliest digits together have
under ``NO_DIGIT_BELOW`` of the calibrated probability. Such a release learnt to spread its answer for a letter
or a sign over many digits, while a digit it is unsure of is mostly one of two (a 4 or a 9).

This module applies a stored calibration with numpy alone (an ONNX export uses it without torch); fitting one is
``training/calibration.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

UNSURE_BELOW = 0.8  # a calibrated probability under this: the answer is unsure
# the two likeliest digits' calibrated probabilities together under this: no digit (releases trained with glyphs of
# no digit; chosen on the tuning pictures, docs/pictures.md)
NO_DIGIT_BELOW = 0.7


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature, the thresholds ``predict`` applies, and how well the validation images fit."""

    temperature: float = 1.0
    unsure_below: float = UNSURE_BELOW
    no_digit_below: float = 0.0  # ``NO_DIGIT_BELOW`` for a release trained with glyphs of no digit; 0: never
    images: int = 0  # validation images it was fitted on (0: not fitted, as in releases made before it)
    nll: tuple[float, float] = (0.0, 0.0)  # validation NLL before and after
    ece: tuple[float, float] = (0.0, 0.0)  # validation expected calibration error before and after

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "unsure_below": self.unsure_below,
                "no_digit_below": self.no_digit_below, "images": self.images, "nll": list(self.nll),
                "ece": list(self.ece)}

    @classmethod
    def from_dict(cls, state: dict | None) -> Calibration:
        """A release's ``calibration``; releases made before calibration existed: temperature 1."""
        if not state:
            return cls()
        return cls(float(state["temperature"]), float(state.get("unsure_below", UNSURE_BELOW)),
                   float(state.get("no_digit_below", 0.0)), int(state.get("images", 0)),
                   tuple(state.get("nll", (0.0, 0.0))), tuple(state.get("ece", (0.0, 0.0))))

    def probabilities(self, log_probabilities: Any) -> np.ndarray:
        """Calibrated probabilities of a model's ``[N, classes]`` log-probabilities (a numpy or torch array)."""
        scaled = np.asarray(log_probabilities, dtype=np.float32) / np.float32(self.temperature)
        exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def status(self, probabilities: np.ndarray, ink: bool) -> str:
        """What an answer is, from a picture's ``[classes]`` calibrated ``probabilities`` and whether its prepared
        input holds any ink: "no digit" (no ink, or no digit stands out), "unsure" or "sure"."""
        two = np.sort(probabilities)[-2:]
        if not ink or float(two.sum()) < self.no_digit_below:
            return "no digit"
        return "unsure" if float(two[-1]) < self.unsure_below else "sure"

