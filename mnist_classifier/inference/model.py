"""The classifiers, registered by the name that config ``model.name`` gives: ``cnn`` (default), ``mlp`` and
``bn_cnn``.

``cnn`` is the network of the PyTorch MNIST example (conv32, conv64, max-pool, fc128, fc10). Two changes make it
faster on the CPU without changing what it computes: ReLU after conv2 runs after the max-pool (max and ReLU
commute, so the values are identical, on a map four times smaller), and dropout draws its mask as ``rand < keep``
(the same Bernoulli distribution, at about half the cost of ``bernoulli_``).

``mlp`` is the FSDL labs' MLP (fc1, fc2, dropout). ``bn_cnn`` is a deeper network for stronger recipes: five
3x3 convolutions with batch norm, two max-pools, global average pooling.

A new model is a class decorated with ``@register_model('name')`` whose keyword arguments are the config's
``model`` keys, plus a branch for it in ``config.schema.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a model buildable as config ``{"model": {"name": name, ...}}`` and from releases."""
    def register(model_class: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = model_class
        return model_class
    return register


def model_kwargs(model_config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """The constructor arguments of config ``model`` for data of ``input_shape`` with ``num_classes`` classes."""
    hyperparameters = {key: value for key, value in model_config.items() if key != "name"}
    return {**hyperparameters, "input_shape": list(input_shape), "num_classes": num_classes}


def build_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """An untrained model of a registered class (``KeyError`` for an unknown name)."""
    return MODELS[name](**kwargs)


def to_model_input(images: torch.Tensor, mean: float, std: float, device: torch.device,
                   augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """uint8 images ``[N, H, W]`` as the models take them: ``[N, 1, H, W]`` floats on ``device``, normalised by the
    training split's ``mean`` and ``std`` (of pixel/255), channels_last. Training, testing and releases all call
    this one function, so a release sees exactly what training saw. ``augment`` (training only) changes the
    batch on ``device``, in pixel values 0-255, before it is normalised."""
    x = images.to(device, non_blocking=True).unsqueeze(1).float()
    if augment is not None:
        x = augment(x)
    return x.sub_(255 * mean).div_(255 * std).contiguous(memory_format=torch.channels_last)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn as ``rand < keep``, pre-scaled: one multiply forward and backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        return x * (torch.rand_like(x) < keep).to(x.dtype).mul_(1.0 / keep)


@register_model("cnn")
class MNISTClassifierModel(nn.Module):
    def __init__(self, input_shape: list[int] | tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> None:
        super().__init__()
        if tuple(input_shape) != (1, 28, 28):
            raise ValueError(f"the cnn takes 1x28x28 images, not {'x'.join(map(str, input_shape))}")
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = Dropout(0.25)
        self.dropout2 = Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[N, 1, 28, 28]`` to log-probabilities ``[N, classes]``."""
        x = F.relu(self.conv1(x))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))  # = max_pool2d(relu(conv2(x)), 2), on 4x fewer values
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


@register_model("mlp")
class MLP(nn.Module):
    """Flattened pixels through two hidden layers (``fc1``, ``fc2`` units) with dropout, as in the FSDL labs."""

    def __init__(self, fc1: int = 1024, fc2: int = 128, dropout: float = 0.5,
                 input_shape: list[int] | tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(math.prod(input_shape), fc1)
        self.fc2 = nn.Linear(fc1, fc2)
        self.fc3 = nn.Linear(fc2, num_classes)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[N, 1, 28, 28]`` to log-probabilities ``[N, classes]``."""
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return F.log_softmax(self.fc3(x), dim=1)


def _conv_bn(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
                         nn.ReLU(inplace=True))


@register_model("bn_cnn")
class BatchNormCNN(nn.Module):
    """Convolutions with batch norm: ``width`` channels at 28x28, twice that at 14x14, four times at 7x7, then
    global average pooling, dropout and one linear layer. Batch norm lets it train at one-cycle's high learning
    rates; the pooling keeps it small (0.14 M parameters at width 32)."""

    def __init__(self, width: int = 32, dropout: float = 0.1, input_shape: list[int] | tuple[int, ...] = (1, 28, 28),
                 num_classes: int = 10) -> None:
        super().__init__()
        channels = input_shape[0]
        self.features = nn.Sequential(
            _conv_bn(channels, width), _conv_bn(width, width), nn.MaxPool2d(2),
            _conv_bn(width, 2 * width), _conv_bn(2 * width, 2 * width), nn.MaxPool2d(2),
            _conv_bn(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[N, C, H, W]`` to log-probabilities ``[N, classes]``."""
        x = torch.flatten(self.features(x), 1)
        return F.log_softmax(self.fc(self.dropout(x)), dim=1)
