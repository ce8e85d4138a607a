"""Experiment configuration: a JSON file validated against a JSON Schema, with the schema's defaults filled in."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .errors import UserError


def read_json_file(path: Path, what: str) -> Any:
    """Parse a user-supplied JSON file, turning every failure into a one-line ``UserError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist, check the path") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, give the path of a JSON file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{what} {path} cannot be read ({error}), check the file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}), fix the file"
        ) from None


def apply_defaults(config: Any, schema: dict) -> Any:
    """Return ``config`` with every missing property that the schema gives a ``default`` for filled in."""
    if not isinstance(config, dict) or not isinstance(schema, dict):
        return config
    result = copy.deepcopy(config)
    for key, subschema in schema.get("properties", {}).items():
        if not isinstance(subschema, dict):
            continue
        if key not in result and "default" in subschema:
            result[key] = copy.deepcopy(subschema["default"])
        if key in result:
            result[key] = apply_defaults(result[key], subschema)
    return result


def _key_path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def validate(config: Any, schema: dict, config_name: str = "configuration") -> dict:
    """Fill in defaults and validate; a violation is a ``UserError`` naming the offending key."""
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise UserError(f"the configuration schema is invalid at {_key_path(error.path)}: {error.message}, "
                        "fix the schema file") from None
    config = apply_defaults(config, schema)
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        error = errors[0]
        raise UserError(
            f"{config_name} violates the schema at {_key_path(error.path)}: {error.message}, fix that value"
        )
    return config


class Configuration:
    """Read-only access to an experiment's validated configuration, as in Skeltorch's ``get_conf``."""

    def __init__(self, values: dict, seed: int) -> None:
        self.values = values
        self.seed = seed

    def get(self, *keys: str, default: Any = None) -> Any:
        """``get('training', 'lr')`` returns ``values['training']['lr']``, or ``default`` when absent."""
        node: Any = self.values
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node
