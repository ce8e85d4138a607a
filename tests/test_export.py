"""``export``: a checkpoint or a release as a folder that runs anywhere. The ONNX graph is verified against
PyTorch when it is written; ``predict``, ``serve`` and ``load_release`` run it on ONNX Runtime without torch, with
the answers of the release file; every registered model exports; bad input is one line and leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_predict import render

from conftest import REPO, run_cli, snapshot
from mnist_classifier.export.writer import Source, export
from mnist_classifier.framework import UserError
from mnist_classifier.framework.training_state import Release
from mnist_classifier.inference.model import MODELS, build_model, model_kwargs
from mnist_classifier.inference.release import ReleasedModel
from mnist_classifier.inference.release_contents import ReleaseContents

FILES = {"model.onnx", "model.safetensors", "config.json", "README.md", "index.html", "page"}


@pytest.fixture
def exported(trained_workdir: Path) -> Path:
    run_cli(trained_workdir, "--experiment-name", "base", "export", "--to", "out")
    return trained_workdir / "out"


def pictures(folder: Path) -> list[str]:
    """Digits as people photograph them: a few fonts, sizes, inks and papers."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for digit in range(10):
        for look, (ink, paper) in enumerate([((20, 20, 20), (250, 250, 250)), ((30, 40, 140), (230, 225, 200)),
                                             ((240, 240, 240), (10, 10, 10))]):
            path = folder / f"{digit}-look{look}.png"
            render(digit, size=60 + 15 * look, stroke=look % 2, ink=ink, paper=paper).save(path)
            paths.append(str(path))
    return paths


def test_an_export_holds_the_whole_model_and_says_what_it_is(exported: Path) -> None:
    assert {path.name for path in exported.iterdir()} == FILES
    assert {path.name for path in (exported / "page").iterdir()} == {"page.css", "page.js", "classifier.js", "ort"}
    config = json.loads((exported / "config.json").read_text())
    assert config["format"] == "mnist_classifier export" and config["epoch"] == 2 and config["opset"] == 18
    assert config["release"]["architecture"]["name"] == "cnn" and config["release"]["class_names"][3] == "3"
    assert config["verification"]["images"] == 200 and config["verification"]["batch_sizes"] == [1, 7, 64]
    assert config["verification"]["disagreements"] == 0 and config["verification"]["max_difference"] <= 1e-4
    assert set(config["evaluation"]["per_class_accuracy"]) == {str(d) for d in range(10)}
    import onnx

    graph = onnx.load(str(exported / "model.onnx"))
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    assert json.loads(metadata["mnist_classifier"]) == config, "model.onnx alone knows what config.json says"
    assert [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim][:1] == ["batch"]
    assert graph.opset_import[0].version == 18
    from safetensors.torch import load_file

    checkpoint = exported.parent / "experiments" / "base" / "checkpoints" / "2.checkpoint.pkl"
    weights = torch.load(checkpoint, weights_only=True)["model"]
    stored = load_file(str(exported / "model.safetensors"))
    assert stored.keys() == weights.keys() and all(torch.equal(stored[k], weights[k]) for k in weights)
    card = (exported / "README.md").read_text()
    accuracy = f"{100 * config['evaluation']['accuracy']:.2f}%"
    for part in ("## Training", "## Evaluation", "## Limits", "## Use", "| 7 |", accuracy, "Seed 3;"):
        assert part in card, f"the model card has no {part!r}"


def test_predict_serve_and_load_release_run_an_export_without_torch(exported: Path, tmp_path: Path) -> None:
    files = pictures(tmp_path / "pictures")
    release = exported.parent / "experiments" / "base" / "checkpoints" / "2.checkpoint.release.pkl"
    run_cli(exported.parent, "--experiment-name", "base", "create_release", "--epoch", "2")
    from_pkl = json.loads(run_cli(tmp_path, "predict", "--release", str(release), "--json", *files).stdout)
    for target in (exported, exported / "model.onnx"):
        from_onnx = json.loads(run_cli(tmp_path, "predict", "--release", str(target), "--json", *files).stdout)
        assert [a["label"] for a in from_onnx] == [a["label"] for a in from_pkl], "the release file's answers"
        assert all(abs(a["probability"] - b["probability"]) < 1e-4 for a, b in zip(from_onnx, from_pkl, strict=True))
    script = f"""
import runpy, sys
sys.argv = ["mnist_classifier", "predict", "--release", {str(exported)!r}, "--show-input", "seen", *{files[:3]!r}]
try:
    runpy.run_module("mnist_classifier", run_name="__main__")
except SystemExit as stop:
    assert not stop.code, stop.code
from mnist_classifier import load_release
from mnist_classifier.web.app import create_web_app
model = load_release({str(exported)!r})
create_web_app(model, "export")
print(model.predict({files[:1]!r})[0].label)
loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
print("torch modules:", loaded)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "torch modules: []", "predict, load_release and serve need no torch"
    assert len(list((tmp_path / "seen").iterdir())) == 3, "--show-input works on an export"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_exports_and_agrees_with_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    kwargs = model_kwargs({"name": name}, (1, 28, 28), 10)
    model = build_model(name, kwargs)
    with torch.no_grad():  # batch norm's running statistics away from their defaults
        model.train()(torch.randn(64, 1, 28, 28))
    contents = ReleaseContents({"name": name, "kwargs": kwargs}, 0.13, 0.31, [str(d) for d in range(10)])
    released = ReleasedModel(Release(1, model.state_dict(), contents.to_dict()))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1200, 28, 28), dtype=np.uint8)
    config = export(Source(released, "a test", images, rng.integers(0, 10, 1200)), tmp_path / "out")
    assert config["verification"]["images"] == 1000 and config["verification"]["disagreements"] == 0
    assert config["verification"]["max_difference"] <= 1e-4
    from mnist_classifier.inference.onnx_model import OnnxModel

    onnx_model = OnnxModel(tmp_path / "out")
    with torch.inference_mode():
        theirs = released.model(torch.from_numpy((images[:5, None] / 255 - 0.13) / 0.31).float()).numpy()
    assert np.abs(onnx_model.log_probabilities(images[:5]) - theirs).max() < 1e-4


class Unexportable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 0:  # a value the graph cannot hold: the exporter refuses
            return torch.log_softmax(x.flatten(1)[:, :10], 1)
        return torch.log_softmax(-x.flatten(1)[:, :10], 1)


def test_bad_input_is_one_line_and_leaves_nothing(trained_workdir: Path, tmp_path: Path) -> None:
    work = trained_workdir
    before = snapshot(work / "experiments" / "base")
    cases = [
        (["--experiment-name", "base", "export", "--epoch", "9", "--to", "out"], "epoch 9 has no checkpoint"),
        (["--experiment-name", "nobody", "export", "--to", "out"], "nobody"),
        (["export", "--to", "out"], "export needs a model"),
        (["export", "--release", str(tmp_path), "--to", "out"], "not a release file"),
    ]
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "keep.txt").write_text("mine")
    cases.append((["--experiment-name", "base", "export", "--to", str(tmp_path / "occupied")],
                  "exists and is not an empty folder"))
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2).eval(), (torch.zeros(1, 4),), str(plain), dynamo=True, verbose=False)
    picture = tmp_path / "seven.png"
    render(7).save(picture)
    cases += [(["predict", "--release", str(empty), str(picture)], "is not an export (it has no model.onnx)"),
              (["predict", "--release", str(plain), str(picture)], "is not an export of this package"),
              (["predict", "--release", str(tmp_path / "none.onnx"), str(picture)], "does not exist"),
              (["predict", "--release", str(tmp_path / "occupied"), "--device", "cuda", str(picture)],
               "an ONNX export runs on the CPU")]
    for argv, message in cases:
        result = run_cli(work, *argv, expect=None)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), (argv, result.stderr)
        assert message in lines[0], (argv, lines[0])
    assert not (work / "out").exists() and (tmp_path / "occupied" / "keep.txt").read_text() == "mine"
    assert snapshot(work / "experiments" / "base") == before, "nothing in the experiment changed"
    contents = ReleaseContents({"name": "cnn", "kwargs": {}}, 0.13, 0.31, [str(d) for d in range(10)])
    broken = ReleasedModel(Release(1, {}, contents.to_dict()), model=Unexportable())
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    with pytest.raises(UserError, match="the ONNX exporter cannot handle model 'cnn'") as error:
        export(Source(broken, "a test", images, np.zeros(10, dtype=np.int64)), tmp_path / "failed")
    assert "\n" not in str(error.value)
    assert not [path.name for path in tmp_path.iterdir() if "failed" in path.name], "no half-written folder"


def test_a_picture_folder_is_measured_into_the_model_card(trained_workdir: Path, tmp_path: Path) -> None:
    pictures(tmp_path / "pictures" / "typed")
    (tmp_path / "pictures" / "blank").mkdir()
    Image.new("L", (40, 40), 255).save(tmp_path / "pictures" / "blank" / "x-white.png")  # no digit, and no ink
    run_cli(trained_workdir, "--experiment-name", "base", "export", "--to", "out", "--pictures",
            str(tmp_path / "pictures"))
    config = json.loads((trained_workdir / "out" / "config.json").read_text())
    groups = config["pictures"]["groups"]
    assert groups["all"][1] == 30 and groups["typed"][1] == 30 and 0 <= groups["all"][0] <= 1
    assert groups["blank"] == [1.0, 1], "a picture of no digit is read right when called so, and not a digit"
    assert "| typed | 30 |" in (trained_workdir / "out" / "README.md").read_text()


@pytest.mark.slow
def test_an_export_reads_the_benchmark_pictures_as_its_release_does(exported: Path) -> None:
    """Every 6th picture of ``benchmarks/pictures/`` (both parts, every kind): the same label from the export on
    ONNX Runtime as from the release file on PyTorch."""
    from mnist_classifier import load_release

    files = sorted(path for path in (REPO / "benchmarks" / "pictures").glob("*/*/*") if path.suffix in (".png", ".jpg"))
    assert len(files) > 3000, "benchmarks/pictures/ is in the repository"
    files = files[::6]
    run_cli(exported.parent, "--experiment-name", "base", "create_release", "--epoch", "2")
    release = load_release(exported.parent / "experiments" / "base" / "checkpoints" / "2.checkpoint.release.pkl")
    export = load_release(exported)
    for path in files:
        ours, theirs = export.predict([path])[0], release.predict([path])[0]
        assert np.array_equal(ours.input, theirs.input), f"{path.name}: prepared otherwise"
        assert ours.label == theirs.label, f"{path.name}: {ours.label} from the export, {theirs.label} from the release"
