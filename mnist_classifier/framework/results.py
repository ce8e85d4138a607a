"""What the ``test`` and ``test_sample`` hooks return. The framework checks the type and names the hook when an
app returns something else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TestResult:
    """The outcome of ``Runner.test``.

    ``summary`` is the one line printed and logged. ``metrics`` are numbers by name (``{"loss": 0.03,
    "accuracy": 0.99}``): the framework records each as ``test_<name>`` in the epoch's metrics, sends it to
    TensorBoard as ``<name>/epoch/test`` and writes it to ``results/test-<epoch>.json`` with ``details``
    (anything JSON: a confusion matrix, per-class figures...).
    """

    __test__ = False  # not a pytest test class, despite its name

    summary: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleResult:
    """The outcome of ``Runner.test_sample``: the line to print, and the prediction as JSON-able values."""

    summary: str
    details: dict[str, Any] = field(default_factory=dict)
