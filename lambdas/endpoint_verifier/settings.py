"""What the verifier knows about its team, read once from its environment.

It reads the same ``USE_CASES`` JSON list as the deploy Lambda (see `deploy_on_approval.settings`)
and keeps, per endpoint, the model package group it serves, how many older configs to keep and its
autoscaling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from common.environment import SettingsError, required_variable

from .scaling import ScalingSettings

ENV_PREFIX = "PLATFORM_PREFIX"
ENV_TEAM = "TEAM_NAME"
ENV_ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
ENV_USE_CASES = "USE_CASES"


@dataclass(frozen=True)
class EndpointTarget:
    endpoint: str
    group: str
    keep_previous_configs: int
    scaling: ScalingSettings | None = None


@dataclass(frozen=True)
class VerifierSettings:
    prefix: str
    team: str
    alert_topic_arn: str
    endpoints: Mapping[str, EndpointTarget]

    def for_endpoint(self, name: str) -> EndpointTarget | None:
        return self.endpoints.get(name)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VerifierSettings:
        def required(name: str) -> str:
            return required_variable(env, name)

        try:
            targets = [
                EndpointTarget(
                    endpoint=str(e["endpoint"]),
                    group=str(e["group"]),
                    keep_previous_configs=int(e["settings"]["keep_previous_configs"]),
                    scaling=ScalingSettings.from_config(e["settings"].get("autoscaling")),
                )
                for e in json.loads(required(ENV_USE_CASES))
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{ENV_USE_CASES} is not the JSON list the construct writes: {exc}") from None
        return cls(
            prefix=required(ENV_PREFIX),
            team=required(ENV_TEAM),
            alert_topic_arn=required(ENV_ALERT_TOPIC_ARN),
            endpoints={t.endpoint: t for t in targets},
        )
