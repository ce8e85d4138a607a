"""Training and testing the MNIST classifier: Adadelta, StepLR, NLL loss, accuracy and confusion matrix."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .figures import as_tensor, confusion_image, misclassified_image
from .framework import Metric, Runner, SampleResult, TestResult, UserError
from .framework.storage import atomic_write
from .model import build_model, model_kwargs


@dataclass
class Evaluation:
    loss: float
    correct: int
    total: int
    confusion: torch.Tensor  # [true, predicted] counts
    seconds: float
    mistakes: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # images, true, predicted (some)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total  # over images, not batches

    def details(self) -> dict[str, Any]:
        per_class = self.confusion.diag().double() / self.confusion.sum(1).clamp(min=1)
        return {"correct": self.correct, "total": self.total, "per_class_accuracy": per_class.tolist(),
                "confusion_matrix": self.confusion.tolist(), "seconds": round(self.seconds, 4),
                "images_per_second": round(self.total / self.seconds, 1)}


class MNISTClassifierRunner(Runner):
    scheduler: torch.optim.lr_scheduler.StepLR | None = None
    early_stopping_metric = Metric("validation_loss", higher_is_better=False)  # the app is judged by accuracy
    input_shape = (1, 28, 28)

    def model_config(self) -> dict[str, Any]:
        """Config ``model`` (experiments made before it existed used the cnn)."""
        return self.get_conf("model", default={"name": "cnn"})

    def init_model(self, device: torch.device) -> None:
        """The registered model that config ``model.name`` names, built with the config's hyperparameters."""
        config = self.model_config()
        model = build_model(config["name"], model_kwargs(config, self.input_shape, len(self.data.class_names)))
        # channels_last: convolutions run faster in NHWC on CPUs (oneDNN) and GPUs (cuDNN)
        self.model = model.to(device, memory_format=torch.channels_last)

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

    def evaluate(self, split: str, device: torch.device, keep_mistakes: int = 0) -> Evaluation:
        """Loss and confusion matrix over a whole split, accumulated on the device (one sync at the end);
        with ``keep_mistakes``, up to that many misclassified images too."""
        classes = len(self.data.class_names)
        confusion = torch.zeros(classes * classes, dtype=torch.long, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        mistakes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.model.eval()
        started = time.perf_counter()
        with torch.inference_mode(), self.autocast(), self.progress(split, split) as bar:
            for it_data in self.data.loaders[split]:
                images, targets = self.data.prepare(it_data, device)
                output = self.model(images)
                predicted = output.argmax(1)
                loss_sum += F.nll_loss(output, targets, reduction="sum")
                confusion += torch.bincount(targets * classes + predicted, minlength=classes * classes)
                if keep_mistakes:
                    wrong = predicted != targets
                    raw = it_data[0]  # on the CPU when workers feed a GPU: index it with a mask from there
                    mistakes.append((raw[wrong.to(raw.device)][:keep_mistakes], targets[wrong][:keep_mistakes],
                                     predicted[wrong][:keep_mistakes]))
                bar.update(len(targets))
        confusion = confusion.view(classes, classes).cpu()
        total = int(confusion.sum())
        kept = None
        if keep_mistakes:
            kept = tuple(torch.cat([m[i] for m in mistakes])[:keep_mistakes].cpu() for i in range(3))
        return Evaluation(loss_sum.item() / max(total, 1), int(confusion.diag().sum()), total, confusion,
                          time.perf_counter() - started, kept)

    def validate(self, device: torch.device) -> dict[str, float]:
        evaluation = self.evaluate("validation", device)
        return {"loss": evaluation.loss, "accuracy": evaluation.accuracy}

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        super().train_after_epoch_tasks(device)
        self.scheduler.step()
        self.test(None, device)

    def early_stopping_patience(self) -> int | None:
        return self.get_conf("training", "early_stopping_patience")

    def checkpoints_to_keep(self) -> int | None:
        return self.get_conf("training", "keep_checkpoints")

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        """Test-set loss and accuracy over every image, with the confusion matrix and misclassified images as
        pictures in ``results/`` and TensorBoard."""
        if epoch is not None:
            self.load_states(epoch)
        evaluation = self.evaluate("test", device, keep_mistakes=48)
        self.save_test_figures(evaluation, self.counters["epoch"])
        summary = (f"Test of epoch {self.counters['epoch']} | accuracy {100 * evaluation.accuracy:.2f}% "
                   f"({evaluation.correct}/{evaluation.total}) | loss {evaluation.loss:.4f}")
        return TestResult(summary, {"loss": evaluation.loss, "accuracy": evaluation.accuracy}, evaluation.details())

    def save_test_figures(self, evaluation: Evaluation, epoch: int) -> None:
        """``results/confusion-<epoch>.png`` and ``results/misclassified-<epoch>.png``, also in TensorBoard."""
        names = self.data.class_names
        images, true, predicted = evaluation.mistakes
        figures = {"confusion": confusion_image(evaluation.confusion, names),
                   "misclassified": misclassified_image(images, [names[int(t)] for t in true],
                                                        [names[int(p)] for p in predicted])}
        for name, figure in figures.items():
            buffer = io.BytesIO()
            figure.save(buffer, format="PNG")
            atomic_write(self.experiment.results_path / f"{name}-{epoch}.png", buffer.getvalue())
            self.experiment.tbx.add_image(f"test/{name}", as_tensor(figure), epoch, dataformats="HWC")

    def example_input(self, device: torch.device) -> torch.Tensor:
        dataset = self.data.datasets["train"]
        return self.data.prepare(dataset.__getitems__([0]), device)[0]

    def test_sample(self, sample: int, epoch: int | None, device: torch.device) -> SampleResult:
        if epoch is not None:
            self.load_states(epoch)
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
        return SampleResult(summary, {"sample": sample, "true": int(target), "predicted": predicted,
                                      "probability": float(probabilities[predicted])})

    def release_others(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        last = (checkpoint.get("history") or [{}])[-1]
        config = self.model_config()
        spec = self.data.spec
        return {
            "architecture": {"name": config["name"], "class": type(self.model).__name__,
                             "kwargs": model_kwargs(config, self.input_shape, len(self.data.class_names)),
                             "input_shape": list(self.input_shape)},
            "dataset": self.data.dataset,
            "normalization": {"mean": [self.data.mean], "std": [self.data.std]},
            "preprocessing": {"box": spec.box, "centre": spec.centre},
            "class_names": list(self.data.class_names),
            "test_accuracy": last.get("test_accuracy"),
        }
