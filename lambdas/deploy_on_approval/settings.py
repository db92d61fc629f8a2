"""What the deploy Lambda knows about its team, read once from its environment.

The construct writes these variables; `USE_CASES` is one JSON list with an entry per use case::

    [{"use_case": "fraud-detection", "group": "mlp-fraud-fraud-detection",
      "endpoint": "mlp-fraud-fraud-detection",
      "alarms": ["mlp-fraud-fraud-detection-invocation-5xx-errors", "mlp-fraud-fraud-detection-model-latency"],
      "settings": {...EndpointSettings.model_dump(mode="json")...}}]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.environment import SettingsError, required_variable

ENV_PREFIX = "PLATFORM_PREFIX"
ENV_TEAM = "TEAM_NAME"
ENV_COST_CENTER = "COST_CENTER"
ENV_MODEL_EXECUTION_ROLE_ARN = "MODEL_EXECUTION_ROLE_ARN"
ENV_KMS_KEY_ARN = "KMS_KEY_ARN"
ENV_DATA_CAPTURE_S3_URI = "DATA_CAPTURE_S3_URI"
ENV_ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
ENV_USE_CASES = "USE_CASES"


@dataclass(frozen=True)
class UseCaseTarget:
    """One model package group and the endpoint that serves it."""

    use_case: str
    group: str
    endpoint: str
    alarm_names: tuple[str, ...]
    endpoint_settings: Mapping[str, Any]

    @property
    def deployment(self) -> Mapping[str, Any]:
        return self.endpoint_settings["deployment"]

    @property
    def data_capture(self) -> Mapping[str, Any]:
        return self.endpoint_settings["data_capture"]


@dataclass(frozen=True)
class DeploySettings:
    prefix: str
    team: str
    cost_center: str
    model_execution_role_arn: str
    kms_key_arn: str
    data_capture_s3_uri: str
    alert_topic_arn: str
    use_cases: Mapping[str, UseCaseTarget]

    def for_group(self, group: str) -> UseCaseTarget | None:
        return self.use_cases.get(group)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeploySettings:
        def required(name: str) -> str:
            return required_variable(env, name)

        try:
            entries = json.loads(required(ENV_USE_CASES))
            targets = [
                UseCaseTarget(
                    use_case=str(e["use_case"]),
                    group=str(e["group"]),
                    endpoint=str(e["endpoint"]),
                    alarm_names=tuple(str(a) for a in e["alarms"]),
                    endpoint_settings=e["settings"],
                )
                for e in entries
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{ENV_USE_CASES} is not the JSON list the construct writes: {exc}") from None
        return cls(
            prefix=required(ENV_PREFIX),
            team=required(ENV_TEAM),
            cost_center=env.get(ENV_COST_CENTER, ""),
            model_execution_role_arn=required(ENV_MODEL_EXECUTION_ROLE_ARN),
            kms_key_arn=required(ENV_KMS_KEY_ARN),
            data_capture_s3_uri=required(ENV_DATA_CAPTURE_S3_URI),
            alert_topic_arn=required(ENV_ALERT_TOPIC_ARN),
            use_cases={t.group: t for t in targets},
        )
