"""``compare``: one table over experiments, a sweep's trials or both, sorted by the metric the app is judged by.
It reads JSON only (``trial.json``, ``config.json``, ``results/epoch-*.json``), so it is instant on hundreds."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from ..cli import Pipeline
from ..context import Context
from ..errors import UserError
from ..experiment import Experiment
from ..metrics import best_epoch
from ..reports import flatten, format_metric
from ..storage import read_json
from ..sweep import RUNNING, Sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="experiments or sweeps (a sweep: all its trials)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print a JSON list, one object per experiment")
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--best", action="store_true",
                      help="print only the best experiment's name (for --experiment-name \"$(... compare S --best)\")")


def rows(ctx: Context) -> list[dict[str, Any]]:
    """One row per experiment named (a sweep's name stands for its trials), best first."""
    root, judged = Path(ctx.args.experiments_path), ctx.app.judged_by
    names: list[str] = []
    for name in ctx.args.names:
        sweep = Sweep(root, name)
        if sweep.exists():
            names += sweep.trial_names()
        elif (root / name / "config.json").is_file():
            names.append(name)
        else:
            raise UserError(f"'{name}' is neither an experiment nor a sweep in {root}, check the name")
    found = []
    for name in dict.fromkeys(names):
        experiment = Experiment(root, name)
        history = [experiment.read_epoch_metrics(epoch) for epoch in experiment.checkpoint_epochs()]
        history = [entry for entry in history if entry]
        best = best_epoch(history, judged)
        trial = experiment.read_trial() or {}
        found.append({
            "experiment": name,
            "state": trial.get("state", RUNNING if _held(experiment) else "finished"),
            "params": trial.get("params", {}),
            "config": read_json(experiment.config_file).get("config", {}),
            "best_value": next((e.get(judged.key) for e in history if e.get("epoch") == best), None),
            "best_epoch": best,
            "epochs": max((e.get("epoch", 0) for e in history), default=0),
            "seconds": round(sum(e.get("epoch_seconds", 0.0) for e in history), 1),
            **({"reason": trial["reason"]} if "reason" in trial else {}),
        })
    _add_differences(found)
    scored = sorted((r for r in found if r["best_value"] is not None), key=lambda r: -judged.score(r["best_value"]))
    return scored + [r for r in found if r["best_value"] is None]


def _held(experiment: Experiment) -> bool:
    from ..lock import ExperimentLock

    try:
        with ExperimentLock(experiment.lock_file, experiment.name, "compare"):
            return False
    except (UserError, OSError):
        return True


def _add_differences(found: list[dict[str, Any]]) -> None:
    """Each row's ``params``: a trial's own, else the configuration values that differ between the rows."""
    flat = [dict(flatten(row.pop("config"))) for row in found]
    keys = sorted({key for values in flat for key in values})
    differing = [key for key in keys if len({json.dumps(values.get(key)) for values in flat}) > 1]
    for row, values in zip(found, flat, strict=True):
        if not row["params"]:
            row["params"] = {key: values.get(key) for key in differing}


def run(ctx: Context) -> int:
    found, judged = rows(ctx), ctx.app.judged_by
    if ctx.args.json:
        print(json.dumps(found, indent=2))
        return 0
    if ctx.args.best:
        if not found or found[0]["best_value"] is None:
            raise UserError(f"none of {', '.join(ctx.args.names)} has a finished epoch yet, train or sweep first")
        print(found[0]["experiment"])
        return 0
    params = list(dict.fromkeys(key for row in found for key in row["params"]))
    header = ["", "experiment", "state", *params, f"best {judged.key}", "best epoch", "epochs", "seconds"]
    table = [["*" if i == 0 and row["best_value"] is not None else "", row["experiment"], row["state"],
              *[_cell(row["params"].get(key)) for key in params],
              format_metric(judged.key, row["best_value"]) if row["best_value"] is not None else "-",
              str(row["best_epoch"] or "-"), str(row["epochs"]), f"{row['seconds']:.1f}"]
             for i, row in enumerate(found)]
    if ctx.args.csv:
        out = io.StringIO()
        csv.writer(out).writerows([header[1:], *[line[1:] for line in table]])
        print(out.getvalue(), end="")
        return 0
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if not isinstance(value, str) else value


PIPELINE = Pipeline("compare", "one table over experiments and sweeps, best first", add_arguments, run)
