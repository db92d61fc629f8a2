"""Settings that would replace a Studio Domain, a UserProfile or a Model Package Group once deployed.

CloudFormation replaces a resource when one of its create-only properties changes. For the three resource
types whose replacement loses state or fails outright (a Domain and its home volumes, a profile and its
spaces, a registry group with versions), the platform:

- reads the create-only properties from the CloudFormation resource schemas that cfn-lint ships
  (`create_only_paths`), so tests can check any two synthesized templates (`replacements`);
- records, after each deploy, the config values that feed those properties in a lock file next to the
  config (``platform.yaml`` -> ``platform.lock.json``), and rejects a later config that changes them
  (`check_against_lock`), before anything is synthesized.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from stacks.config import ConfigError, PlatformConfig

GUARDED_TYPES = ("AWS::SageMaker::Domain", "AWS::SageMaker::UserProfile", "AWS::SageMaker::ModelPackageGroup")


@cache
def create_only_paths(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """Property paths (as tuples) whose change makes CloudFormation replace a resource of this type."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    return tuple(tuple(p.split("/")[2:]) for p in schema.get("createOnlyProperties", []))


def _at(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = properties
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def replacements(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    """Guarded resources present in both template sets whose create-only properties differ."""
    found = []
    for stack, template in old.items():
        new_resources = new.get(stack, {}).get("Resources", {})
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] not in GUARDED_TYPES or logical_id not in new_resources:
                continue
            before, after = resource.get("Properties", {}), new_resources[logical_id].get("Properties", {})
            for path in create_only_paths(resource["Type"]):
                if _at(before, path) != _at(after, path):
                    found.append(f"{stack}/{logical_id} ({resource['Type']}): {'/'.join(path)} changes")
    return found


def fixed_settings(config: PlatformConfig) -> dict[str, str]:
    """Config values that feed create-only properties, keyed by their field path."""
    fixed = {"prefix": config.prefix}
    for team in config.teams:
        for use_case in team.use_cases:
            fixed[f"teams[{team.name}].use_cases[{use_case.name}].description"] = use_case.description
    return fixed


def lock_path_for(config_path: str | Path) -> Path:
    path = Path(config_path)
    return path.with_name(f"{path.stem}.lock.json")


def write_lock(config: PlatformConfig, config_path: str | Path) -> Path:
    lock = lock_path_for(config_path)
    lock.write_text(json.dumps({"fixed_settings": fixed_settings(config)}, indent=2, sort_keys=True) + "\n")
    return lock


def missing_lock_warning(config_path: str | Path) -> str | None:
    """The warning to print when no deploy is recorded for ``config_path`` (the guard cannot check), else None."""
    lock = lock_path_for(config_path)
    if lock.exists():
        return None
    return (
        f"warning: replacement guard off for {config_path}: no {lock} records a deploy yet. "
        f"`make deploy` writes it; after `npx cdk deploy` run `python -m tools.record_deployment {config_path}` "
        "once and commit the file, so a later change that would replace a Studio domain, user profile or "
        "registry group is refused before deploying."
    )


def check_against_lock(config: PlatformConfig, config_path: str | Path) -> None:
    """Raise ConfigError naming every fixed setting the config changes since the last recorded deploy."""
    lock = lock_path_for(config_path)
    if not lock.exists():
        return
    recorded = json.loads(lock.read_text())["fixed_settings"]
    current = fixed_settings(config)
    problems = [
        f"  - {field}: {recorded[field]!r} -> {current[field]!r} is not allowed: this setting is fixed after the "
        "first deploy (changing it would replace a Studio domain, user profile or registry group)"
        for field in sorted(recorded)
        if field in current and current[field] != recorded[field]
    ]
    if problems:
        raise ConfigError(
            f"{config_path}: changes settings fixed by the last deploy (recorded in {lock.name}):\n"
            + "\n".join(problems)
            + f"\n  Revert them, or delete {lock.name} only if the affected resources were removed on purpose."
        )
