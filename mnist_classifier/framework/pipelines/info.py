"""``info``: the experiment's configuration, data, checkpoints and releases. Reads JSON only: no torch."""

from __future__ import annotations

import argparse
import json

from ..cli import Pipeline
from ..context import Context
from ..reports import format_info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(ctx: Context) -> int:
    summary = ctx.experiment().info(ctx.app.judged_by)
    print(json.dumps(summary, indent=2) if ctx.args.json else format_info(summary))
    return 0


PIPELINE = Pipeline("info", "configuration, splits, checkpoints and releases of an experiment", add_arguments, run)
