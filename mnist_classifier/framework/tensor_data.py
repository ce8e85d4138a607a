"""A dataset held as two tensors and served a whole batch at a time.

``DataLoader`` calls ``__getitems__`` with a batch's indices, so a batch is one tensor index instead of one
Python call and one PIL conversion per image; ``collate_batch`` then passes the ready batch through.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TensorDataset(Dataset):
    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def __getitems__(self, indexes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indexes, dtype=torch.long)
        if index.device != self.inputs.device:  # a blocking copy would wait for the GPU to finish every step
            index = index.pin_memory().to(self.inputs.device, non_blocking=True)
        return self.inputs[index], self.targets[index]

    def to(self, device: torch.device) -> TensorDataset:
        """The same data on ``device`` (index it there: no per-batch host-to-device copy)."""
        return TensorDataset(self.inputs.to(device), self.targets.to(device))


def collate_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``__getitems__`` already returns a batch; module-level so worker processes can pickle it."""
    return batch
