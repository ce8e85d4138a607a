"""A Skeltorch-style experiment framework: experiment folders, JSON configuration, atomic checkpoints, a CLI,
and the ``Data`` and ``Runner`` base classes an application extends. It imports nothing from any application.

Every public name loads on first access, so importing one part imports only what that part needs: an app's
``--help`` and ``info`` stay free of torch, and a release loads without the CLI or any pipeline.
"""

from importlib import import_module
from typing import Any

_WHERE = {  # public name: the module that defines it
    "App": "app", "Pipeline": "cli", "Context": "context", "Configuration": "configuration", "Data": "data",
    "DataDescription": "data", "sum_over_processes": "distributed", "HookError": "errors", "UserError": "errors",
    "Experiment": "experiment", "Metric": "metrics", "SampleResult": "results", "TestResult": "results",
    "Runner": "runner", "EpochSampler": "sampling", "TensorDataset": "tensor_data", "collate_batch": "tensor_data",
    "Checkpoint": "training_state", "Release": "training_state",
}
__all__ = sorted([*_WHERE, "checkpoints"])


def __getattr__(name: str) -> Any:
    if name == "checkpoints":
        return import_module(".checkpoints", __name__)
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
