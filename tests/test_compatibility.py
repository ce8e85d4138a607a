"""An experiment folder made by version 0.1 (tests/fixtures/experiment-v0.1: a small MLP trained 2 epochs on the
synthetic data, seed 7, with a release) still shows, tests, trains on and releases, and training it on gives the
weights version 0.1 itself gave."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_workdir, run_cli

FIXTURE = REPO / "tests" / "fixtures" / "experiment-v0.1"
# sha256 over (name, bytes) of each tensor of 3.checkpoint.pkl's model, sorted by name, after version 0.1 trained
# the fixture from epoch 2 to epoch 3 (`train --max-epochs 3 --device cpu`).
# Epoch 3 trained on from the v0.1 fixture's epoch 2, by the code that was current when each was recorded. The
# same code gives other bits on another CPU (oneDNN picks its convolution kernels by processor), so each digest
# was produced by the unchanged code on its machine: a change that alters training gives neither.
VERSION_0_1_EPOCH_3 = {
    "44c5a01ca5849b192306d56e04f9ed359c7369adf8c199bb9a128feb5b2f8c12",  # the machine of 2026-11-23
    "a3b17370af38c7b6d333fdf31b14eead7fcb47252bfcf4c10e5f27200c7351ad",  # AMD EPYC, AVX-512; a6d435f gives it too
}


def _weights_digest(path: Path) -> str:
    model = torch.load(path, weights_only=True)["model"]
    digest = hashlib.sha256()
    for name in sorted(model):
        digest.update(name.encode())
        digest.update(model[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_a_version_0_1_experiment_still_works(tmp_path: Path, synthetic_data: Path) -> None:
    work = make_workdir(tmp_path, synthetic_data)
    shutil.copytree(FIXTURE, work / "experiments" / "v0.1")
    experiment = work / "experiments" / "v0.1"
    name = ["--experiment-name", "v0.1"]

    info = run_cli(work, *name, "info").stdout
    assert "Splits: train 800, validation 200" in info and "(best: epoch 2, by validation accuracy)" in info
    assert "Data: dataset mnist | class names 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 | mean 0.1495 | std 0.1690" in info

    stored = json.loads((FIXTURE / "results" / "test-2.json").read_text())
    result = run_cli(work, *name, "test", "--epoch", "2", "--device", "cpu")
    assert result.stdout.startswith(f"Test of epoch 2 | accuracy {100 * stored['accuracy']:.2f}% ")
    assert json.loads((experiment / "results" / "test-2.json").read_text())["accuracy"] == stored["accuracy"]

    result = run_cli(work, *name, "train", "--max-epochs", "3", "--device", "cpu")
    assert "warning" not in result.stderr  # its checkpoints record no thread count: nothing to compare
    digest = _weights_digest(experiment / "checkpoints" / "3.checkpoint.pkl")
    assert digest in VERSION_0_1_EPOCH_3, f"{digest}: on a new CPU, check that the code of a6d435f gives it too"

    run_cli(work, *name, "create_release", "--epoch", "3")
    old_release = FIXTURE / "checkpoints" / "2.checkpoint.release.pkl"
    digit = work / "digit.png"
    from PIL import Image

    Image.new("L", (40, 40), 255).save(digit)
    for release in (old_release, experiment / "checkpoints" / "3.checkpoint.release.pkl"):
        assert run_cli(work, "predict", "--release", str(release), str(digit)).stdout.startswith(f"{digit}: ")
