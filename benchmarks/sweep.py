"""Sweep throughput: trials per hour with 1 worker against ``--workers N`` on this machine, in one run.

Each side runs a fresh sweep of the MNIST app through its CLI, with the same seed, space and trials, on the same
synthetic MNIST-format data (the rate of trials does not depend on what the images show), one after the other,
``--rounds`` times, because these machines' speed drifts within minutes. The wall time of a side is the whole
sweep command: creating every trial's experiment, training, validating and testing it. Prints JSON.

    python benchmarks/sweep.py [--workers N] [--trials T] [--train-size S] [--rounds R]

On a CPU the workers share its cores (each gets cores / N threads), so the ratio shows whether running trials
side by side uses the machine better than one at a time; 2 workers should not be slower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.epoch import prepare_data  # noqa: E402

SPACE = {"training.lr": {"low": 0.3, "high": 1.0}, "training.lr_gamma": {"low": 0.5, "high": 0.9}}


def run_sweep(root: Path, name: str, workers: int, trials: int) -> float:
    """Seconds the whole sweep command took."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_classifier", "--experiment-name", name, "sweep",
                    "--config-path", str(REPO / "config.default.json"),
                    "--config-schema-file", str(REPO / "config.schema.json"), "--space", str(root / "space.json"),
                    "--trials", str(trials), "--max-epochs", "1", "--pruner", "none", "--workers", str(workers),
                    "--device", "cpu", "--no-progress"],
                   cwd=root, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=6000, help="synthetic training images (default: 6000)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        prepare_data(root / "data", None, args.train_size, 1000)
        (root / "space.json").write_text(json.dumps(SPACE))
        seconds = {"1": 0.0, str(args.workers): 0.0}
        for round_ in range(args.rounds):
            for key in seconds:
                seconds[key] += run_sweep(root, f"w{key}-{round_}", int(key), args.trials)
    rates = {key: round(3600 * args.rounds * args.trials / value, 1) for key, value in seconds.items()}
    print(json.dumps({
        "trials": args.trials, "epochs_per_trial": 1, "train_images": args.train_size, "rounds": args.rounds,
        "seconds": {key: round(value, 1) for key, value in seconds.items()}, "trials_per_hour": rates,
        "ratio": round(rates[str(args.workers)] / rates["1"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
