"""``sweep``: a hyperparameter search on Optuna whose trials are experiments (see ``sweep.py``). The first run
creates the sweep from a configuration, its schema and a search space; the same command, run again, continues
it with the settings it stored."""

from __future__ import annotations

import argparse

from ..cli import Pipeline, add_runtime, int_at_least, seed
from ..context import Context
from ..errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-path", help="the base configuration of every trial (first run only)")
    parser.add_argument("--config-schema-file", default="config.schema.json",
                        help="its JSON Schema (default: config.schema.json)")
    parser.add_argument("--space", help="the search space: JSON of dotted keys and their ranges (first run only)")
    parser.add_argument("--trials", type=int_at_least(1), default=None,
                        help="trials that end (finished, pruned or failed) before the sweep stops (default: 10; "
                             "a larger number goes on with a finished sweep)")
    parser.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                        help="stops trials that do worse than the others after the same epoch (default: median)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the sampler and of every trial's experiment (default: 0)")
    parser.add_argument("--max-epochs", type=int_at_least(1), default=None,
                        help="epochs of each trial (default: the configuration's training.max_epochs, else 10)")
    parser.add_argument("--storage", help="an Optuna database URL shared by workers on several machines "
                                          "(default: a journal file in the sweep's folder)")
    parser.add_argument("--workers", type=int_at_least(1), default=1,
                        help="worker processes on this machine, sharing its cores (default: 1)")
    add_runtime(parser)


def run(ctx: Context) -> int:
    import importlib.util

    from ..configuration import Configuration, read_json_file, validate
    from ..search_space import check_against, parse
    from ..sweep import Settings, Sweep, run_worker, tally
    from .train import max_epochs

    if importlib.util.find_spec("optuna") is None:
        raise UserError("sweep needs Optuna, which is not installed, install it with pip install optuna (or the "
                        "package's sweep extra)")
    args = ctx.args
    ctx.runtime  # noqa: B018 (the device is checked before the sweep's folder exists or any trial starts)
    sweep = Sweep(args.experiments_path, args.experiment_name)
    if sweep.exists():
        settings = sweep.load()
        given = [option for option, value in (("--config-path", args.config_path), ("--space", args.space),
                                              ("--storage", args.storage)) if value]
        if given:
            raise UserError(f"sweep '{sweep.name}' exists and keeps its settings, run it without {given[0]} "
                            "(or start another sweep)")
        if args.trials is not None and args.trials != settings.trials:
            from dataclasses import asdict

            from ..storage import write_json

            settings.trials = args.trials
            write_json(sweep.settings_file, asdict(settings))
    else:
        if not args.space or not args.config_path:
            raise UserError(f"sweep '{sweep.name}' does not exist yet, start it with --config-path CONFIG.json "
                            "--space SPACE.json")
        config = read_json_file(args.config_path, "configuration file")
        schema = read_json_file(args.config_schema_file, "schema file")
        if not isinstance(schema, dict) or not isinstance(config, dict):
            raise UserError(f"{args.config_path} and {args.config_schema_file} must hold JSON objects, fix them")
        values = validate(config, schema, f"configuration file {args.config_path}")
        space = read_json_file(args.space, "search space")
        check_against(parse(space, args.space), config, schema, args.space)
        until = max_epochs(args, Configuration(values, args.seed))
        judged = ctx.app.judged_by
        settings = Settings(config, schema, space, args.trials or 10, args.seed, args.pruner, until,
                            {"metric": judged.key, "higher_is_better": judged.higher_is_better}, args.storage)
        if settings.storage:  # and a database, which needs no folder
            sweep.study(settings)
        sweep.create(settings)
        ctx.report(f"Created sweep '{sweep.name}' in {sweep.path}: {settings.trials} trials of {until} epochs")
    if args.workers > 1:
        code = run_workers(ctx, args.workers)
        if code:
            return code
    else:
        run_worker(ctx, sweep, settings)
    counts = tally(sweep, settings)
    ctx.report(f"Sweep '{sweep.name}': {sum(counts.values())} trials ended ({counts['finished']} finished, "
               f"{counts['pruned']} pruned, {counts['failed']} failed); compare them with the compare pipeline")
    return 0


def run_workers(ctx: Context, workers: int) -> int:
    """``workers`` processes of this command, each a worker of the stored sweep with its share of the cores;
    SIGTERM reaches each (SIGINT from a terminal reaches them by itself). The first failing status is returned."""
    import os
    import signal
    import subprocess

    args = ctx.args
    command = [*ctx.app.command, "--experiment-name", args.experiment_name, "--experiments-path",
               str(args.experiments_path), "--data-path", str(args.data_path), *(["--verbose"] if args.verbose else []),
               "sweep", "--workers", "1", *(["--device", args.device] if args.device else []),
               "--precision", args.precision, *(["--compile"] if args.compile else []),
               *(["--no-progress"] if args.no_progress else [])]
    threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
    processes = [subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": threads}) for _ in range(workers)]
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: [p.send_signal(signum) for p in processes])
    try:
        codes = [process.wait() for process in processes]
    finally:
        signal.signal(signal.SIGTERM, previous)
    return next((code for code in codes if code), 0)


PIPELINE = Pipeline("sweep", "run (or continue) a hyperparameter sweep whose trials are experiments",
                    add_arguments, run)
