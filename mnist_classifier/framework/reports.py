"""The text a person reads: ``info``'s listing and the summary at the end of ``train``. Plain dicts in, lines
out, no torch. Metrics are worded from their ``<split>_<name>`` keys and the metric the app is judged by."""

from __future__ import annotations

import json
from typing import Any

from .metrics import Metric, best_epoch


def train_summary(name: str, history: list[dict[str, Any]], judged_by: Metric, kept: list[int]) -> list[str]:
    """The end of ``train`` on one screen: where it stopped and why, the best epoch and its figures, the time per
    epoch and the checkpoints left (``kept``)."""
    if not history:
        return [f"'{name}' has no finished epoch yet"]
    last = history[-1]
    stopped = ""
    if last.get("stopped_early"):
        stopped = f" (stopped early: {last['stop_reason']})" if last.get("stop_reason") else " (stopped early)"
    lines = [f"Trained '{name}' to epoch {last['epoch']}{stopped}"]
    best = best_epoch(history, judged_by)
    if best is not None:
        entry = next(item for item in history if item.get("epoch") == best)
        shown = [f"{split}_{judged_by.name}" for split in ("validation", "test", "train")] + ["validation_loss"]
        metrics = [f"{key.replace('_', ' ')} {format_metric(key, entry[key])}"
                   for key in dict.fromkeys(shown) if _is_number(entry.get(key))]
        lines.append(f"Best epoch {best}: " + " | ".join(metrics))
    timed = [item for item in history if _is_number(item.get("epoch_seconds"))]
    if timed:
        mean = sum(item["epoch_seconds"] for item in timed) / len(timed)
        steps = [item["train_seconds"] for item in timed if _is_number(item.get("train_seconds"))]
        detail = f", of which training steps {_seconds(sum(steps) / len(steps))}" if steps else ""
        epochs = f"{len(timed)} epoch" + ("s" if len(timed) > 1 else "")
        lines.append(f"Time per epoch: {_seconds(mean)} (mean of {epochs}{detail})")
    if kept:
        best_kept = f" (best {best})" if best in kept else ""
        lines.append("Checkpoints kept: epochs " + ", ".join(map(str, kept)) + best_kept)
    return lines


def format_info(summary: dict[str, Any]) -> str:
    """``Experiment.info()`` as the listing ``info`` prints."""
    lines = [f"Experiment '{summary['name']}' in {summary['path']}"]
    if trial := summary.get("trial"):
        lines.append(f"Trial {trial['number']} of sweep '{trial['sweep']}': {trial['state']}"
                     + (f" ({trial['reason']})" if trial.get("reason") else "") + " | "
                     + ", ".join(f"{key} {_format_value(value)}" for key, value in trial["params"].items()))
    lines += [f"Seed: {summary['seed']}", "Configuration:"]
    lines += [f"  {key} = {json.dumps(value)}" for key, value in flatten(summary["config"])]
    if summary.get("overrides"):
        lines.append("Set at init: " + " ".join(f"--set {item}" for item in summary["overrides"]))
    if summary.get("data"):
        lines.append("Data: " + " | ".join(f"{key.replace('_', ' ')} {_format_value(value)}"
                                           for key, value in summary["data"].items()))
    splits = ", ".join(f"{name} {size}" for name, size in summary["splits"].items())
    lines.append("Splits: " + (splits or "not described (the app's Data.describe() names none)"))
    if summary["checkpoints"]:
        best = summary.get("best_epoch")
        judged = summary["judged_by"]["metric"].replace("_", " ")
        lines.append("Checkpoints:" + (f" (best: epoch {best}, by {judged})" if best is not None else ""))
    else:
        lines.append("Checkpoints: none yet (run train)")
    lines += [_format_checkpoint(checkpoint) for checkpoint in summary["checkpoints"]]
    lines.append("Releases:" if summary["releases"] else "Releases: none (run create_release)")
    lines += [_format_checkpoint(release) for release in summary["releases"]]
    if summary.get("interrupted"):
        lines.append("Interrupted: an epoch was stopped part-way; train resumes it from the batch it reached")
    if summary.get("damaged"):
        lines.append("Damaged files set aside: " + ", ".join(summary["damaged"]))
    return "\n".join(lines)


def format_metric(key: str, value: float) -> str:
    if key.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    if key.endswith("seconds"):
        return f"{value:.1f}"
    return f"{value:.4g}"


def _format_checkpoint(entry: dict[str, Any]) -> str:
    metrics = [f"{key.replace('_', ' ')} {format_metric(key, value)}" for key, value in entry.items()
               if key not in ("epoch", "file") and _is_number(value)]
    flags = [key.replace("_", " ") for key in ("stopped_early",) if entry.get(key) is True]
    marker = " [best]" if entry.get("best") else ""
    return (f"  epoch {entry['epoch']} ({entry['file']}){marker}: "
            + (" | ".join(metrics + flags) or "no metrics recorded"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"training": {"lr": 1}}`` -> ``[("training.lr", 1)]``: the dotted keys ``--set`` and a search space use."""
    items: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        items += flatten(value, name + ".") if isinstance(value, dict) and value else [(name, value)]
    return items
