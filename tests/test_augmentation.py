"""``data.augmentation``: what each change does to a batch, and that an augmented run of the stronger pieces
(``bn_cnn``, SGD, one-cycle) interrupted mid-epoch resumes bit for bit."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import Watched, run_cli
from mnist_classifier.training.augmentation import Augmentation

STRONG = ["--set", "model.name=bn_cnn", "--set", "model.width=8", "--set", "training.optimizer=sgd",
          "--set", "training.lr=0.05", "--set", "training.schedule=onecycle", "--set", "training.max_epochs=1",
          "--set", "training.weight_decay=0.0005"]
AUGMENTED = ["--set", "data.augmentation.rotation=12", "--set", "data.augmentation.translation=0.1",
             "--set", "data.augmentation.scale=0.1", "--set", "data.augmentation.shear=10",
             "--set", "data.augmentation.stroke_width=0.5", "--set", "data.augmentation.elastic_alpha=1.5"]


def digits(n: int = 32) -> torch.Tensor:
    """Bars and boxes of ink in the middle of 28x28, as floats 0-255 ``[N, 1, 28, 28]``."""
    batch = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        top, left = 8 + i % 4, 9 + i % 5
        batch[i, 0, top:top + 12, left:left + 3] = 255
        batch[i, 0, top:top + 2, left:left + 9] = 200
    return batch


def centroids(batch: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = batch.sum(dim=(1, 2, 3))
    return torch.stack([(batch[:, 0] * ys).sum(dim=(1, 2)) / mass, (batch[:, 0] * xs).sum(dim=(1, 2)) / mass], 1)


def test_configuration_turns_it_on_and_off() -> None:
    assert Augmentation.from_config(None) is None and Augmentation.from_config({}) is None
    assert Augmentation.from_config({"rotation": 0, "elastic_sigma": 3}) is None, "all changes off is no change"
    assert Augmentation.from_config({"rotation": 10, "stroke_width": 0.5}) == Augmentation(rotation=10.0,
                                                                                             stroke_width=0.5)


def test_a_batch_keeps_its_shape_and_range_and_each_seed_gives_its_own_changes() -> None:
    augmentation = Augmentation(rotation=15, translation=0.1, scale=0.15, shear=10, stroke_width=1,
                                elastic_alpha=1.5)
    batch = digits().contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    first = augmentation(batch)
    torch.manual_seed(1)
    again = augmentation(batch)
    torch.manual_seed(2)
    other = augmentation(batch)
    assert first.shape == batch.shape and first.dtype == batch.dtype
    assert torch.equal(first, again), "the same generator state gives the same batch"
    assert not torch.equal(first, other) and not torch.equal(first, batch)
    assert float(first.min()) >= 0 and float(first.max()) <= 255 + 1e-3
    assert all(float(image.sum()) > 0 for image in first), "no digit leaves the picture"


def test_each_change_stays_within_its_range() -> None:
    batch = digits()
    torch.manual_seed(0)
    moved = centroids(Augmentation(translation=0.1)(batch)) - centroids(batch)
    assert float(moved.abs().max()) <= 0.1 * 28 + 0.5 and float(moved.abs().max()) > 1, "up to 2.8 pixels"
    zoomed = Augmentation(scale=0.2)(batch).sum(dim=(1, 2, 3)) / batch.sum(dim=(1, 2, 3))
    assert float(zoomed.min()) >= 0.8**2 - 0.05 and float(zoomed.max()) <= 1.2**2 + 0.05
    assert float(zoomed.max() - zoomed.min()) > 0.2, "each image has its own zoom"
    thicker = F.max_pool2d(batch, 3, stride=1, padding=1).sum(dim=(1, 2, 3))
    thinner = (-F.max_pool2d(-batch, 3, stride=1, padding=1)).sum(dim=(1, 2, 3))
    stroked = Augmentation(stroke_width=1)(batch).sum(dim=(1, 2, 3))
    assert bool(((thinner - 1e-3 <= stroked) & (stroked <= thicker + 1e-3)).all())
    assert bool((stroked > batch.sum(dim=(1, 2, 3))).any()) and bool((stroked < batch.sum(dim=(1, 2, 3))).any())
    turned = Augmentation(rotation=90)(batch)
    assert float((centroids(turned) - 13.5).norm(dim=1).max()) <= float((centroids(batch) - 13.5).norm(dim=1).max()
                                                                        ) + 0.5, "rotation is about the centre"
    elastic = Augmentation(elastic_alpha=1.5)
    field = elastic._elastic_field(64, 28, 28, torch.device("cpu")) * 28 / 2  # in pixels
    assert float(field.abs().max()) <= 1.5 + 1e-5 and float(field.abs().max()) > 1, "up to 1.5 pixels"
    warped = elastic(batch)
    near_ink = F.max_pool2d(batch, 5, stride=1, padding=2) > 0  # within 2 pixels of the original ink
    assert not bool(((warped > 1) & ~near_ink).any()) and not torch.equal(warped, batch)


def test_low_resolution_blurs_its_share_of_the_batch_and_keeps_the_rest() -> None:
    """``low_resolution``: that share of the images, reduced to 7-14 pixels and enlarged back, loses its sharp
    edges but keeps its place and its ink's range; the others are untouched."""
    batch = digits(64)
    torch.manual_seed(0)
    out = Augmentation(low_resolution=0.5)(batch)
    changed = [not torch.equal(a, b) for a, b in zip(out, batch, strict=True)]
    assert 16 < sum(changed) < 48, "about half"
    blurred = out[torch.tensor(changed)]
    sharp = batch[torch.tensor(changed)]
    assert float(blurred.min()) >= 0 and float(blurred.max()) <= 255 + 1e-3
    assert float((centroids(blurred) - centroids(sharp)).abs().max()) < 1.5
    edges = (sharp[..., 1:] - sharp[..., :-1]).abs().amax(dim=(1, 2, 3))
    assert bool(((blurred[..., 1:] - blurred[..., :-1]).abs().amax(dim=(1, 2, 3)) < edges).all()), "no sharp edge"
    assert Augmentation.from_config({"low_resolution": 0.2}) == Augmentation(low_resolution=0.2)


def test_train_step_augments_with_the_configured_changes_and_evaluation_does_not() -> None:
    """The runner hands ``data.augmentation`` to ``prepare`` for training batches only."""
    from types import SimpleNamespace

    from mnist_classifier.framework import Configuration
    from mnist_classifier.training.runner import MNISTClassifierRunner

    seen = []

    class Data:
        def prepare(self, it_data, device, augment=None):
            seen.append(augment)
            return it_data

    runner = MNISTClassifierRunner()
    runner.experiment = SimpleNamespace(configuration=Configuration(
        {"data": {"augmentation": {"rotation": 12, "elastic_alpha": 1.5}}}, seed=0))
    runner.data = Data()
    runner.model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.LogSoftmax(dim=1))
    loss = runner.train_step((torch.ones(2, 1, 2, 2), torch.tensor([0, 2])), torch.device("cpu"))
    assert loss.dim() == 0 and seen == [Augmentation(rotation=12, elastic_alpha=1.5)]
    assert runner.data.prepare("batch", "cpu") == "batch" and seen[-1] is None, "evaluation: no augmentation"

    runner.experiment = SimpleNamespace(configuration=Configuration(
        {"data": {"augmentation": {"rotation": 12, "clean_epochs": 2}}, "training": {"max_epochs": 5}}, seed=0))
    del runner.augmentation  # the cached configuration
    seen.clear()
    for epoch in range(1, 7):
        runner.counters["epoch"] = epoch
        runner.train_step((torch.ones(2, 1, 2, 2), torch.tensor([0, 2])), torch.device("cpu"))
    assert seen == [Augmentation(rotation=12)] * 3 + [None] * 3, "the last 2 of 5 epochs, and any after, are clean"


@pytest.mark.slow
def test_an_augmented_one_cycle_run_interrupted_mid_epoch_resumes_bit_for_bit(workdir: Path) -> None:
    """bn_cnn + SGD + one cycle over the configuration's 1 epoch (``train`` without ``--max-epochs``) +
    augmentation: SIGTERM in the middle, then the same command. ``--max-epochs 2`` then goes past the cycle."""
    run_cli(workdir, "--experiment-name", "straight", "init", "--seed", "4", *STRONG, *AUGMENTED)
    config = json.loads((workdir / "experiments" / "straight" / "config.json").read_text())
    assert config["config"]["data"]["augmentation"]["elastic_sigma"] == 4, "the schema's default is filled in"
    shutil.copytree(workdir / "experiments" / "straight", workdir / "experiments" / "broken")
    run_cli(workdir, "--experiment-name", "straight", "train", "--device", "cpu")  # training.max_epochs: 1
    training = Watched([sys.executable, "-m", "mnist_classifier", "--experiment-name", "broken", "--verbose",
                        "train", "--device", "cpu", "--log-period", "1"], workdir)
    training.wait_for("iteration 7 |")  # batch 7 of 13
    training.process.send_signal(signal.SIGTERM)
    code, stderr = training.finish()
    assert code == 143 and "interrupted: stopped at epoch 1" in stderr, stderr
    result = run_cli(workdir, "--experiment-name", "broken", "--verbose", "train", "--device", "cpu")
    assert "epoch 1 resumes after batch" in result.stdout

    def checkpoint(name: str, epoch: int) -> dict:
        return torch.load(workdir / "experiments" / name / "checkpoints" / f"{epoch}.checkpoint.pkl",
                          weights_only=True)

    straight, broken = checkpoint("straight", 1), checkpoint("broken", 1)
    for key, tensor in straight["model"].items():
        assert torch.equal(tensor, broken["model"][key]), f"{key} differs after the resume"
    assert [entry["epoch"] for entry in straight["history"]] == [1], "the configuration's max_epochs"
    schedule = straight["others"]["scheduler"]
    assert schedule["last_epoch"] + 1 == schedule["total_steps"] == 13, "a step per batch, 13 batches an epoch"
    assert schedule["_last_lr"][0] == pytest.approx(0.05 / 25 / 1e4), "the cycle ends at lr / 25 / 10^4"
    assert straight["optimizer"]["param_groups"][0]["momentum"] == pytest.approx(0.95), "momentum cycles back up"
    run_cli(workdir, "--experiment-name", "straight", "train", "--max-epochs", "2", "--device", "cpu")
    assert not (workdir / "experiments" / "straight" / "checkpoints" / "3.checkpoint.pkl").exists()
    after = checkpoint("straight", 2)["others"]["scheduler"]
    assert after["last_epoch"] == 12 and after["_last_lr"] == schedule["_last_lr"], "past the cycle, lr stays"
