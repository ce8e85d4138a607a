"""The default configuration on the real MNIST files (runs when ``MNIST_DIR`` points at them). Every test that
uses the real-MNIST experiment lives here, so one pytest-xdist worker runs them all while the other goes on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_predict import render

from conftest import run_cli

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
    work = tmp_path / "work"
    work.mkdir()
    for item in ("config.default.json", "config.schema.json", "data"):
        (work / item).symlink_to(real_mnist_experiment / item)
    run_cli(work, "--experiment-name", "two", "init")
    run_cli(work, "--experiment-name", "two", "train", "--max-epochs", "1", "--device", "cpu", "cpu")
    result = json.loads((work / "experiments" / "two" / "results" / "test-1.json").read_text())
    assert result["total"] == 10000
    assert result["accuracy"] >= 0.98, f"test accuracy {result['accuracy']:.4f} after one epoch on 2 processes"


def test_rendered_digits_with_a_real_mnist_release(real_mnist_experiment: Path, tmp_path: Path) -> None:
    """Digits drawn with a TrueType font, in several sizes, strokes, colours and places, read as PNG/JPEG."""
    release = real_mnist_experiment / "experiments" / "real" / "checkpoints" / "1.checkpoint.release.pkl"
    rng = random.Random(0)
    files, truth = [], []
    for digit in range(10):
        for variant in range(6):
            size, stroke = rng.choice([60, 90, 140]), rng.choice([0, 2, 4])
            ink = rng.choice([(0, 0, 0), (30, 30, 160), (120, 20, 20)])
            paper = rng.choice([(255, 255, 255), (235, 230, 210)])
            canvas = (size + 80, size + 100)
            offset = (rng.randint(10, 50), rng.randint(0, 40))
            path = tmp_path / f"{digit}-{variant}.{'jpg' if variant % 2 else 'png'}"
            render(digit, size, stroke, ink, paper, canvas, offset).save(path)
            files.append(str(path))
            truth.append(str(digit))
    results = json.loads(run_cli(tmp_path, "predict", "--release", str(release), *files, "--json").stdout)
    correct = sum(entry["label"] == expected for entry, expected in zip(results, truth, strict=True))
    assert correct / len(files) >= 0.9, f"{correct}/{len(files)} rendered digits recognised"


def test_a_too_small_mlp_fails_on_real_mnist(real_mnist_experiment: Path) -> None:
    """The FSDL labs' lesson: ``--fc1=4 --fc2=8`` trains clearly worse than the default network."""
    work = real_mnist_experiment
    run_cli(work, "--experiment-name", "tiny", "init", "--set", "model.name=mlp", "--set", "model.fc1=4",
            "--set", "model.fc2=8")
    run_cli(work, "--experiment-name", "tiny", "train", "--max-epochs", "1", "--device", "cpu")
    tiny = json.loads(((work / "experiments" / "tiny") / "results" / "test-1.json").read_text())["accuracy"]
    default = json.loads(((work / "experiments" / "real") / "results" / "test-1.json").read_text())["accuracy"]
    assert default >= 0.98 and tiny < default - 0.1, f"tiny mlp {tiny:.4f} vs default cnn {default:.4f}"
