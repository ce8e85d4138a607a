"""A second application (``tests/regression_app``: regression, dict batches, judged by its validation loss) runs
every pipeline through the CLI, with the framework's promises intact: the best epoch, retention, wording and
TensorBoard follow its metric, and an interrupted run resumes to the same weights bit for bit."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import APP_PYTHONPATH, REPO, app_cli, run_on_a_terminal, wait_for_tensorboard

APP = REPO / "tests" / "regression_app"
PYTHONPATH = APP_PYTHONPATH
NAME = ["--experiment-name", "r"]


@pytest.fixture
def app_workdir(tmp_path: Path) -> Path:
    shutil.copy(APP / "config.json", tmp_path / "config.default.json")
    shutil.copy(APP / "config.schema.json", tmp_path / "config.schema.json")
    return tmp_path


def _weights(experiment: Path, epoch: int) -> dict[str, torch.Tensor]:
    return torch.load(experiment / "checkpoints" / f"{epoch}.checkpoint.pkl", weights_only=True)["model"]


def test_every_pipeline_follows_the_apps_metric(app_workdir: Path) -> None:
    work, experiment = app_workdir, app_workdir / "experiments" / "r"
    app_cli(work, *NAME, "init", "--seed", "4", "--set", "training.keep_checkpoints=1")
    app_cli(work, *NAME, "train", "--max-epochs", "4", "--device", "cpu")
    history = [json.loads((experiment / "results" / f"epoch-{e}.json").read_text()) for e in range(1, 5)]
    best = min(history, key=lambda entry: entry["validation_loss"])["epoch"]
    assert {"train_loss", "validation_loss", "validation_mae", "test_loss", "test_mae"} <= set(history[0])
    kept = sorted({4, best})
    assert sorted(int(p.name.split(".")[0]) for p in (experiment / "checkpoints").glob("*.checkpoint.pkl")) == kept

    info = app_cli(work, *NAME, "info").stdout
    assert "Splits: train 3200, validation 800, test 1000" in info and "Data: features 4 | noise 0.1000" in info
    assert f"(best: epoch {best}, by validation loss)" in info
    assert f"epoch {best} ({best}.checkpoint.pkl) [best]" in info
    summary = json.loads(app_cli(work, *NAME, "info", "--json").stdout)
    assert summary["judged_by"] == {"metric": "validation_loss", "higher_is_better": False}
    assert summary["best_epoch"] == best

    result = app_cli(work, *NAME, "test", "--epoch", str(best), "--device", "cpu")
    stored = json.loads((experiment / "results" / f"test-{best}.json").read_text())
    assert result.stdout.startswith(f"Test of epoch {best} | mse {stored['loss']:.4f} | mae {stored['mae']:.4f}")
    assert stored["loss"] == history[best - 1]["test_loss"] and stored["count"] == 1000
    assert app_cli(work, *NAME, "test_sample", "--sample", "3").stdout.startswith(f"Test sample 3 of epoch {kept[-1]}")
    sample = json.loads(app_cli(work, *NAME, "test_sample", "--sample", "3", "--epoch", str(best), "--json").stdout)
    assert sample["epoch"] == best and set(sample) == {"epoch", "summary", "true", "predicted"}

    app_cli(work, *NAME, "create_release", "--epoch", str(best))
    release = torch.load(experiment / "checkpoints" / f"{best}.checkpoint.release.pkl", weights_only=True)
    assert release["kind"] == "release" and release["epoch"] == best and release["model_config"]["hidden"] == 32
    assert float(app_cli(work, *NAME, "predict", "0.1", "0.2", "0.3", "0.4").stdout) == pytest.approx(0.48, abs=0.3)
    refused = app_cli(work, *NAME, "predict", "2", "0", "0", "0", expect=2).stderr
    assert refused == "error: the inputs must lie in [-1, 1], give four numbers in that range\n"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "regression_app", *NAME, "tensorboard", "--port", str(port)],
                               cwd=work, env={**os.environ, "PYTHONPATH": PYTHONPATH}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        scalars = set(next(iter(wait_for_tensorboard(process, port).values())))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert {"loss/iteration/train", "loss/epoch/validation", "mae/epoch/validation", "loss/epoch/test",
            "mae/epoch/test"} <= scalars


class _Training:
    """``train`` of the second app in a subprocess whose log lines can be waited for."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "regression_app", *NAME, "--verbose", "train", "--device", "cpu", *args], cwd=cwd,
            env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def wait_for(self, fragment: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if fragment in self.lines.get(timeout=1):
                    return
            except queue.Empty:
                assert self.process.poll() is None, f"train ended before '{fragment}': {self.process.stderr.read()}"
        raise AssertionError(f"'{fragment}' not seen in {timeout} s")


@pytest.mark.slow
def test_ctrl_c_then_resume_gives_the_same_weights_bit_for_bit(app_workdir: Path) -> None:
    """2 epochs of 500 steps straight, against Ctrl-C (SIGINT) in the middle of epoch 2 and the same command again."""
    work = app_workdir
    app_cli(work, *NAME, "init", "--set", "data.size=20000", "--set", "training.lr=0.003")
    shutil.copytree(work / "experiments" / "r", work / "straight" / "r")
    app_cli(work, *NAME, "--experiments-path", "straight", "train", "--max-epochs", "2", "--device", "cpu")

    training = _Training(work, "--max-epochs", "2", "--log-period", "1")
    training.wait_for("Epoch 2 | iteration 520 |")
    training.process.send_signal(signal.SIGINT)
    assert training.process.wait(timeout=120) == 130
    stderr = training.process.stderr.read()
    assert "interrupted: stopped at epoch 2, after batch" in stderr and "Traceback" not in stderr
    assert "Interrupted: an epoch was stopped part-way" in app_cli(work, *NAME, "info").stdout

    resumed = app_cli(work, *NAME, "--verbose", "train", "--max-epochs", "2", "--device", "cpu").stdout
    assert "epoch 2 resumes after batch" in resumed
    straight, interrupted = _weights(work / "straight" / "r", 2), _weights(work / "experiments" / "r", 2)
    for key, tensor in straight.items():
        assert torch.equal(tensor, interrupted[key]), f"{key} differs from the uninterrupted run"


def test_an_order_that_depends_on_the_global_rng_is_called_out(app_workdir: Path) -> None:
    app_cli(app_workdir, *NAME, "init", "--set", "data.sampler=random", "--set", "data.size=200")
    stderr = app_cli(app_workdir, *NAME, "train", "--max-epochs", "1", "--device", "cpu").stderr
    assert stderr == ("warning: the train loader's order (RandomSampler) does not depend on (seed, epoch) alone, so "
                      "a resumed run will not reproduce an unbroken one; order it with an EpochSampler\n")


def test_progress_bars_count_the_apps_unit(app_workdir: Path) -> None:
    app_cli(app_workdir, *NAME, "init", "--set", "data.size=400")
    shown = run_on_a_terminal(app_workdir, "regression_app", *NAME, "train", "--max-epochs", "1", "--device", "cpu",
                              pythonpath=PYTHONPATH)
    assert "epoch 1" in shown and "sample/s" in shown and "img" not in shown


@pytest.mark.slow
def test_several_processes_refuse_a_loader_that_each_would_see_whole(app_workdir: Path) -> None:
    """The regression app's test loader has no EpochSampler: under 2 processes (started by this app's own
    ``python -m regression_app``) each would count every test item, so the framework names the loader."""
    app_cli(app_workdir, *NAME, "init", "--set", "data.size=200")
    app_cli(app_workdir, *NAME, "train", "--max-epochs", "1", "--device", "cpu")
    result = app_cli(app_workdir, *NAME, "test", "--device", "cpu", "cpu", expect=1)
    assert ("error: RegressionData.load_loaders ordered test without an EpochSampler, so each of the 2 processes "
            "would see all of it") in result.stderr
    assert "rank 1: error: RegressionData.load_loaders" in result.stderr


@pytest.mark.slow
def test_several_processes_catch_metrics_that_are_not_reduced(app_workdir: Path) -> None:
    """Every loader sharded, but ``validate`` averages its own shard only: rank 0 would record half the split as
    the split, so the framework compares the processes' metrics and names the hook."""
    app_cli(app_workdir, *NAME, "init", "--set", "data.sampler=sharded", "--set", "data.size=200")
    result = app_cli(app_workdir, *NAME, "train", "--max-epochs", "1", "--device", "cpu", "cpu", expect=1)
    assert ("error: RegressionRunner.validate returned other metrics in each process (each sees its shard of the "
            "split), add sums and counts over the processes with sum_over_processes(tensor)") in result.stderr
    assert not list((app_workdir / "experiments" / "r" / "checkpoints").glob("*.pkl")), "nothing was saved"
