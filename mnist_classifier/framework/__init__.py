"""A Skeltorch-style experiment framework: experiment folders, JSON configuration, atomic checkpoints, a CLI,
and the ``Data`` and ``Runner`` base classes an application extends. It imports nothing from any application.

``Runner``, ``EpochSampler`` and ``TensorDataset`` import torch, so they load on first access: an app's
``--help`` and ``info`` stay fast.
"""

from typing import Any

from . import checkpoints
from .app import App
from .cli import Pipeline
from .configuration import Configuration
from .context import Context
from .data import Data, DataDescription
from .distributed import sum_over_processes
from .errors import HookError, UserError
from .experiment import Experiment
from .metrics import Metric
from .results import SampleResult, TestResult

__all__ = ["App", "Context", "Pipeline", "checkpoints", "Configuration", "Data", "DataDescription", "EpochSampler",
           "Experiment", "HookError", "Metric", "Runner", "SampleResult", "TensorDataset", "TestResult", "UserError",
           "collate_batch", "sum_over_processes"]

_LAZY = {"Runner": "runner", "EpochSampler": "sampling", "TensorDataset": "tensor_data", "collate_batch": "tensor_data"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
