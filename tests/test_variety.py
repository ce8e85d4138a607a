"""Experiment variety: models and datasets chosen in the config, ``init --set`` overrides, early stopping,
checkpoint retention and the end-of-train summary, run through the CLI as a user would."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_workdir, run_cli, snapshot, write_synthetic_mnist
from mnist_classifier.training.datasets import DATASETS
from mnist_classifier.training.idx import read_idx

pytestmark = pytest.mark.slow


def _experiment(work: Path, name: str) -> Path:
    return work / "experiments" / name


def _stats_of_train_split(work: Path, folder: str, indexes: list[int]) -> tuple[float, float]:
    images = read_idx(work / "data" / folder / "raw" / "train-images-idx3-ubyte", 3)[indexes].double() / 255
    return float(images.mean()), float(images.std(unbiased=False))


@pytest.mark.parametrize(("dataset", "model"), [("fashion_mnist", "mlp"), ("kmnist", "cnn")])
def test_each_model_and_dataset_trains_an_epoch(tmp_path: Path, dataset: str, model: str) -> None:
    """With the default (cnn, mnist) trained by the other end-to-end tests, every model and dataset is covered."""
    spec = DATASETS[dataset]
    work = make_workdir(tmp_path, write_synthetic_mnist(tmp_path / "source", folder=spec.torchvision_class))
    name = ["--experiment-name", "x"]
    run_cli(work, *name, "init", "--set", f"data.dataset={dataset}", "--set", f"model.name={model}")
    experiment = _experiment(work, "x")
    data_state = json.loads((experiment / "data.json").read_text())["state"]
    assert data_state["dataset"] == dataset and data_state["class_names"] == list(spec.class_names)
    mean, std = _stats_of_train_split(work, spec.torchvision_class, data_state["train_indexes"])
    assert math.isclose(data_state["mean"], mean, rel_tol=1e-9) and math.isclose(data_state["std"], std, rel_tol=1e-9)

    result = run_cli(work, *name, "train", "--max-epochs", "1", "--device", "cpu")
    assert "Trained 'x' to epoch 1\n" in result.stdout
    test_result = json.loads((experiment / "results" / "test-1.json").read_text())
    assert test_result["accuracy"] >= 0.9, f"{model} on {dataset}: {test_result['accuracy']}"
    checkpoint = torch.load(experiment / "checkpoints" / "1.checkpoint.pkl", weights_only=True)
    layers = {key.split(".")[0] for key in checkpoint["model"]}
    assert layers == ({"fc1", "fc2", "fc3"} if model == "mlp" else {"conv1", "conv2", "fc1", "fc2"})
    if model == "mlp":
        assert checkpoint["model"]["fc1.weight"].shape == (1024, 784)  # the schema's defaults
        assert checkpoint["model"]["fc2.weight"].shape == (128, 1024)

    run_cli(work, *name, "create_release", "--epoch", "1")
    release = torch.load(experiment / "checkpoints" / "1.checkpoint.release.pkl", weights_only=True)
    assert release["dataset"] == dataset and release["class_names"] == list(spec.class_names)
    assert release["architecture"]["name"] == model
    assert release["normalization"] == {"mean": [data_state["mean"]], "std": [data_state["std"]]}
    image = tmp_path / "image.png"
    from PIL import Image

    Image.new("L", (40, 30), 0).save(image)
    predicted = json.loads(run_cli(work, "predict", "--release", str(experiment / "checkpoints" /
                                                                    "1.checkpoint.release.pkl"),
                                   str(image), "--top-k", "3", "--json").stdout)[0]
    assert predicted["label"] in spec.class_names
    assert [entry["label"] for entry in predicted["top_k"]][0] == predicted["label"]


def test_class_names_are_torchvisions() -> None:
    import torchvision

    for spec in DATASETS.values():
        names = getattr(torchvision.datasets, spec.torchvision_class).classes
        if spec.torchvision_class == "MNIST":
            names = [name.split(" - ")[0] for name in names]  # "0 - zero" -> "0"
        assert list(spec.class_names) == names


def test_overrides_reach_the_saved_config_and_info(workdir: Path) -> None:
    sets = ["training.lr=0.5", "model.name=mlp", "model.fc1=4", "model.fc2=8", "training.keep_checkpoints=2",
            'data={"val_split": 0.25}']
    run_cli(workdir, "--experiment-name", "o", "init", *[arg for item in sets for arg in ("--set", item)])
    stored = json.loads((_experiment(workdir, "o") / "config.json").read_text())
    assert stored["config"] == {
        "data": {"dataset": "mnist", "val_split": 0.25},
        "model": {"name": "mlp", "fc1": 4, "fc2": 8, "dropout": 0.5},
        "training": {"batch_size": 64, "test_batch_size": 1000, "lr": 0.5, "lr_gamma": 0.7, "keep_checkpoints": 2}}
    assert stored["overrides"] == sets
    info = run_cli(workdir, "--experiment-name", "o", "info").stdout
    for line in ("model.name = \"mlp\"", "model.fc1 = 4", "model.dropout = 0.5", "training.lr = 0.5",
                 "data.val_split = 0.25", "Splits: train 750, validation 250"):
        assert line in info
    assert "Set at init: --set training.lr=0.5 --set model.name=mlp" in info
    assert json.loads(run_cli(workdir, "--experiment-name", "o", "info", "--json").stdout)["config"] == stored["config"]
    # the configuration file itself is untouched
    assert json.loads((workdir / "config.default.json").read_text())["training"]["lr"] == 1.0


def _epoch_results(experiment: Path) -> dict[int, dict]:
    return {int(path.stem.split("-")[1]): json.loads(path.read_text())
            for path in (experiment / "results").glob("epoch-*.json")}


def test_early_stopping_and_retention(workdir: Path) -> None:
    """After epoch 1 the learning rate drops to 1e-12 (lr_gamma), so the validation loss stops improving: with
    patience 2, training must stop two epochs after its best, keep that best and the newest checkpoint only, and
    a second train must not go on."""
    name = ["--experiment-name", "es"]
    run_cli(workdir, *name, "init", "--set", "training.lr_gamma=1e-12", "--set", "training.early_stopping_patience=2",
            "--set", "training.keep_checkpoints=1")
    experiment = _experiment(workdir, "es")
    result = run_cli(workdir, *name, "train", "--max-epochs", "10", "--device", "cpu")
    epochs = _epoch_results(experiment)
    last = max(epochs)
    assert last < 10, "early stopping never triggered"
    losses = [epochs[e]["validation_loss"] for e in sorted(epochs)]
    lowest = losses.index(min(losses)) + 1  # the first epoch that reached the lowest loss
    assert last == lowest + 2 and epochs[last]["stopped_early"] is True
    assert all(not epochs[e].get("stopped_early") for e in epochs if e != last)
    ranked = sorted(epochs, key=lambda e: (-epochs[e]["validation_accuracy"], epochs[e]["validation_loss"], e))
    best = ranked[0]
    kept = sorted(int(p.name.split(".")[0]) for p in (experiment / "checkpoints").glob("*.checkpoint.pkl"))
    assert kept == sorted({best, last})
    lines = result.stdout.splitlines()
    assert lines[-4] == f"Trained 'es' to epoch {last} (stopped early: the validation loss stopped improving)"
    assert lines[-3].startswith(f"Best epoch {best}: validation accuracy ")
    assert f"test accuracy {100 * epochs[best]['test_accuracy']:.2f}%" in lines[-3]
    assert lines[-2].startswith("Time per epoch: ") and f"(mean of {last} epochs, of which training steps" in lines[-2]
    assert lines[-1] == f"Checkpoints kept: epochs {', '.join(map(str, kept))} (best {best})"

    info = json.loads(run_cli(workdir, *name, "info", "--json").stdout)
    assert info["best_epoch"] == best
    assert [(c["epoch"], c["best"]) for c in info["checkpoints"]] == [(e, e == best) for e in kept]
    assert f"epoch {best} ({best}.checkpoint.pkl) [best]:" in run_cli(workdir, *name, "info").stdout

    before = snapshot(experiment / "checkpoints")
    again = run_cli(workdir, *name, "--verbose", "train", "--max-epochs", "10", "--device", "cpu")
    assert f"Training stopped early at epoch {last}; nothing more to do" in again.stdout
    assert snapshot(experiment / "checkpoints") == before


def test_an_experiment_from_before_models_and_datasets_still_works(trained_workdir: Path) -> None:
    """config.json without ``model``/``data.dataset`` and a version-0.1 data.json (the state alone) without
    statistics: MNIST and the cnn."""
    experiment = trained_workdir / "experiments" / "base"
    stored = json.loads((experiment / "config.json").read_text())
    del stored["config"]["model"], stored["config"]["data"]["dataset"], stored["overrides"]
    (experiment / "config.json").write_text(json.dumps(stored))
    data_state = json.loads((experiment / "data.json").read_text())["state"]
    for key in ("dataset", "class_names", "mean", "std"):
        del data_state[key]
    (experiment / "data.json").write_text(json.dumps(data_state))
    result = run_cli(trained_workdir, "--experiment-name", "base", "test", "--epoch", "2")
    assert result.stdout.startswith("Test of epoch 2 | accuracy ")
    run_cli(trained_workdir, "--experiment-name", "base", "create_release", "--epoch", "2")
    release = torch.load(experiment / "checkpoints" / "2.checkpoint.release.pkl", weights_only=True)
    assert release["normalization"] == {"mean": [0.1307], "std": [0.3081]}
    assert release["architecture"]["name"] == "cnn" and release["class_names"] == [str(d) for d in range(10)]


@pytest.mark.parametrize("recipe", ["config.fast.json", "config.strong.json"])
def test_the_shipped_recipes_are_valid_and_carry_their_epochs(workdir: Path, recipe: str) -> None:
    """``init --config-path config.fast.json`` (or strong) as the README shows: valid against the schema, and
    ``train`` without ``--max-epochs`` will run the recipe's own epochs."""
    shutil.copy(REPO / recipe, workdir / recipe)
    run_cli(workdir, "--experiment-name", "recipe", "init", "--config-path", recipe)
    config = json.loads((_experiment(workdir, "recipe") / "config.json").read_text())["config"]
    shipped = json.loads((REPO / recipe).read_text())
    assert config["training"]["max_epochs"] == shipped["training"]["max_epochs"]
    assert config["model"] == {**shipped["model"]} and config["training"]["schedule"] == "onecycle"
