"""ONNX Runtime Web, the npm package ``onnxruntime-web``, for the export's page: the few files of it the page
loads (its WebAssembly build), copied into the export so that the page works offline from any static host.

They come from, in order: ``$MNIST_CLASSIFIER_ORT_WEB`` (a ``node_modules/onnxruntime-web`` folder), the cache
(``$XDG_CACHE_HOME/mnist_classifier`` or ``~/.cache/mnist_classifier``), else the npm registry, once: its
tarball is checked against the integrity npm publishes, then its files are cached.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from ..framework.errors import UserError

VERSION = "1.31.1"
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# the WebAssembly-only build: its script, and the module and binary it loads
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "mnist_classifier" / f"onnxruntime-web-{VERSION}"


def files() -> Path:
    """A folder holding ``FILES``: the given package, the cache, or the cache filled from the registry now."""
    given = os.environ.get("MNIST_CLASSIFIER_ORT_WEB")
    if given:
        folder = Path(given) / "dist"
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise UserError(f"MNIST_CLASSIFIER_ORT_WEB={given} is not an onnxruntime-web package (no dist/"
                            f"{missing[0]}), point it at node_modules/onnxruntime-web or unset it")
        return folder
    folder = cache_folder()
    if all((folder / name).is_file() for name in FILES):
        return folder
    try:
        with urllib.request.urlopen(TARBALL, timeout=120) as response:  # noqa: S310 (a fixed https URL)
            data = response.read()
    except OSError as error:
        raise UserError(f"cannot download ONNX Runtime Web {VERSION} for the page ({error}), run export once "
                        "with network, or set MNIST_CLASSIFIER_ORT_WEB to an npm-installed onnxruntime-web") from None
    algorithm, _, expected = INTEGRITY.partition("-")
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise UserError(f"the download of ONNX Runtime Web {VERSION} does not match npm's integrity, try again")
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise UserError(f"ONNX Runtime Web {VERSION} has no dist/{name}, report it")
            (partial / name).write_bytes(member.read())
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def copy_into(target: Path) -> None:
    """``FILES`` into ``target``."""
    source = files()
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, target / name)


if __name__ == "__main__":  # ``python -m mnist_classifier.export.web_runtime``: fill the cache (make does)
    print(files())
