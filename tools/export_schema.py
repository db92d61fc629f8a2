"""Write the config's JSON Schema and its field reference (``python -m tools.export_schema``).

Both files are generated from the pydantic model in `stacks/config.py`; tests fail when they drift.
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from stacks.config import LOADER_ONLY_RULES, PlatformConfig, json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "config" / "platform.schema.json"
DOCS_FILE = ROOT / "docs" / "config.md"

DOCS_HEADER = """# Platform config reference

`config/platform.yaml` is the one file a platform engineer edits; `config/platform.schema.json` lets editors
complete and check it. Every field is validated before any stack is built: a bad config stops synthesis with
one message listing every problem, each naming the field path, the value and what is allowed. This page is
generated from `stacks/config.py` by `make schema`; do not edit it by hand.

Names become parts of AWS resource names: the prefix starts every stack and resource name, team names have
no hyphens (so that no team's resources can match another team's IAM name patterns), and
`<prefix>-<team>-<use case>` is at most 47 characters (the registry group and endpoint name; model and
endpoint-config names add a version and a digest and stay within SageMaker's 63).

Settings that name or key a Domain, a UserProfile or a Model Package Group (`prefix`, team names, user names,
use-case names and descriptions) are fixed after the first deploy: changing them replaces those resources.

`stages` spreads the platform over accounts (`config/multi-account.yaml` is an example): the platform's
`account` and `region` are the development account's, which keeps Studio, the buckets, the registry, the
pipelines and MLflow, and each stage (in promotion order: the first serves the versions approved in the
registry, each later one the versions a reviewer promotes from the stage before it) is an account of its own,
in the same region for now, with a `<prefix>-<stage>-platform` stack and a `<prefix>-<stage>-team-<name>`
stack per team serving there. A team serves in every stage unless its `stages` lists the first few; with
`stages: []` it serves in the development account as on a platform without stages. Settings that do not yet
work across accounts are refused for a team serving in stages rather than ignored: its `budget`, endpoint
`monitoring`, and `endpoint` quotas when no team serves in the development account.

Numbers and booleans are written without quotes (`desired: 4`, `dry_run: false`; a quoted value is text),
text that YAML would read as a number is quoted (`account: "012345678901"`, `cost_center: "1001"`).
The constraints below are the schema's as well, so an editor flags the same mistakes; only these rules,
which involve several fields, are checked when the config is loaded and not by the schema:
"""


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found = []
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            found.append(candidate)
        elif getattr(candidate, "__args__", None):
            found += _models_in(candidate)
    return found


def _type_name(annotation: Any) -> str:
    """A field's type as a reader writes it: base types, list[...] and dict[...], and a Literal or an Enum as
    its allowed values."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(member) for member in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(f'`"{value}"`' for value in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " or ".join(f'`"{member.value}"`' for member in annotation)
    return getattr(annotation, "__name__", None) or str(annotation)


def _lists_values(annotation: Any) -> bool:
    """Whether the type column already lists the allowed values (a Literal or an Enum)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = [m for m in typing.get_args(annotation) if m is not type(None)] if union else [annotation]
    return all(
        typing.get_origin(m) is typing.Literal or (isinstance(m, type) and issubclass(m, Enum)) for m in members
    )


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if hasattr(value, "value"):
        value = value.value
    return f"`{json.dumps(value)}`" if value is not PydanticUndefined else ""


MAX_REGEX_SHOWN = 100


def _resolved(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    members = [m for m in schema.get("anyOf", ()) if m != {"type": "null"}]
    if len(members) == 1:
        return _resolved(members[0], defs)
    return schema


def _regex_of(pattern: str) -> str:
    """The loader's regex: the schema anchors it (JSON Schema patterns match anywhere)."""
    if pattern.startswith("^(?:") and pattern.endswith(")$"):
        return pattern[4:-2]
    return pattern.removeprefix("^").removesuffix("$")


def _count(low: int | None, high: int | None, unit: str) -> str:
    plural = unit if unit.endswith("s") else unit + "s"
    if low is not None and low == high:
        return f"exactly {low} {unit if low == 1 else plural}"
    if low is not None and high is not None:
        return f"{low}-{high} {plural}"
    if low is not None:
        return f"at least {low} {unit if low == 1 else plural}"
    return f"at most {high} {unit if high == 1 else plural}"


def _schema_constraints(schema: dict[str, Any], defs: dict[str, Any], *, values_listed: bool = False) -> list[str]:
    """What a property's JSON schema allows, in words (the allowed text and the regex of a pattern)."""
    schema = _resolved(schema, defs)
    if schema.get("type") == "object" and "properties" in schema:
        return []  # a section of its own
    parts = []
    if "enum" in schema and not values_listed:
        parts.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "pattern" in schema:
        regex = _regex_of(schema["pattern"])
        allowed = schema.get("patternErrorMessage", "matches")
        shown = f"regex `{regex}`" if len(regex) <= MAX_REGEX_SHOWN else "its regex is in config/platform.schema.json"
        parts.append(f"{allowed}; {shown}")
    if "not" in schema:
        parts.append("not " + ", ".join(f"`{value}`" for value in schema["not"].get("enum", ())))
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "minLength" in schema or "maxLength" in schema:
        parts.append(_count(schema.get("minLength"), schema.get("maxLength"), "character"))
    if "minItems" in schema or "maxItems" in schema:
        parts.append(_count(schema.get("minItems"), schema.get("maxItems"), "item"))
    if schema.get("uniqueItems"):
        parts.append("no duplicates")
    if isinstance(schema.get("items"), dict):
        inner = _schema_constraints(schema["items"], defs)
        if inner:
            parts.append("each item: " + "; ".join(inner))
    if isinstance(schema.get("propertyNames"), dict):
        inner = _schema_constraints(schema["propertyNames"], defs)
        if inner:
            parts.append("each key: " + "; ".join(inner))
    if isinstance(schema.get("additionalProperties"), dict):
        inner = _schema_constraints(schema["additionalProperties"], defs)
        if inner:
            parts.append("each value: " + "; ".join(inner))
    return parts


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_docs() -> str:
    schema = json_schema()
    defs = schema.get("$defs", {})
    rules = "\n".join(f"- {text}" for text in LOADER_ONLY_RULES.values())
    sections: list[str] = [DOCS_HEADER + "\n" + rules + "\n"]
    queue: list[tuple[str, type[BaseModel]]] = [("", PlatformConfig)]
    seen: set[str] = set()
    while queue:
        path, model = queue.pop(0)
        title = path.rstrip(".") or "top level"
        if model.__name__ in ("NewNetwork", "ExistingNetwork"):
            title += " (mode: new)" if model.__name__ == "NewNetwork" else " (mode: existing)"
        if title in seen:
            continue
        seen.add(title)
        properties = (schema if model is PlatformConfig else defs[model.__name__])["properties"]
        lines = [f"## {title}", "", (model.__doc__ or "").strip(), ""]
        lines += ["| field | type | default | constraints | description |", "| --- | --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            dotted = f"{path}{name}"
            constraints = _schema_constraints(properties[name], defs, values_listed=_lists_values(field.annotation))
            lines.append(
                f"| `{dotted}` | {_cell(_type_name(field.annotation))} | {_default(field)} | "
                f"{_cell('; '.join(constraints))} | {_cell(field.description or '')} |"
            )
            for nested in _models_in(field.annotation):
                queue.append((f"{dotted}[]." if "list[" in str(field.annotation) else f"{dotted}.", nested))
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def main() -> None:
    SCHEMA_FILE.write_text(render_schema())
    DOCS_FILE.write_text(render_docs())
    print(f"wrote {SCHEMA_FILE} and {DOCS_FILE}")


if __name__ == "__main__":
    main()
