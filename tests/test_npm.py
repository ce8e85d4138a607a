"""``npm.fetch``: a pinned npm package's files, checked against its integrity, written whole or not at all; and the
handwriting fonts it brings for ``data.typed_digits``."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import ImageFont

from mnist_classifier import npm
from mnist_classifier.training import typed_digits, web_fonts


def tarball(folder: Path, files: dict[str, bytes]) -> npm.Package:
    """An npm-style tarball of ``files`` (paths inside ``package/``) at the registry ``folder`` stands for."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    (folder / "@scope/thing/-").mkdir(parents=True)
    (folder / "@scope/thing/-/thing-1.0.0.tgz").write_bytes(data)
    return npm.Package("@scope/thing", "1.0.0", "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode())


def test_fetch_checks_the_integrity_and_keeps_only_what_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setattr(npm, "REGISTRY", (tmp_path / "registry").as_uri())
    package = tarball(tmp_path / "registry", {"files/a.woff2": b"font a", "files/b.woff2": b"font b"})
    cache = tmp_path / "cache" / "thing"
    assert npm.fetch(package, ("files/a.woff2",), cache) == cache
    assert [path.name for path in cache.iterdir()] == ["a.woff2"] and (cache / "a.woff2").read_bytes() == b"font a"
    (tmp_path / "registry").rename(tmp_path / "gone")
    assert npm.fetch(package, ("files/a.woff2",), cache) == cache, "cached: the registry is not asked again"

    other = tmp_path / "cache" / "other"
    (tmp_path / "gone").rename(tmp_path / "registry")
    forged = npm.Package(package.name, package.version, "sha512-" + base64.b64encode(b"x" * 64).decode())
    with pytest.raises(npm.DownloadError, match="does not match npm's integrity"):
        npm.fetch(forged, ("files/a.woff2",), other)
    with pytest.raises(npm.DownloadError, match=r"@scope/thing@1.0.0 has no files/c.woff2"):
        npm.fetch(package, ("files/a.woff2", "files/c.woff2"), other)
    monkeypatch.setattr(npm, "REGISTRY", (tmp_path / "nowhere").as_uri())
    with pytest.raises(npm.DownloadError, match=r"^cannot download @scope/thing@1.0.0 \("):
        npm.fetch(package, ("files/a.woff2",), other)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == ["thing"], "nothing half-written"


def test_web_fonts_are_training_handwriting_families_that_draw_every_digit() -> None:
    titles = [font.title.lower() for font in web_fonts.FONTS]

    def same_family(names: set[str]) -> list[str]:  # Debian's "Klee" is Google's "Klee One"
        return [title for title in titles if any(title == name or title.startswith(name + " ") for name in names)]

    assert not same_family({family.name.lower() for family in typed_digits.FAMILIES if family.split != "train"}), \
        "no tuning or held-out family from npm"
    assert len(web_fonts.FONTS) >= 250, "every handwriting family of Google Fonts but a few (web_fonts' docstring)"
    assert not same_family({family.name.lower() for family in typed_digits.FAMILIES if family.package}), \
        "none that Debian's packages give"
    assert not [font.name for font in web_fonts.FONTS if font.name.endswith("-guides")], "no ruled-line twins"
    assert web_fonts.fetch() == [], "make install downloads them"
    found = typed_digits.find_fonts("train", handwriting=True)
    files = [file for font in web_fonts.FONTS for file in font.files]
    assert set(files) <= set(found)
    for file in files:
        assert typed_digits.has_digits(ImageFont.truetype(str(found[file]), 64)), file
        assert web_fonts.truetype(found[file]) == found[file].with_suffix(".ttf"), "fetch unpacked it"


def test_a_web_font_unpacked_to_truetype_draws_the_same_digits(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``init`` opens the TrueType form of each WOFF2 (20 times faster): every digit it draws, at every size and
    weight, is the WOFF2's to the pixel, so unpacking changes no experiment's images."""
    fonts = typed_digits.find_fonts("train", handwriting=True)
    chosen = {file: fonts[file] for file in ("caveat-latin-700-normal.woff2", "splash-latin-400-normal.woff2")}
    for folder in ("woff2", "unpacked"):
        (tmp_path / folder).mkdir()
        for file, path in chosen.items():
            (tmp_path / folder / file).write_bytes(path.read_bytes())
    for file in chosen:
        assert web_fonts.truetype(tmp_path / "woff2" / file) == tmp_path / "woff2" / file, "nothing to open instead"
        web_fonts.unpack(tmp_path / "unpacked" / file)
        unpacked = web_fonts.truetype(tmp_path / "unpacked" / file)
        assert unpacked.suffix == ".ttf" and unpacked.stat().st_size > 0
        before = unpacked.stat().st_mtime_ns
        web_fonts.unpack(tmp_path / "unpacked" / file)
        assert unpacked.stat().st_mtime_ns == before, "unpacked once"
    assert sorted(path.name for path in (tmp_path / "unpacked").iterdir()) == sorted(
        [*chosen, *(Path(file).with_suffix(".ttf").name for file in chosen)]), "no partial file left"
    opened = []
    truetype = ImageFont.truetype
    monkeypatch.setattr(ImageFont, "truetype", lambda font, size: opened.append(Path(font)) or truetype(font, size))
    drawn = [typed_digits.render({file: tmp_path / folder / file for file in chosen}, variants=1,
                                 handwriting_variants=12, seed=3) for folder in ("woff2", "unpacked")]
    assert {(path.parent.name, path.suffix) for path in opened} == {("woff2", ".woff2"), ("unpacked", ".ttf")}
    assert drawn[0][2] == list(chosen) and drawn[1][2] == list(chosen)
    assert torch.equal(drawn[0][0], drawn[1][0]) and torch.equal(drawn[0][1], drawn[1][1])


def test_a_font_that_cannot_be_downloaded_is_a_warning(synthetic_data: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from test_typed_digits import FEW, make_data

    monkeypatch.setattr(web_fonts, "fetch", lambda: ["cannot download @fontsource/caveat@5.3.0 (offline)"])
    data = make_data(FEW)
    with caplog.at_level("WARNING"):
        data.create(synthetic_data)
    assert "cannot download @fontsource/caveat@5.3.0 (offline): training without that handwriting font" in caplog.text
    assert data.typed_digits["count"] > 0, "the fonts found still train"
