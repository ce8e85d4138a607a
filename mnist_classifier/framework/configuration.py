"""Experiment configuration: a JSON file plus ``--set KEY=VALUE`` overrides, validated against a JSON Schema with
the schema's defaults filled in."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
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


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'training.lr=0.5'`` -> ``(['training', 'lr'], 0.5)``; the value is JSON, or else a plain string (``mlp``)."""
    key, equals, raw = text.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(part.strip() for part in parts):
        raise UserError(f"--set {text!r} is not KEY=VALUE, write it like --set training.lr=0.5")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # Hydra-style: bare words are strings, no quoting needed on the command line
    return [part.strip() for part in parts], value


def apply_overrides(config: Any, overrides: list[str]) -> tuple[dict, dict[str, str]]:
    """Apply ``--set KEY=VALUE`` overrides (dotted keys, JSON values) to a copy of ``config``, in order.

    Returns the new configuration and, for each overridden key, the option that set it (to blame in errors).
    Missing objects on the way are created; the schema then decides whether the key exists.
    """
    if not overrides:
        return config, {}
    if not isinstance(config, dict):
        raise UserError("the configuration file must hold a JSON object to --set keys in, fix the file")
    result = copy.deepcopy(config)
    origins: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"--set {text}: {'.'.join(parts[:depth + 1])} is {json.dumps(child)}, not an object "
                                "with keys, set that key itself")
            node = child
        node[parts[-1]] = value
        origins[".".join(parts)] = f"--set {text}"
    return result, origins


def apply_defaults(config: Any, schema: dict, matches: Callable[[Any, dict], bool] | None = None) -> Any:
    """Return ``config`` with every missing property that the schema gives a ``default`` for filled in.

    Defaults under ``allOf: [{if, then}]`` apply when the ``if`` holds (``matches`` decides), so each variant of
    an object (``model.name`` = ``mlp``...) gets its own defaults.
    """
    if not isinstance(config, dict) or not isinstance(schema, dict):
        return config
    result = copy.deepcopy(config)
    for key, subschema in schema.get("properties", {}).items():
        if not isinstance(subschema, dict):
            continue
        if key not in result and "default" in subschema:
            result[key] = copy.deepcopy(subschema["default"])
        if key in result:
            result[key] = apply_defaults(result[key], subschema, matches)
    for branch in schema.get("allOf", []):
        if matches is not None and isinstance(branch, dict) and "if" in branch and matches(result, branch["if"]):
            result = apply_defaults(result, branch.get("then", {}), matches)
    return result


def _key_path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _describe(error: Any) -> tuple[str, str, str]:
    """The dotted key an error is about, what is wrong with it and what to do; an unknown key is named itself."""
    key = _key_path(error.path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [name for name in error.instance if name not in known]
        if unknown:
            where = list(error.path) + [unknown[0]]
            return (_key_path(where), f"unknown key (known here: {', '.join(known) or 'none'})",
                    "remove it or fix its spelling")
    return key, error.message, "fix that value"


def validate(config: Any, schema: dict, config_name: str = "configuration",
             origins: dict[str, str] | None = None) -> dict:
    """Fill in defaults and validate; a violation is a ``UserError`` naming the offending key.

    ``origins`` maps overridden keys to the ``--set`` that set them, so the error blames the option, not the file.
    """
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise UserError(f"the configuration schema is invalid at {_key_path(error.path)}: {error.message}, "
                        "fix the schema file") from None
    config = apply_defaults(config, schema, lambda value, subschema: validator_class(subschema).is_valid(value))
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        key, message, advice = _describe(errors[0])
        source = config_name
        for overridden, option in (origins or {}).items():
            if key == overridden or key.startswith(overridden + ".") or overridden.startswith(key + "."):
                source = option
        raise UserError(f"{source} violates the schema at {key}: {message}, {advice}")
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
