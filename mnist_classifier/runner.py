"""Training and testing the MNIST classifier: Adadelta, StepLR, NLL loss, accuracy and confusion matrix."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .framework import Runner, UserError
from .framework.storage import write_json
from .model import MNISTClassifierModel


@dataclass
class Evaluation:
    loss: float
    correct: int
    total: int
    confusion: torch.Tensor  # [true, predicted] counts
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.total  # over images, not batches

    def as_dict(self) -> dict[str, Any]:
        per_class = self.confusion.diag().double() / self.confusion.sum(1).clamp(min=1)
        return {"accuracy": self.accuracy, "loss": self.loss, "correct": self.correct, "total": self.total,
                "per_class_accuracy": per_class.tolist(), "confusion_matrix": self.confusion.tolist(),
                "seconds": round(self.seconds, 4), "images_per_second": round(self.total / self.seconds, 1)}


class MNISTClassifierRunner(Runner):
    scheduler: torch.optim.lr_scheduler.StepLR | None = None

    def init_model(self, device: torch.device) -> None:
        # channels_last: convolutions run faster in NHWC on CPUs (oneDNN) and GPUs (cuDNN)
        self.model = MNISTClassifierModel().to(device, memory_format=torch.channels_last)

    def init_optimizer(self, device: torch.device) -> None:
        self.optimizer = torch.optim.Adadelta(self.model.parameters(), lr=self.get_conf("training", "lr"))

    def init_others(self, device: torch.device) -> None:
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=1, gamma=self.get_conf("training", "lr_gamma"))

    def save_states_others(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_states_others(self, checkpoint: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(checkpoint["scheduler"])

    def train_step(self, it_data: Any, device: torch.device) -> torch.Tensor:
        images, targets = self.data.prepare(it_data, device)
        return F.nll_loss(self.model(images), targets)

    def evaluate(self, split: str, device: torch.device) -> Evaluation:
        """Loss and confusion matrix over a whole split, accumulated on the device (one sync at the end)."""
        classes = len(self.data.class_names)
        confusion = torch.zeros(classes * classes, dtype=torch.long, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.model.eval()
        started = time.perf_counter()
        with torch.inference_mode(), self.autocast():
            for it_data in self.data.loaders[split]:
                images, targets = self.data.prepare(it_data, device)
                output = self.model(images)
                loss_sum += F.nll_loss(output, targets, reduction="sum")
                confusion += torch.bincount(targets * classes + output.argmax(1), minlength=classes * classes)
        confusion = confusion.view(classes, classes).cpu()
        total = int(confusion.sum())
        return Evaluation(loss_sum.item() / max(total, 1), int(confusion.diag().sum()), total, confusion,
                          time.perf_counter() - started)

    def validate(self, device: torch.device) -> dict[str, float]:
        evaluation = self.evaluate("validation", device)
        return {"loss": evaluation.loss, "accuracy": evaluation.accuracy}

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        super().train_after_epoch_tasks(device)
        self.scheduler.step()
        self.test(None, device)

    def test(self, epoch: int | None, device: torch.device) -> dict[str, Any]:
        """Test-set accuracy: logged, sent to TensorBoard and written to ``results/test-<epoch>.json``."""
        if epoch is not None:
            self.load_states(epoch, device)
        epoch = self.counters["epoch"]
        evaluation = self.evaluate("test", device)
        self.metrics.update(test_loss=evaluation.loss, test_accuracy=evaluation.accuracy)
        summary = (f"Test of epoch {epoch} | accuracy {100 * evaluation.accuracy:.2f}% "
                   f"({evaluation.correct}/{evaluation.total}) | loss {evaluation.loss:.4f}")
        self.logger.info(summary)
        self.experiment.tbx.add_scalar("accuracy/epoch/test", evaluation.accuracy, epoch)
        result = {"epoch": epoch, **evaluation.as_dict()}
        write_json(self.experiment.results_path / f"test-{epoch}.json", result)
        return {**result, "summary": summary}

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> dict[str, Any]:
        if epoch is not None:
            self.load_states(epoch, device)
        dataset = self.data.datasets["test"]
        if sample >= len(dataset):
            raise UserError(f"sample {sample} is out of range, the test set has images 0 to {len(dataset) - 1}")
        image, target = dataset[sample]
        self.model.eval()
        with torch.inference_mode(), self.autocast():
            images, _ = self.data.prepare((image[None], target[None]), device)
            probabilities = self.model(images)[0].exp().cpu()
        predicted = int(probabilities.argmax())
        names = self.data.class_names
        summary = (f"Test sample {sample} of epoch {self.counters['epoch']} | true {names[int(target)]} | "
                   f"predicted {names[predicted]} ({100 * float(probabilities[predicted]):.2f}%)")
        self.logger.info(summary)
        return {"sample": sample, "true": int(target), "predicted": predicted,
                "probability": float(probabilities[predicted]), "summary": summary}

    def release_others(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        last = (checkpoint.get("history") or [{}])[-1]
        return {
            "architecture": {"name": "cnn", "class": MNISTClassifierModel.__name__, "kwargs": {},
                             "input_shape": [1, 28, 28]},
            "normalization": {"mean": [self.data.mean], "std": [self.data.std]},
            "class_names": list(self.data.class_names),
            "test_accuracy": last.get("test_accuracy"),
        }
