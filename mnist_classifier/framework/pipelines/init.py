"""``init``: validate a configuration, let the app's ``Data.create`` fix the splits, create the experiment."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..cli import Pipeline, seed
from ..configuration import Configuration, apply_overrides, read_json_file, validate
from ..context import Context
from ..contracts import check_description
from ..errors import UserError
from ..experiment import Experiment
from ..logs import attach_log_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-path", default="config.default.json",
                        help="configuration JSON (default: config.default.json)")
    parser.add_argument("--config-schema-file", "--config-schema-path", dest="config_schema_file",
                        default="config.schema.json", help="JSON Schema to validate it (default: config.schema.json)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed for splits, initialisation and shuffling (default: 0)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a configuration value before validation, e.g. --set training.lr=0.5 "
                             "--set model.name=mlp (dotted key, JSON value; repeatable)")


def run(ctx: Context) -> int:
    args = ctx.args
    experiment = Experiment(args.experiments_path, args.experiment_name)
    if experiment.path.exists():
        raise UserError(f"experiment '{experiment.name}' already exists in {args.experiments_path}, "
                        "choose another name or delete that folder")
    config = read_json_file(args.config_path, "configuration file")
    schema = read_json_file(args.config_schema_file, "schema file")
    if not isinstance(schema, dict):
        raise UserError(f"schema file {args.config_schema_file} must hold a JSON object, fix the file")
    create_experiment(ctx, experiment, config, schema, args.set or [], args.seed,
                      f"configuration file {args.config_path}")
    attach_log_file(ctx.logger, experiment.log_file)
    ctx.report(f"Created experiment '{experiment.name}' in {experiment.path}")
    return 0


def create_experiment(ctx: Context, experiment: Experiment, config: dict, schema: dict, overrides: list[str],
                      seed: int, config_name: str) -> None:
    """Validate ``config`` with its ``overrides`` against ``schema``, let the app's ``Data.create`` fix the splits,
    and create the experiment's folder (all or nothing). ``init`` and each trial of a sweep make theirs here."""
    config, origins = apply_overrides(config, overrides)
    values = validate(config, schema, config_name, origins)
    ctx.logger.info(f"Creating experiment '{experiment.name}' with seed {seed}")
    data = ctx.data(Configuration(values, seed))
    data.create(ctx.data_path)
    description, state = data.describe(), data.save()
    check_description(data, description, state)
    experiment.create(values, seed, state, overrides=overrides, data_description=asdict(description))


PIPELINE = Pipeline("init", "create an experiment from a configuration file", add_arguments, run)
