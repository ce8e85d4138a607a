"""The package's layout rules: the framework names no app, inference never imports training (or the CLI), and a
release loads without either. Checked on the source (every import statement) and in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_classifier"
RELEASE = Path(__file__).resolve().parent / "fixtures" / "experiment-v0.1" / "checkpoints" / "2.checkpoint.release.pkl"
CLI = ("mnist_classifier.framework.app", "mnist_classifier.framework.cli", "mnist_classifier.framework.context",
       "mnist_classifier.framework.pipelines", "mnist_classifier.pipelines", "mnist_classifier.__main__")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (also inside functions), as an absolute dotted name."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # ``from . import x`` imports module x
    return found


def test_the_framework_names_no_app() -> None:
    for path in (PACKAGE / "framework").rglob("*.py"):
        app_modules = {name for name in imported_modules(path)
                       if name.startswith("mnist_classifier.") and not name.startswith("mnist_classifier.framework")}
        assert not app_modules, f"{path.relative_to(PACKAGE)} imports the app: {sorted(app_modules)}"


def test_inference_never_imports_training_the_web_or_the_cli() -> None:
    forbidden = ("mnist_classifier.training", "mnist_classifier.web", *CLI)
    for path in (PACKAGE / "inference").rglob("*.py"):
        bad = {name for name in imported_modules(path) if name.startswith(forbidden)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_import_check_sees_relative_imports() -> None:
    """The rule above would pass vacuously if relative imports were misread."""
    names = imported_modules(PACKAGE / "training" / "runner.py")
    assert "mnist_classifier.inference.model" in names and "mnist_classifier.framework" in names


def test_loading_a_release_imports_neither_training_nor_the_cli() -> None:
    """``from mnist_classifier import load_release`` in a fresh interpreter, then a prediction: the modules loaded
    on the way hold no training code, no pipeline and no CLI."""
    script = (
        "import json, sys, torch\n"
        "from mnist_classifier import load_release\n"
        f"model = load_release({str(RELEASE)!r})\n"
        "model.predict([torch.zeros(28, 28, dtype=torch.uint8)])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mnist_classifier'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "mnist_classifier.inference.release" in loaded
    bad = [name for name in loaded if name.startswith(("mnist_classifier.training", "mnist_classifier.web", *CLI))]
    assert not bad, f"load_release imported {bad}"
