"""One epoch of the default configuration on the real MNIST files (runs when ``MNIST_DIR`` points at them)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, run_cli

MNIST_DIR = os.environ.get("MNIST_DIR")
pytestmark = pytest.mark.skipif(not MNIST_DIR, reason="set MNIST_DIR to the four MNIST .gz files to run this")


def test_one_epoch_reaches_98_percent(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(MNIST_DIR) / name, raw / name)
    for name in ("config.default.json", "config.schema.json"):
        shutil.copy(REPO / name, tmp_path / name)
    run_cli(tmp_path, "--experiment-name", "real", "init")
    splits = json.loads((tmp_path / "experiments" / "real" / "data.json").read_text())
    assert len(splits["train_indexes"]) == 48000 and len(splits["validation_indexes"]) == 12000
    run_cli(tmp_path, "--experiment-name", "real", "train", "--max-epochs", "1", "--device", "cpu")
    result = json.loads((tmp_path / "experiments" / "real" / "results" / "test-1.json").read_text())
    assert result["total"] == 10000
    assert result["accuracy"] >= 0.98, f"test accuracy {result['accuracy']:.4f} after one epoch"
