"""Training throughput of 1 process against N processes (torch.distributed), and the scaling ratio, in one run.

Each side trains the same experiment for one epoch through the CLI (``--device cpu`` against ``--device cpu cpu``,
or ``cuda:0`` against ``cuda:0 cuda:1`` ...). The images/s come from the epoch's own ``train_seconds`` (the steps
alone, not process start-up or validation), and the two sides run alternately ``--rounds`` times, because these
machines' speed drifts by 20% within minutes. Prints JSON.

    python benchmarks/processes.py [--processes N] [--device cpu|cuda] [--mnist-dir DIR] [--rounds R]

On a CPU the N processes share the same cores (each gets cores / N threads), so the ratio shows what the
gradient all-reduce and the smaller per-process batches cost, not a speed-up; on N GPUs it is the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.epoch import prepare_data  # noqa: E402


def train_one_epoch(root: Path, name: str, devices: list[str]) -> dict:
    """Train a copy of experiment 'base' for one epoch on ``devices``; return its epoch metrics."""
    shutil.rmtree(root / "experiments" / name, ignore_errors=True)
    shutil.copytree(root / "experiments" / "base", root / "experiments" / name)
    subprocess.run([sys.executable, "-m", "mnist_classifier", "--experiment-name", name, "train", "--max-epochs",
                    "1", "--no-progress", "--device", *devices], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads((root / "experiments" / name / "results" / "epoch-1.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR") or None)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    single = ["cpu"] if args.device == "cpu" else ["cuda:0"]
    several = ["cpu"] * args.processes if args.device == "cpu" else [f"cuda:{i}" for i in range(args.processes)]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        dataset = prepare_data(root / "data", args.mnist_dir, 60_000, 10_000)
        subprocess.run([sys.executable, "-m", "mnist_classifier", "--experiment-name", "base", "init",
                        "--config-path", str(REPO / "config.default.json"),
                        "--config-schema-file", str(REPO / "config.schema.json")],
                       cwd=root, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        images = len(json.loads((root / "experiments" / "base" / "data.json").read_text())["state"]["train_indexes"])
        seconds: dict[str, float] = {"1": 0.0, str(args.processes): 0.0}
        accuracy: dict[str, float] = {}
        for _ in range(args.rounds):
            for key, devices in (("1", single), (str(args.processes), several)):
                metrics = train_one_epoch(root, f"p{key}", devices)
                seconds[key] += metrics["train_seconds"]
                accuracy[key] = metrics["test_accuracy"]
    rates = {key: round(args.rounds * images / value, 1) for key, value in seconds.items()}
    print(json.dumps({
        "dataset": dataset, "device": args.device, "train_images": images, "rounds": args.rounds,
        "images_per_second": rates, "scaling": round(rates[str(args.processes)] / rates["1"], 3),
        "test_accuracy_after_one_epoch": accuracy,
    }, indent=2))


if __name__ == "__main__":
    main()
