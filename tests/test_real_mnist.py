"""The default configuration on the real MNIST files (runs when ``MNIST_DIR`` points at them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_one_epoch_reaches_98_percent(real_mnist_experiment: Path) -> None:
    experiment = real_mnist_experiment / "experiments" / "real"
    splits = json.loads((experiment / "data.json").read_text())["state"]
    assert len(splits["train_indexes"]) == 48000 and len(splits["validation_indexes"]) == 12000
    result = json.loads((experiment / "results" / "test-1.json").read_text())
    assert result["total"] == 10000
    assert result["accuracy"] >= 0.98, f"test accuracy {result['accuracy']:.4f} after one epoch"


def test_one_epoch_on_two_processes_reaches_98_percent(real_mnist_experiment: Path, tmp_path: Path) -> None:
    """The same recipe on 2 processes (batch 64 = 2 x 32, one optimizer step per 64 images) learns as well."""
    from conftest import run_cli

    work = tmp_path / "work"
    work.mkdir()
    for item in ("config.default.json", "config.schema.json", "data"):
        (work / item).symlink_to(real_mnist_experiment / item)
    run_cli(work, "--experiment-name", "two", "init")
    run_cli(work, "--experiment-name", "two", "train", "--max-epochs", "1", "--device", "cpu", "cpu")
    result = json.loads((work / "experiments" / "two" / "results" / "test-1.json").read_text())
    assert result["total"] == 10000
    assert result["accuracy"] >= 0.98, f"test accuracy {result['accuracy']:.4f} after one epoch on 2 processes"
