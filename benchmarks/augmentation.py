"""The share of a training step that ``data.augmentation`` takes, measured in one run. Prints JSON.

Steps of the default model (forward, backward, Adadelta) on a batch of 64 already on the device run in
alternating chunks: plain, with every change but elastic distortion, and with all of them, the batch
augmented on the device just before the forward pass, as ``train`` does. Chunks alternate because these
machines' speed drifts by 20% within minutes; the share is (augmented - plain) / augmented.

    python benchmarks/augmentation.py [--device cpu|cuda] [--rounds R] [--chunk S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.epoch import BATCH_SIZE, bare_model, set_cpu_speed_settings, sync  # noqa: E402
from mnist_classifier.training.augmentation import Augmentation  # noqa: E402

SETTINGS = {
    "plain": None,
    "affine + stroke width": Augmentation(rotation=12, translation=0.1, scale=0.1, shear=10, stroke_width=0.5),
    "affine + stroke width + elastic": Augmentation(rotation=12, translation=0.1, scale=0.1, shear=10,
                                                    stroke_width=0.5, elastic_alpha=1.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=25, help="steps per chunk (default: 25)")
    args = parser.parse_args()
    device = torch.device(args.device)
    set_cpu_speed_settings(device)
    model = bare_model(device, compile_model=False).train()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    pixels = torch.randint(0, 256, (BATCH_SIZE, 1, 28, 28), device=device).float()
    targets = torch.randint(0, 10, (BATCH_SIZE,), device=device)
    seconds = dict.fromkeys(SETTINGS, 0.0)
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name, augmentation in SETTINGS.items():
            sync(device)
            started = time.perf_counter()
            for _ in range(args.chunk):
                images = augmentation(pixels) if augmentation else pixels
                images = images.sub(33).div(78).contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                F.nll_loss(model(images), targets).backward()
                optimizer.step()
            sync(device)
            if round_:
                seconds[name] += time.perf_counter() - started
    steps = args.rounds * args.chunk
    plain = seconds["plain"] / steps
    result = {"device": str(device), "batch": BATCH_SIZE, "steps_each": steps,
              "plain_step_ms": round(1000 * plain, 2)}
    for name in list(SETTINGS)[1:]:
        step = seconds[name] / steps
        result[name] = {"step_ms": round(1000 * step, 2), "augmentation_ms": round(1000 * (step - plain), 2),
                        "share_of_step": round((step - plain) / step, 3)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
