"""Speed features that tests can check without timing anything: lazy imports, the data path's shape, and that
the benchmark runs (its figures come from ``make bench``, never from a timed test)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO
from mnist_classifier.training.idx import read_idx, write_idx

NO_TORCH = """
import sys
from mnist_classifier.__main__ import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "torchvision", "tensorboard", "numpy", "optuna") if m in sys.modules)
print("IMPORTED:" + ",".join(heavy))
"""


def _imports(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=60)
    return result.stdout.strip().splitlines()[-1]


def test_help_info_compare_and_tensorboard_never_import_torch(trained_workdir: Path) -> None:
    assert _imports(trained_workdir, "info", "--experiment-name", "base") == "IMPORTED:"
    assert _imports(trained_workdir, "compare", "base", "--json") == "IMPORTED:"
    assert _imports(trained_workdir, "info", "--experiment-name", "base", "--json") == "IMPORTED:"
    with socket.create_server(("127.0.0.1", 0)) as busy:  # stops right before TensorBoard would start
        port = str(busy.getsockname()[1])
        assert _imports(trained_workdir, "--experiment-name", "base", "tensorboard", "--port", port) == "IMPORTED:"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "import sys\ntry:\n    __import__('runpy').run_module('mnist_classifier', run_name='__main__')\n" \
           "except SystemExit:\n    print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code, "--help"], env=env, capture_output=True, text=True)
    assert "usage:" in result.stdout and result.stdout.strip().endswith("False")


def test_idx_round_trip(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    write_idx(tmp_path / "images", images)
    assert torch.equal(read_idx(tmp_path / "images", 3), images)
    assert (tmp_path / "images").stat().st_size == 16 + 5 * 28 * 28


def test_batches_are_channels_last_and_model_too(trained_workdir: Path) -> None:
    from mnist_classifier.__main__ import make_data, make_runner
    from mnist_classifier.framework import Experiment
    from mnist_classifier.framework.logs import setup_logging
    from mnist_classifier.framework.runtime import make_runtime

    experiment = Experiment(trained_workdir / "experiments", "base")
    runtime, logger = make_runtime("cpu"), setup_logging("test", False)
    data = make_data()
    data.init(experiment.load(), logger, runtime)
    data.load(experiment.load_data_state())
    data.load_datasets(trained_workdir / "data")
    data.load_loaders(trained_workdir / "data", 0)
    runner = make_runner()
    runner.init(experiment, data, logger, runtime)
    images, _ = data.prepare(next(iter(data.loaders["train"])), torch.device("cpu"))
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert runner.model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert data.loaders["test"].batch_size == 1000 and data.loaders["train"].batch_size == 64


@pytest.mark.slow
def test_compile_trains_records_the_graph_and_saves_plain_weights(workdir: Path) -> None:
    """``--compile`` end to end on the CPU (Inductor's C++ path; CUDA runs the same code with Triton kernels)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from conftest import run_cli
    from mnist_classifier.framework import checkpoints
    from mnist_classifier.inference.model import build_model

    run_cli(workdir, "--experiment-name", "c", "init", "--set", "training.batch_size=50")  # 800/50: one shape
    train = run_cli(workdir, "--experiment-name", "c", "--verbose", "train", "--max-epochs", "1", "--compile",
                    "--device", "cpu")
    assert "Trained 'c' to epoch 1" in train.stdout
    assert "CUDA" not in train.stderr  # torch's "No CUDA runtime is found" is noise to a CPU user
    folder = workdir / "experiments" / "c"
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    assert any("conv2" in node.name for node in events.Graph().node)  # traced through the eager module
    state = checkpoints.load(folder / "checkpoints" / "1.checkpoint.pkl")
    assert set(state["model"]) == set(build_model("cnn", {}).state_dict())  # no "_orig_mod.": loads uncompiled
    compiled_loss = json.loads(run_cli(workdir, "--experiment-name", "c", "info", "--json").stdout)[
        "checkpoints"][0]["test_loss"]
    eager = run_cli(workdir, "--experiment-name", "c", "test", "--epoch", "1").stdout
    assert f"loss {compiled_loss:.4f}" in eager


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_resumes_and_tests(trained_workdir: Path) -> None:
    """Every CUDA path: the GPU-resident data, workers feeding the GPU, bf16, --compile, and a GPU checkpoint
    that tests, releases and predicts on the CPU."""
    from conftest import run_cli

    base = ["--experiment-name", "base"]
    for epochs, extra in (("3", []), ("4", ["--precision", "bf16"]), ("5", ["--compile"]),
                          ("6", ["--num-workers", "2"])):
        train = run_cli(trained_workdir, *base, "train", "--max-epochs", epochs, "--device", "cuda", *extra)
        assert f"Trained 'base' to epoch {epochs}" in train.stdout
        for command in (["test"], ["test_sample", "--sample", "3"]):
            assert "Test" in run_cli(trained_workdir, *base, *command, "--device", "cuda", *extra).stdout
    on_gpu = run_cli(trained_workdir, *base, "test", "--device", "cuda").stdout
    on_cpu = run_cli(trained_workdir, *base, "test", "--device", "cpu").stdout
    assert on_gpu.split("|")[1] == on_cpu.split("|")[1]  # the same accuracy line
    run_cli(trained_workdir, *base, "create_release", "--epoch", "6")
    release = trained_workdir / "experiments" / "base" / "checkpoints" / "6.checkpoint.release.pkl"
    from mnist_classifier.inference.release import load_release

    image = torch.zeros(28, 28, dtype=torch.uint8)
    assert load_release(release, "cpu").predict([image])[0].label == load_release(release, "cuda").predict(
        [image])[0].label


@pytest.mark.slow
def test_benchmark_runs_in_its_smallest_setting(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "epoch.py"), "--quick", "--device", "cpu",
                    "--output", str(output)], env=env, check=True, capture_output=True, timeout=600)
    result = json.loads(output.read_text())
    for key in ("compute_bound_images_per_s", "train_images_per_s", "plain_recipe_images_per_s",
                "inference_bound_images_per_s", "test_images_per_s", "checkpoint_seconds"):
        assert result[key] > 0, key
    assert result["train_vs_compute_bound"] == pytest.approx(
        result["train_images_per_s"] / result["compute_bound_images_per_s"], rel=0.01)
    assert result["data"] == "synthetic"


@pytest.mark.slow
def test_augmentation_benchmark_runs_in_its_smallest_setting() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "augmentation.py"), "--device", "cpu",
                             "--rounds", "1", "--chunk", "2"], env=env, check=True, capture_output=True, text=True,
                            timeout=300)
    report = json.loads(result.stdout)
    assert report["steps_each"] == 2 and report["plain_step_ms"] > 0
    for name in ("affine + stroke width", "affine + stroke width + elastic"):
        assert report[name]["step_ms"] > 0 and report[name]["share_of_step"] < 1, name
