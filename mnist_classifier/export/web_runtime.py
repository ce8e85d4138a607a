"""ONNX Runtime Web, the npm package ``onnxruntime-web``, for the export's page: the few files of it the page
loads (its WebAssembly build), copied into the export so that the page works offline from any static host.

They come from, in order: ``$MNIST_CLASSIFIER_ORT_WEB`` (a ``node_modules/onnxruntime-web`` folder), the cache
(``$XDG_CACHE_HOME/mnist_classifier`` or ``~/.cache/mnist_classifier``), else the npm registry, once: its
tarball is checked against the integrity npm publishes, then its files are cached.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import npm
from ..framework.errors import UserError

PACKAGE = npm.Package("onnxruntime-web", "1.31.1",
                      "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==")
# the WebAssembly-only build: its script, and the module and binary it loads
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def cache_folder() -> Path:
    return npm.cache_root() / f"onnxruntime-web-{PACKAGE.version}"


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
    try:
        return npm.fetch(PACKAGE, tuple(f"dist/{name}" for name in FILES), cache_folder())
    except npm.DownloadError as error:
        raise UserError(f"{error} for the page, run export once with network, or set MNIST_CLASSIFIER_ORT_WEB to "
                        "an npm-installed onnxruntime-web") from None


def copy_into(target: Path) -> None:
    """``FILES`` into ``target``."""
    source = files()
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, target / name)


if __name__ == "__main__":  # ``python -m mnist_classifier.export.web_runtime``: fill the cache (make does)
    print(files())
