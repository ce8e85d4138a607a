"""How close an epoch of ``train`` and a ``test`` run to the hardware's limit, in one process and one run.

Measures, on the same model, batch size and device:
  (a) the compute bound: forward + backward + Adadelta step on tensors already in memory, no data pipeline;
  (b) this project's ``train`` for one epoch (real MNIST, or synthetic of the same size when absent), through the
      CLI;
  (c) the plain PyTorch recipe: torchvision MNIST with ToTensor + Normalize, DataLoader batch 64, one worker.
The machines this runs on share their cores, and their speed drifts by 20% within minutes, so (a), (b) and (c)
are measured interleaved: after every chunk of K training steps of (b), K steps of (a) and K batches of (c) run,
each timed on its own, and the ratios compare the sums. A second, undisturbed run then gives the epoch time, the
checkpoint cost and the wall time, and ``test`` is timed against the inference bound (forward passes on ready
tensors) in alternation. Prints JSON.

    python benchmarks/epoch.py [--device cpu|cuda] [--mnist-dir DIR] [--epochs N] [--quick] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mnist_classifier.__main__ import main as cli  # noqa: E402
from mnist_classifier.framework import checkpoints  # noqa: E402
from mnist_classifier.inference.model import MNISTClassifierModel  # noqa: E402
from mnist_classifier.training.datasets import MNIST_FILES, MNIST_STATS  # noqa: E402
from mnist_classifier.training.idx import write_idx  # noqa: E402

BATCH_SIZE = 64
TEST_BATCH_SIZE = 1000
MEAN, STD = MNIST_STATS


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare_data(root: Path, mnist_dir: str | None, train_size: int, test_size: int) -> str:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    if mnist_dir:
        for name in MNIST_FILES:
            shutil.copy(Path(mnist_dir) / name, raw / name)
        return "mnist"
    generator = torch.Generator().manual_seed(0)
    for prefix, size in (("train", train_size), ("t10k", test_size)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", torch.randint(0, 256, (size, 28, 28), generator=generator))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.randint(0, 10, (size,), generator=generator))
    return "synthetic"


def set_cpu_speed_settings(device: torch.device) -> None:
    """What ``train`` sets for itself (flush denormals on CPU), so the bounds use the same settings."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def bare_model(device: torch.device, compile_model: bool) -> MNISTClassifierModel:
    """The project's model as ``train`` runs it: channels_last on ``device``, compiled when ``--compile`` is."""
    model = MNISTClassifierModel().to(device, memory_format=torch.channels_last)
    if compile_model:
        model.compile()
    return model


class Bound:
    """The compute bound: the bare model and optimizer stepping on one batch already on ``device``, with the
    precision and compilation that ``train`` is given."""

    def __init__(self, device: torch.device, precision: str, compile_model: bool) -> None:
        self.device, self.precision = device, precision
        self.model = bare_model(device, compile_model).train()
        self.optimizer = torch.optim.Adadelta(self.model.parameters(), lr=1.0)
        self.images = torch.randn(BATCH_SIZE, 1, 28, 28, device=device).contiguous(memory_format=torch.channels_last)
        self.targets = torch.randint(0, 10, (BATCH_SIZE,), device=device)

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` steps (the global RNG is left as it was: training's stream is not disturbed)."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            sync(self.device)
            started = time.perf_counter()
            for _ in range(steps):
                self.optimizer.zero_grad(set_to_none=True)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    loss = F.nll_loss(self.model(self.images), self.targets)
                loss.backward()
                self.optimizer.step()
            sync(self.device)
            return time.perf_counter() - started


class ExampleNet(MNISTClassifierModel):
    """The PyTorch MNIST example's network as it is published: the same layers, but torch's own dropout and
    ReLU before the pool (this project's model computes the same values faster), so that the recipe is
    measured as users run it."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout1 = torch.nn.Dropout(0.25)
        self.dropout2 = torch.nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class Recipe:
    """The PyTorch MNIST example's pipeline and loop: PIL images, ToTensor + Normalize, one worker."""

    def __init__(self, data: Path, device: torch.device) -> None:
        import torchvision
        from torchvision import transforms

        self.device = device
        dataset = torchvision.datasets.MNIST(str(data), train=True, download=True, transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]))
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=1,
                                                  persistent_workers=True)
        self.batches = iter(())
        self.model = ExampleNet().to(device).train()
        self.optimizer = torch.optim.Adadelta(self.model.parameters(), lr=1.0)
        self.count = 0

    def run(self, steps: int) -> float:
        torch.set_flush_denormal(False)  # as the example runs: PyTorch's defaults
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            sync(self.device)
            started = time.perf_counter()
            for _ in range(steps):
                try:
                    images, targets = next(self.batches)
                except StopIteration:
                    self.batches = iter(self.loader)
                    images, targets = next(self.batches)
                images, targets = images.to(self.device), targets.to(self.device)
                self.optimizer.zero_grad()
                loss = F.nll_loss(self.model(images), targets)
                loss.backward()
                self.optimizer.step()
                self.count += 1
                if self.count % 10 == 0:  # the example logs every 10 batches
                    loss.item()
            sync(self.device)
            seconds = time.perf_counter() - started
        set_cpu_speed_settings(self.device)
        return seconds


class Interleaver:
    """Called every K training steps: times the K steps just done, then K of the bound and K of the recipe."""

    def __init__(self, bound: Bound, recipe: Recipe) -> None:
        self.bound, self.recipe = bound, recipe
        self.seconds = {"train": 0.0, "bound": 0.0, "recipe": 0.0}
        self.steps = 0
        self.mark: float | None = None

    def after_chunk(self, steps: int, device: torch.device) -> None:
        sync(device)
        now = time.perf_counter()
        if self.mark is not None:  # the first chunk pays warm-up: not counted
            self.seconds["train"] += now - self.mark
            self.seconds["bound"] += self.bound.run(steps)
            self.seconds["recipe"] += self.recipe.run(steps)
            self.steps += steps
        else:
            self.bound.run(steps)  # warm both up too
            self.recipe.run(steps)
        self.mark = time.perf_counter()

    def images_per_s(self, which: str) -> float:
        return self.steps * BATCH_SIZE / self.seconds[which]


def interleaved_epoch(work: Path, data: Path, device: torch.device, chunk: int, extra: list[str],
                      precision: str, compile_model: bool) -> Interleaver:
    """One epoch of this project's train through its CLI, with (a) and (c) run between its chunks."""
    from mnist_classifier.__main__ import make_app
    from mnist_classifier.training.runner import MNISTClassifierRunner

    set_cpu_speed_settings(device)
    interleaver = Interleaver(Bound(device, precision, compile_model), Recipe(data, device))

    class Instrumented(MNISTClassifierRunner):
        def train_iteration_log(self, losses: list[float], log_period: int, device: torch.device) -> None:
            super().train_iteration_log(losses, log_period, device)
            interleaver.after_chunk(log_period, device)

    common = ["--experiment-name", "interleaved", "--experiments-path", str(work), "--data-path", str(data)]
    app = make_app(make_runner=Instrumented)
    if app.run([*common, "init"]) != 0 or app.run(
            [*common, "train", "--max-epochs", "1", "--device", str(device), "--log-period", str(chunk), *extra]):
        raise SystemExit("the interleaved train failed")
    return interleaver


class InferenceBound:
    """The inference bound: forward passes of the bare model on one test-size batch already on ``device``."""

    def __init__(self, device: torch.device, precision: str, compile_model: bool) -> None:
        self.device, self.precision = device, precision
        self.model = bare_model(device, compile_model).eval()
        self.images = torch.randn(TEST_BATCH_SIZE, 1, 28, 28, device=device).contiguous(
            memory_format=torch.channels_last)
        self.run(1)  # warm-up (and compilation)

    def run(self, batches: int) -> float:
        """Images per second over ``batches`` batches."""
        set_cpu_speed_settings(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            sync(self.device)
            started = time.perf_counter()
            for _ in range(batches):
                self.model(self.images).argmax(1)
            sync(self.device)
        return batches * TEST_BATCH_SIZE / (time.perf_counter() - started)


def project_run(work: Path, data: Path, device: torch.device, epochs: int, extra: list[str],
                test_rounds: int, inference: InferenceBound) -> dict:
    """An undisturbed init + train + test through the CLI: epoch time, checkpoint cost, wall time, accuracy."""
    common = ["--experiment-name", "bench", "--experiments-path", str(work), "--data-path", str(data)]
    if cli([*common, "init"]) != 0:
        raise SystemExit("init failed")
    started = time.perf_counter()
    if cli([*common, "train", "--max-epochs", str(epochs), "--device", str(device), *extra]) != 0:
        raise SystemExit("train failed")
    wall = time.perf_counter() - started
    experiment = work / "bench"
    test_images = test_seconds = bound_seconds = 0.0
    for _ in range(test_rounds):  # test and its bound in alternation, as for training
        bound_images_per_s = inference.run(10)
        if cli([*common, "test", "--device", str(device), *extra]) != 0:
            raise SystemExit("test failed")
        test = json.loads((experiment / "results" / f"test-{epochs}.json").read_text())
        test_images += test["total"]
        test_seconds += test["seconds"]
        bound_seconds += test["total"] / bound_images_per_s
    epochs_metrics = [json.loads((experiment / "results" / f"epoch-{e}.json").read_text())
                      for e in range(1, epochs + 1)]
    best = min(epochs_metrics, key=lambda m: m["epoch_seconds"])  # epoch 1 also pays warm-up and compilation
    state = checkpoints.load(experiment / "checkpoints" / f"{epochs}.checkpoint.pkl")
    saves = []
    for _ in range(3):
        save_started = time.perf_counter()
        checkpoints.save(experiment / "checkpoints" / "bench-copy.checkpoint.pkl", state)
        saves.append(time.perf_counter() - save_started)
    train_images = len(json.loads((experiment / "data.json").read_text())["state"]["train_indexes"])
    return {
        "clean_train_images_per_s": train_images / best["train_seconds"],
        "epoch_seconds": best["epoch_seconds"],
        "wall_seconds": wall,
        "checkpoint_seconds": min(saves),
        "test_images_per_s": test_images / test_seconds,
        "inference_bound_images_per_s": test_images / bound_seconds,
        "test_accuracy": test["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR") or None,
                        help="folder with the four MNIST .gz files (default: $MNIST_DIR, else synthetic data)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of this project's train (default: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data and few steps: proves it runs")
    parser.add_argument("--output", help="also write the JSON to this file")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    quick = args.quick
    extra = ["--precision", args.precision] + (["--compile"] if args.compile else [])
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        data = Path(tmp) / "data"
        kind = prepare_data(data, None if quick else args.mnist_dir, 1280 if quick else 60000,
                            500 if quick else 10000)
        chunk = 8 if quick else (25 if device.type == "cpu" else 100)
        interleaved = interleaved_epoch(Path(tmp) / "experiments", data, device, chunk, extra, args.precision,
                                        args.compile)
        project = project_run(Path(tmp) / "experiments", data, device, args.epochs, extra, 1 if quick else 3,
                              InferenceBound(device, args.precision, args.compile))
    train, bound, recipe = (interleaved.images_per_s(which) for which in ("train", "bound", "recipe"))
    result = {
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)"),
        "data": kind,
        "precision": args.precision,
        "compile": args.compile,
        "interleaved_steps": interleaved.steps,
        "compute_bound_images_per_s": round(bound, 1),
        "train_images_per_s": round(train, 1),
        "plain_recipe_images_per_s": round(recipe, 1),
        "train_vs_compute_bound": round(train / bound, 3),
        "train_vs_plain_recipe": round(train / recipe, 3),
        "clean_train_images_per_s": round(project["clean_train_images_per_s"], 1),
        "epoch_seconds": project["epoch_seconds"],
        "checkpoint_seconds": round(project["checkpoint_seconds"], 4),
        "checkpoint_share_of_epoch": round(project["checkpoint_seconds"] / project["epoch_seconds"], 4),
        "test_images_per_s": round(project["test_images_per_s"], 1),
        "inference_bound_images_per_s": round(project["inference_bound_images_per_s"], 1),
        "test_vs_inference_bound": round(project["test_images_per_s"] / project["inference_bound_images_per_s"], 3),
        "epochs": args.epochs,
        "train_wall_seconds": round(project["wall_seconds"], 2),
        "test_accuracy": project["test_accuracy"],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
