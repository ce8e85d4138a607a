"""The whole product as a user runs it: init, train, resume, test, test_sample, info, create_release, tensorboard."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO, TEST_SIZE, run_cli, run_on_a_terminal, wait_for_tensorboard


def cli(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run_cli(cwd, "--experiment-name", "exp", *args, **kwargs)


def test_full_lifecycle(workdir: Path) -> None:
    result = cli(workdir, "--verbose", "init", "--config-path", "config.default.json",
                 "--config-schema-file", "config.schema.json", "--seed", "7")
    experiment = workdir / "experiments" / "exp"
    assert "Created experiment 'exp'" in result.stdout
    assert sorted(p.name for p in experiment.iterdir()) == [
        ".lock", "checkpoints", "config.json", "data.json", "results", "tensorboard", "verbose.log"]
    assert not list(experiment.rglob("*.pickle")) and not list(experiment.rglob("*.pkl"))
    config = json.loads((experiment / "config.json").read_text())
    assert config["seed"] == 7
    assert config["config"]["training"] == {"batch_size": 64, "test_batch_size": 1000, "lr": 1.0, "lr_gamma": 0.7}
    stored = json.loads((experiment / "data.json").read_text())
    splits = stored["state"]
    assert stored["description"]["splits"] == {"train": 800, "validation": 200, "test": 200}
    assert len(splits["train_indexes"]) == 800 and len(splits["validation_indexes"]) == 200
    assert set(splits["train_indexes"]).isdisjoint(splits["validation_indexes"])

    result = cli(workdir, "train", "--max-epochs", "2", "--device", "cpu", "--log-period", "5")
    assert sorted(p.name for p in (experiment / "checkpoints").iterdir()) == ["1.checkpoint.pkl", "2.checkpoint.pkl"]
    epoch2 = json.loads((experiment / "results" / "epoch-2.json").read_text())
    assert epoch2["epoch"] == 2 and epoch2["lr"] == 0.7  # StepLR stepped once after epoch 1
    metrics = {e: json.loads((experiment / "results" / f"epoch-{e}.json").read_text()) for e in (1, 2)}
    best = min(metrics, key=lambda e: (-metrics[e]["validation_accuracy"], metrics[e]["validation_loss"], e))
    summary = result.stdout.splitlines()  # without --verbose: the end-of-train summary alone
    assert summary[0] == "Trained 'exp' to epoch 2" and summary[1].startswith(f"Best epoch {best}: validation accuracy")
    assert summary[2].startswith("Time per epoch: ") and "(mean of 2 epochs" in summary[2]
    assert summary[3] == f"Checkpoints kept: epochs 1, 2 (best {best})" and len(summary) == 4

    # Resume: picks up epoch 2 automatically and trains only epoch 3.
    result = cli(workdir, "--verbose", "train", "--max-epochs", "3", "--device", "cpu")
    assert "from epoch 2 to 3" in result.stdout and "warning" not in result.stderr  # as many threads as before
    assert "Epoch 1 |" not in result.stdout and "Epoch 3 |" in result.stdout
    checkpoint = torch.load(experiment / "checkpoints" / "3.checkpoint.pkl", weights_only=True)
    assert checkpoint["counters"] == {"epoch": 3, "iteration": 3 * 13}  # ceil(800 / 64) = 13 steps an epoch
    assert [h["epoch"] for h in checkpoint["history"]] == [1, 2, 3]
    assert checkpoint["others"]["scheduler"]["last_epoch"] == 3

    result = cli(workdir, "test", "--epoch", "3")
    test_result = json.loads((experiment / "results" / "test-3.json").read_text())
    assert test_result["total"] == TEST_SIZE  # divided by images, not batches
    assert f"({test_result['correct']}/{TEST_SIZE})" in result.stdout
    assert f"{100 * test_result['accuracy']:.2f}%" in result.stdout
    assert test_result["accuracy"] >= 0.9, "the synthetic digits are easy: training must have learnt them"
    confusion = torch.tensor(test_result["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == TEST_SIZE
    assert confusion.diag().sum() == test_result["correct"]
    assert len(test_result["per_class_accuracy"]) == 10

    with Image.open(experiment / "results" / "confusion-3.png") as picture:
        assert picture.format == "PNG" and picture.size == (396, 412)  # 10x10 cells of 36 px + labels
    mistakes = min(48, TEST_SIZE - test_result["correct"])
    with Image.open(experiment / "results" / "misclassified-3.png") as picture:  # 8 tiles of 56+16 px a row
        assert picture.format == "PNG" and picture.size == (448, 72 * max(1, -(-mistakes // 8)))

    result = cli(workdir, "test_sample", "--sample", "5", "--epoch", "3")
    assert f"Test sample 5 of epoch 3 | true {_test_label(workdir, 5)} | predicted" in result.stdout

    result = cli(workdir, "info")
    assert "Seed: 7" in result.stdout and "train 800, validation 200" in result.stdout
    for epoch in (1, 2, 3):
        assert f"epoch {epoch} ({epoch}.checkpoint.pkl)" in result.stdout
    summary = json.loads(cli(workdir, "info", "--json").stdout)
    assert [c["epoch"] for c in summary["checkpoints"]] == [1, 2, 3]
    best = summary["best_epoch"]
    assert [c["best"] for c in summary["checkpoints"]] == [epoch == best for epoch in (1, 2, 3)]
    assert result.stdout.count("[best]") == 1 and f"epoch {best} ({best}.checkpoint.pkl) [best]: lr " in result.stdout
    assert summary["checkpoints"][2]["test_accuracy"] == test_result["accuracy"]
    assert summary["releases"] == []

    cli(workdir, "create_release", "--epoch", "3")
    release = torch.load(experiment / "checkpoints" / "3.checkpoint.release.pkl", weights_only=True)
    assert set(release) == {"format", "kind", "epoch", "model", "architecture", "dataset", "normalization",
                            "preprocessing", "class_names", "test_accuracy", "calibration"}
    assert release["calibration"]["images"] == 200, "fitted on the validation split"
    width = json.loads((experiment / "data.json").read_text())["state"]["stroke_width"]  # measured at init
    assert release["dataset"] == "mnist" and width > 0  # of the synthetic blocks: wide, as they are no strokes
    assert release["preprocessing"] == {"box": 20, "centre": "mass", "stroke_width": width}
    assert release["architecture"]["name"] == "cnn"
    assert release["epoch"] == 3 and release["test_accuracy"] == test_result["accuracy"]
    assert release["class_names"] == [str(d) for d in range(10)]
    assert torch.equal(release["model"]["fc2.weight"], checkpoint["model"]["fc2.weight"])
    summary = json.loads(cli(workdir, "info", "--json").stdout)
    assert [(r["epoch"], r["file"], r["test_accuracy"]) for r in summary["releases"]] == [
        (3, "3.checkpoint.release.pkl", test_result["accuracy"])]
    assert "epoch 3 (3.checkpoint.release.pkl): lr " in cli(workdir, "info").stdout

    log = (experiment / "verbose.log").read_text()
    assert "Created experiment 'exp'" in log and "Test of epoch 3" in log and "Saved release" in log


def _test_label(workdir: Path, index: int) -> int:
    raw = workdir / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    return raw.read_bytes()[8 + index]


@pytest.mark.slow
def test_training_is_reproducible_and_resume_is_exact(trained_workdir: Path) -> None:
    """The session's experiment (seed 3, two epochs) resumed to three has the very weights of three epochs in
    one go."""
    run_cli(trained_workdir, "--experiment-name", "straight", "init", "--seed", "3")
    run_cli(trained_workdir, "--experiment-name", "straight", "train", "--max-epochs", "3", "--device", "cpu")
    run_cli(trained_workdir, "--experiment-name", "base", "train", "--max-epochs", "3", "--device", "cpu")
    straight, resumed = (torch.load(trained_workdir / "experiments" / name / "checkpoints" / "3.checkpoint.pkl",
                                    weights_only=True) for name in ("straight", "base"))
    for key, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key
    assert straight["history"][-1]["validation_loss"] == resumed["history"][-1]["validation_loss"]


@pytest.mark.slow
def test_resuming_on_another_number_of_threads_says_so(trained_workdir: Path) -> None:
    """A checkpoint records the CPU threads it was trained with: resuming on as many is silent, on another count
    (which adds numbers in another order) says in one line that the weights will not be an unbroken run's."""
    checkpoints = trained_workdir / "experiments" / "base" / "checkpoints"
    saved = torch.load(checkpoints / "2.checkpoint.pkl", weights_only=True)["threads"]
    assert isinstance(saved, int) and saved >= 1  # a resume on as many: test_full_lifecycle's, without a warning
    other = 1 if saved > 1 else 2
    result = run_cli(trained_workdir, "--experiment-name", "base", "train", "--max-epochs", "3", "--device", "cpu",
                     env={"OMP_NUM_THREADS": str(other)})
    assert (f"warning: the checkpoint was trained with {saved} CPU thread{'s' * (saved > 1)} per process and this "
            f"run has {other}, which add numbers in another order") in result.stderr
    assert f"resume with OMP_NUM_THREADS={saved} (or on as many cores as before) to match" in result.stderr
    assert len([line for line in result.stderr.splitlines() if "warning" in line]) == 1
    assert torch.load(checkpoints / "3.checkpoint.pkl", weights_only=True)["threads"] == other


@pytest.mark.slow
def test_train_from_an_earlier_epoch(trained_workdir: Path) -> None:
    """``--epoch 1`` retrains epoch 2 from checkpoint 1 (the same weights, as training is deterministic)."""
    checkpoints = trained_workdir / "experiments" / "base" / "checkpoints"
    before = torch.load(checkpoints / "2.checkpoint.pkl", weights_only=True)["model"]
    result = run_cli(trained_workdir, "--experiment-name", "base", "--verbose", "train", "--epoch", "1",
                     "--max-epochs", "2", "--device", "cpu")
    assert "from epoch 1 to 2" in result.stdout
    after = torch.load(checkpoints / "2.checkpoint.pkl", weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_global_options_after_the_pipeline_name(trained_workdir: Path) -> None:
    result = run_cli(trained_workdir, "info", "--experiment-name", "base", "--json")
    assert json.loads(result.stdout)["name"] == "base"


def test_console_script_is_declared() -> None:
    assert 'mnist-classifier = "mnist_classifier.__main__:main"' in (REPO / "pyproject.toml").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_experiment(trained_workdir: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_classifier", "--experiment-name", "base", "tensorboard", "--port", str(port)],
        cwd=trained_workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        scalars = set(next(iter(wait_for_tensorboard(process, port).values())))
        assert {"loss/iteration/train", "loss/epoch/train", "loss/epoch/validation", "accuracy/epoch/validation",
                "accuracy/epoch/test", "lr/epoch"} <= scalars
        base = f"http://127.0.0.1:{port}/data"
        plugins = _get_json(f"{base}/plugins_listing")
        assert all(plugins[name]["enabled"] for name in ("scalars", "images", "text", "graphs", "hparams"))
        images = next(iter(_get_json(f"{base}/plugin/images/tags").values()))
        assert {"test/confusion", "test/misclassified"} <= set(images)
        assert "config/text_summary" in next(iter(_get_json(f"{base}/plugin/text/tags").values()))
        request = urllib.request.Request(f"{base}/plugin/hparams/experiment", data=b'{"experimentName": ""}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            hparams = json.loads(response.read())
        assert {"training.lr", "training.batch_size", "data.val_split", "seed"} <= {
            info["name"] for info in hparams["hparamInfos"]}
        assert {"accuracy/epoch/validation", "accuracy/epoch/test"} <= {
            info["name"]["tag"] for info in hparams["metricInfos"]}
    finally:
        process.send_signal(signal.SIGTERM)  # the pipeline must stop its TensorBoard child too
        output = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in output
    with socket.socket() as sock:  # nothing is left listening
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def _train_on_a_terminal(workdir: Path, *extra: str) -> str:
    return run_on_a_terminal(workdir, "mnist_classifier", "--experiment-name", "exp", "train", "--max-epochs", "1",
                             "--device", "cpu", *extra)


@pytest.mark.slow
def test_progress_bars_on_a_terminal_only(workdir: Path) -> None:
    cli(workdir, "init")
    shown = _train_on_a_terminal(workdir)
    assert "epoch 1" in shown and "img/s" in shown and "validation" in shown and "test" in shown
    assert "img/s" not in cli(workdir, "train", "--max-epochs", "2", "--device", "cpu").stderr  # not a terminal
    assert "img/s" not in _train_on_a_terminal(workdir, "--no-progress", "--max-epochs", "3")
