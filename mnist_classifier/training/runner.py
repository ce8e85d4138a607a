"""Training and testing the MNIST classifier: the optimizer and schedule the configuration names (Adadelta and
StepLR by default), NLL loss (outlier exposure for glyphs of no digit), accuracy and confusion matrix."""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from ..framework import Checkpoint, Metric, Runner, SampleResult, TestResult, UserError
from ..inference.calibration import NO_DIGIT_BELOW, Calibration
from ..inference.model import build_model, model_kwargs
from ..inference.release_contents import ReleaseContents
from .augmentation import Augmentation
from .calibration import fit, outputs
from .evaluation import Evaluation, evaluate
from .figures import save_test_figures
from .typed_digits import NOT_A_DIGIT

NOT_A_DIGIT_WEIGHT = 0.5  # Hendrycks et al.'s for image classifiers


def loss(log_probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The NLL of each digit's label; an image of no digit (target ``NOT_A_DIGIT``, ``data.typed_digits.not_digits``)
    is pulled towards equal probabilities instead, by ``NOT_A_DIGIT_WEIGHT`` times its cross-entropy to them
    (outlier exposure, Hendrycks et al. 2019), so that a picture of no digit gets a low confidence. The mean over
    the batch."""
    digits = targets != NOT_A_DIGIT
    label = log_probabilities.gather(1, torch.where(digits, targets, 0)[:, None])[:, 0]
    return torch.where(digits, -label, -NOT_A_DIGIT_WEIGHT * log_probabilities.mean(1)).mean()


class MNISTClassifierRunner(Runner):
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    # Judged by validation accuracy (see __main__.py), but patience watches the validation loss, which keeps
    # improving after accuracy saturates at 99%; docs/experiments.md documents early stopping this way.
    early_stopping_metric = Metric("validation_loss", higher_is_better=False)
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
        """Config ``training.optimizer``: Adadelta (the seed's), SGD with Nesterov momentum, or AdamW."""
        name, lr = self.get_conf("training", "optimizer", default="adadelta"), self.get_conf("training", "lr")
        decay = self.get_conf("training", "weight_decay", default=0.0)
        parameters = self.model.parameters()
        if name == "sgd":
            self.optimizer = torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True, weight_decay=decay)
        elif name == "adamw":
            self.optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
        else:
            self.optimizer = torch.optim.Adadelta(parameters, lr=lr, weight_decay=decay)

    def init_others(self, device: torch.device) -> None:
        """Config ``training.schedule``: StepLR by ``lr_gamma`` after each epoch (the seed's), or one cycle over
        ``training.max_epochs`` epochs, stepped after every batch, peaking at ``lr``."""
        if self.get_conf("training", "schedule", default="step") == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=self.get_conf("training", "lr"),
                epochs=self.get_conf("training", "max_epochs"), steps_per_epoch=len(self.data.loaders["train"]),
                pct_start=self.get_conf("training", "warmup", default=0.25),
                cycle_momentum=not isinstance(self.optimizer, torch.optim.Adadelta))
        else:
            self.scheduler = torch.optim.lr_scheduler.StepLR(
                self.optimizer, step_size=1, gamma=self.get_conf("training", "lr_gamma"))

    def train_after_step(self, device: torch.device) -> None:
        """One cycle steps after every batch, setting the learning rate of the next; from its last step on
        (``train --max-epochs`` beyond the recipe's own) the rate stays at its final value."""
        if isinstance(self.scheduler, torch.optim.lr_scheduler.OneCycleLR) and \
                self.scheduler.last_epoch < self.scheduler.total_steps - 1:
            self.scheduler.step()

    def save_states_others(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_states_others(self, checkpoint: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(checkpoint["scheduler"])

    def train_step(self, it_data: Any, device: torch.device) -> torch.Tensor:
        images, targets = self.data.prepare(it_data, device, self.augmentation_in(self.counters["epoch"]))
        log_probabilities = self.model(images)
        return loss(log_probabilities, targets) if self.not_digits else F.nll_loss(log_probabilities, targets)

    @functools.cached_property
    def not_digits(self) -> bool:
        """Whether the configuration puts images of no digit in the train split (``data.typed_digits.not_digits``
        or ``photographed_not_digits``)."""
        return any(self.get_conf("data", "typed_digits", key, default=0)
                   for key in ("not_digits", "photographed_not_digits"))

    @functools.cached_property
    def augmentation(self) -> Augmentation | None:
        """Config ``data.augmentation``, applied to training batches only (``None``: off, the default)."""
        return Augmentation.from_config(self.get_conf("data", "augmentation"))

    def augmentation_in(self, epoch: int) -> Augmentation | None:
        """The augmentation of training epoch ``epoch`` (1-based): none in the recipe's last
        ``data.augmentation.clean_epochs`` epochs of ``training.max_epochs``, nor after them. Batch norm's running
        statistics, which evaluation uses, then come from the images as they are, not from augmented ones."""
        clean = self.get_conf("data", "augmentation", "clean_epochs", default=0)
        if clean and epoch > self.get_conf("training", "max_epochs", default=10) - clean:
            return None
        return self.augmentation

    def evaluate(self, split: str, device: torch.device, keep_mistakes: int = 0) -> Evaluation:
        """Loss and confusion matrix over a whole split (see ``evaluation.evaluate``)."""
        with self.progress(split, split) as bar:
            return evaluate(self.model, self.data.loaders[split], self.data.prepare, len(self.data.class_names),
                            device, self.autocast(), bar, keep_mistakes)

    def validate(self, device: torch.device) -> dict[str, float]:
        evaluation = self.evaluate("validation", device)
        return {"loss": evaluation.loss, "accuracy": evaluation.accuracy}

    def train_after_epoch_tasks(self, device: torch.device) -> None:
        super().train_after_epoch_tasks(device)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.StepLR):
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
        if self.is_main:  # one writer
            save_test_figures(self.experiment, self.tensorboard.writer, evaluation.confusion, evaluation.mistakes,
                              self.data.class_names, self.counters["epoch"])
        summary = (f"Test of epoch {self.counters['epoch']} | accuracy {100 * evaluation.accuracy:.2f}% "
                   f"({evaluation.correct}/{evaluation.total}) | loss {evaluation.loss:.4f}")
        return TestResult(summary, {"loss": evaluation.loss, "accuracy": evaluation.accuracy}, evaluation.details())

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

    def calibrate(self) -> Calibration:
        """The temperature of this epoch's model, fitted on the validation split, and its thresholds: a model trained
        with glyphs of no digit also says when no digit stands out (see ``inference/calibration.py``)."""
        with self.autocast():
            log_probabilities, targets = outputs(self.model, self.data.loaders["validation"], self.data.prepare,
                                                 self.device)
        calibration = fit(log_probabilities, targets, no_digit_below=NO_DIGIT_BELOW if self.not_digits else 0.0)
        self.logger.info(f"Calibration on {calibration.images} validation images: temperature "
                         f"{calibration.temperature:.3f}, NLL {calibration.nll[0]:.4f} -> {calibration.nll[1]:.4f}, "
                         f"ECE {calibration.ece[0]:.4f} -> {calibration.ece[1]:.4f}")
        return calibration

    def release_others(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The release's ``ReleaseContents``: what ``load_release`` needs to read pictures as this model's."""
        last = (checkpoint.history or [{}])[-1]
        config, spec = self.model_config(), self.data.spec
        architecture = {"name": config["name"], "class": type(self.model).__name__,
                        "kwargs": model_kwargs(config, self.input_shape, len(self.data.class_names)),
                        "input_shape": list(self.input_shape)}
        return ReleaseContents(architecture, self.data.mean, self.data.std, list(self.data.class_names),
                               self.data.dataset, spec.box, spec.centre, self.data.stroke_width,
                               last.get("test_accuracy"), self.calibrate()).to_dict()
