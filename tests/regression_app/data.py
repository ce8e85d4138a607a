"""Points ``x`` in [-1, 1]^4 and ``y = sin(3 x0) + x1 x2 - x3^2 + noise``, generated from a fixed seed as if
read from a file; the split between train and validation is drawn with the experiment's seed at ``init``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from mnist_classifier.framework import Data, DataDescription, EpochSampler

FEATURES = 4


def target(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2] - x[:, 3] ** 2


class Points(Dataset):
    """Items are dicts, so the DataLoader's default collate makes dict batches."""

    def __init__(self, size: int, noise: float, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.rand(size, FEATURES, generator=generator) * 2 - 1
        self.y = target(self.x) + noise * torch.randn(size, generator=generator)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "y": self.y[index]}


class RegressionData(Data):
    persisted = ("train_indexes", "validation_indexes")
    unit = "sample"

    def __init__(self) -> None:
        super().__init__()
        self.train_indexes: list[int] = []
        self.validation_indexes: list[int] = []

    def load_datasets(self, data_path: Path) -> None:
        size, noise = self.get_conf("data", "size"), self.get_conf("data", "noise")
        self.datasets["train"] = self.datasets["validation"] = Points(size, noise, seed=1)
        self.datasets["test"] = Points(max(size // 4, 1), noise, seed=2)

    def create(self, data_path: Path) -> None:
        self.load_datasets(data_path)
        size = len(self.datasets["train"])
        order = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed)).tolist()
        cut = round((1 - self.get_conf("data", "val_split")) * size)
        self.train_indexes, self.validation_indexes = sorted(order[:cut]), sorted(order[cut:])

    def describe(self) -> DataDescription:
        return DataDescription({"train": len(self.train_indexes), "validation": len(self.validation_indexes),
                                "test": len(self.datasets["test"])},
                               {"features": FEATURES, "noise": self.get_conf("data", "noise")})

    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        batch_size = self.get_conf("training", "batch_size")
        if self.get_conf("data", "sampler") == "random":  # what a plain PyTorch user writes: not reproducible
            train = DataLoader(self.datasets["train"], batch_size, shuffle=True, num_workers=num_workers)
        else:
            train = DataLoader(self.datasets["train"], batch_size, num_workers=num_workers,
                               sampler=EpochSampler(self.train_indexes, self.seed))
        self.loaders["train"] = train
        self.loaders["validation"] = DataLoader(self.datasets["validation"], 256, num_workers=num_workers,
                                                sampler=EpochSampler(self.validation_indexes, self.seed, False))
        # "sharded": every loader divided between processes, but validate and test still do not reduce (a test
        # shows that the framework catches it); the default leaves test whole, which several processes refuse
        test_sampler = EpochSampler(range(len(self.datasets["test"])), self.seed, False) \
            if self.get_conf("data", "sampler") == "sharded" else None
        self.loaders["test"] = DataLoader(self.datasets["test"], 256, num_workers=num_workers, sampler=test_sampler)
