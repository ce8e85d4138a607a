"""The MNIST app's ``Data``: the configured dataset, its seeded train/validation split and train-split statistics
(pixel mean and spread, stroke width; fixed at ``init``), served as uint8 batches that ``prepare`` normalises on
the device."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from ..framework import Data, DataDescription, EpochSampler, TensorDataset, UserError, collate_batch
from ..inference.model import to_model_input
from ..inference.strokes import MNIST_STROKE_WIDTH, dataset_stroke_width
from .datasets import DATASETS, MNIST_STATS, DatasetSpec, load_split, pixel_statistics

if TYPE_CHECKING:
    from .augmentation import Augmentation


class MNISTClassifierData(Data):
    """An MNIST-format dataset (config ``data.dataset``), its seeded train/validation split and its statistics."""

    persisted = ("dataset", "class_names", "mean", "std", "stroke_width", "train_indexes", "validation_indexes",
                 "typed_digits")
    unit = "img"

    def __init__(self) -> None:
        super().__init__()
        self.dataset = "mnist"
        self.class_names: list[str] = list(DATASETS["mnist"].class_names)
        self.mean, self.std = MNIST_STATS  # of pixel/255 over the training split, computed at init
        self.stroke_width: float | None = MNIST_STROKE_WIDTH  # of the train split's strokes (drawn datasets only)
        self.train_indexes: list[int] = []
        self.validation_indexes: list[int] = []
        self.typed_digits: dict | None = None  # data.typed_digits: the fonts' images (see typed_digits.make)

    @property
    def spec(self) -> DatasetSpec:
        return DATASETS[self.get_conf("data", "dataset", default="mnist")]

    def load(self, state: dict) -> None:
        """Restore ``data.json``; one written before datasets were configurable is MNIST with its usual statistics."""
        super().load(state)
        legacy = {"dataset": "mnist", "class_names": list(DATASETS["mnist"].class_names),
                  "mean": MNIST_STATS[0], "std": MNIST_STATS[1]}
        for name, value in legacy.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.stroke_width is None and self.spec.drawn:
            self.stroke_width = MNIST_STROKE_WIDTH

    def load_datasets(self, data_path: Path) -> None:
        """The dataset's splits; with ``data.typed_digits``, its rendered digits follow the training images (at
        indexes from the dataset's size on), in train only: validation and test are the dataset's own."""
        self.datasets["train"] = load_split(data_path, self.spec, train=True)
        if self.typed_digits:
            from .typed_digits import decode

            images, labels = decode(self.typed_digits)
            train = self.datasets["train"]
            self.datasets["train"] = TensorDataset(torch.cat([train.inputs, images]),
                                                   torch.cat([train.targets, labels]))
        self.datasets["validation"] = self.datasets["train"]
        self.datasets["test"] = load_split(data_path, self.spec, train=False)

    def create(self, data_path: Path) -> None:
        """Split the training images into train and validation, drawn with the experiment's seed, and measure
        the train split's pixel statistics (never the validation or test images)."""
        self.load_datasets(data_path)
        self.dataset = self.get_conf("data", "dataset", default="mnist")
        self.class_names = list(self.spec.class_names)
        size = len(self.datasets["train"])
        order = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed)).tolist()
        train_size = round((1 - self.get_conf("data", "val_split")) * size)
        if not 0 < train_size < size:
            raise UserError(f"data.val_split {self.get_conf('data', 'val_split')} leaves an empty split of "
                            f"{size} images, choose a value between 0 and 1")
        images = self.datasets["train"].inputs[torch.tensor(sorted(order[:train_size]))]
        if (typed := self.get_conf("data", "typed_digits")) is not None:
            if not self.spec.drawn:
                raise UserError(f"data.typed_digits draws digits, and {self.dataset} is not a dataset of digits, "
                                "remove data.typed_digits or use data.dataset mnist")
            from .typed_digits import make
            from .web_fonts import fetch

            for problem in fetch() if typed.get("web_fonts", True) else ():  # the rest still train
                self.logger.warning(f"{problem}: training without that handwriting font")
            self.typed_digits = make(typed, self.seed)
            self.logger.info(f"Typed digits: {self.typed_digits['count']} images from "
                             f"{len(self.typed_digits['fonts'])} fonts join the train split{self._of_which()}")
        typed_count = self.typed_digits["count"] if self.typed_digits else 0
        self.train_indexes = sorted(order[:train_size]) + list(range(size, size + typed_count))
        self.validation_indexes = sorted(order[train_size:])
        self.mean, self.std = pixel_statistics(images)
        self.stroke_width = dataset_stroke_width(images, seed=self.seed) if self.spec.drawn else None
        if self.std == 0:
            raise UserError(f"every training image of {self.spec.torchvision_class} in {data_path} is the same "
                            "constant, the files are damaged: supply the originals")
        self.logger.info(f"Dataset {self.dataset}: {train_size} train, {size - train_size} validation images, "
                         f"pixel mean {self.mean:.4f}, std {self.std:.4f}"
                         + (f", stroke width {self.stroke_width:.2f} px" if self.stroke_width else ""))

    def describe(self) -> DataDescription:
        return DataDescription(
            splits={"train": len(self.train_indexes), "validation": len(self.validation_indexes),
                    "test": len(self.datasets["test"])},
            details={"dataset": self.dataset, "class_names": self.class_names, "mean": self.mean, "std": self.std,
                     **({"typed_digits": f"{self.typed_digits['count']} images of "
                                         f"{len(self.typed_digits['fonts'])} fonts in train{self._of_which()}"}
                        if self.typed_digits else {})})

    def _of_which(self) -> str:
        """How many of the typed digits' images are photographed digits and glyphs of no digit, where any are."""
        if not self.typed_digits:
            return ""
        kinds = [(self.typed_digits[key], what) for key, what in (
            ("photographed", "photographed"), ("not_digits", "glyphs of no digit")) if self.typed_digits.get(key)]
        if not kinds:
            return ""
        (count, what), *more = kinds
        return f", {count} of them {what}" + "".join(f" and {count} {what}" for count, what in more)

    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        """Batches are fetched whole by ``__getitems__``; on CUDA without workers the dataset (47 MB) moves to the
        GPU once and batches are indexed there, so a step costs no host-to-device copy. Every split is ordered by
        an ``EpochSampler``, so several processes each take their shard of it."""
        batch_size = self.process_batch_size(self.get_conf("training", "batch_size"))
        test_batch_size = self.get_conf("training", "test_batch_size", default=1000)
        on_gpu = self.device is not None and self.device.type == "cuda"
        if on_gpu and num_workers == 0:
            for split, dataset in self.datasets.items():
                self.datasets[split] = dataset.to(self.device)
        common = {"num_workers": num_workers, "collate_fn": collate_batch, "persistent_workers": num_workers > 0,
                  "pin_memory": on_gpu and num_workers > 0}
        self.loaders["train"] = DataLoader(self.datasets["train"], batch_size=batch_size,
                                           sampler=EpochSampler(self.train_indexes, self.seed), **common)
        self.loaders["validation"] = DataLoader(  # its own generator: validating draws nothing from the global RNG
            self.datasets["validation"], batch_size=test_batch_size, generator=torch.Generator(),  # (as in 0.1)
            sampler=EpochSampler(self.validation_indexes, self.seed, shuffle=False), **common)
        self.loaders["test"] = DataLoader(self.datasets["test"], batch_size=test_batch_size,
                                          sampler=EpochSampler(range(len(self.datasets["test"])), self.seed,
                                                               shuffle=False), **common)

    def prepare(self, it_data: tuple[torch.Tensor, torch.Tensor], device: torch.device,
                augment: Augmentation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A uint8 batch as the model's input on ``device`` (see ``to_model_input``), changed by ``augment`` when
        training asks for it, and its targets there."""
        images, targets = it_data
        return to_model_input(images, self.mean, self.std, device, augment), targets.to(device, non_blocking=True)
