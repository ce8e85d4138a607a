"""The MNIST data class: seeded persisted splits, batched tensor loading, per-(seed, epoch) shuffling."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from conftest import TEST_SIZE, TRAIN_SIZE
from mnist_classifier.framework import Configuration, UserError
from mnist_classifier.training.data import MNISTClassifierData
from mnist_classifier.training.datasets import pixel_statistics

CONFIG = {"data": {"val_split": 0.2}, "training": {"batch_size": 64, "test_batch_size": 100}}


def make_data(seed: int, config: dict = CONFIG) -> MNISTClassifierData:
    data = MNISTClassifierData()
    data.init(Configuration(config, seed), logging.getLogger("test"))
    return data


def test_splits_are_seeded_disjoint_and_complete(synthetic_data: Path) -> None:
    first, again, other = make_data(1), make_data(1), make_data(2)
    for data in (first, again, other):
        data.create(synthetic_data)
    assert len(first.train_indexes) == 800 and len(first.validation_indexes) == 200
    assert sorted(first.train_indexes + first.validation_indexes) == list(range(TRAIN_SIZE))
    assert first.train_indexes == again.train_indexes
    assert first.train_indexes != other.train_indexes


def test_splits_survive_json(synthetic_data: Path) -> None:
    data = make_data(4)
    data.create(synthetic_data)
    state = json.loads(json.dumps(data.save()))
    restored = make_data(4)
    restored.load(state)
    assert restored.train_indexes == data.train_indexes
    assert restored.validation_indexes == data.validation_indexes


def test_tiny_dataset_with_empty_split_is_refused(tmp_path: Path) -> None:
    from conftest import write_synthetic_mnist

    data = make_data(0, {"data": {"val_split": 0.01}, "training": CONFIG["training"]})
    with pytest.raises(UserError, match="empty split"):
        data.create(write_synthetic_mnist(tmp_path / "data", train_size=20, test_size=10))


def test_loaders_serve_uint8_batches_from_the_split(synthetic_data: Path) -> None:
    data = make_data(5)
    data.create(synthetic_data)
    data.load_datasets(synthetic_data)
    data.load_loaders(synthetic_data, num_workers=0)
    images, targets = next(iter(data.loaders["train"]))
    assert images.dtype == torch.uint8 and images.shape == (64, 28, 28) and targets.dtype == torch.int64
    served = torch.cat([targets for _, targets in data.loaders["validation"]])
    assert len(served) == 200
    assert sum(len(t) for _, t in data.loaders["test"]) == TEST_SIZE
    x, y = data.prepare((images, targets), torch.device("cpu"))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    expected = (images[0].float() / 255 - data.mean) / data.std
    assert torch.allclose(x[0, 0], expected, atol=1e-5)


def _epoch_order(data: MNISTClassifierData, epoch: int) -> list[int]:
    data.set_epoch(epoch)
    return list(iter(data.loaders["train"].sampler))


def test_shuffle_depends_on_seed_and_epoch_only(synthetic_data: Path) -> None:
    data = make_data(6)
    data.create(synthetic_data)
    data.load_datasets(synthetic_data)
    data.load_loaders(synthetic_data, num_workers=0)
    epoch3 = _epoch_order(data, 3)
    assert _epoch_order(data, 4) != epoch3
    torch.manual_seed(123)  # the global RNG must not matter
    assert _epoch_order(data, 3) == epoch3
    assert sorted(epoch3) == data.train_indexes


def test_workers_serve_the_same_batches(synthetic_data: Path) -> None:
    batches = {}
    for workers in (0, 2):
        data = make_data(8)
        data.create(synthetic_data)
        data.load_datasets(synthetic_data)
        data.load_loaders(synthetic_data, num_workers=workers)
        data.set_epoch(1)
        batches[workers] = [targets for _, targets in data.loaders["train"]]
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2], strict=True))


def test_pixel_statistics_are_exact() -> None:
    images = torch.randint(0, 256, (50, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    mean, std = pixel_statistics(images)
    as_float = images.double() / 255
    assert mean == pytest.approx(float(as_float.mean()), rel=1e-12)
    assert std == pytest.approx(float(as_float.std(unbiased=False)), rel=1e-9)


def test_statistics_come_from_the_train_split_only(synthetic_data: Path) -> None:
    data = make_data(6)
    data.create(synthetic_data)
    train_images = data.datasets["train"].inputs[data.train_indexes]
    assert (data.mean, data.std) == pixel_statistics(train_images)
    assert (data.mean, data.std) != pixel_statistics(data.datasets["train"].inputs)
    assert data.save()["mean"] == data.mean and data.save()["class_names"] == [str(d) for d in range(10)]
