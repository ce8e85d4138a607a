"""A Skeltorch-style experiment framework: experiment folders, JSON configuration, atomic checkpoints, a CLI,
and the ``Data`` and ``Runner`` base classes an application extends. It imports nothing from the application.

``Runner`` and ``TensorDataset`` import torch, so they load on first access: the CLI's ``--help`` and ``info``
stay fast.
"""

from typing import Any

from . import checkpoints
from .cli import App, Pipeline
from .configuration import Configuration
from .data import Data
from .errors import UserError
from .experiment import Experiment

__all__ = ["App", "Pipeline", "checkpoints", "Configuration", "Data", "Experiment", "Runner", "TensorDataset",
           "UserError", "collate_batch"]


def __getattr__(name: str) -> Any:
    if name == "Runner":
        from .runner import Runner
        return Runner
    if name in ("TensorDataset", "collate_batch"):
        from . import tensor_data
        return getattr(tensor_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
