"""``data.typed_digits``: digits rendered from the training fonts join the train split, stored in data.json, and
the held-out font families are never rendered."""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from mnist_classifier.framework import Configuration, UserError, checkpoints
from mnist_classifier.inference import ruling, strokes
from mnist_classifier.inference.calibration import NO_DIGIT_BELOW
from mnist_classifier.inference.images import place, to_mnist
from mnist_classifier.inference.strokes import MNIST_STROKE_WIDTH
from mnist_classifier.training import photographed, render_cache, typed_digits, web_fonts
from mnist_classifier.training.data import MNISTClassifierData

CONFIG = {"data": {"val_split": 0.2, "typed_digits": {"variants": 2, "handwriting_variants": 3}},
          "training": {"batch_size": 64, "test_batch_size": 100}}


# the same with three training families (a typed one, a Debian and an npm handwriting one): what a test of how
# the digits join the data needs, in a second rather than the half minute every font takes
KEPT = ("Charis SIL", "Klee", "Caveat")
FEW = {**CONFIG, "data": {**CONFIG["data"], "typed_digits": {**CONFIG["data"]["typed_digits"], "leave_out": [
    family.name for family in typed_digits.FAMILIES if family.split == "train" and family.name not in KEPT]}}}


def make_data(config: dict = CONFIG, seed: int = 0) -> MNISTClassifierData:
    data = MNISTClassifierData()
    data.init(Configuration(config, seed), logging.getLogger("test"))
    return data


def test_the_font_split_is_by_family_and_fixed() -> None:
    train = {file for family in typed_digits.FAMILIES if family.split == "train" for file in family.files}
    held_out = {file for family in typed_digits.FAMILIES if family.split == "held_out" for file in family.files}
    assert train and held_out and not train & held_out
    assert not set(typed_digits.find_fonts("train")) & held_out, "a held-out font is never a training font"
    tuning = {file for family in typed_digits.FAMILIES if family.split == "tuning" for file in family.files}
    assert tuning and not tuning & (train | held_out)
    assert not set(typed_digits.find_fonts("train")) & tuning, "nor a font of the tuning pictures"
    assert {family.split for family in typed_digits.FAMILIES} == {"train", "tuning", "held_out"}
    handwriting = {f.split for f in typed_digits.FAMILIES if f.handwriting}
    assert handwriting == {"train", "tuning", "held_out"}, "handwriting fonts are split too"


def test_ci_installs_every_font_package() -> None:
    script = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    listed = script.split('FONT_PACKAGES="')[1].split('"')[0].split()
    assert sorted(listed) == typed_digits.packages()


def test_every_training_font_draws_each_digit_placed_as_mnist() -> None:
    fonts = typed_digits.find_fonts("train")
    assert len(fonts) >= 10, f"install the training fonts: apt-get install {' '.join(typed_digits.packages())}"
    chosen = dict(list(fonts.items())[:3])
    images, labels, used = typed_digits.render(chosen, variants=2, handwriting_variants=5, seed=1)
    assert images.dtype == torch.uint8 and images.shape == (len(used) * 20, 28, 28)
    assert sorted(set(labels.tolist())) == list(range(10)) and labels.tolist().count(3) == len(used) * 2
    for image in images:
        rows = torch.nonzero(image.max(1).values > 51).flatten()
        cols = torch.nonzero(image.max(0).values > 51).flatten()
        assert max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 1 <= 21, "the longer side in 20 pixels"
        assert int(image.max()) == 255, "full ink, as MNIST's pen"
    again, _, _ = typed_digits.render(chosen, variants=2, handwriting_variants=5, seed=1)
    other, _, _ = typed_digits.render(chosen, variants=2, handwriting_variants=5, seed=2)
    assert torch.equal(images, again) and not torch.equal(images, other), "seeded"


def test_typed_digits_join_the_train_split_only_and_survive_json(synthetic_data: Path) -> None:
    data = make_data(FEW)
    data.create(synthetic_data)
    count = data.typed_digits["count"]
    assert {typed_digits.is_handwriting(name) for name in data.typed_digits["fonts"]} == {True, False}
    assert count == sum(3 if typed_digits.is_handwriting(name) else 2 for name in data.typed_digits["fonts"]) * 10
    size = 1000  # the synthetic training images
    assert len(data.train_indexes) == 800 + count and data.train_indexes[-count:] == list(range(size, size + count))
    assert max(data.validation_indexes) < size, "validation is the dataset's own"
    assert data.describe().splits["train"] == 800 + count
    restored = make_data(FEW)
    restored.load(json.loads(json.dumps(data.save())))
    restored.load_datasets(synthetic_data)
    train = restored.datasets["train"]
    assert len(train) == size + count and len(restored.datasets["test"]) == 200
    images, labels = typed_digits.decode(data.typed_digits)
    assert torch.equal(train.inputs[size:], images) and torch.equal(train.targets[size:], labels)
    plain = make_data({**CONFIG, "data": {"val_split": 0.2}})
    plain.create(synthetic_data)
    assert plain.typed_digits is None and len(plain.train_indexes) == 800
    assert (plain.mean, plain.std) == (data.mean, data.std), "statistics are the dataset's own"


def test_no_fonts_or_a_dataset_of_clothes_is_one_line(synthetic_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typed_digits, "FONT_DIRS", ())
    with pytest.raises(UserError, match=r"^data.typed_digits needs fonts .* \(apt-get install fonts-"):
        make_data().create(synthetic_data)
    mnist = make_data()
    mnist.load_datasets(synthetic_data)
    monkeypatch.setattr("mnist_classifier.training.data.load_split", lambda path, spec, train: mnist.datasets["train"])
    with pytest.raises(UserError, match="^data.typed_digits draws digits, and fashion_mnist is not a dataset of"):
        make_data({**CONFIG, "data": {**CONFIG["data"], "dataset": "fashion_mnist"}}).create(synthetic_data)


def test_leave_out_renders_every_training_family_but_those_named() -> None:
    left = ["Comic Neue", "Caveat"]
    files = {file for family in typed_digits.FAMILIES if family.name in left for file in family.files}
    assert len(files) == 6, "four Debian files and two from npm"
    config = {"variants": 1, "handwriting_variants": 0}
    every = typed_digits.make(config, seed=0)["fonts"]
    assert files <= set(every)
    rest = typed_digits.make({**config, "leave_out": left}, seed=0)["fonts"]
    assert set(rest) == set(every) - files
    with pytest.raises(UserError, match=r"^data.typed_digits.leave_out names 'Kristi', which is no training font"):
        typed_digits.make({**config, "leave_out": ["Kristi"]}, seed=0)
    debian = typed_digits.make({**config, "web_fonts": False}, seed=0)["fonts"]
    npm_files = {file for font in web_fonts.FONTS for file in font.files}
    assert set(debian) == set(every) - npm_files and npm_files <= set(every)


def test_rendered_digits_are_kept_between_experiments_and_drawn_again_when_anything_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = {family.name for family in typed_digits.FAMILIES if family.name in KEPT}
    fonts = typed_digits.find_fonts("train", leave_out=frozenset(
        family.name for family in typed_digits.FAMILIES if family.name not in kept))
    assert len(fonts) >= 3, "install the training fonts (make install)"
    cache = tmp_path / "cache"
    drawn = typed_digits.render(fonts, 2, 3, seed=0)
    first = typed_digits.render(fonts, 2, 3, seed=0, cache=cache)
    assert torch.equal(first[0], drawn[0]) and torch.equal(first[1], drawn[1]) and first[2] == drawn[2]
    assert len(list(cache.glob("*.npy"))) == len(fonts), "an entry per font"
    real_draw = typed_digits.draw
    monkeypatch.setattr(typed_digits, "draw", lambda *args: pytest.fail("drawn again"))
    again = typed_digits.render(fonts, 2, 3, seed=0, cache=cache)
    assert torch.equal(again[0], drawn[0]) and torch.equal(again[1], drawn[1]) and again[2] == drawn[2], "read back"

    calls = []
    monkeypatch.setattr(typed_digits, "draw", lambda *args: calls.append(args[1]) or real_draw(*args))
    typed_digits.render(fonts, 2, 3, seed=1, cache=cache)
    typed_digits.render(fonts, 3, 3, seed=0, cache=cache)
    assert len(calls) == len(fonts) + sum(not typed_digits.is_handwriting(name) for name in fonts), \
        "another seed draws every font again, another count the fonts it applies to"
    name, font = next(iter(fonts.items()))
    count = 3 if typed_digits.is_handwriting(name) else 2
    entry = cache / f"{render_cache.key(web_fonts.truetype(font), name, count, 0)}.npy"
    entry.write_bytes(entry.read_bytes()[:100])
    calls.clear()
    again = typed_digits.render(fonts, 2, 3, seed=0, cache=cache)
    assert len(calls) == 1 and torch.equal(again[0], drawn[0]), "a damaged entry is drawn again"
    assert typed_digits.render(fonts, 2, 3, seed=0, cache=cache)[0].shape == drawn[0].shape and len(calls) == 1

    unwritable = tmp_path / "a-file"
    unwritable.write_text("")
    assert torch.equal(typed_digits.render(fonts, 2, 3, seed=0, cache=unwritable)[0], drawn[0]), \
        "a cache that cannot be written only keeps nothing"

    copy = tmp_path / name
    copy.write_bytes(font.read_bytes() + b"\0")
    assert render_cache.key(copy, name, 2, 0) != render_cache.key(font, name, 2, 0) != render_cache.key(
        font, "other.ttf", 2, 0), "the font's bytes and name decide the entry"
    code = {Path(inspect.getsourcefile(function)) for function in (
        real_draw, typed_digits.draw_not_digits, typed_digits.variant, typed_digits.glyph_ink, typed_digits.slant,
        typed_digits.has_digits, place)}
    assert code == set(render_cache.CODE), "the code that draws the digits is part of every entry's name"


def test_glyphs_of_no_digit_join_the_train_split_labelled_as_none(synthetic_data: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``not_digits`` adds that many glyphs of ``NOT_DIGITS`` per font, labelled ``NOT_A_DIGIT`` through data.json,
    each a glyph the font has (a Latin font draws no kana, not even as its missing-glyph box), and leaves the
    digits as they were."""
    assert not set(typed_digits.NOT_DIGITS) & set("0123456789OoDQIlZzSsBGbgqTtAyUu"), "nothing read as a digit"
    monkeypatch.setattr(render_cache, "folder", lambda: tmp_path / "cache")  # drawn here, not read back
    drawn: dict[str, list[str]] = {}
    real_variant = typed_digits.variant
    monkeypatch.setattr(typed_digits, "variant", lambda path, text, rng: drawn.setdefault(
        path.name, []).append(text) or real_variant(path, text, rng))
    config = {**FEW, "data": {**FEW["data"], "typed_digits": {**FEW["data"]["typed_digits"], "not_digits": 30}}}
    data = make_data(config)
    data.create(synthetic_data)
    images, labels = typed_digits.decode(json.loads(json.dumps(data.save()))["typed_digits"])
    fonts = data.typed_digits["fonts"]
    assert int((labels == typed_digits.NOT_A_DIGIT).sum()) == 30 * len(fonts) == data.typed_digits["not_digits"]
    assert data.describe().details["typed_digits"].endswith(f"in train, {30 * len(fonts)} of them glyphs of no digit")
    digits = make_data(FEW)
    digits.create(synthetic_data)
    only_digits = typed_digits.decode(digits.typed_digits)
    keep = labels != typed_digits.NOT_A_DIGIT
    assert torch.equal(images[keep], only_digits[0]) and torch.equal(labels[keep], only_digits[1])
    assert all(int(image.max()) == 255 for image in images[~keep]), "full ink, as the digits"
    assert len(data.train_indexes) == 800 + len(labels), "in the train split"
    latin = {name for name in fonts if name.startswith("CharisSIL")}
    assert latin and fonts.keys() > latin
    for name, texts in drawn.items():
        glyphs = [text for text in texts if not text.isdigit()]
        assert len(glyphs) == 30 and set(glyphs) <= set(typed_digits.NOT_DIGITS)
        if name in latin:
            assert all(text.isascii() for text in glyphs), f"{name} draws no kana"
    assert any(not text.isascii() for name, texts in drawn.items() if name.startswith("KleeOne") for text in texts)
    typed_only = typed_digits.render(typed_digits.find_fonts("train", leave_out=frozenset(
        family.name for family in typed_digits.FAMILIES if family.name not in KEPT)), 1, 0, seed=0, not_digits=2)
    assert (typed_only[1] == typed_digits.NOT_A_DIGIT).sum() == 2 * sum(
        not typed_digits.is_handwriting(name) for name in typed_only[2]), "only from fonts whose digits join"
    monkeypatch.setattr(typed_digits, "draw_not_digits", lambda *args: pytest.fail("drawn again"))
    again = make_data(config)
    again.create(synthetic_data)
    assert again.typed_digits == data.typed_digits, "kept in the cache, beside the font's digits"


def test_the_loss_pulls_a_glyph_of_no_digit_towards_equal_probabilities() -> None:
    """``runner.loss``: the NLL of each digit, and for an image of no digit its cross-entropy to equal
    probabilities, weighted by ``NOT_A_DIGIT_WEIGHT``; a step of gradient descent on it flattens its answer."""
    import torch.nn.functional as F

    from mnist_classifier.training.runner import NOT_A_DIGIT_WEIGHT, loss

    logits = torch.tensor([[4.0, 0.0, -1.0] + [0.0] * 7, [0.0, 3.0] + [0.0] * 8], requires_grad=True)
    targets = torch.tensor([0, typed_digits.NOT_A_DIGIT])
    log_probabilities = F.log_softmax(logits, 1)
    expected = (-log_probabilities[0, 0] - NOT_A_DIGIT_WEIGHT * log_probabilities[1].mean()) / 2
    assert torch.allclose(loss(log_probabilities, targets), expected)
    digits = torch.tensor([0, 1])
    assert torch.allclose(loss(log_probabilities, digits), F.nll_loss(log_probabilities, digits))
    loss(log_probabilities, targets).backward()
    after = F.softmax(logits.detach() - 1.0 * logits.grad, 1)
    assert after[1].max() < F.softmax(logits.detach(), 1)[1].max(), "its answer is flatter"
    assert after[0, 0] > F.softmax(logits.detach(), 1)[0, 0], "the digit's label is more likely"


@pytest.mark.slow
def test_a_release_trained_with_glyphs_of_no_digit_can_say_no_digit_stands_out(workdir: Path) -> None:
    """``create_release`` of a run with ``not_digits`` stores ``NO_DIGIT_BELOW`` in its calibration (one without
    stores 0, see test_predict), and its export's model card says so."""
    config = json.loads((workdir / "config.default.json").read_text())
    config["data"]["typed_digits"] = {**FEW["data"]["typed_digits"], "not_digits": 4}
    (workdir / "config.glyphs.json").write_text(json.dumps(config))
    run_cli(workdir, "--experiment-name", "glyphs", "init", "--config-path", "config.glyphs.json",
            "--config-schema-file", "config.schema.json")
    run_cli(workdir, "--experiment-name", "glyphs", "train", "--max-epochs", "1", "--device", "cpu")
    run_cli(workdir, "--experiment-name", "glyphs", "create_release", "--epoch", "1")
    release = workdir / "experiments" / "glyphs" / "checkpoints" / "1.checkpoint.release.pkl"
    assert checkpoints.load(release, "release")["calibration"]["no_digit_below"] == NO_DIGIT_BELOW
    run_cli(workdir, "export", "--release", str(release), "--to", str(workdir / "export"))
    card = (workdir / "export" / "README.md").read_text()
    assert f"together have under {NO_DIGIT_BELOW:.0%} is called `no digit`" in card


def test_photographed_digits_are_what_predict_makes_of_a_photo_of_them(synthetic_data: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``photographed`` adds, per handwriting font, photos of each digit brought to 28x28 by ``predict``'s own
    preparation (``images.to_mnist``), seeded, kept in the cache under a key of their own that the preparation's
    code is part of; typed fonts get none."""
    fonts = typed_digits.find_fonts("train", leave_out=frozenset(
        family.name for family in typed_digits.FAMILIES if family.name not in KEPT))
    handwriting = [name for name in fonts if typed_digits.is_handwriting(name)]
    assert handwriting and len(handwriting) < len(fonts), "install the training fonts (make install)"
    plain = typed_digits.render(fonts, 1, 2, seed=0)
    images, labels, used = typed_digits.render(fonts, 1, 2, seed=0, photographed=3, cache=tmp_path)
    assert used == plain[2] and len(labels) == len(plain[1]) + 30 * len(handwriting)
    clean, photos, start = [], [], 0  # each font's clean digits, then its photographed ones
    for font_name in used:
        count = 20 if font_name in handwriting else 10
        clean.append(images[start:start + count])
        photos.append(images[start + count:start + count + (30 if font_name in handwriting else 0)])
        assert torch.equal(labels[start + count:start + count + len(photos[-1])],
                           torch.arange(10).repeat_interleave(3)[:len(photos[-1])]), "digit by digit"
        start += count + len(photos[-1])
    assert torch.equal(torch.cat(clean), plain[0]), "the clean variants stay as they were"
    monkeypatch.setattr(render_cache, "folder", lambda: tmp_path)
    data = make_data({**FEW, "data": {**FEW["data"], "typed_digits": {
        **FEW["data"]["typed_digits"], "handwriting_variants": 2, "variants": 1, "photographed": 3, "not_digits": 2}}})
    data.create(synthetic_data)
    assert data.typed_digits["photographed"] == 30 * len(handwriting) and len(data.train_indexes) == 800 + len(
        labels) + 2 * len(used), "in the train split, beside the glyphs of no digit"
    assert data.describe().details["typed_digits"].endswith(
        f"in train, {30 * len(handwriting)} of them photographed and {2 * len(used)} glyphs of no digit")
    assert all(int(photo.max()) == 255 for photo in torch.cat(photos)), "a digit in each, as bright as MNIST's pen"
    alone = typed_digits.make({**FEW["data"]["typed_digits"], "handwriting_variants": 0, "photographed": 1}, seed=0)
    assert alone["photographed"] == 10 * len(handwriting) and alone["count"] == 10 * (
        2 * (len(used) - len(handwriting)) + len(handwriting)), "photographed without clean handwriting digits"

    name = handwriting[0]
    font = web_fonts.truetype(fonts[name])
    shown = []
    real_photograph = photographed.photograph
    monkeypatch.setattr(photographed, "photograph", lambda *args: shown.append(real_photograph(*args)) or shown[-1])
    drawn = photographed.draw(font, name, 3, seed=0)
    assert drawn is not None and np.array_equal(drawn, photos[used.index(name)].numpy()), "seeded, as rendered"
    assert len(shown) >= 30 and not np.array_equal(drawn, typed_digits.draw(font, name, 3, seed=0))
    prepared = [image for image in (to_mnist(photo, stroke_width=MNIST_STROKE_WIDTH) for photo in shown)
                if image.any()]
    assert np.array_equal(np.stack(prepared[:30]), drawn), "what predict makes of the photos shown"
    assert not np.array_equal(photographed.draw(font, name, 3, seed=1), drawn)

    entry = render_cache.key(font, name, 3, 0, render_cache.PHOTOGRAPHED)
    clean_entry = render_cache.key(font, name, 3, 0)
    assert (tmp_path / f"{entry}.npy").is_file(), "kept in the cache, an entry of its own"
    monkeypatch.setattr(render_cache, "PREPARING", render_cache.PREPARING[:1])
    render_cache._drawing.cache_clear()
    try:
        assert render_cache.key(font, name, 3, 0, render_cache.PHOTOGRAPHED) != entry, \
            "a change to the preparation's code makes new entries for photographed digits"
        assert render_cache.key(font, name, 3, 0) == clean_entry, "and leaves the clean ones"
    finally:
        monkeypatch.undo()
        render_cache._drawing.cache_clear()
    code = {Path(inspect.getsourcefile(module)) for module in (photographed, strokes, ruling)}
    assert code == set(render_cache.PREPARING)


def test_photographed_glyphs_of_no_digit_are_photos_of_letters_trained_towards_no_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``photographed_not_digits`` adds, per handwriting font, photos of its glyphs of no digit brought to 28x28 by
    ``predict``'s preparation and labelled ``NOT_A_DIGIT``, after its clean ones; typed fonts get none, the other
    images stay as they were, the cache keeps them under a key the preparation's code is part of, ``make`` counts
    them with the glyphs of no digit, and the runner then trains and calibrates as with ``not_digits``."""
    from types import SimpleNamespace

    from mnist_classifier.training.runner import MNISTClassifierRunner

    fonts = typed_digits.find_fonts("train", leave_out=frozenset(
        family.name for family in typed_digits.FAMILIES if family.name not in KEPT))
    handwriting = [name for name in fonts if typed_digits.is_handwriting(name)]
    assert handwriting and len(handwriting) < len(fonts), "install the training fonts (make install)"
    plain = typed_digits.render(fonts, 1, 2, seed=0, not_digits=2)
    images, labels, used = typed_digits.render(fonts, 1, 2, seed=0, not_digits=2, photographed_not_digits=3,
                                               cache=tmp_path)
    assert used == plain[2] and len(labels) == len(plain[1]) + 3 * len(handwriting)
    kept, photos, start = [], [], 0  # each font's digits and clean glyphs, then its photographed glyphs
    for font_name in used:
        count = (20 if font_name in handwriting else 10) + 2
        kept.append(images[start:start + count])
        photos.append(images[start + count:start + count + (3 if font_name in handwriting else 0)])
        assert (labels[start + count - 2:start + count + len(photos[-1])] == typed_digits.NOT_A_DIGIT).all()
        start += count + len(photos[-1])
    assert torch.equal(torch.cat(kept), plain[0]), "the digits and the clean glyphs stay as they were"

    name = handwriting[0]
    font = web_fonts.truetype(fonts[name])
    shown, texts = [], []
    real_photograph = photographed.photograph
    monkeypatch.setattr(photographed, "photograph",
                        lambda path, text, rng: texts.append(text) or shown.append(real_photograph(path, text, rng))
                        or shown[-1])
    drawn = photographed.draw_not_digits(font, name, 3, seed=0)
    assert drawn is not None and np.array_equal(drawn, photos[used.index(name)].numpy()), "seeded, as rendered"
    assert set(texts) <= set(typed_digits.NOT_DIGITS) and all(int(image.max()) == 255 for image in drawn)
    prepared = [image for image in (to_mnist(photo, stroke_width=MNIST_STROKE_WIDTH) for photo in shown)
                if image.any()]
    assert np.array_equal(np.stack(prepared[:3]), drawn), "what predict makes of the photos shown"
    entry = render_cache.key(font, name, 3, 0, render_cache.PHOTOGRAPHED_NOT_DIGITS)
    assert (tmp_path / f"{entry}.npy").is_file()
    assert entry != render_cache.key(font, name, 3, 0, render_cache.NOT_DIGITS)
    monkeypatch.setattr(render_cache, "PREPARING", render_cache.PREPARING[:1])
    render_cache._drawing.cache_clear()
    try:
        assert render_cache.key(font, name, 3, 0, render_cache.PHOTOGRAPHED_NOT_DIGITS) != entry, \
            "a change to the preparation's code makes new entries for them"
    finally:
        monkeypatch.undo()
        render_cache._drawing.cache_clear()

    monkeypatch.setattr(render_cache, "folder", lambda: tmp_path)
    made = typed_digits.make({**FEW["data"]["typed_digits"], "handwriting_variants": 2, "variants": 1,
                              "photographed_not_digits": 3}, seed=0)
    assert made["not_digits"] == 3 * len(handwriting) and "photographed" not in made
    runner = MNISTClassifierRunner()
    runner.experiment = SimpleNamespace(configuration=Configuration(
        {"data": {"typed_digits": {"photographed_not_digits": 3}}}, seed=0))
    assert runner.not_digits, "trained towards no answer, and calibrated to say no digit, as not_digits are"
