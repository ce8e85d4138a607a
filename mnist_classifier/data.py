"""MNIST, Fashion-MNIST or KMNIST through torchvision (which downloads and verifies them), served as uint8 tensors
a batch at a time."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, SubsetRandomSampler

from .framework import Data, TensorDataset, UserError, collate_batch

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Read an IDX file (MNIST's format) as a uint8 tensor, checking its header against its size first.

    A damaged file is named here instead of failing deep inside torch.
    """
    data = path.read_bytes()
    header = 4 + 4 * ndim
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise UserError(f"{path} is not an MNIST IDX file (wrong magic number), delete it and supply the original")
    if len(data) < header:
        raise UserError(f"{path} is truncated (incomplete header), delete it and supply the original")
    sizes = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) != header + math.prod(sizes):
        raise UserError(f"{path} has {len(data)} bytes but its header announces {header + math.prod(sizes)} "
                        "(damaged or truncated), delete it and supply the original")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*sizes)


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (magic 0x0000 08 <ndim>, big-endian sizes, then the bytes)."""
    array = array.to(torch.uint8).contiguous()
    header = bytes([0, 0, 0x08, array.dim()]) + struct.pack(f">{array.dim()}I", *array.shape)
    Path(path).write_bytes(header + array.numpy().tobytes())


@dataclass(frozen=True)
class DatasetSpec:
    """One MNIST-format dataset: its torchvision class (also its folder under ``--data-path``), class names, and
    how ``predict`` turns a real picture into one of its images (see ``images.to_mnist``)."""

    torchvision_class: str
    class_names: tuple[str, ...]
    box: int  # the object's longer side, in pixels of the 28x28 image
    centre: str  # "mass": centre of mass at the centre, as MNIST; "box": bounding box centred


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("MNIST", tuple(str(digit) for digit in range(10)), box=20, centre="mass"),
    "fashion_mnist": DatasetSpec("FashionMNIST", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                  "Shirt", "Sneaker", "Bag", "Ankle boot"), box=28, centre="box"),
    "kmnist": DatasetSpec("KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), box=28,
                          centre="box"),
}
MNIST_STATS = (0.1307, 0.3081)  # experiments made before statistics were stored in data.json were all MNIST


def raw_folder(data_path: Path, spec: DatasetSpec) -> Path:
    return Path(data_path) / spec.torchvision_class / "raw"


def download(data_path: Path, spec: DatasetSpec, train: bool) -> None:
    """Let torchvision verify (MD5) and extract the .gz files in ``raw/``, downloading those that are missing."""
    import torchvision
    from torchvision.datasets.utils import check_integrity

    raw = raw_folder(data_path, spec)
    name = spec.torchvision_class
    dataset_class = getattr(torchvision.datasets, name)
    prefix = "train" if train else "t10k"
    for filename, md5 in dataset_class.resources:
        archive = raw / filename
        if filename.startswith(prefix) and archive.exists() and not check_integrity(str(archive), md5):
            raise UserError(f"{archive} is damaged (its MD5 is not {name}'s), "
                            "delete it to download it again or copy the original")
    try:
        dataset_class(str(data_path), train=train, download=True)
    except RuntimeError as error:
        if "Error downloading" not in str(error):
            raise UserError(f"{name} files in {raw} are damaged ({str(error).splitlines()[0]}), "
                            "delete them to download again or copy good ones") from None
        raise UserError(f"{name} is not in {raw} and could not be downloaded (no network?), "
                        f"copy {', '.join(MNIST_FILES)} into {raw}") from None
    except (OSError, ValueError, AssertionError, EOFError) as error:
        raise UserError(f"{name} files in {raw} are damaged ({type(error).__name__}: {error}), "
                        "delete them to download again or copy good ones") from None


def load_split(data_path: Path, spec: DatasetSpec, train: bool) -> TensorDataset:
    """Images as one ``[N, 28, 28]`` uint8 tensor and labels as one int64 tensor; downloads when missing.

    Once torchvision has verified and extracted the files, they are read directly: no torchvision import (1.5 s)
    and no per-image PIL objects.
    """
    raw = raw_folder(data_path, spec)
    prefix = "train" if train else "t10k"
    images_file, labels_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if not (images_file.exists() and labels_file.exists()):
        download(data_path, spec, train)
    images, labels = read_idx(images_file, 3), read_idx(labels_file, 1).long()
    if len(images) != len(labels):
        raise UserError(f"{raw} holds {len(images)} {prefix} images but {len(labels)} labels, "
                        "delete the extracted files and supply the originals")
    if len(labels) and int(labels.max()) >= len(spec.class_names):
        raise UserError(f"{labels_file} has labels up to {int(labels.max())}, more than {spec.torchvision_class}'s "
                        f"{len(spec.class_names)} classes: it is damaged, supply the original")
    return TensorDataset(images, labels)


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of ``pixel / 255`` over uint8 images, exact (from a 256-bin histogram)."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum()
    mean = float((counts * values).sum() / total)
    variance = float((counts * values.square()).sum() / total) - mean**2
    return mean, math.sqrt(max(variance, 0.0))


class MNISTClassifierData(Data):
    """An MNIST-format dataset (config ``data.dataset``), its seeded train/validation split and its statistics."""

    persisted = ("dataset", "class_names", "mean", "std", "train_indexes", "validation_indexes")

    def __init__(self) -> None:
        super().__init__()
        self.dataset = "mnist"
        self.class_names: list[str] = list(DATASETS["mnist"].class_names)
        self.mean, self.std = MNIST_STATS  # of pixel/255 over the training split, computed at init
        self.train_indexes: list[int] = []
        self.validation_indexes: list[int] = []
        self.generators: dict[str, torch.Generator] = {}

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

    def load_datasets(self, data_path: Path) -> None:
        self.datasets["train"] = load_split(data_path, self.spec, train=True)
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
        self.train_indexes = sorted(order[:train_size])
        self.validation_indexes = sorted(order[train_size:])
        images = self.datasets["train"].inputs[torch.tensor(self.train_indexes)]
        self.mean, self.std = pixel_statistics(images)
        if self.std == 0:
            raise UserError(f"every training image of {self.spec.torchvision_class} in {data_path} is the same "
                            "constant, the files are damaged: supply the originals")
        self.logger.info(f"Dataset {self.dataset}: {train_size} train, {size - train_size} validation images, "
                         f"pixel mean {self.mean:.4f}, std {self.std:.4f}")

    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        """Batches are fetched whole by ``__getitems__``; on CUDA without workers the dataset (47 MB) moves to the
        GPU once and batches are indexed there, so a step costs no host-to-device copy."""
        batch_size = self.get_conf("training", "batch_size")
        test_batch_size = self.get_conf("training", "test_batch_size", default=1000)
        on_gpu = self.device is not None and self.device.type == "cuda"
        if on_gpu and num_workers == 0:
            for split, dataset in self.datasets.items():
                self.datasets[split] = dataset.to(self.device)
        self.generators = {"train": torch.Generator(), "validation": torch.Generator()}
        common = {"num_workers": num_workers, "collate_fn": collate_batch, "persistent_workers": num_workers > 0,
                  "pin_memory": on_gpu and num_workers > 0}
        self.loaders["train"] = DataLoader(
            self.datasets["train"], batch_size=batch_size, generator=self.generators["train"],
            sampler=SubsetRandomSampler(self.train_indexes, generator=self.generators["train"]), **common)
        self.loaders["validation"] = DataLoader(
            self.datasets["validation"], batch_size=test_batch_size, generator=self.generators["validation"],
            sampler=SubsetRandomSampler(self.validation_indexes, generator=self.generators["validation"]), **common)
        self.loaders["test"] = DataLoader(self.datasets["test"], batch_size=test_batch_size, **common)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle order depends on (seed, epoch) only, so a resumed run sees the batches an unbroken one would."""
        self.generators["train"].manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        self.generators["validation"].manual_seed(self.seed)

    def prepare(self, it_data: tuple[torch.Tensor, torch.Tensor], device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a uint8 batch to ``device`` and normalise it there in one go: ``[N, 1, 28, 28]`` floats."""
        images, targets = it_data
        images = images.to(device, non_blocking=True).unsqueeze(1).float()
        images = images.sub_(255 * self.mean).div_(255 * self.std).contiguous(memory_format=torch.channels_last)
        return images, targets.to(device, non_blocking=True)
