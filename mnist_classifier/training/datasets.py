"""The MNIST-format datasets (MNIST, Fashion-MNIST, KMNIST): what each is, getting its files through torchvision
(which downloads and verifies them), reading a split as two tensors, and measuring its pixel statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..framework import TensorDataset, UserError
from .idx import read_idx

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class DatasetSpec:
    """One MNIST-format dataset: its torchvision class (also its folder under ``--data-path``), class names, and
    how ``predict`` turns a real picture into one of its images (see ``images.to_mnist``)."""

    torchvision_class: str
    class_names: tuple[str, ...]
    box: int  # the object's longer side, in pixels of the 28x28 image
    centre: str  # "mass": centre of mass at the centre, as MNIST; "box": bounding box centred
    drawn: bool = False  # pen strokes: pictures are redrawn with the training images' stroke width


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("MNIST", tuple(str(digit) for digit in range(10)), box=20, centre="mass",
                          drawn=True),
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
