"""What the verifier knows about its team, read once from its environment.

It reads the same ``USE_CASES`` JSON list as the deploy Lambda (see `deploy_on_approval.settings`)
and keeps, per endpoint, the model package group it serves, how many older configs to keep, its
autoscaling and its monitoring schedule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from common import naming
from common.environment import SettingsError, required_variable

from .monitoring import MonitoringSettings
from .scaling import ScalingSettings

ENV_PREFIX = "PLATFORM_PREFIX"
ENV_TEAM = "TEAM_NAME"
ENV_ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
ENV_USE_CASES = "USE_CASES"
ENV_MONITORING_ROLE_ARN = "MONITORING_SCHEDULER_ROLE_ARN"
ENV_PIPELINE_ARN_PREFIX = "PIPELINE_ARN_PREFIX"
"""``arn:<partition>:sagemaker:<region>:<account>:pipeline/``: with a pipeline's lowercase name, its ARN."""


@dataclass(frozen=True)
class EndpointTarget:
    endpoint: str
    group: str
    keep_previous_configs: int
    scaling: ScalingSettings | None = None
    monitoring: MonitoringSettings | None = None


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

        prefix, team = required(ENV_PREFIX), required(ENV_TEAM)

        def monitoring(entry: dict) -> MonitoringSettings | None:
            section = entry["settings"].get("monitoring")
            if not section or not section.get("enabled"):
                return None
            use_case = str(entry["use_case"])
            return MonitoringSettings.from_config(
                section,
                pipeline_arn=required(ENV_PIPELINE_ARN_PREFIX)
                + naming.monitoring_pipeline_name(prefix, team, use_case).lower(),
                schedule_group=naming.monitoring_schedule_group(prefix, team, use_case),
                role_arn=required(ENV_MONITORING_ROLE_ARN),
            )

        try:
            targets = [
                EndpointTarget(
                    endpoint=str(e["endpoint"]),
                    group=str(e["group"]),
                    keep_previous_configs=int(e["settings"]["keep_previous_configs"]),
                    scaling=ScalingSettings.from_config(e["settings"].get("autoscaling")),
                    monitoring=monitoring(e),
                )
                for e in json.loads(required(ENV_USE_CASES))
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{ENV_USE_CASES} is not the JSON list the construct writes: {exc}") from None
        return cls(
            prefix=prefix,
            team=team,
            alert_topic_arn=required(ENV_ALERT_TOPIC_ARN),
            endpoints={t.endpoint: t for t in targets},
        )
