"""Crash safety: kill -9 at any moment, SIGINT/SIGTERM mid-epoch, damaged and hostile files, one writer, full
disks and NaN losses. Every scenario ends with weights bit-identical to an uninterrupted run."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, Watched, make_workdir, run_cli, snapshot
from mnist_classifier.framework import checkpoints

pytestmark = pytest.mark.slow

EPOCHS = "3"
SEED = "5"


class Training(Watched):
    """``train`` in a subprocess whose log lines can be waited for, to act at a precise moment."""

    def __init__(self, cwd: Path, name: str, *args: str, write_delay: float = 0.0, preexec=None) -> None:
        env = {"EXPERIMENT_TEST_WRITE_DELAY": str(write_delay)} if write_delay else {}
        super().__init__([sys.executable, "-m", "mnist_classifier", "--experiment-name", name, "--verbose", "train",
                          "--max-epochs", EPOCHS, "--device", "cpu", "--log-period", "1", *args], cwd, env, preexec)


@pytest.fixture(scope="module")
def template(tmp_path_factory, synthetic_data: Path) -> Path:
    """A workdir with experiment 'fresh' (initialised, untrained) and 'reference' (trained straight to 3)."""
    root = make_workdir(tmp_path_factory.mktemp("reliability"), synthetic_data)
    run_cli(root, "--experiment-name", "fresh", "init", "--seed", SEED)
    shutil.copytree(root / "experiments" / "fresh", root / "experiments" / "reference")
    run_cli(root, "--experiment-name", "reference", "train", "--max-epochs", EPOCHS, "--device", "cpu")
    return root


def _weights(experiment: Path, epoch: int = 3) -> dict[str, torch.Tensor]:
    return torch.load(experiment / "checkpoints" / f"{epoch}.checkpoint.pkl", weights_only=True)["model"]


def _assert_same_weights(experiment: Path, template: Path) -> None:
    reference = _weights(template / "experiments" / "reference")
    weights = _weights(experiment)
    for key, tensor in reference.items():
        assert torch.equal(tensor, weights[key]), f"{key} differs from the uninterrupted run"


def _assert_every_checkpoint_loads(experiment: Path) -> None:
    files = list((experiment / "checkpoints").glob("*.checkpoint*.pkl"))
    assert files
    for path in files:
        checkpoints.load(path)


def _copy_fresh(template: Path, tmp_path: Path, name: str = "fresh") -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for item in ("config.default.json", "config.schema.json", "data"):
        (work / item).symlink_to(template / item)
    shutil.copytree(template / "experiments" / "fresh", work / "experiments" / name)
    return work


# (what to wait for, seconds to wait after it): ten moments, four of them inside checkpoint writes.
KILL_MOMENTS = [
    ("Training 'fresh'", 0.0),
    ("iteration 3 |", 0.0),
    ("Saving checkpoint", 0.15),  # epoch 1's checkpoint half written
    ("Saved checkpoint", 0.0),
    ("iteration 20 |", 0.0),
    ("Test of epoch 2", 0.1),  # inside results/test-2.json's write
    ("Saving checkpoint experiments/fresh/checkpoints/2", 0.25),
    ("Epoch 3 | training", 0.0),
    ("iteration 36 |", 0.0),
    ("Saving checkpoint experiments/fresh/checkpoints/3", 0.15),
]


@pytest.mark.parametrize(("trigger", "delay"), KILL_MOMENTS, ids=[f"{i}-{t}" for i, (t, _) in
                                                                  enumerate(KILL_MOMENTS)])
def test_kill_9_at_any_moment_then_resume_exactly(trigger: str, delay: float, template: Path,
                                                   tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    training = Training(work, "fresh", write_delay=0.3)
    training.wait_for(trigger)
    time.sleep(delay)
    training.process.kill()
    training.finish()
    experiment = work / "experiments" / "fresh"
    for path in (experiment / "checkpoints").glob("*.checkpoint.pkl"):
        checkpoints.load(path)  # whatever the moment, no torn checkpoint
    run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", EPOCHS, "--device", "cpu")
    _assert_every_checkpoint_loads(experiment)
    assert not list(experiment.rglob("*.tmp")), "half-written files must be cleared on resume"
    _assert_same_weights(experiment, template)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_mid_epoch_and_resumes_from_that_batch(signum: int, code: int, template: Path,
                                                             tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    training = Training(work, "fresh")
    training.wait_for("iteration 20 |")  # epoch 2, batch 7 of 13
    training.process.send_signal(signum)
    exit_code, stderr = training.finish()
    assert exit_code == code, stderr
    assert "interrupted: stopped at epoch 2, after batch" in stderr and "run the same train command" in stderr
    assert "Traceback" not in stderr
    experiment = work / "experiments" / "fresh"
    assert checkpoints.list_checkpoints(experiment / "checkpoints") == [1]
    state = checkpoints.load(experiment / "checkpoints" / checkpoints.INTERRUPTED_NAME)
    stopped_after = len(state["resume_point"]["losses"])
    assert 7 <= stopped_after < 13 and state["counters"]["iteration"] == 13 + stopped_after
    assert "Interrupted" in run_cli(work, "--experiment-name", "fresh", "info").stdout

    result = run_cli(work, "--experiment-name", "fresh", "--verbose", "train", "--max-epochs", EPOCHS,
                     "--device", "cpu", "--log-period", "1")
    assert f"epoch 2 resumes after batch {stopped_after}" in result.stdout
    assert f"iteration {13 + stopped_after} |" not in result.stdout, "a done batch was trained again"
    assert f"iteration {13 + stopped_after + 1} |" in result.stdout
    assert not (experiment / "checkpoints" / checkpoints.INTERRUPTED_NAME).exists()
    _assert_same_weights(experiment, template)
    reference = torch.load(template / "experiments" / "reference" / "checkpoints" / "3.checkpoint.pkl",
                           weights_only=True)["history"]
    history = torch.load(experiment / "checkpoints" / "3.checkpoint.pkl", weights_only=True)["history"]
    strip = [{k: v for k, v in h.items() if not k.endswith("_seconds")} for h in (reference + history)]
    assert strip[:3] == strip[3:], "the resumed run's metrics differ from the uninterrupted run's"


def test_second_signal_during_the_save_changes_nothing(template: Path, tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    training = Training(work, "fresh", write_delay=1.0)
    training.wait_for("iteration 5 |")
    training.process.send_signal(signal.SIGTERM)
    training.wait_for("Saving interrupted state")
    time.sleep(0.3)  # half of the file is written
    training.process.send_signal(signal.SIGTERM)
    training.process.send_signal(signal.SIGINT)
    exit_code, stderr = training.finish()
    assert exit_code == 143, stderr
    experiment = work / "experiments" / "fresh"
    _assert_every_checkpoint_loads(experiment)
    run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", EPOCHS, "--device", "cpu")
    _assert_same_weights(experiment, template)


def test_damaged_newest_checkpoint_is_set_aside_and_training_resumes(template: Path, tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", "2", "--device", "cpu")
    experiment = work / "experiments" / "fresh"
    newest = experiment / "checkpoints" / "2.checkpoint.pkl"
    damaged = newest.read_bytes()[:1000]
    newest.write_bytes(damaged)
    result = run_cli(work, "--experiment-name", "fresh", "test", "--epoch", "2", expect=2)
    assert result.stderr.startswith("error: checkpoint") and "is damaged" in result.stderr
    result = run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", EPOCHS, "--device", "cpu")
    assert "warning: checkpoint" in result.stderr and "2.checkpoint.pkl.damaged" in result.stderr
    assert (experiment / "checkpoints" / "2.checkpoint.pkl.damaged").read_bytes() == damaged, "kept as it was"
    _assert_same_weights(experiment, template)
    assert "Damaged files set aside: 2.checkpoint.pkl.damaged" in run_cli(
        work, "--experiment-name", "fresh", "info").stdout


class _CreateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_hostile_checkpoint_and_release_never_run(template: Path, tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", "1", "--device", "cpu")
    checkpoint_dir = work / "experiments" / "fresh" / "checkpoints"
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "payload": _CreateFile(marker)}, checkpoint_dir / "2.checkpoint.pkl")
    torch.save({"model": {}, "payload": _CreateFile(marker)}, checkpoint_dir / "2.checkpoint.release.pkl")
    result = run_cli(work, "--experiment-name", "fresh", "test", "--epoch", "2", expect=2)
    assert "was refused: loading it would run" in result.stderr and "system" in result.stderr
    with pytest.raises(Exception, match="was refused"):
        checkpoints.load(checkpoint_dir / "2.checkpoint.release.pkl")
    result = run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", "2", "--device", "cpu")
    assert "was refused" in result.stderr  # set aside, resumed from epoch 1
    assert not marker.exists(), "loading a file ran the code inside it"
    assert (checkpoint_dir / "2.checkpoint.pkl.damaged").exists()


def test_two_writers(template: Path, tmp_path: Path) -> None:
    work = _copy_fresh(template, tmp_path)
    first = Training(work, "fresh", "--max-epochs", "1000")
    try:
        first.wait_for("Saved checkpoint")  # so test and create_release have an epoch to work on
        for pipeline in (["train"], ["test"], ["create_release"]):
            started = time.monotonic()
            result = run_cli(work, "--experiment-name", "fresh", *pipeline, expect=2)
            assert f"is in use by process {first.process.pid} (train)" in result.stderr
            assert time.monotonic() - started < 30, "the second writer must give up at once"
        info = run_cli(work, "--experiment-name", "fresh", "info")  # readers are welcome
        assert "Experiment 'fresh'" in info.stdout
    finally:
        first.process.send_signal(signal.SIGTERM)
        exit_code, _ = first.finish()
    assert exit_code == 143
    assert (work / "experiments" / "fresh" / ".lock").read_bytes() == b"", "the lock is released and emptied"


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))


def test_full_disk_is_a_clear_error_and_earlier_checkpoints_survive(trained_workdir: Path) -> None:
    experiment = trained_workdir / "experiments" / "base"
    before = snapshot(experiment / "checkpoints")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "mnist_classifier", "--experiment-name", "base", "train", "--max-epochs", "3",
         "--device", "cpu"], cwd=trained_workdir, env=env, capture_output=True, text=True,
        preexec_fn=_limit_file_size, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot write") and "3.checkpoint.pkl" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert snapshot(experiment / "checkpoints") == before
    assert not list(experiment.rglob("*.tmp"))


def test_nan_loss_from_a_too_large_lr_stops_naming_epoch_and_iteration(workdir: Path) -> None:
    config = workdir / "config.default.json"
    (workdir / "huge-lr.json").write_text(config.read_text().replace('"lr": 1.0', '"lr": 1e+30'))
    run_cli(workdir, "--experiment-name", "hot", "init", "--config-path", "huge-lr.json")
    result = run_cli(workdir, "--experiment-name", "hot", "train", "--max-epochs", "1", "--device", "cpu", expect=2)
    assert result.stderr.startswith("error: the training loss became") and "at epoch 1, iteration" in result.stderr
    assert "lower training.lr" in result.stderr
    assert checkpoints.list_checkpoints(workdir / "experiments" / "hot" / "checkpoints") == []


def test_nan_loss_keeps_the_last_good_checkpoints(trained_workdir: Path) -> None:
    """Epoch 3 diverges (weights that overflow): the run stops and checkpoints 1 and 2 stay as they were."""
    folder = trained_workdir / "experiments" / "base" / "checkpoints"
    state = torch.load(folder / "2.checkpoint.pkl", weights_only=True)
    state["model"]["fc2.weight"] *= 1e38
    torch.save(state, folder / "2.checkpoint.pkl")
    before = snapshot(folder)
    result = run_cli(trained_workdir, "--experiment-name", "base", "train", "--max-epochs", "3",
                     "--device", "cpu", expect=2)
    assert "the training loss became nan at epoch 3, iteration 27" in result.stderr  # its first step
    assert snapshot(folder) == before


def test_held_lock_file_names_its_holder(trained_workdir: Path) -> None:
    lock = trained_workdir / "experiments" / "base" / ".lock"
    with open(lock, "r+b") as file:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        file.write(b"process 4242 (train)")
        file.flush()
        result = run_cli(trained_workdir, "--experiment-name", "base", "train", "--device", "cpu", expect=2)
    assert "is in use by process 4242 (train)" in result.stderr
