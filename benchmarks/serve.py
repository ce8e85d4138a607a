"""Latency of ``predict`` and of ``serve``'s ``POST /predict``, from a release file (PyTorch) and from its ONNX
export (ONNX Runtime, no torch), in one run. Prints JSON.

A release of the default CNN (trained one epoch on a small synthetic MNIST: its weights do not change the
time) and its ``export`` are each served by ``python -m mnist_classifier serve`` on a free loopback port. Two
requests are timed: the page's own (a 280x280 PNG of a drawn digit) and a phone photo (a 1600x1200 JPEG). For
each: the p50 and p99 of one client's sequential requests, the same for 8 concurrent clients with their
requests/s, and the p50 of ``load_release(...).predict`` on the same bytes in this process: the ratio of the two
p50s is what HTTP, the event loop and the thread hand-off add. Then ``predict`` on one picture, wall time from
the shell (the median of ``--runs`` runs of each, taken in turn), and the release file's over the export's; and
how long the ``export`` command took, from the shell.

    python benchmarks/serve.py [--requests N] [--runs N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.epoch import prepare_data  # noqa: E402
from mnist_classifier import load_release  # noqa: E402
from mnist_classifier.inference.images import open_image  # noqa: E402


def cli(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mnist_classifier", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def drawn_digit() -> bytes:
    """What the page sends: a 280x280 white canvas with a 7 drawn in black strokes, as PNG."""
    image = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(image).line([(70, 50), (210, 50), (120, 240)], fill="black", width=21, joint="curve")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def photo() -> bytes:
    """A phone photo of a digit on paper: 1600x1200, uneven light, JPEG."""
    image = Image.linear_gradient("L").resize((1600, 1200)).point(lambda v: 150 + v // 3).convert("RGB")
    ImageDraw.Draw(image).line([(600, 250), (1000, 250), (750, 1000)], fill=(40, 40, 60), width=60)
    out = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(2)).save(out, format="JPEG", quality=85)
    return out.getvalue()


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)}


def timed_posts(url: str, body: bytes, kind: str, count: int) -> list[float]:
    with httpx.Client(base_url=url, timeout=60) as client:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            response = client.post("/predict", content=body, headers={"Content-Type": kind})
            times.append(time.perf_counter() - start)
            response.raise_for_status()
        return times


def serve_latency(root: Path, model_path: Path, requests: int) -> dict[str, dict]:
    """``serve --release MODEL_PATH``'s latencies for both requests, and the same predictions in process."""
    server = subprocess.Popen([sys.executable, "-m", "mnist_classifier", "serve", "--release", str(model_path),
                               "--port", "0"], cwd=root, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        url = re.search(r"at (http://\S+/) ", server.stdout.readline()).group(1)
        model = load_release(model_path)
        results = {}
        for name, body, kind in (("drawn 280x280 PNG", drawn_digit(), "image/png"),
                                 ("photo 1600x1200 JPEG", photo(), "image/jpeg")):
            timed_posts(url, body, kind, 20)  # warm-up: first requests pay for lazy imports and allocations
            in_process = []
            for _ in range(requests):
                start = time.perf_counter()
                model.predict([open_image(body)])
                in_process.append(time.perf_counter() - start)
            one = percentiles(timed_posts(url, body, kind, requests))
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                parts = list(pool.map(timed_posts, [url] * 8, [body] * 8, [kind] * 8, [requests // 8] * 8))
            wall = time.perf_counter() - start
            eight = {**percentiles([t for part in parts for t in part]),
                     "requests_per_s": round(8 * (requests // 8) / wall, 1)}
            inside = percentiles(in_process)
            results[name] = {"bytes": len(body), "in_process": inside, "one_client": one, "eight_clients": eight,
                             "http_over_in_process_p50": round(one["p50_ms"] / inside["p50_ms"], 2)}
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def predict_wall(root: Path, models: dict[str, Path], runs: int) -> dict[str, float]:
    """Median seconds of ``python -m mnist_classifier predict --release MODEL picture.png`` for each model, the
    runs of the models taken in turn so that the machine's drift falls on both."""
    picture = root / "seven.png"
    picture.write_bytes(drawn_digit())
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, path in models.items():
            start = time.perf_counter()
            cli(root, "predict", "--release", str(path), str(picture))
            times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (default: 400)")
    parser.add_argument("--runs", type=int, default=7, help="predict runs per model (default: 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        prepare_data(root / "data", None, 2000, 500)
        cli(root, "--experiment-name", "b", "init", "--config-path", str(REPO / "config.default.json"),
            "--config-schema-file", str(REPO / "config.schema.json"))
        cli(root, "--experiment-name", "b", "train", "--max-epochs", "1", "--no-progress", "--device", "cpu")
        cli(root, "--experiment-name", "b", "create_release", "--epoch", "1")
        release = root / "experiments" / "b" / "checkpoints" / "1.checkpoint.release.pkl"
        start = time.perf_counter()
        cli(root, "export", "--release", str(release), "--to", "export")
        export_s = round(time.perf_counter() - start, 2)
        models = {"release file (PyTorch)": release, "ONNX export (ONNX Runtime)": root / "export"}
        results = {name: serve_latency(root, path, args.requests) for name, path in models.items()}
        wall = predict_wall(root, models, args.runs)
    release_wall, export_wall = wall.values()
    wall["release_over_export"] = round(release_wall / export_wall, 2)
    print(json.dumps({"benchmark": "predict and serve /predict latency", "requests": args.requests,
                      "cpu_threads": os.cpu_count(), "export_command_s": export_s, "serve": results,
                      "predict_one_picture_wall_s": wall},
                     indent=2))


if __name__ == "__main__":
    main()
