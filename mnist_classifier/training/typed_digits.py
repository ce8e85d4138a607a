"""Digits rendered from fonts, to mix into MNIST's training images (config ``data.typed_digits``).

An MNIST-only model has never seen a typed 1 with its flag and foot, nor a serif 4, and reads them as 7s and 9s.
These images show it typed shapes: each font draws each digit in a few variants (size, weight, slant), placed in
28x28 the way MNIST placed its digits (longer side 20 pixels, centre of mass at the centre). The train-time
augmentation then varies them further, as it does MNIST's.

Fonts come in families, each on one side of a split that never changes: ``train`` families may be rendered for
training (and the benchmark's tuning pictures of typed digits); ``tuning`` handwriting families never are, and
the tuning pictures of handwriting fonts use them, so that tuning measures fonts a model has not seen;
``held_out`` families are neither trained nor tuned on, and pictures in them measure how a model reads fonts
it has never seen (``benchmarks/make_pictures.py``). The fonts are Debian's packages named in ``FAMILIES`` and
Google Fonts' handwriting families from npm (``web_fonts``); those found on the machine at ``init`` are rendered
once and their images stored in the experiment's ``data.json``, so training resumes bit-identically on a machine
with other fonts or none; each font's digits are kept between experiments too (``render_cache``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..framework import UserError
from ..inference.images import place
from . import render_cache, web_fonts

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts",
             Path.home() / ".fonts", Path("/Library/Fonts"), Path("/System/Library/Fonts"), Path("C:/Windows/Fonts"),
             web_fonts.folder())


# Glyphs that are no digit in any hand, for ``data.typed_digits.not_digits``: letters and signs no one writes
# for a digit (not O, D, Q, I, l, Z, S, B, G, b, q, g, T, A, y, t, u and their like), kana and kanji.
NOT_DIGITS = ("CEFHKMNRVWXcefhkmnrvwx+=%@#*<>"
              "あおかきけさすたなぬねはほまみむめもやゆよれわをん書字紙森語愛機電学国東京雨風花鳥")
NOT_A_DIGIT = -1  # the label of a glyph of NOT_DIGITS: trained towards no answer (runner.loss)
MISSING = "\U000F0000"  # a character no font draws: what a font draws for a glyph it lacks


@dataclass(frozen=True)
class Family:
    """A font family: the Debian package that installs it (none for ``web_fonts``' families, which come from
    npm), the file names of its styles, which side of the split it is on, and whether it imitates handwriting."""

    name: str
    package: str
    files: tuple[str, ...]
    split: str  # "train", "tuning" or "held_out"
    handwriting: bool = False


def _styles(stem: str, *styles: str, ext: str = "ttf") -> tuple[str, ...]:
    return tuple(f"{stem}{style}.{ext}" for style in styles)


FAMILIES: tuple[Family, ...] = (
    # typed, train
    Family("DejaVu", "fonts-dejavu-core fonts-dejavu-extra",
           _styles("DejaVuSans", "", "-Bold", "-Oblique", "-BoldOblique", "-ExtraLight")
           + _styles("DejaVuSansCondensed", "", "-Bold") + _styles("DejaVuSerif", "", "-Bold", "-Italic")
           + _styles("DejaVuSerifCondensed", "", "-Bold") + _styles("DejaVuSansMono", "", "-Bold", "-Oblique"),
           "train"),
    Family("Liberation", "fonts-liberation",
           _styles("LiberationSans-", "Regular", "Bold", "Italic", "BoldItalic")
           + _styles("LiberationSansNarrow-", "Regular", "Bold") + _styles("LiberationSerif-", "Regular", "Bold",
                                                                            "Italic", "BoldItalic")
           + _styles("LiberationMono-", "Regular", "Bold"), "train"),
    Family("FreeFont", "fonts-freefont-ttf",
           _styles("Free", "Sans", "SansBold", "SansOblique", "Serif", "SerifBold", "SerifItalic", "Mono",
                   "MonoBold"), "train"),
    Family("Open Sans", "fonts-open-sans",
           _styles("OpenSans-", "Regular", "Bold", "ExtraBold", "Light", "Italic", "CondBold"), "train"),
    Family("Lato", "fonts-lato", _styles("Lato-", "Regular", "Bold", "Black", "Light", "Italic", "Hairline"),
           "train"),
    Family("Go", "fonts-go", _styles("Go-", "Regular", "Bold", "Italic", "Medium", "Mono", "Mono-Bold"), "train"),
    Family("Roboto", "fonts-roboto-unhinted",
           _styles("Roboto-", "Regular", "Bold", "Black", "Light", "Italic", "Thin")
           + _styles("RobotoCondensed-", "Regular", "Bold"), "train"),
    Family("Carlito and Caladea", "fonts-crosextra-carlito fonts-crosextra-caladea",
           _styles("Carlito-", "Regular", "Bold", "Italic") + _styles("Caladea-", "Regular", "Bold", "Italic"),
           "train"),
    Family("Cabin", "fonts-cabin", _styles("Cabin-", "Regular", "Bold", "Italic", ext="otf"), "train"),
    Family("EB Garamond", "fonts-ebgaramond",
           _styles("EBGaramond12-", "Regular", "Bold", "Italic", ext="otf"), "train"),
    Family("Hack and Noto Mono", "fonts-hack fonts-noto-mono",
           _styles("Hack-", "Regular", "Bold") + _styles("NotoSansMono-", "Regular", "Bold"), "train"),
    Family("Charis SIL", "fonts-sil-charis", _styles("CharisSIL-", "Regular", "Bold", "Italic"), "train"),
    # handwriting, train
    Family("Comic Neue", "fonts-comic-neue", _styles("ComicNeue-", "Regular", "Bold", "Light", "Italic", ext="otf"),
           "train", handwriting=True),
    Family("DKG handwriting", "fonts-dkg-handwriting", ("dkg.ttf", "dkgBd.ttf", "dkgIt.ttf"), "train",
           handwriting=True),
    Family("Dancing Script", "fonts-dancingscript", _styles("DancingScript-", "Regular", "Bold", ext="otf"),
           "train", handwriting=True),
    Family("Because We Had To (build, connect, create)", "fonts-bwht",
           _styles("BecauseWe", "Build-Regular", "Connect-Regular", "Create-Regular", ext="otf"), "train",
           handwriting=True),
    Family("Klee", "fonts-klee", _styles("KleeOne-", "Regular", "SemiBold"), "train", handwriting=True),
    Family("Kiloji", "fonts-kiloji", ("kiloji.ttf", "kiloji_b.ttf", "kiloji_d.ttf", "kiloji_p.ttf"), "train",
           handwriting=True),
    Family("Seto", "fonts-seto", ("setofont.ttf",), "train", handwriting=True),  # its -ex file draws no digits
    Family("Yusei Magic", "fonts-yusei-magic", ("YuseiMagic-Regular.ttf",), "train", handwriting=True),
    Family("Purisa", "fonts-tlwg-purisa-otf", _styles("Purisa", "", "-Bold", "-Oblique", "-BoldOblique", ext="otf"),
           "train", handwriting=True),
    Family("Leckerli One", "fonts-leckerli-one", ("LeckerliOne-Regular.ttf",), "train", handwriting=True),
    Family("Havana", "fonts-havana", ("Havana-Regular.otf",), "train", handwriting=True),
    Family("Kouzan and Aoyagi brush", "fonts-aoyagi-kouzan-t fonts-kouzan-mouhitsu fonts-aoyagi-soseki",
           ("AoyagiKouzanT.ttf", "kouzan-mouhitsu-gyosho.ttf", "aoyagi-soseki.ttf"), "train", handwriting=True),
    # handwriting, train: Google Fonts' from npm (school scripts, markers, brushes, quick pens)
    *(Family(font.title, "", font.files, "train", handwriting=True) for font in web_fonts.FONTS),
    # handwriting, tuning: never trained on, for the tuning pictures of fonts a model has not seen
    Family("Humor Sans", "fonts-humor-sans", ("Humor-Sans.ttf",), "tuning", handwriting=True),
    Family("Some Juicy Fonts", "fonts-sjfonts", ("Delphine.ttf", "SteveHand.ttf"), "tuning", handwriting=True),
    Family("Kristi", "fonts-kristi", ("Kristi.ttf",), "tuning", handwriting=True),
    Family("Lobster", "fonts-lobster", ("lobster.otf",), "tuning", handwriting=True),
    Family("Navilu", "fonts-navilu", ("Navilu.ttf",), "tuning", handwriting=True),
    Family("Tomson Talks", "fonts-tomsontalks", ("TomsonTalks.ttf",), "tuning", handwriting=True),
    # typed, held out
    Family("URW base 35", "fonts-urw-base35",
           _styles("NimbusSans-", "Regular", "Bold", "Italic", ext="otf")
           + _styles("NimbusSansNarrow-", "Regular", "Bold", ext="otf")
           + _styles("NimbusRoman-", "Regular", "Bold", "Italic", ext="otf")
           + _styles("NimbusMonoPS-", "Regular", "Bold", ext="otf") + _styles("C059-", "Roman", "Bold", ext="otf")
           + _styles("P052-", "Roman", "Italic", ext="otf") + _styles("URWBookman-", "Light", "Demi", ext="otf")
           + _styles("URWGothic-", "Book", "Demi", ext="otf") + ("Z003-MediumItalic.otf",), "held_out"),
    Family("Cantarell", "fonts-cantarell", _styles("Cantarell-", "Regular", "Bold", "ExtraBold", ext="otf"),
           "held_out"),
    Family("Karla", "fonts-karla", _styles("Karla-", "Regular", "Bold", "Italic", ext="otf"), "held_out"),
    Family("Clear Sans", "fonts-clear-sans", _styles("ClearSans-", "Regular", "Bold", "Italic"), "held_out"),
    Family("Jura and Inconsolata", "fonts-jura fonts-inconsolata",
           _styles("Jura-", "Regular", "Bold", ext="otf") + ("Inconsolata.otf",), "held_out"),
    # handwriting, held out
    Family("Because We Had To (learn, mentor, organize)", "fonts-bwht",
           _styles("BecauseWe", "Learn-Regular", "Mentor-Regular", "Organize-Regular", ext="otf"), "held_out",
           handwriting=True),
    Family("Breip", "fonts-breip", ("Breip.ttf",), "held_out", handwriting=True),
    Family("Femke Klaver", "fonts-femkeklaver", ("femkeklaver.ttf",), "held_out", handwriting=True),
    Family("Rufscript", "fonts-rufscript", ("Rufscript010.ttf",), "held_out", handwriting=True),
    Family("Kaushan Script", "fonts-kaushanscript", ("KaushanScript-Regular.otf",), "held_out", handwriting=True),
    Family("Ecolier", "fonts-ecolier-court", ("Ecolier-court.ttf",), "held_out", handwriting=True),
)


def packages(split: str | None = None) -> list[str]:
    """The Debian packages that install the families of ``split`` (all: ``None``), for an ``apt-get`` line."""
    return sorted({name for family in FAMILIES if split in (None, family.split) for name in family.package.split()})


def find_fonts(split: str, handwriting: bool | None = None, leave_out: frozenset[str] = frozenset()
               ) -> dict[str, Path]:
    """The font files of ``split``'s families found on this machine (``handwriting``: only those that imitate
    it, or only those that do not; none of the families named in ``leave_out``), by file name, in ``FAMILIES``
    order."""
    wanted = [file for family in FAMILIES if family.split == split and handwriting in (None, family.handwriting)
              and family.name not in leave_out for file in family.files]
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.name in wanted and path.name not in found:
                    found[path.name] = path
    return {name: found[name] for name in wanted if name in found}


def is_handwriting(file: str) -> bool:
    return any(file in family.files for family in FAMILIES if family.handwriting)


def glyph_ink(font: ImageFont.FreeTypeFont, text: str, stroke: int = 0) -> np.ndarray:
    """``text`` drawn in ``font`` as ink coverage 0-1 (floats 0-255 for ``place``), cropped to its ink."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = 4 + stroke
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke,
                                stroke_fill=255)
    return np.array(canvas, dtype=np.float32)


def drawn_glyphs(font: ImageFont.FreeTypeFont, texts: str) -> list[str]:
    """The characters of ``texts`` that ``font`` draws: not blank, and not what it draws for a glyph it lacks."""
    missing = glyph_ink(font, MISSING).tobytes()
    return [text for text in texts if (ink := glyph_ink(font, text)).max() > 0 and ink.tobytes() != missing]


def has_digits(font: ImageFont.FreeTypeFont) -> bool:
    """Whether the font draws ten different digits: some handwriting fonts draw a missing glyph's box instead."""
    masks = [glyph_ink(font, str(digit)) for digit in range(10)]
    return all(mask.max() > 0 for mask in masks) and len({mask.tobytes() for mask in masks}) == 10


def draws_digits(path: Path) -> bool:
    """Whether the font file at ``path`` opens and draws ten different digits (``has_digits``)."""
    try:
        return has_digits(ImageFont.truetype(str(path), 64))
    except OSError:
        return False


def render(fonts: dict[str, Path], variants: int, handwriting_variants: int, seed: int, cache: Path | None = None,
           not_digits: int = 0, photographed: int = 0,
           photographed_not_digits: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every digit of every font in ``variants`` variants (``handwriting_variants`` for handwriting fonts), each digit
    of each handwriting font ``photographed`` times more, photographed and prepared as ``predict`` prepares a picture
    (``photographed.draw``), and ``not_digits`` glyphs of each font that are not digits (labelled ``NOT_A_DIGIT``),
    ``photographed_not_digits`` more of each handwriting font photographed so (``photographed.draw_not_digits``), as
    ``[N, 28, 28]`` uint8 images placed as MNIST's are, their labels, and the fonts used (those that draw digits). With
    ``cache``, a folder, each font's images are kept there and read back by a later call (``render_cache``)."""
    from . import photographed as photos  # it draws its glyphs with this module's functions
    def drawn_by(function: Callable, path: Path, name: str, count: int,
                 kind: render_cache.Kind) -> np.ndarray | None:
        made = functools.partial(function, path, name, count, seed)
        return render_cache.fetch(path, name, count, seed, made, cache, kind) if cache else made()

    images, labels, used = [], [], []
    for name, path in fonts.items():
        count = handwriting_variants if is_handwriting(name) else variants
        path = web_fonts.truetype(path)  # the file drawn, which names the cache's entry
        drawn = drawn_by(draw, path, name, count, render_cache.DIGITS)
        if drawn is None:
            continue
        used.append(name)
        images.append(drawn)
        labels.append(np.repeat(np.arange(10), count))
        if photographed and is_handwriting(name):  # whatever handwriting_variants is, as make counts them
            taken = drawn_by(photos.draw, path, name, photographed, render_cache.PHOTOGRAPHED)
            if taken is not None:
                images.append(taken)
                labels.append(np.repeat(np.arange(10), photographed))
        for function, count, kind in (
                (draw_not_digits, not_digits, render_cache.NOT_DIGITS),
                (photos.draw_not_digits, photographed_not_digits, render_cache.PHOTOGRAPHED_NOT_DIGITS)):
            # fonts whose digits join (handwriting_variants 0: none do); photographed ones of handwriting fonts
            if count and len(drawn) and (not kind.prepared or is_handwriting(name)):
                others = drawn_by(function, path, name, count, kind)
                if others is not None:
                    images.append(others)
                    labels.append(np.full(len(others), NOT_A_DIGIT))
    if not images:
        return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), used
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels).astype(np.int64)), used


def draw(path: Path, name: str, count: int, seed: int) -> np.ndarray | None:
    """Each digit of the font file at ``path`` (``render`` opens an npm font's TrueType form; ``name`` is the
    file name it was found under) in ``count`` variants, as ``[10 * count, 28, 28]`` uint8, digit by digit (the
    labels ``render`` gives them); ``None`` if the font cannot be opened or draws no digits.

    A variant draws a size (32 to 96 pixels: small sizes are drawn coarser), a weight (two in three are drawn as
    they are, one in three bolder by a stroke of up to 6% of the size) and a slant (-12 to 12 degrees), from
    a generator seeded by ``seed`` and the font's file name."""
    return each_digit(path, count, random.Random(f"{seed}-{name}"), variant)


def each_digit(path: Path, count: int, rng: random.Random,
               image: Callable[[Path, str, random.Random], np.ndarray]) -> np.ndarray | None:
    """``image`` of each digit in the font file at ``path``, ``count`` times, from ``rng``, as ``[10 * count, 28,
    28]`` uint8, digit by digit; ``None`` if the font cannot be opened or draws no digits (``draws_digits``)."""
    if not draws_digits(path):
        return None
    images = [image(path, str(digit), rng) for digit in range(10) for _ in range(count)]
    return np.stack(images) if images else np.zeros((0, 28, 28), dtype=np.uint8)


def draw_not_digits(path: Path, name: str, count: int, seed: int) -> np.ndarray | None:
    """``count`` glyphs of the font file at ``path`` drawn from ``NOT_DIGITS`` (those it has), as ``[count, 28,
    28]`` uint8 varied as ``draw``'s digits are, from a generator of their own; ``None`` if it has none."""
    return each_not_digit(path, count, random.Random(f"{seed}-{name}-not-digits"), variant)


def each_not_digit(path: Path, count: int, rng: random.Random,
                   image: Callable[[Path, str, random.Random], np.ndarray]) -> np.ndarray | None:
    """``image`` of ``count`` glyphs of ``NOT_DIGITS`` that the font file at ``path`` draws, each chosen from
    ``rng``, as ``[count, 28, 28]`` uint8; ``None`` if the font cannot be opened or has none of them."""
    try:
        probe = ImageFont.truetype(str(path), 64)
    except OSError:
        return None
    has = drawn_glyphs(probe, NOT_DIGITS)
    if not has:
        return None
    return np.stack([image(path, rng.choice(has), rng) for _ in range(count)])


def variant(path: Path, text: str, rng: random.Random) -> np.ndarray:
    """``text`` in the font at ``path``, at a size, weight and slant drawn from ``rng`` (see ``draw``), placed in
    28x28 as MNIST's digits are, its brightest pixel 255."""
    size = rng.randint(32, 96)
    stroke = round(rng.uniform(0.02, 0.06) * size) if rng.random() < 1 / 3 else 0
    ink = glyph_ink(ImageFont.truetype(str(path), size), text, stroke)
    image = torch.from_numpy(place(slant(ink, rng.uniform(-12, 12)), 20, "mass")).float()
    # a hairline font's strokes turn grey when reduced: as bright as MNIST's pen, like any picture
    return (image * (255 / max(float(image.max()), 1.0))).round().to(torch.uint8).numpy()


def slant(ink: np.ndarray, degrees: float) -> np.ndarray:
    """``ink`` sheared horizontally by ``degrees`` (positive: leaning right), on a canvas wide enough for it."""
    height, width = ink.shape
    shift = math.tan(math.radians(degrees)) * height
    canvas = Image.fromarray(ink).transform(
        (width + math.ceil(abs(shift)), height), Image.Transform.AFFINE,
        (1, shift / height, -max(shift, 0), 0, 1, 0), resample=Image.Resampling.BILINEAR)
    return np.array(canvas, dtype=np.float32)


def make(config: dict, seed: int) -> dict:
    """The persisted state of ``data.typed_digits`` (``config``): the fonts rendered (the training families but
    those ``leave_out`` names, and but the npm ones if ``web_fonts`` is false), each file's SHA-256, the images
    and labels, compressed, as JSON-able text, and how many of them are photographed digits (``photographed``)
    and glyphs of no digit (``not_digits``, photographed ones included). A ``UserError`` names the packages when
    no font is installed."""
    leave_out = frozenset(config.get("leave_out", ()))
    if unknown := sorted(leave_out - {family.name for family in FAMILIES if family.split == "train"}):
        raise UserError(f"data.typed_digits.leave_out names '{unknown[0]}', which is no training font family, "
                        "name families of typed_digits.FAMILIES whose split is train")
    if not config.get("web_fonts", True):
        leave_out |= {font.title for font in web_fonts.FONTS}
    fonts = find_fonts("train", leave_out=leave_out)
    if not fonts:
        raise UserError("data.typed_digits needs fonts and none of its training fonts is installed, install them "
                        f"(apt-get install {' '.join(packages('train'))}; "
                        "python -m mnist_classifier.training.web_fonts) or remove data.typed_digits")
    photographed = int(config.get("photographed", 0))
    images, labels, used = render(fonts, int(config.get("variants", 4)), int(config.get("handwriting_variants", 5)),
                                  seed, cache=render_cache.folder(), not_digits=int(config.get("not_digits", 0)),
                                  photographed=photographed,
                                  photographed_not_digits=int(config.get("photographed_not_digits", 0)))
    others = int((labels == NOT_A_DIGIT).sum())
    photos = photographed * 10 * sum(is_handwriting(name) for name in used)
    return {"fonts": {name: hashlib.sha256(fonts[name].read_bytes()).hexdigest()[:16] for name in used},
            "count": len(labels), **({"photographed": photos} if photos else {}),
            **({"not_digits": others} if others else {}), "images": encode(images.numpy()),
            "labels": encode((labels % 256).to(torch.uint8).numpy())}  # NOT_A_DIGIT as 255


def encode(array: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(array, dtype=np.uint8).tobytes())).decode()


def decode(state: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels that ``make`` stored."""
    count = int(state["count"])
    images = np.frombuffer(zlib.decompress(base64.b64decode(state["images"])), dtype=np.uint8)
    labels = np.frombuffer(zlib.decompress(base64.b64decode(state["labels"])), dtype=np.uint8)
    labels = np.where(labels == 255, NOT_A_DIGIT, labels.astype(np.int64))
    return torch.from_numpy(images.copy()).view(count, 28, 28), torch.from_numpy(labels)
