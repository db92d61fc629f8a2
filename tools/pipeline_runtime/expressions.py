"""Values of a pipeline definition's expressions: ``Get``, ``Std:Join``, ``Std:JsonGet``, and conditions.

``Get`` paths: ``Parameters.<name>``, ``Execution.PipelineExecutionId`` / ``PipelineExecutionArn`` and
``Steps.<step>.<property path>``, where a property path walks the step's properties with ``.name``,
``[index]`` and ``['key']`` (``ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri``). ``Std:JsonGet``
reads a step's property file from S3 and walks its JSON with ``.name`` and ``[index]``. Anything unknown
raises ``ExpressionError`` naming it.
"""

from __future__ import annotations

import json
import re

TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]")
PARAMETER_TYPES = {"String": str, "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}


class ExpressionError(ValueError):
    """An expression the run cannot evaluate."""


def path_tokens(path: str) -> list:
    tokens, position = [], 0
    while position < len(path):
        match = TOKEN.match(path, position)
        if not match:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, index, key = match.groups()
        tokens.append(int(index) if index is not None else (key if key is not None else name))
        position = match.end()
    return tokens


def walk(value, tokens: list, where: str):
    for token in tokens:
        try:
            value = value[token]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{where} has no member {token!r}")
    return value


def parameter_values(declared: list, overrides: dict) -> dict:
    """Name -> typed value: defaults of the definition, replaced by ``overrides`` (strings or values)."""
    types = {p["Name"]: p.get("Type", "String") for p in declared}
    unknown = sorted(set(overrides) - set(types))
    if unknown:
        raise ExpressionError(f"unknown parameter(s) {unknown}; the pipeline declares {sorted(types)}")
    values = {}
    for parameter in declared:
        name = parameter["Name"]
        raw = overrides.get(name, parameter.get("DefaultValue"))
        if raw is None:
            raise ExpressionError(f"parameter {name} has no default and no value")
        try:
            values[name] = PARAMETER_TYPES[types[name]](raw)
        except ValueError:
            raise ExpressionError(f"parameter {name} must be {types[name]}, got {raw!r}")
    return values


class Context:
    """What expressions see: parameters, execution identity, finished steps' properties, property files."""

    def __init__(self, parameters: dict, execution_id: str, execution_arn: str, read_json) -> None:
        self.parameters = parameters
        self.execution = {"PipelineExecutionId": execution_id, "PipelineExecutionArn": execution_arn}
        self.steps: dict = {}
        self.property_files: dict = {}
        self.read_json = read_json

    def get(self, path: str):
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"parameter {rest!r} is not declared")
            return self.parameters[rest]
        if head == "Execution":
            if rest not in self.execution:
                raise ExpressionError(f"unknown execution property {rest!r}")
            return self.execution[rest]
        if head == "Steps":
            step, _, property_path = rest.partition(".")
            if step not in self.steps:
                raise ExpressionError(f"step {step!r} has not run (referenced by {path!r})")
            return walk(self.steps[step], path_tokens(property_path), f"step {step}")
        raise ExpressionError(f"unknown reference {path!r}")

    def value(self, expression):
        """The value of ``expression`` (plain values evaluate to themselves, containers element-wise)."""
        if isinstance(expression, dict):
            if set(expression) == {"Get"}:
                return self.get(expression["Get"])
            if set(expression) == {"Std:Join"}:
                join = expression["Std:Join"]
                return join["On"].join(_text(self.value(v)) for v in join["Values"])
            if set(expression) == {"Std:JsonGet"}:
                return self.json_get(expression["Std:JsonGet"])
            if len(expression) == 1 and next(iter(expression)).startswith("Std:"):
                raise ExpressionError(f"unknown function {next(iter(expression))!r}")
            return {k: self.value(v) for k, v in expression.items()}
        if isinstance(expression, list):
            return [self.value(v) for v in expression]
        return expression

    def json_get(self, arguments: dict):
        reference = arguments["PropertyFile"]["Get"]
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference)
        if not match or match.group(1) not in self.property_files or match.group(2) not in self.property_files[match.group(1)]:
            raise ExpressionError(f"no property file {reference!r}")
        document = self.read_json(self.property_files[match.group(1)][match.group(2)])
        return walk(document, path_tokens(arguments["Path"]), f"property file {reference}")

    def condition(self, condition: dict) -> bool:
        kind = condition["Type"]
        if kind == "Not":
            return not self.condition(condition["Expression"])
        if kind == "Or":
            return any(self.condition(c) for c in condition["Conditions"])
        if kind == "In":
            return self.value(condition["QueryValue"]) in [self.value(v) for v in condition["Values"]]
        left, right = self.value(condition["LeftValue"]), self.value(condition["RightValue"])
        comparisons = {
            "Equals": lambda a, b: a == b,
            "GreaterThan": lambda a, b: float(a) > float(b),
            "GreaterThanOrEqualTo": lambda a, b: float(a) >= float(b),
            "LessThan": lambda a, b: float(a) < float(b),
            "LessThanOrEqualTo": lambda a, b: float(a) <= float(b),
        }
        if kind not in comparisons:
            raise ExpressionError(f"unknown condition type {kind!r}")
        return comparisons[kind](left, right)


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def references(value) -> set:
    """Names of the steps ``value`` refers to (``Get`` paths and property files)."""
    found = set()
    if isinstance(value, dict):
        if set(value) == {"Get"} and value["Get"].startswith("Steps."):
            found.add(value["Get"].split(".")[1])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def json_dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
