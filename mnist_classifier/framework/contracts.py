"""The checks of what an app's hooks return and build, in one place: each raises a ``HookError`` naming the hook
and saying what it must do instead. The contracts themselves are the hooks' docstrings (``runner.py``,
``data.py``) and ``docs/framework.md``; the framework calls these checks where a hook's result is first used.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .errors import HookError
from .metrics import number
from .results import SampleResult, TestResult
from .storage import is_json

if TYPE_CHECKING:
    from .data import Data, DataDescription
    from .runner import Runner
    from .strategy import SingleProcess

GUIDE = "docs/framework.md"


def hook_error(owner: object, hook: str, what: str, instead: str) -> HookError:
    """``<Class>.<hook> <what>, <instead> (see the guide)``."""
    return HookError(f"{type(owner).__name__}.{hook} {what}, {instead} (see {GUIDE})")


def check_built(runner: Runner, training: bool) -> None:
    """After ``init_model`` (and, for training, ``init_optimizer``)."""
    import torch

    if not isinstance(runner.model, torch.nn.Module):
        raise hook_error(runner, "init_model", f"left self.model as {type(runner.model).__name__}",
                         "set it to a torch.nn.Module on the device it is given")
    if training and not isinstance(runner.optimizer, torch.optim.Optimizer):
        raise hook_error(runner, "init_optimizer", f"left self.optimizer as {type(runner.optimizer).__name__}",
                         "set it to a torch.optim.Optimizer over self.model's parameters")


def check_loss(runner: Runner, loss: Any) -> None:
    """What ``train_step`` returned: a scalar tensor with a graph to ``backward`` through."""
    import torch

    if not isinstance(loss, torch.Tensor) or loss.dim() != 0 or not loss.requires_grad:
        raise hook_error(runner, "train_step", f"returned {shape_of(loss)}",
                         "return the batch's loss as a scalar tensor that requires grad")


def check_metrics(runner: Runner, hook: str, metrics: Any, strategy: SingleProcess) -> dict[str, float]:
    """What ``validate`` (or ``test``, through ``TestResult.metrics``) returned: finite numbers by name, the
    same in every process of a group (each saw its shard, so each must reduce its sums and counts)."""
    import torch

    if not isinstance(metrics, dict):
        raise hook_error(runner, hook, f"returned {shape_of(metrics)}",
                         "return a dict of finite numbers by name, such as {'loss': 0.1}")
    for key, value in metrics.items():
        if not isinstance(key, str) or number(value) is None:
            hint = " (a tensor: use .item())" if isinstance(value, torch.Tensor) else ""
            raise hook_error(runner, hook, f"returned metric {key!r} = {value!r}{hint}",
                             "give each metric a name and a finite number")
    if strategy.active and strategy.differs(
            torch.tensor([float(metrics[key]) for key in sorted(metrics)], dtype=torch.float64)):
        raise hook_error(runner, hook, "returned other metrics in each process (each sees its shard of the split)",
                         "add sums and counts over the processes with sum_over_processes(tensor) before dividing")
    return metrics


def check_test_result(runner: Runner, result: Any, epoch: int | None, strategy: SingleProcess) -> TestResult:
    """What ``test`` returned: a ``TestResult`` of the epoch it was asked for, with plain details."""
    if not isinstance(result, TestResult):
        raise hook_error(runner, "test", f"returned {shape_of(result)}", "return a TestResult(summary, metrics)")
    if epoch is not None and runner.counters["epoch"] != epoch:
        raise hook_error(runner, "test", f"was asked for epoch {epoch} but tested epoch {runner.counters['epoch']}",
                         "call self.load_states(epoch) first when epoch is not None")
    if not isinstance(result.summary, str) or not isinstance(result.metrics, dict) \
            or not isinstance(result.details, dict):
        raise hook_error(runner, "test", "returned a TestResult whose summary is not a str or whose metrics or "
                         "details are not a dict", "give it a line, a dict of numbers and a dict")
    check_metrics(runner, "test", result.metrics, strategy)
    clashes = sorted(set(result.details) & ({"epoch"} | set(result.metrics)))
    if clashes or not is_json(result.details):
        what = f"details {clashes} that clash with the epoch or a metric" if clashes else \
            "details that JSON cannot hold"
        raise hook_error(runner, "test", f"returned {what}", "give details their own names and plain values")
    return result


def check_sample_result(runner: Runner, result: Any, epoch: int) -> SampleResult:
    """What ``test_sample`` returned: a ``SampleResult`` of the epoch it was asked for."""
    if not isinstance(result, SampleResult) or not isinstance(result.summary, str) \
            or not isinstance(result.details, dict):
        raise HookError(f"{type(runner).__name__}.test_sample returned {result!r:.80}, return a "
                        f"SampleResult(summary, details) (see {GUIDE})")
    if runner.counters["epoch"] != epoch:
        raise HookError(f"{type(runner).__name__}.test_sample was asked for epoch {epoch} but used epoch "
                        f"{runner.counters['epoch']}, call self.load_states(epoch) first when epoch is not None")
    return result


def check_plain(owner: object, hook: str, value: Any, example: str = "") -> dict[str, Any]:
    """What ``save_states_others`` or ``release_others`` returned: a dict that ``torch.load(weights_only=True)``
    reads back."""
    if not isinstance(value, dict) or not is_plain(value):
        raise hook_error(owner, hook, f"returned {shape_of(value)} holding more than tensors, numbers, strings, "
                         "lists and dicts", f"return a dict of those{example}")
    return value


def check_release_contents(runner: Runner, contents: dict[str, Any]) -> None:
    """``release_others``'s names must leave the release's own (its weights, epoch, kind and format) alone."""
    from .training_state import Release

    clashes = sorted(set(contents) & set(Release.OWN_KEYS))
    if clashes:
        raise hook_error(runner, "release_others", f"returned {', '.join(clashes)}, which a release holds itself",
                         "give them other names")


def count_or_none(owner: object, hook: str, value: Any) -> int | None:
    """What ``early_stopping_patience`` or ``checkpoints_to_keep`` returned: a count of at least 1, or ``None``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise hook_error(owner, hook, f"returned {value!r}", "return a whole number of at least 1, or None")
    return value


def check_judged_metric(runner: Runner, hook: str) -> None:
    """Before anything of the epoch is written: the metric the app is judged by must be there."""
    if runner.judged_by.key not in runner.metrics:
        known = ", ".join(k for k in runner.metrics if k.startswith(("validation_", "test_"))) or "none"
        raise HookError(f"the app is judged by {runner.judged_by.key} but epoch {runner.counters['epoch']} has only "
                        f"{known}, return '{runner.judged_by.name}' from {hook} "
                        f"or declare another metric in App(judged_by=...)")


def check_watched_metric(runner: Runner, key: str) -> None:
    """Early stopping's metric must be one the epoch has."""
    if key not in runner.metrics:
        raise HookError(f"early stopping watches {key}, which epoch {runner.counters['epoch']} does not have, set "
                        f"{type(runner).__name__}.early_stopping_metric to one of its metrics")


def check_loaders(data: Data, splits: tuple[str, ...], pipeline: str, processes: int) -> None:
    """After ``load_loaders``: a loader for each split the pipeline needs and, in a group, every loader ordered
    by an ``EpochSampler``, so that each process sees its shard rather than all of the split."""
    missing = [split for split in splits if split not in data.loaders]
    if missing:
        raise HookError(f"{type(data).__name__}.load_loaders left no loader for {', '.join(missing)}, which "
                        f"{pipeline} needs: fill self.loaders[...] (see {GUIDE})")
    if processes > 1:
        from .sampling import is_epoch_seeded

        whole = sorted(split for split, loader in data.loaders.items() if not is_epoch_seeded(loader))
        if whole:
            raise HookError(f"{type(data).__name__}.load_loaders ordered {', '.join(whole)} without an "
                            f"EpochSampler, so each of the {processes} processes would see all of it: give every "
                            f"loader an EpochSampler (see {GUIDE})")


def check_train_order(runner: Runner, processes: int) -> None:
    """The train loader's order must depend on (seed, epoch) alone for a resumed run to reproduce an unbroken one:
    one process warns without it, several refuse to train (each would train on all of the split)."""
    from .sampling import is_epoch_seeded, loader_sampler

    loader = runner.data.loaders["train"]
    if is_epoch_seeded(loader):
        return
    sampler = type(loader_sampler(loader)).__name__
    if processes > 1:
        raise HookError(f"the train loader's order ({sampler}) is not an EpochSampler's, so each of the {processes} "
                        f"processes would train on all of it, order it with an EpochSampler (see {GUIDE})")
    runner.logger.warning(f"the train loader's order ({sampler}) does not depend on (seed, epoch) alone, so a "
                          "resumed run will not reproduce an unbroken one; order it with an EpochSampler")


def check_description(data: Data, description: DataDescription, state: dict[str, Any]) -> None:
    """At ``init``: what ``describe`` returned, and the ``persisted`` attributes ``create`` computed."""
    from .data import DataDescription

    if not isinstance(description, DataDescription) or not is_json(asdict(description)) or not all(
            isinstance(name, str) and isinstance(size, int) for name, size in dict(description.splits).items()):
        raise HookError(f"{type(data).__name__}.describe returned {description!r:.80}, return a DataDescription"
                        f"(splits={{name: size}}, details={{name: JSON value}}) (see {GUIDE})")
    if not is_json(state):
        raise HookError(f"{type(data).__name__}.persisted names attributes JSON cannot hold ({', '.join(state)}), "
                        f"persist lists, numbers, strings and dicts only (see {GUIDE})")


def is_plain(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` will read ``value`` back: tensors, numbers, strings, None, and
    lists, tuples and dicts of them."""
    import torch

    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, (torch.Tensor, int, float, str, bool))


def shape_of(value: Any) -> str:
    """How a message names a returned value: ``a tensor of shape [32]``, ``a dict``, ``None``."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}" + ("" if value.requires_grad else " without grad")
    return "None" if value is None else f"a {type(value).__name__}"

