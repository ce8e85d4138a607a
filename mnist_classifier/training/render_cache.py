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
from pathlib import Path

import numpy as np

from .. import npm
from ..framework.storage import atomic_write

CODE = (Path(__file__).with_name("typed_digits.py"), Path(__file__).parents[1] / "inference" / "images.py")
PREPARING = (Path(__file__).with_name("photographed.py"), Path(__file__).parents[1] / "inference" / "strokes.py",
             Path(__file__).parents[1] / "inference" / "ruling.py")  # what photographed digits also go through


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


def key(font: Path, name: str, count: int, seed: int, kind: str = "digits") -> str:
    """The entry's name for ``count`` variants of each digit (``kind`` "photographed": ``count`` photographed ones; "not
    digits": ``count`` glyphs that are not digits; "photographed not digits": those photographed) drawn from the font
    file ``font`` (the TrueType form of an npm font, where there is one), called ``name``."""
    parts = {"font": hashlib.sha256(font.read_bytes()).hexdigest(), "name": name, "count": count, "seed": seed,
             "drawing": _drawing(kind.startswith("photographed")), **({"kind": kind} if kind != "digits" else {})}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def fetch(font: Path, name: str, count: int, seed: int, draw: Callable[[], np.ndarray | None],
          cache: Path, kind: str = "digits") -> np.ndarray | None:
    """``draw()``'s ``[10 * count, 28, 28]`` uint8 digits of the font (``kind`` "not digits" or "photographed not
    digits": ``[count, 28, 28]``; ``None`` for a font that draws none), from the folder ``cache`` (``folder()`` for
    ``init``) when an earlier call kept them there."""
    path = cache / f"{key(font, name, count, seed, kind)}.npy"
    size = count if kind.endswith("not digits") else 10 * count
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
