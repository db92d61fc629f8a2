"""``docs/permissions.md``: what each role of the platform may do and why, generated from the policies.

``python -m tools.permissions_table`` synthesizes the example platform (``config/platform.yaml``) and
writes one table over the stack kinds (network, platform, one team; every team stack has the same
shape) with a row per policy statement: the stack, the role, the statement's Sid (why), its
effect, actions, resources and conditions, as deployed in an account (``<account>``, ``<region>``,
``<LogicalId>`` for names CloudFormation generates). A test keeps the file equal to the output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from tools.iam.template import World

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "permissions.md"
EXAMPLE = ROOT / "config" / "platform.yaml"
HEADER = """# What each role may do, and why

Generated from the synthesized policies of the example platform (`config/platform.yaml`) by
`python -m tools.permissions_table` (`make schema` runs it; a test keeps this file in sync). Every team
stack has the shape of `mlp-team-fraud` below, with its own names. `<account>` and `<region>` are the
deployment's, `<LogicalId>` a name CloudFormation generates. The Sid says why a statement exists; how
these grants are proved sufficient and isolated is described in `docs/security.md`.
"""


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _cell(values: list) -> str:
    return "<br>".join(f"`{v}`" for v in values) if values else ""


def _conditions(condition: dict[str, Any]) -> str:
    parts = []
    for operator, keys in sorted(condition.items()):
        for key, value in sorted(keys.items()):
            shown = ", ".join(str(v) for v in _as_list(value))
            parts.append(f"`{operator} {key} = {shown}`")
    return "<br>".join(parts)


def _role_label(world: World, stack: str, logical_id: str) -> str:
    """The role's logical id without CDK's hash suffix."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


TABLE_HEAD = [
    "| stack | role | why (Sid) | effect | actions | resources | conditions |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]


def _roles(world: World, stack: str) -> list:
    return sorted(
        (r for r in world.resources("AWS::IAM::Role") if r.stack == stack),
        key=lambda r: _role_label(world, stack, r.logical_id),
    )


def role_descriptions(world: World, stack: str) -> list[str]:
    """One line per role of `stack`: what it runs (the role's description)."""
    return [
        f"- `{stack}` `{_role_label(world, stack, role.logical_id)}`: "
        f"{role.properties.get('Description', '(no description)')}"
        for role in _roles(world, stack)
    ]


def role_rows(world: World, stack: str) -> list[str]:
    """The table rows of every role of `stack`: one per statement (or a row saying it has none)."""
    rows = []
    for role in _roles(world, stack):
        label = f"`{stack}` | `{_role_label(world, stack, role.logical_id)}`"
        statements = world.role_statements(stack, role.logical_id)
        managed = world.aws_managed_policies(stack, role.logical_id)
        if not statements and not managed:
            rows.append(f"| {label} | (no permissions) | | | | |")
        for arn in managed:
            rows.append(f"| {label} | AWS-managed policy | Allow | `{arn.rsplit('/', 1)[-1]}` | | |")
        for statement in statements:
            actions = _as_list(statement.get("Action")) or [f"NOT {a}" for a in _as_list(statement.get("NotAction"))]
            resources = _as_list(statement.get("Resource")) or [
                f"NOT {r}" for r in _as_list(statement.get("NotResource"))
            ]
            rows.append(
                f"| {label} | {statement.get('Sid', '(granted by CDK)')} | {statement.get('Effect', 'Allow')} | "
                f"{_cell(sorted(actions))} | {_cell(resources)} | {_conditions(statement.get('Condition', {}))} |"
            )
    return rows


def render(templates: dict[str, dict], team_stack: str) -> str:
    world = World(templates, account="<account>", region="<region>", generated_names="placeholder")
    chosen = [s for s in templates if not s.split("-", 1)[-1].startswith("team-")] + [team_stack]
    lines = [HEADER, "## The roles", ""]
    for stack in chosen:
        lines += role_descriptions(world, stack)
    lines += ["", "## Their statements", "", *TABLE_HEAD]
    for stack in chosen:
        lines += role_rows(world, stack)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import tempfile

    argparse.ArgumentParser(
        prog="python -m tools.permissions_table", description="Regenerate docs/permissions.md from the synthesized policies of the example platform.",
    ).parse_args(argv)

    import aws_cdk as cdk

    from stacks.app_builder import build_platform, team_stack_name
    from stacks.config import load_config

    config = load_config(EXAMPLE)
    context = {k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items() if k != "config"}
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir, context=context)
        platform = build_platform(config, app, policy_gates=False)
        assembly = app.synth()
        templates = {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in platform.stacks}
    DOC.write_text(render(templates, team_stack_name(config, config.teams[0].name)))
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
