"""Handwriting fonts of Google Fonts, from npm's Fontsource packages: training families of ``data.typed_digits``
beside Debian's.

Debian packages a few dozen fonts that imitate handwriting; a model that has seen only those reads a
handwriting font it has never seen far worse than one it has, and the more families it has seen, the better
it reads a new one. Google Fonts files 296 families with a Latin subset under "handwriting" (school scripts of
several countries, markers, brushes, quick pens, formal scripts; not counting the Playwrite "Guides" twins,
the same letters over ruled lines), and Fontsource publishes them on the npm registry. ``web_fonts.json`` lists
each that has a package and an upright style, but those Debian's packages already give (Comic Neue, Dancing
Script, Klee One, Leckerli One) and those the benchmark's tuning or held-out pictures use (Kaushan Script,
Kristi; a test checks it): 266 families, each with its package version, the tarball's integrity and the
weights used (400 or the nearest, and 700 where there is one). They are downloaded once, checked, and cached
with the other npm files (``npm.cache_root()/fonts``); only the Latin subset's WOFF2 file of each weight is kept,
with its TrueType form beside it (``truetype``): FreeType unpacks a WOFF2 each time it opens one, and rendering
opens each font at up to 50 sizes.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import npm
from ..framework.storage import atomic_write

LIST = Path(__file__).with_name("web_fonts.json")


@dataclass(frozen=True)
class WebFont:
    """A Fontsource package, ``@fontsource/<name>``, at ``version`` with npm's ``integrity``, and the weights
    of it that are training fonts."""

    name: str
    version: str
    integrity: str
    weights: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.name.replace("-", " ").title()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{self.name}-latin-{weight}-normal.woff2" for weight in self.weights)

    @property
    def package(self) -> npm.Package:
        return npm.Package(f"@fontsource/{self.name}", self.version, self.integrity)


FONTS: tuple[WebFont, ...] = tuple(
    WebFont(name, entry["version"], entry["integrity"], tuple(entry["weights"]))
    for name, entry in json.loads(LIST.read_text()).items())


def folder() -> Path:
    """Where the fonts are cached, a folder per package (``typed_digits.FONT_DIRS`` includes it)."""
    return npm.cache_root() / "fonts"


def fetch() -> list[str]:
    """Download the fonts not cached yet, and unpack each to TrueType once; one line for each that could not be
    (no network, a bad download)."""
    failures = []
    for font in FONTS:
        try:
            cached = npm.fetch(font.package, tuple(f"files/{file}" for file in font.files),
                               folder() / f"{font.name}-{font.version}")
        except npm.DownloadError as error:
            failures.append(str(error))
            continue
        for file in font.files:
            unpack(cached / file)
    return failures


def truetype(path: Path) -> Path:
    """The file to open for the font at ``path``: a cached WOFF2's TrueType form where ``fetch`` made it (the same
    outlines and hints: FreeType draws each digit of it to the same pixels, and opens it 20 times faster)."""
    unpacked = path.with_suffix(".ttf")
    return unpacked if path.suffix == ".woff2" and unpacked.is_file() else path


def unpack(path: Path) -> None:
    """Write the WOFF2 at ``path`` as TrueType beside it (``atomic_write``), unless it is there."""
    target = path.with_suffix(".ttf")
    if target.is_file():
        return
    from fontTools.ttLib import woff2

    unpacked = io.BytesIO()
    with open(path, "rb") as source:
        woff2.decompress(source, unpacked)
    atomic_write(target, unpacked.getvalue())


if __name__ == "__main__":  # ``python -m mnist_classifier.training.web_fonts``: fill the cache (make install does)
    problems = fetch()
    print("\n".join(problems) or f"{len(FONTS)} font packages in {folder()}")
    sys.exit(1 if problems else 0)
