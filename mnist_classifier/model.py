"""The classifier: the network of the PyTorch MNIST example (conv32, conv64, max-pool, fc128, fc10).

Two changes make it faster on the CPU without changing what it computes: ReLU after conv2 runs after the
max-pool (max and ReLU commute, so the values are identical, on a map four times smaller), and dropout draws its
mask as ``rand < keep`` (the same Bernoulli distribution, at about half the cost of ``bernoulli_``).
"""

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn as ``rand < keep``, pre-scaled: one multiply forward and backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        return x * (torch.rand_like(x) < keep).to(x.dtype).mul_(1.0 / keep)


class MNISTClassifierModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = Dropout(0.25)
        self.dropout2 = Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[N, 1, 28, 28]`` to log-probabilities ``[N, 10]``."""
        x = F.relu(self.conv1(x))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))  # = max_pool2d(relu(conv2(x)), 2), on 4x fewer values
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)
