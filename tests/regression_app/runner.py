"""An MLP fitted with Adam on the mean squared error; validation and test report the loss (MSE) and the mean
absolute error."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mnist_classifier.framework import Checkpoint, Runner, SampleResult, TestResult, UserError

from .data import FEATURES


def build_model(hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1), nn.Flatten(0))


class RegressionRunner(Runner):
    def init_model(self, device: torch.device) -> None:
        self.model = build_model(**self.get_conf("model")).to(device)

    def init_optimizer(self, device: torch.device) -> None:
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.get_conf("training", "lr"))

    def train_step(self, it_data: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        return F.mse_loss(self.model(it_data["x"].to(device)), it_data["y"].to(device))

    def errors(self, split: str, device: torch.device) -> dict[str, float]:
        squared = absolute = count = 0.0
        for it_data in self.data.loaders[split]:
            error = self.model(it_data["x"].to(device)) - it_data["y"].to(device)
            squared += float(error.square().sum())
            absolute += float(error.abs().sum())
            count += len(error)
        return {"loss": squared / count, "mae": absolute / count}

    def validate(self, device: torch.device) -> dict[str, float]:
        return self.errors("validation", device)

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        super().train_after_epoch_tasks(device)
        self.test(None, device)

    def early_stopping_patience(self) -> int | None:
        return self.get_conf("training", "early_stopping_patience")

    def checkpoints_to_keep(self) -> int | None:
        return self.get_conf("training", "keep_checkpoints")

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        if epoch is not None:
            self.load_states(epoch)
        self.model.eval()
        with torch.inference_mode():
            metrics = self.errors("test", device)
        summary = f"Test of epoch {self.counters['epoch']} | mse {metrics['loss']:.4f} | mae {metrics['mae']:.4f}"
        return TestResult(summary, metrics, {"count": len(self.data.datasets["test"])})

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> SampleResult:
        if epoch is not None:
            self.load_states(epoch)
        points = self.data.datasets["test"]
        if sample >= len(points):
            raise UserError(f"sample {sample} is out of range, the test set has points 0 to {len(points) - 1}")
        item = points[sample]
        self.model.eval()
        with torch.inference_mode():
            predicted = float(self.model(item["x"][None].to(device))[0])
        return SampleResult(f"Test sample {sample} of epoch {self.counters['epoch']} | true {float(item['y']):.4f} | "
                            f"predicted {predicted:.4f}", {"true": float(item["y"]), "predicted": predicted})

    def release_others(self, checkpoint: Checkpoint) -> dict[str, Any]:
        return {"model_config": self.get_conf("model")}
