"""Write the config's JSON Schema and its field reference (``python -m tools.export_schema``).

Both files are generated from the pydantic model in `stacks/config.py`; tests fail when they drift.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from stacks.config import PlatformConfig, json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "config" / "platform.schema.json"
DOCS_FILE = ROOT / "docs" / "config.md"

DOCS_HEADER = """# Platform config reference

`config/platform.yaml` is the one file a platform engineer edits; `config/platform.schema.json` lets editors
complete and check it. Every field is validated before any stack is built: a bad value stops synthesis with a
message naming the field path, the value and what is allowed. This page is generated from `stacks/config.py`
by `make schema`; do not edit it by hand.

Names become parts of AWS resource names: the prefix starts every stack and resource name, team names have
no hyphens (so that no team's resources can match another team's IAM name patterns), and
`<prefix>-<team>-<use case>` is at most 47 characters (the registry group and endpoint name; model and
endpoint-config names add a version and a digest and stay within SageMaker's 63).

Settings that name or key a Domain, a UserProfile or a Model Package Group (`prefix`, team names, user names,
use-case names and descriptions) are fixed after the first deploy: changing them replaces those resources.
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
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_member_name(member) for member in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("stacks.config.", "").replace("Optional", "optional")
    return text.replace(" | ", " or ")


def _member_name(annotation: Any) -> str:
    """One member of a union: a constrained type by its base type, a generic one as written."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _member_name(typing.get_args(annotation)[0])
    if annotation is type(None):
        return "None"
    if typing.get_origin(annotation) is not None:
        return str(annotation).replace("typing.", "").replace("stacks.config.", "")
    return getattr(annotation, "__name__", None) or str(annotation)


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if hasattr(value, "value"):
        value = value.value
    return f"`{json.dumps(value)}`" if value is not PydanticUndefined else ""


def _constraints(field) -> str:
    parts = []
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(item, name, None) is not None:
                parts.append(f"{name}={getattr(item, name)}")
    return ", ".join(parts)


def render_docs() -> str:
    sections: list[str] = [DOCS_HEADER]
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
        lines = [f"## {title}", "", (model.__doc__ or "").strip(), ""]
        lines += ["| field | type | default | constraints | description |", "| --- | --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            dotted = f"{path}{name}"
            lines.append(
                f"| `{dotted}` | {_type_name(field.annotation)} | {_default(field)} | {_constraints(field)} | "
                f"{field.description or ''} |"
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
