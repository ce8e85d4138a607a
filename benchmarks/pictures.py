"""How well releases read real pictures: ``predict --json`` on every file of ``benchmarks/pictures/`` (see
``make_pictures.py``), run as a user runs it, and the share read right per kind (typed, handwritten) and per look.

    python benchmarks/pictures.py RELEASE [RELEASE ...] [--pictures DIR] [--json OUT]

Prints a Markdown table with one column per release; ``--json`` also writes every file's answer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PICTURES = Path(__file__).parent / "pictures"
TYPED_LOOKS = ("white", "tinted", "dark", "outlined", "photo")
HANDWRITTEN_LOOKS = ("scan", "blur", "noise", "uneven-light", "jpeg", "phone")
PENS = ("pencil", "ballpoint", "marker")


def groups(path: Path) -> list[str]:
    """The rows a file counts in: its kind, its look, and for handwriting its pen."""
    kind, name = path.parent.name, path.stem
    rows = [kind]
    looks = TYPED_LOOKS if kind == "typed" else HANDWRITTEN_LOOKS
    rows += [f"{kind}: {look}" for look in looks if name.endswith(f"-{look}") or f"-{look}-" in name]
    rows += [f"{kind}: {pen}" for pen in PENS if f"-{pen}-" in name]
    return rows


def read(release: Path, files: list[Path]) -> dict[str, str]:
    """Each file's label as ``python -m mnist_classifier predict --release RELEASE --json FILES`` prints it."""
    command = [sys.executable, "-m", "mnist_classifier", "predict", "--release", str(release), "--json",
               *map(str, files)]
    answers = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {answer["path"]: answer["label"] for answer in answers}


def score(release: Path, files: list[Path]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    labels = read(release, files)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in files:
        right = labels[str(path)] == path.name[0]
        for row in ["all", *groups(path)]:
            counts[row][0] += right
            counts[row][1] += 1
    return {row: (right, total) for row, (right, total) in counts.items()}, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("releases", nargs="+", type=Path)
    parser.add_argument("--pictures", type=Path, default=PICTURES)
    parser.add_argument("--json", type=Path, help="write every file's answer here")
    args = parser.parse_args()
    files = sorted(path for path in args.pictures.glob("*/*") if path.suffix in (".png", ".jpg"))
    if not files:
        raise SystemExit(f"no pictures in {args.pictures}: make them with benchmarks/make_pictures.py")
    results = {str(release): score(release, files) for release in args.releases}
    rows = list(next(iter(results.values()))[0])
    order = ["all", "typed", *(f"typed: {look}" for look in TYPED_LOOKS), "handwritten",
             *(f"handwritten: {pen}" for pen in PENS), *(f"handwritten: {look}" for look in HANDWRITTEN_LOOKS)]
    print("| pictures | files | " + " | ".join(Path(release).name for release in results) + " |")
    print("| --- | --- |" + " --- |" * len(results))
    for row in sorted(rows, key=order.index):
        total = next(iter(results.values()))[0][row][1]
        cells = [f"{100 * counts[row][0] / counts[row][1]:.1f}%" for counts, _ in results.values()]
        print(f"| {row} | {total} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({release: labels for release, (_, labels) in results.items()}, indent=1))


if __name__ == "__main__":
    main()
