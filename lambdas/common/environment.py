"""Reading a handler's settings from the environment the CDK construct wrote."""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(RuntimeError):
    """The function's environment is incomplete or not in the shape the construct writes."""


def required_variable(env: Mapping[str, str], name: str) -> str:
    """The value of `name`; SettingsError when it is missing or empty."""
    value = env.get(name, "")
    if not value:
        raise SettingsError(f"environment variable {name} is missing or empty")
    return value
