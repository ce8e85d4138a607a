"""Using a release: the predict pipeline, the Python API, and real-image preprocessing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from conftest import run_cli
from mnist_classifier import load_release
from mnist_classifier.inference import images as preparation

FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"]


def to_mnist(*args, **kwargs) -> torch.Tensor:
    """``preparation.to_mnist`` (a numpy array) as a tensor, as these tests compare them."""
    return torch.from_numpy(preparation.to_mnist(*args, **kwargs))


def font(size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font: DejaVu where installed, else the one Pillow ships."""
    for path in FONTS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def render(digit: int, size: int = 90, stroke: int = 0, ink=(20, 20, 20), paper=(250, 250, 250),
           canvas=(140, 160), offset=(30, 10), mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, canvas, paper)
    ImageDraw.Draw(image).text(offset, str(digit), fill=ink, font=font(size), stroke_width=stroke, stroke_fill=ink)
    return image


@pytest.fixture
def released(trained_workdir: Path) -> Path:
    run_cli(trained_workdir, "--experiment-name", "base", "create_release", "--epoch", "2")
    return trained_workdir / "experiments" / "base" / "checkpoints" / "2.checkpoint.release.pkl"


def test_predict_many_formats_and_bad_files(released: Path, tmp_path: Path) -> None:
    files = []
    for index, (suffix, mode) in enumerate([(".png", "RGB"), (".jpg", "RGB"), (".bmp", "L"), (".png", "RGBA")]):
        path = tmp_path / f"digit{index}{suffix}"
        paper = (250, 250, 250, 0) if mode == "RGBA" else (250 if mode == "L" else (250, 250, 250))
        ink = (10, 10, 10, 255) if mode == "RGBA" else (10 if mode == "L" else (10, 10, 10))
        render(index, ink=ink, paper=paper, mode=mode).save(path)
        files.append(str(path))
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    bad = [str(tmp_path / "notes.png"), str(tmp_path / "empty.jpg")]
    result = run_cli(tmp_path, "predict", "--release", str(released), bad[0], *files, bad[1], "--top-k", "3",
                     expect=1)
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == files, "every readable file is classified, in order"
    for line in lines:
        ranked = [float(part.split("(")[1].rstrip("%)")) for part in line.split(": ")[1].split(", ")]
        assert len(ranked) == 3 and ranked == sorted(ranked, reverse=True) and sum(ranked) <= 100.2
    assert result.stderr.splitlines() == [
        f"error: {bad[0]} is not an image PIL can read (UnidentifiedImageError)",
        f"error: {bad[1]} is not an image PIL can read (empty file)"]
    as_json = json.loads(run_cli(tmp_path, "predict", "--release", str(released), *files, "--json").stdout)
    assert [entry["path"] for entry in as_json] == files
    assert all(entry["label"] in "0123456789" and 0 < entry["probability"] <= 1 for entry in as_json)


@pytest.mark.slow
def test_predict_from_an_experiment_checkpoint(trained_workdir: Path, tmp_path: Path) -> None:
    path = tmp_path / "seven.png"
    render(7).save(path)
    result = run_cli(trained_workdir, "--experiment-name", "base", "predict", "--epoch", "1", str(path))
    assert result.stdout.startswith(f"{path}: ")
    result = run_cli(trained_workdir, "predict", str(path), expect=2)
    assert result.stderr == "error: predict needs a model, give --release PATH or --experiment-name NAME\n"


def test_predict_shows_the_input_the_model_received(released: Path, tmp_path: Path) -> None:
    """``--show-input DIR`` writes each image's 28x28 input, the very tensor the model took, as a PNG."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [tmp_path / "a" / "digit.png", tmp_path / "b" / "digit.jpg", tmp_path / "six.bmp"]
    for digit, path in zip((2, 5, 6), files, strict=True):
        render(digit, stroke=digit % 3).save(path)
    shown = tmp_path / "shown" / "inputs"
    result = run_cli(tmp_path, "predict", "--release", str(released), *map(str, files), "--show-input", str(shown),
                     "--json")
    answers = json.loads(result.stdout)
    assert [entry["input"] for entry in answers] == [str(shown / name) for name in
                                                     ("digit.png", "digit-2.png", "six.png")]
    for path, entry in zip(files, answers, strict=True):
        with Image.open(entry["input"]) as picture:
            assert picture.size == (28, 28) and picture.mode == "L"
            pixels = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8).view(28, 28)
        assert torch.equal(pixels, load_release(released).prepare([path])[0]), \
            "the PNG is the model's input, pixel for pixel"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = run_cli(tmp_path, "predict", "--release", str(released), str(files[0]), "--show-input",
                     str(blocked / "x"), expect=2)
    assert result.stderr.startswith(f"error: cannot create --show-input folder {blocked / 'x'} (") and \
        result.stderr.endswith("), choose another\n")


def test_python_api_agrees_with_test_sample(released: Path, trained_workdir: Path) -> None:
    from mnist_classifier.training.idx import read_idx

    model = load_release(released)
    images = read_idx(trained_workdir / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte", 3)
    sample = run_cli(trained_workdir, "--experiment-name", "base", "test_sample", "--sample", "3", "--epoch", "2")
    predicted = sample.stdout.split("predicted ")[1].split(" ")[0]
    by_tensor = model.predict([images[3]])[0]
    assert by_tensor.label == predicted
    assert f"({100 * by_tensor.probability:.2f}%)" in sample.stdout
    pil = render(4)
    as_tensor = torch.frombuffer(bytearray(pil.convert("L").tobytes()), dtype=torch.uint8).view(160, 140)
    assert model.predict([pil])[0] == model.predict([as_tensor])[0], "a PIL image and its tensor agree"


@pytest.mark.slow
def test_non_release_and_hostile_files_are_refused(trained_workdir: Path, tmp_path: Path) -> None:
    image = tmp_path / "one.png"
    render(1).save(image)
    checkpoint = trained_workdir / "experiments" / "base" / "checkpoints" / "2.checkpoint.pkl"
    result = run_cli(tmp_path, "predict", "--release", str(checkpoint), str(image), expect=2)
    assert result.stderr == f"error: {checkpoint} is not a release checkpoint, make one with create_release\n"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"kind": "release", "model": Hostile()}, tmp_path / "evil.checkpoint.release.pkl")
    result = run_cli(tmp_path, "predict", "--release", str(tmp_path / "evil.checkpoint.release.pkl"), str(image),
                     expect=2)
    assert "was refused: loading it would run" in result.stderr and not (tmp_path / "ran").exists()


def test_preprocessing_matches_mnist_conventions() -> None:
    dark_on_light = to_mnist(render(3))
    light_on_dark = to_mnist(render(3, ink=(240, 240, 240), paper=(5, 5, 5)))
    assert dark_on_light.shape == (28, 28) and dark_on_light.dtype == torch.uint8
    difference = (dark_on_light.int() - light_on_dark.int()).abs()
    assert difference.max() <= 1, "polarity must not matter (up to the rounding of anti-aliased edges)"
    assert dark_on_light[0].sum() == 0 and dark_on_light[:, 0].sum() == 0, "MNIST's background is black"
    ink = dark_on_light.float()
    rows, cols = torch.nonzero(ink > 0.2 * ink.max(), as_tuple=True)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21, "fits a 20x20 box"
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    assert abs(float((ink * ys).sum() / ink.sum()) - 14) < 1.0 and abs(float((ink * xs).sum() / ink.sum()) - 14) < 1.0
    moved = to_mnist(render(3, canvas=(400, 300), offset=(250, 150)))  # elsewhere on a bigger page
    assert (moved.float() - ink).abs().mean() < 20
    assert to_mnist(Image.new("L", (50, 50), 255)).sum() == 0, "a blank page is a blank digit"


def test_fashion_style_preprocessing_fills_and_centres_the_box() -> None:
    """Fashion-MNIST and KMNIST images fill 28 pixels, centred as a box: a wide dark bar on white becomes a
    light bar 28 pixels wide, vertically centred."""
    picture = Image.new("L", (300, 200), 255)
    picture.paste(0, (20, 50, 220, 100))  # 200 x 50: the longer side is horizontal
    image = to_mnist(picture, box=28, centre="box")
    columns = torch.nonzero(image.max(0).values > 128).flatten()
    rows = torch.nonzero(image.max(1).values > 128).flatten()
    assert (int(columns[0]), int(columns[-1])) == (0, 27)
    assert int(rows[-1]) - int(rows[0]) + 1 == 7 and abs(int(rows[0]) + int(rows[-1]) - 27) <= 1  # centred
    digit = to_mnist(picture)  # MNIST's: 20 pixels
    columns = torch.nonzero(digit.max(0).values > 128).flatten()
    assert int(columns[-1]) - int(columns[0]) + 1 == 20


def test_predict_says_when_it_is_unsure_or_sees_no_digit(released: Path, tmp_path: Path) -> None:
    """The release carries a temperature fitted on the validation split; ``predict`` reports the calibrated
    confidence, calls an answer under the release's threshold unsure, and a blank picture no digit."""
    from mnist_classifier.framework import checkpoints

    state = checkpoints.load(released, "release")
    calibration = state["calibration"]
    assert calibration["images"] == 200 and calibration["temperature"] > 0 and calibration["unsure_below"] == 0.8
    assert calibration["no_digit_below"] == 0, "trained without glyphs of no digit: no ink is its only no digit"
    assert calibration["nll"][1] <= calibration["nll"][0] + 1e-9, "the fit never makes the validation NLL worse"
    render(7).save(tmp_path / "seven.png")
    Image.new("RGB", (90, 90), (240, 238, 230)).save(tmp_path / "blank.png")
    files = [str(tmp_path / "seven.png"), str(tmp_path / "blank.png")]
    answers = json.loads(run_cli(tmp_path, "predict", "--release", str(released), *files, "--json").stdout)
    assert answers[1]["status"] == "no digit" and 0 < answers[0]["confidence"] <= 1
    assert answers[0]["status"] == ("sure" if answers[0]["confidence"] >= 0.8 else "unsure")
    text = run_cli(tmp_path, "predict", "--release", str(released), files[1]).stdout
    assert text == f"{files[1]}: no digit found (the picture holds no ink)\n"
    state["calibration"]["unsure_below"] = 1.01  # nothing is that sure: every answer is unsure
    strict = tmp_path / "strict.checkpoint.release.pkl"
    checkpoints.save(strict, state)
    line = run_cli(tmp_path, "predict", "--release", str(strict), files[0]).stdout.strip()
    label = json.loads(run_cli(tmp_path, "predict", "--release", str(strict), files[0], "--json").stdout)[0]
    assert label["status"] == "unsure" and line.startswith(f"{files[0]}: {label['label']}? (")
    model = load_release(strict)
    assert model.predict([render(7)])[0].status == "unsure"
    state["calibration"]["no_digit_below"] = 1.01  # no two digits together are that likely: never a digit
    checkpoints.save(strict, state)
    answer = load_release(strict).predict([render(7)])[0]
    line = run_cli(tmp_path, "predict", "--release", str(strict), files[0]).stdout.strip()
    assert answer.status == "no digit" and line.startswith(f"{files[0]}: no digit found (no digit stands out: "
                                                           f"{answer.label} (")
