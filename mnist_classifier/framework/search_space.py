"""A sweep's search space: a JSON file of dotted configuration keys, each a float range (optionally log), an int
range (with a step) or a list of choices. It is checked against its own schema, then against the app's
configuration schema with every bound and choice in place, so a space that could give a trial a configuration the
app refuses is refused before any trial runs, in one line naming the key.

    {"training.lr": {"low": 0.01, "high": 0.3, "log": true}, "model.width": {"choices": [8, 16]},
     "training.batch_size": {"low": 64, "high": 256, "step": 64}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .configuration import apply_overrides, validate
from .errors import UserError

if TYPE_CHECKING:
    import optuna

SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"},
    "additionalProperties": {
        "oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["choices"],
             "properties": {"choices": {"type": "array", "minItems": 1}}},
            {"type": "object", "additionalProperties": False, "required": ["low", "high"],
             "properties": {"low": {"type": "number"}, "high": {"type": "number"}, "log": {"type": "boolean"},
                            "step": {"type": "number", "exclusiveMinimum": 0}}},
        ]
    },
}


@dataclass(frozen=True)
class Dimension:
    """One swept key: ``choices``, or a range from ``low`` to ``high`` (ints when both and ``step`` are ints)."""

    key: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high, self.step or 1))

    def bounds(self) -> list[Any]:
        """The values that must all be valid for every value of the dimension to be: its choices, or its ends."""
        if self.choices is not None:
            return list(self.choices)
        if self.is_int and self.step:
            return [self.low, self.low + (self.high - self.low) // self.step * self.step]
        return [self.low, self.high]

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)


def parse(space: Any, where: str) -> list[Dimension]:
    """The dimensions of a space read from ``where``; a malformed one is a ``UserError`` naming its key."""
    import jsonschema

    if not isinstance(space, dict) or not space:
        raise UserError(f"search space {where} must be a JSON object of dotted keys, such as "
                        '{"training.lr": {"low": 0.01, "high": 0.3}}, fix the file')
    for key, value in space.items():
        try:
            jsonschema.validate({key: value}, SCHEMA)
        except jsonschema.ValidationError:
            raise UserError(f"search space {where} has {key} = {json.dumps(value)}, give it "
                            '{"low": L, "high": H} (with "log": true or "step": S) or {"choices": [...]}') from None
    dimensions = []
    for key, value in space.items():
        if "choices" in value:
            dimensions.append(Dimension(key, choices=tuple(value["choices"])))
            continue
        dimension = Dimension(key, low=value["low"], high=value["high"], log=value.get("log", False),
                              step=value.get("step"))
        if not dimension.low < dimension.high or (dimension.log and (dimension.low <= 0 or dimension.step)):
            raise UserError(f"search space {where} has {key} from {dimension.low} to {dimension.high}"
                            f"{' on a log scale' if dimension.log else ''}, give a low below its high (above 0 "
                            "for log, and no step with log)")
        dimensions.append(dimension)
    return dimensions


def check_against(dimensions: list[Dimension], config: dict, schema: dict, where: str) -> None:
    """Every bound and choice of every dimension, set into ``config`` alone, must pass the app's ``schema``."""
    for dimension in dimensions:
        for value in dimension.bounds():
            candidate, origins = apply_overrides(config, [f"{dimension.key}={json.dumps(value)}"])
            try:
                validate(candidate, schema, "", origins)
            except UserError as error:
                reason = str(error).split("violates the schema at ", 1)[-1]
                for advice in (", fix that value", ", remove it or fix its spelling"):  # this error's is "narrow it"
                    reason = reason.removesuffix(advice)
                raise UserError(f"search space {where} can give {dimension.key} = {json.dumps(value)}, which the "
                                f"configuration schema refuses (at {reason.rstrip()}), narrow it") from None


def overrides(params: dict[str, Any]) -> list[str]:
    """A trial's parameters as ``--set`` overrides of its configuration."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]
