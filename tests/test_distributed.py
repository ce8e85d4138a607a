"""Several processes on torch.distributed (gloo on this CPU): torchrun, ``--device cpu cpu``, two launchers as two
nodes, SIGTERM and kill -9 mid-epoch, a peer that never comes, one writer. Every training scenario ends with the
weights of the same uninterrupted 2-process run, bit for bit."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, Watched, make_workdir, run_cli, snapshot, synthetic_digits
from mnist_classifier.framework import checkpoints
from mnist_classifier.framework import sampling as sampling_module
from mnist_classifier.framework.devices import check_devices
from mnist_classifier.framework.distributed import Group
from mnist_classifier.framework.errors import UserError
from mnist_classifier.framework.runtime import device_of_process
from mnist_classifier.framework.sampling import EpochSampler
from mnist_classifier.training.idx import write_idx

EPOCHS = "3"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
TRAIN = ["-m", "mnist_classifier", "--experiment-name", "fresh", "--verbose", "train", "--max-epochs", EPOCHS,
         "--device", "cpu", "--log-period", "1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str, nodes: str = "--standalone") -> list[str]:
    return [*TORCHRUN, nodes, "--nproc-per-node", "2", *args]


def run(cwd: Path, command: list[str], expect: int | None = 0, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# Unit: the shards, the batch, the devices --------------------------------------------------------------------
def shards(sampler: EpochSampler, world_size: int, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    served = []
    for rank in range(world_size):
        monkeypatch.setattr(sampling_module, "current", lambda rank=rank: Group(rank, world_size))
        served.append(list(sampler))
        assert len(sampler) == len(served[-1])
    return served


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_shuffled_shards_are_disjoint_and_make_up_the_single_process_batches(
        world_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = EpochSampler(list(range(1000, 1803)), seed=7)
    sampler.set_epoch(4)
    whole = list(sampler)  # one process
    parts = shards(sampler, world_size, monkeypatch)
    served = [index for part in parts for index in part]
    assert len(served) == len(set(served)) == 803 - 803 % world_size
    assert len({len(part) for part in parts}) == 1, "every process must take as many steps"
    batch = 8 * world_size  # the recipe's batch: 8 per process
    for k in range(len(parts[0]) // 8):
        union = sorted(index for part in parts for index in part[8 * k:8 * k + 8])
        assert union == sorted(whole[batch * k:batch * (k + 1)]), f"step {k} trains other images than 1 process"


def test_unshuffled_shards_serve_every_item_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = EpochSampler(list(range(101)), seed=0, shuffle=False)
    parts = shards(sampler, 3, monkeypatch)
    assert sorted(index for part in parts for index in part) == list(range(101))


def test_one_process_order_is_unchanged() -> None:
    """Version 0.1's order of epoch 1, seed 0, over 10 items (experiments made then resume exactly)."""
    sampler = EpochSampler(list(range(10)), seed=0)
    sampler.set_epoch(1)
    generator = torch.Generator().manual_seed(sampling_module.epoch_seed(0, 1))
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    assert list(sampler) == torch.randperm(10, generator=generator).tolist()


def test_devices_of_the_processes() -> None:
    group = Group(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert device_of_process(["cpu", "cpu"], group) == "cpu"
    assert device_of_process(["cpu"], group) == "cpu"
    assert device_of_process(None, group) == ("cuda:1" if torch.cuda.is_available() else None)  # None: the CPU
    with pytest.raises(UserError, match="names 3 devices for 2 processes"):
        device_of_process(["cpu"] * 3, group)
    with pytest.raises(UserError, match="every process of this machine on one GPU"):
        device_of_process(["cuda:0"], group)
    for bad, message in ((["cpu", "cuda:0"], "mixes kinds"), (["cuda:0", "cuda:0"], "names a GPU twice")):
        with pytest.raises(UserError, match=message):
            check_devices(bad)


def test_a_batch_that_does_not_divide_between_the_processes_is_refused() -> None:
    from mnist_classifier.framework.runtime import Runtime
    from mnist_classifier.training.data import MNISTClassifierData

    data = MNISTClassifierData()
    data.runtime = Runtime(torch.device("cpu"), group=Group(0, 3))
    assert data.process_batch_size(63) == 21
    with pytest.raises(UserError, match="training.batch_size 64 does not divide between 3 processes"):
        data.process_batch_size(64)


def test_pipelines_that_run_in_one_process_refuse_torchrun(workdir: Path) -> None:
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_PORT": "1"}
    result = run(workdir, [sys.executable, "-m", "mnist_classifier", "--experiment-name", "x", "init"], 2, env)
    assert result.stderr == "rank 1: error: init runs in one process, run it without torchrun\n"


# End to end: real process groups -----------------------------------------------------------------------------
def write_noisy_mnist(data: Path) -> None:
    """Synthetic digits whose test set has one label in five replaced: no model is 100% right on it, so an
    accuracy that two ways of testing agree on is a real number."""
    raw = data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, size, seed in (("train", 1000, 1), ("t10k", 200, 2)):
        images, labels = synthetic_digits(size, seed)
        if prefix == "t10k":
            labels[::5] = (labels[::5] + 3) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.from_numpy(images))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.from_numpy(labels))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Experiment 'fresh' (initialised) and 'reference' (trained to epoch 3 by ``--device cpu cpu``). The tests
    that compare torchrun's weights with it also prove that both start the same processes."""
    root = make_workdir(tmp_path_factory.mktemp("distributed"), None)
    write_noisy_mnist(root / "data")
    run_cli(root, "--experiment-name", "fresh", "init", "--seed", "5")
    shutil.copytree(root / "experiments" / "fresh", root / "experiments" / "reference")
    result = run_cli(root, "--experiment-name", "reference", "train", "--max-epochs", EPOCHS, "--device", "cpu",
                     "cpu")
    assert result.stdout.count("Trained 'reference' to epoch 3") == 1, "one summary, from rank 0"
    return root


def copy_of(template: Path, tmp_path: Path, name: str) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for item in ("config.default.json", "config.schema.json", "data"):
        (work / item).symlink_to(template / item)
    shutil.copytree(template / "experiments" / name, work / "experiments" / "fresh")
    return work


def load(experiment: Path, epoch: int = 3) -> dict:
    return torch.load(experiment / "checkpoints" / f"{epoch}.checkpoint.pkl", weights_only=True)


def assert_reference_weights(work: Path, template: Path) -> None:
    reference, state = load(template / "experiments" / "reference"), load(work / "experiments" / "fresh")
    for key, tensor in reference["model"].items():
        assert torch.equal(tensor, state["model"][key]), f"{key} differs from the uninterrupted 2-process run"
    strip = [{k: v for k, v in epoch.items() if not k.endswith("_seconds")}
             for epoch in reference["history"] + state["history"]]
    assert strip[:3] == strip[3:], "the metrics differ from the uninterrupted 2-process run's"


@pytest.mark.slow
def test_one_writer_and_every_rank_state_in_the_checkpoint(template: Path) -> None:
    experiment = template / "experiments" / "reference"
    state = load(experiment)
    assert state["processes"] == 2 and len(state["rng"]["ranks"]) == 2
    assert not torch.equal(state["rng"]["ranks"][0]["torch"], state["rng"]["ranks"][1]["torch"])
    assert len(list((experiment / "tensorboard").iterdir())) == 1, "one event file, from rank 0"
    log = (experiment / "verbose.log").read_text()
    assert log.count("Training 'reference' on 2 processes (cpu)") == 1 and log.count("Test of epoch 3") == 1


@pytest.mark.slow
def test_a_checkpoint_tested_by_one_or_two_processes_has_the_same_accuracy(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "reference")
    results = work / "experiments" / "fresh" / "results" / "test-1.json"

    one = run_cli(work, "--experiment-name", "fresh", "test", "--epoch", "1", "--device", "cpu")
    by_one = json.loads(results.read_text())
    two = run(work, torchrun("-m", "mnist_classifier", "--experiment-name", "fresh", "test", "--epoch", "1",
                             "--device", "cpu"))
    by_two = json.loads(results.read_text())
    assert by_one["total"] == by_two["total"] == 200, "each test image is counted once"
    assert 0.5 < by_one["accuracy"] < 1
    for key in ("accuracy", "correct", "confusion_matrix", "per_class_accuracy"):
        assert by_one[key] == by_two[key], key
    assert by_one["loss"] == pytest.approx(by_two["loss"], rel=1e-6)
    assert one.stdout.count("Test of epoch 1 |") == two.stdout.count("Test of epoch 1 |") == 1


@pytest.mark.slow
def test_batch_norm_statistics_are_rank_0s_everywhere_after_an_epoch(template: Path, tmp_path: Path) -> None:
    """Each process updates its batch-norm running statistics from its own shard. The test made at the end of
    training (every process on its shard) must be the test of the checkpoint rank 0 saved, as one process."""
    work = copy_of(template, tmp_path, "fresh")
    run_cli(work, "--experiment-name", "bn", "init", "--seed", "5", "--set", "model.name=bn_cnn",
            "--set", "model.width=4")
    run_cli(work, "--experiment-name", "bn", "train", "--max-epochs", "1", "--device", "cpu", "cpu")
    results = work / "experiments" / "bn" / "results" / "test-1.json"
    during_training = json.loads(results.read_text())
    run_cli(work, "--experiment-name", "bn", "test", "--epoch", "1", "--device", "cpu")
    afterwards = json.loads(results.read_text())
    assert afterwards["confusion_matrix"] == during_training["confusion_matrix"]
    assert afterwards["loss"] == pytest.approx(during_training["loss"], rel=1e-6)


@pytest.mark.slow
def test_sigterm_to_torchrun_mid_epoch_then_resume_is_bit_identical(template: Path, tmp_path: Path) -> None:
    """Also: torchrun's processes are those of ``--device cpu cpu`` (the reference), to the bit."""
    work = copy_of(template, tmp_path, "fresh")
    training = Watched(torchrun(*TRAIN), work)
    training.wait_for("iteration 20 |")  # epoch 2, batch 7 of 13
    signalled = time.monotonic()
    training.process.send_signal(signal.SIGTERM)
    _, stderr = training.finish()
    assert time.monotonic() - signalled < 20, "the save must end well inside torchrun's 30 s before SIGKILL"
    assert "interrupted: stopped at epoch 2, after batch" in stderr and "run the same train command" in stderr
    state = checkpoints.load(work / "experiments" / "fresh" / "checkpoints" / checkpoints.INTERRUPTED_NAME)
    assert state["processes"] == 2 and 7 <= len(state["resume_point"]["losses"]) < 13

    resumed = run(work, torchrun(*TRAIN))
    assert f"epoch 2 resumes after batch {len(state['resume_point']['losses'])}" in resumed.stdout
    assert_reference_weights(work, template)


@pytest.mark.slow
def test_kill_9_of_a_worker_with_max_restarts_finishes_by_itself(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "fresh")
    training = Watched(torchrun("--max-restarts", "1", *TRAIN), work)
    training.wait_for("iteration 20 |")
    workers = subprocess.run(["pgrep", "-P", str(training.process.pid)], capture_output=True, text=True)
    os.kill(int(workers.stdout.split()[-1]), signal.SIGKILL)
    code, stderr = training.finish(timeout=240)
    assert code == 0, stderr
    assert "unexpected" not in stderr, "the survivor says it lost its peer, in one line"
    for path in (work / "experiments" / "fresh" / "checkpoints").glob("*.pkl"):
        checkpoints.load(path)
    assert_reference_weights(work, template)


@pytest.mark.slow
def test_two_launchers_on_this_machine_train_as_two_nodes(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "fresh")
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                  f"127.0.0.1:{free_port()}", "--rdzv-id", "two-nodes", "--rdzv-conf", "join_timeout=120"]
    nodes = [Watched([*TORCHRUN, *rendezvous, *TRAIN], work) for _ in range(2)]
    for node in nodes:
        code, stderr = node.finish(timeout=240)
        assert code == 0, stderr
    state, reference = load(work / "experiments" / "fresh"), load(template / "experiments" / "reference")
    assert state["processes"] == 2 and state["counters"] == reference["counters"]
    # Each node gives its one process both cores where torchrun's two local processes get one each: other
    # kernels' rounding, so close weights rather than the same bits.
    for key, tensor in reference["model"].items():
        torch.testing.assert_close(state["model"][key], tensor, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_a_peer_that_never_arrives_is_a_clear_error(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "fresh")
    before = snapshot(work / "experiments")
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    started = time.monotonic()
    result = run(work, [sys.executable, *TRAIN, "--dist-timeout", "3"], 2, env)
    assert time.monotonic() - started < 60
    assert result.stderr.startswith("error: process 0 of 2 waited 3 s for the others at 127.0.0.1:")
    assert len(result.stderr.splitlines()) == 1
    assert snapshot(work / "experiments") == before


@pytest.mark.slow
def test_a_second_job_is_refused_by_every_process(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "reference")
    with open(work / "experiments" / "fresh" / ".lock", "wb") as file:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        file.write(b"process 4242 (train)")
        file.flush()
        result = run_cli(work, "--experiment-name", "fresh", "test", "--device", "cpu", "cpu", expect=2)
    lines = result.stderr.splitlines()
    assert "error: experiment 'fresh' is in use by process 4242 (train), wait for it to finish or stop it first" \
        in lines
    assert any(line.startswith("rank 1: error: experiment 'fresh' is in use") for line in lines)


@pytest.mark.slow
def test_another_number_of_processes_resumes_and_says_so(template: Path, tmp_path: Path) -> None:
    work = copy_of(template, tmp_path, "reference")
    result = run_cli(work, "--experiment-name", "fresh", "train", "--max-epochs", "4", "--device", "cpu")
    assert "warning: the checkpoint was trained by 2 processes and this run has 1" in result.stderr
    assert load(work / "experiments" / "fresh", 4)["counters"]["epoch"] == 4
