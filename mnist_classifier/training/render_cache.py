"""Each font's rendered digits, kept between experiments.

``init`` of a recipe with ``data.typed_digits`` draws about 20,000 digits from 412 font files, some 20 seconds here, and
every experiment of a sweep, or run again with the same seed, draws the same ones. An entry holds one font's digits, or
its glyphs of no digit (``not_digits``), clean or photographed: a ``.npy`` file, read without pickle, empty for a font
that draws none. It is named by a hash of everything that decides their pixels: the font file's bytes and name (which
seeds its variants), the seed, the number of variants, digits or glyphs of no digit, clean or photographed, the code
that draws and places them (``typed_digits.py`` and ``images.py``, whole; for photographed ones also ``photographed.py``
and the preparation, ``strokes.py`` and ``ruling.py``) and the versions of Pillow, FreeType, NumPy, SciPy, scikit-image
and torch. So a change to any of them makes a new entry, never a stale answer; an entry that cannot be read is drawn
again, and one that cannot be written (a full disk) is only not kept. The folder, ``npm.cache_root() / "typed-digits"``,
can be deleted at any time.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import npm
from ..framework.storage import atomic_write

CODE = (Path(__file__).with_name("typed_digits.py"), Path(__file__).parents[1] / "inference" / "images.py")
PREPARING = (Path(__file__).with_name("photographed.py"), Path(__file__).parents[1] / "inference" / "strokes.py",
             Path(__file__).parents[1] / "inference" / "ruling.py")  # what photographed digits also go through




@dataclass(frozen=True)
class Kind:
    """What an entry holds: ``name`` joins its key (but for ``DIGITS``, whose keys came first); ``per_digit``:
    ``count`` images of each digit, else ``count`` in all; ``prepared``: drawn through a picture's preparation,
    whose code then joins the key too."""

    name: str
    per_digit: bool
    prepared: bool


DIGITS = Kind("digits", per_digit=True, prepared=False)
PHOTOGRAPHED = Kind("photographed", per_digit=True, prepared=True)
NOT_DIGITS = Kind("not digits", per_digit=False, prepared=False)
PHOTOGRAPHED_NOT_DIGITS = Kind("photographed not digits", per_digit=False, prepared=True)


def folder() -> Path:
    return npm.cache_root() / "typed-digits"


@functools.cache
def _drawing(prepared: bool = False) -> str:
    """What decides the pixels besides the font, the seed and the count: the code and the libraries' versions
    (``prepared``: also the code and libraries of a picture's preparation)."""
    import PIL
    import scipy
    import skimage
    import torch
    from PIL import features

    parts = [path.read_text() for path in CODE + (PREPARING if prepared else ())]
    parts += [PIL.__version__, str(features.version("freetype2")), np.__version__, torch.__version__]
    parts += [scipy.__version__, skimage.__version__] if prepared else []
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def key(font: Path, name: str, count: int, seed: int, kind: Kind = DIGITS) -> str:
    """The entry's name for ``count`` images of ``kind`` drawn from the font file ``font`` (the TrueType form of an
    npm font, where there is one), called ``name``."""
    parts = {"font": hashlib.sha256(font.read_bytes()).hexdigest(), "name": name, "count": count, "seed": seed,
             "drawing": _drawing(kind.prepared), **({"kind": kind.name} if kind != DIGITS else {})}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def fetch(font: Path, name: str, count: int, seed: int, draw: Callable[[], np.ndarray | None],
          cache: Path, kind: Kind = DIGITS) -> np.ndarray | None:
    """``draw()``'s ``[10 * count, 28, 28]`` uint8 images of the font (``[count, 28, 28]`` for a kind that is not
    ``per_digit``; ``None`` for a font that draws none), from the folder ``cache`` (``folder()`` for ``init``) when
    an earlier call kept them there."""
    path = cache / f"{key(font, name, count, seed, kind)}.npy"
    size = 10 * count if kind.per_digit else count
    try:
        kept = np.load(path, allow_pickle=False)
        if kept.dtype == np.uint8 and kept.shape in ((0,), (size, 28, 28)):
            return kept if kept.ndim == 3 else None
    except (OSError, ValueError, EOFError):
        pass
    images = draw()
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(0, dtype=np.uint8) if images is None else images, allow_pickle=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buffer.getvalue())
    except OSError:
        pass
    return images
