"""How well releases read real pictures: ``predict --json`` on the files of ``benchmarks/pictures/`` (see
``make_pictures.py``), run as a user runs it, and the share read right per part (tuning, held-out), kind and look.
A picture of no digit (``letters-and-signs``, ``clothes``: its name starts with ``x``) is read right when
``predict`` calls it unsure or no digit; each part's row "digits called unsure" is the share of its digits, read
right or not, that it calls unsure or no digit, and two rows say how many digits, and how many pictures of no
digit, it calls no digit.

    python benchmarks/pictures.py RELEASE [RELEASE ...] [--part tuning|held-out] [--json OUT] [--show-input DIR]

Prints a Markdown table with one column per release, then how long preparing a picture takes (in this process,
one thread, the first release's preparation). The held-out part is what the docs report: tune nothing on it.
``--json`` also writes every file's answer; ``--show-input DIR`` writes what the model saw of each file into
DIR/<release>/<part>/<kind>/, to look at.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from mnist_classifier.inference.prediction import NO_DIGIT, read_right

PICTURES = Path(__file__).parent / "pictures"
PARTS = ("held-out", "tuning")
LOOKS = {  # each kind's looks, as its file names end (make_pictures.py)
    "typed": ("white", "tinted", "dark", "outlined", "photo"),
    "hollow": ("white", "tinted", "dark", "photo"),
    "handwriting-fonts": ("scan", "blur", "noise", "uneven-light", "jpeg", "phone"),
    "handwritten": ("scan", "blur", "noise", "uneven-light", "jpeg", "phone", "pencil", "ballpoint", "marker"),
    "ruled": ("lined", "squared", "scan", "blur", "noise", "uneven-light", "jpeg", "phone"),
    "boxed": ("box", "comb", "scan", "blur", "noise", "uneven-light", "jpeg", "phone"),
    "mnist": ("scan", "low-res", "faint", "tinted", "uneven-light", "blur", "photo", "jpeg", "small", "pencil"),
    "optdigits": ("raw", "dark-on-white", "blocky", "smooth"),
    "letters-and-signs": ("scan", "blur", "noise", "uneven-light", "jpeg", "phone"),
    "clothes": ("as-is", "scan", "blur", "noise", "uneven-light", "jpeg", "phone"),
}
REAL = ("mnist", "optdigits")  # real handwriting, written by people
UNSURE = "digits called unsure"
SUMMARIES = (UNSURE, "digits called no digit", "pictures of no digit called no digit")  # a part's last rows


def groups(path: Path) -> list[str]:
    """The rows a file counts in: its part (digits only), its part's real handwriting, its kind, and its kind's
    looks."""
    part, kind, name = path.parent.parent.name, path.parent.name, path.stem
    rows = [part, f"{part}: {kind}"] if name[0] != NO_DIGIT else [f"{part}: {kind}"]
    if kind in REAL:
        rows.append(f"{part}: real handwriting")
    rows += [f"{part}: {kind}: {look}" for look in LOOKS.get(kind, ())
             if name.endswith(f"-{look}") or f"-{look}-" in name]
    return rows


def order(row: str) -> tuple:
    part, *rest = row.split(": ")
    kind = rest[0] if rest else ""
    kinds = list(LOOKS)
    key = kinds.index(kind) + 1 if kind in kinds else (
        0 if not rest else len(kinds) + 1 + (SUMMARIES.index(kind) + 1 if kind in SUMMARIES else 0))
    return (PARTS.index(part), key, LOOKS[kind].index(rest[1]) if len(rest) > 1 else -1)


def read(release: Path, files: list[Path], show_input: Path | None) -> dict[str, dict]:
    """Each file's answer as ``python -m mnist_classifier predict --release RELEASE --json FILES`` prints it."""
    answers = []
    for folder in sorted({path.parent for path in files}):  # per folder, so --show-input keeps the layout
        batch = [str(path) for path in files if path.parent == folder]
        command = [sys.executable, "-m", "mnist_classifier", "predict", "--release", str(release), "--json", *batch]
        if show_input:
            command += ["--show-input", str(show_input / release.stem / folder.parent.name / folder.name)]
        answers += json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {answer["path"]: answer for answer in answers}


def score(release: Path, files: list[Path], show_input: Path | None
          ) -> tuple[dict[str, tuple[int, int]], dict[str, dict]]:
    answers = read(release, files, show_input)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in files:
        answer = answers[str(path)]
        digit = path.name[0] != NO_DIGIT
        right = read_right(answer["label"], answer["status"], path.name[0])
        rows = [(row, right) for row in groups(path)]
        part = path.parent.parent.name
        if digit:
            rows += [(f"{part}: {UNSURE}", answer["status"] != "sure"),
                     (f"{part}: {SUMMARIES[1]}", answer["status"] == "no digit")]
        else:
            rows.append((f"{part}: {SUMMARIES[2]}", answer["status"] == "no digit"))
        for row, counted in rows:
            counts[row][0] += counted
            counts[row][1] += 1
    return {row: (right, total) for row, (right, total) in counts.items()}, answers


def preparation_ms(release: Path, files: list[Path]) -> list[float]:
    """Milliseconds to open and prepare each file as ``predict`` does, one thread, after one warm-up."""
    import time

    import torch

    from mnist_classifier import load_release

    torch.set_num_threads(1)
    model = load_release(release)
    model.prepare(files[:1])
    times = []
    for path in files:
        started = time.perf_counter()
        model.prepare([path])
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("releases", nargs="+", type=Path)
    parser.add_argument("--pictures", type=Path, default=PICTURES)
    parser.add_argument("--part", choices=PARTS, help="only this part (default: both)")
    parser.add_argument("--json", type=Path, help="write every file's answer here")
    parser.add_argument("--show-input", type=Path, metavar="DIR", help="write what the model saw into DIR")
    args = parser.parse_args()
    parts = [args.part] if args.part else list(PARTS)
    files = sorted(path for part in parts for path in (args.pictures / part).glob("*/*")
                   if path.suffix in (".png", ".jpg"))
    if not files:
        raise SystemExit(f"no pictures in {args.pictures}: make them with benchmarks/make_pictures.py")
    results = {str(release): score(release, files, args.show_input) for release in args.releases}
    first = next(iter(results.values()))[0]
    print("| pictures | files | " + " | ".join(Path(release).name for release in results) + " |")
    print("| --- | --- |" + " --- |" * len(results))
    for row in sorted(first, key=order):
        cells = [f"{100 * counts[row][0] / counts[row][1]:.1f}%" for counts, _ in results.values()]
        print(f"| {row} | {first[row][1]} | " + " | ".join(cells) + " |")
    times = preparation_ms(args.releases[0], files)
    print(f"\nPreparing a picture: median {times[len(times) // 2]:.1f} ms, 90th percentile "
          f"{times[int(0.9 * len(times))]:.1f} ms, slowest {times[-1]:.1f} ms ({len(times)} files, one thread)")
    if args.json:
        args.json.write_text(json.dumps({release: answers for release, (_, answers) in results.items()}, indent=1))


if __name__ == "__main__":
    main()
