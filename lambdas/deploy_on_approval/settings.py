"""What the deploy Lambda knows about its team, read once from its environment.

The construct writes these variables; `USE_CASES` is one JSON list with an entry per use case::

    [{"use_case": "fraud-detection", "group": "mlp-fraud-fraud-detection",
      "endpoint": "mlp-fraud-fraud-detection",
      "alarms": ["mlp-fraud-fraud-detection-invocation-5xx-errors", "mlp-fraud-fraud-detection-model-latency"],
      "settings": {...EndpointSettings.model_dump(mode="json")...}}]

A stage account's function reads the development account's registry: ``MODEL_PACKAGE_GROUP_ARN_PREFIX``
(``arn:aws:sagemaker:<region>:<account>:model-package-group/``) then turns each group name into the group's
ARN for the registry calls (`DeploySettings.registry_group`); without it the groups are this account's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.environment import SettingsError, required_variable

from .approval import ApprovalRules

ENV_PREFIX = "PLATFORM_PREFIX"
ENV_TEAM = "TEAM_NAME"
ENV_COST_CENTER = "COST_CENTER"
ENV_MODEL_EXECUTION_ROLE_ARN = "MODEL_EXECUTION_ROLE_ARN"
ENV_KMS_KEY_ARN = "KMS_KEY_ARN"
ENV_DATA_CAPTURE_S3_URI = "DATA_CAPTURE_S3_URI"
ENV_ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
ENV_USE_CASES = "USE_CASES"
ENV_GROUP_ARN_PREFIX = "MODEL_PACKAGE_GROUP_ARN_PREFIX"
GROUP_ARN_PREFIX = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]{9,16}:[0-9]{12}:model-package-group/$")


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
    group_arn_prefix: str = ""
    approval_rules: ApprovalRules | None = None

    def for_group(self, group: str) -> UseCaseTarget | None:
        return self.use_cases.get(group)

    def registry_group(self, target: UseCaseTarget) -> str:
        """How the registry calls name `target`'s group: its ARN in another account's registry, else its name."""
        return f"{self.group_arn_prefix}{target.group}" if self.group_arn_prefix else target.group

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
        group_arn_prefix = env.get(ENV_GROUP_ARN_PREFIX, "")
        if group_arn_prefix and not GROUP_ARN_PREFIX.match(group_arn_prefix):
            raise SettingsError(f"{ENV_GROUP_ARN_PREFIX} is {group_arn_prefix!r}, not a model package group ARN "
                                "without the group name (arn:<partition>:sagemaker:<region>:<account>:model-package-group/)")
        return cls(
            prefix=required(ENV_PREFIX),
            team=required(ENV_TEAM),
            cost_center=env.get(ENV_COST_CENTER, ""),
            model_execution_role_arn=required(ENV_MODEL_EXECUTION_ROLE_ARN),
            kms_key_arn=required(ENV_KMS_KEY_ARN),
            data_capture_s3_uri=required(ENV_DATA_CAPTURE_S3_URI),
            alert_topic_arn=required(ENV_ALERT_TOPIC_ARN),
            use_cases={t.group: t for t in targets},
            group_arn_prefix=group_arn_prefix,
            approval_rules=ApprovalRules.from_env(env),
        )
