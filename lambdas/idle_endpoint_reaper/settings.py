"""The reaper's settings: the platform's defaults, each team's overrides, and how they combine.

The CDK construct writes them into the function's environment (see `ENV_*`); `from_environment`
reads them back. Field names match `ReaperSettings` and `ReaperOverride` in ``stacks/config.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ENV_PREFIX = "PLATFORM_PREFIX"
ENV_IDLE_WINDOW_HOURS = "IDLE_WINDOW_HOURS"
ENV_GRACE_PERIOD_HOURS = "GRACE_PERIOD_HOURS"
ENV_DRY_RUN = "DRY_RUN"
ENV_MAX_DELETIONS = "MAX_DELETIONS_PER_RUN"
ENV_TEAM_OVERRIDES = "TEAM_OVERRIDES"
ENV_TOPIC_ARN = "ALERT_TOPIC_ARN"

OVERRIDE_FIELDS = ("idle_window_hours", "grace_period_hours", "dry_run", "exempt")


class SettingsError(ValueError):
    """The function's environment does not hold usable settings."""


@dataclass(frozen=True)
class TeamPolicy:
    """The settings that apply to one team's endpoints after overrides."""

    idle_window_hours: int
    grace_period_hours: int
    dry_run: bool
    exempt: bool = False


@dataclass(frozen=True)
class TeamOverride:
    """A team's overrides; ``None`` inherits the platform's value."""

    idle_window_hours: int | None = None
    grace_period_hours: int | None = None
    dry_run: bool | None = None
    exempt: bool = False


@dataclass(frozen=True)
class ReaperConfig:
    """Everything one run needs to know besides the clock and the clients."""

    prefix: str
    defaults: TeamPolicy
    max_deletions_per_run: int
    team_overrides: Mapping[str, TeamOverride] = field(default_factory=dict)

    def policy_for(self, team: str | None) -> TeamPolicy:
        """The effective settings for ``team`` (platform defaults when the team has no overrides)."""
        override = self.team_overrides.get(team or "")
        if override is None:
            return self.defaults
        return TeamPolicy(
            idle_window_hours=_pick(override.idle_window_hours, self.defaults.idle_window_hours),
            grace_period_hours=_pick(override.grace_period_hours, self.defaults.grace_period_hours),
            dry_run=_pick(override.dry_run, self.defaults.dry_run),
            exempt=override.exempt,
        )

    def forcing_dry_run(self) -> ReaperConfig:
        """The same settings with every team in dry-run mode (a manual preview)."""
        overrides = {name: replace(o, dry_run=True) for name, o in self.team_overrides.items()}
        return replace(self, defaults=replace(self.defaults, dry_run=True), team_overrides=overrides)


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def encode_team_overrides(overrides: Mapping[str, Mapping[str, Any]]) -> str:
    """Compact JSON for ``TEAM_OVERRIDES``: only teams and fields that differ from inheriting."""
    compact: dict[str, dict[str, Any]] = {}
    for team, values in sorted(overrides.items()):
        kept = {k: values[k] for k in OVERRIDE_FIELDS if values.get(k) is not None}
        if not kept.get("exempt"):
            kept.pop("exempt", None)
        if kept:
            compact[team] = kept
    return json.dumps(compact, separators=(",", ":"), sort_keys=True)


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true or false)")


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _parse_overrides(raw: str) -> dict[str, TeamOverride]:
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{ENV_TEAM_OVERRIDES} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{ENV_TEAM_OVERRIDES} must be a JSON object of team name to overrides")
    overrides: dict[str, TeamOverride] = {}
    for team, values in data.items():
        if not isinstance(values, dict) or set(values) - set(OVERRIDE_FIELDS):
            raise SettingsError(f"{ENV_TEAM_OVERRIDES}[{team!r}] may only hold {', '.join(OVERRIDE_FIELDS)}")
        overrides[team] = TeamOverride(
            idle_window_hours=values.get("idle_window_hours"),
            grace_period_hours=values.get("grace_period_hours"),
            dry_run=values.get("dry_run"),
            exempt=bool(values.get("exempt", False)),
        )
    return overrides


def from_environment(environ: Mapping[str, str]) -> ReaperConfig:
    """Read the settings the construct wrote into the function's environment."""
    try:
        prefix = environ[ENV_PREFIX]
        defaults = TeamPolicy(
            idle_window_hours=_parse_int(ENV_IDLE_WINDOW_HOURS, environ[ENV_IDLE_WINDOW_HOURS], 1),
            grace_period_hours=_parse_int(ENV_GRACE_PERIOD_HOURS, environ[ENV_GRACE_PERIOD_HOURS], 0),
            dry_run=_parse_bool(ENV_DRY_RUN, environ[ENV_DRY_RUN]),
        )
        max_deletions = _parse_int(ENV_MAX_DELETIONS, environ[ENV_MAX_DELETIONS], 0)
    except KeyError as missing:
        raise SettingsError(f"environment variable {missing.args[0]} is not set") from None
    return ReaperConfig(
        prefix=prefix,
        defaults=defaults,
        max_deletions_per_run=max_deletions,
        team_overrides=_parse_overrides(environ.get(ENV_TEAM_OVERRIDES, "{}")),
    )
