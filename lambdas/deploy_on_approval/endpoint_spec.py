"""Pure builders of the SageMaker requests the deploy Lambda sends: names, tags, configs, deployment.

Everything here is deterministic: the same settings and version always give the same names and
requests, which is what makes a repeated delivery of one event harmless.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from common import naming, tags

from .settings import DeploySettings, UseCaseTarget

VARIANT_NAME = "AllTraffic"
SETTINGS_DIGEST_LENGTH = 8

# Instance families with local NVMe storage: SageMaker rejects a volume KmsKeyId for them (their local
# volumes are encrypted by the instance's hardware module instead).
_LOCAL_STORAGE_FAMILY = re.compile(
    r"^ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|gr6|p5|p5e|p5en|trn1|trn1n|trn2)\.", re.IGNORECASE
)


def has_local_storage(instance_type: str) -> bool:
    """True for instance types whose volumes SageMaker encrypts itself (no KmsKeyId allowed)."""
    return bool(_LOCAL_STORAGE_FAMILY.match(instance_type))


def config_inputs(settings: DeploySettings, target: UseCaseTarget) -> dict[str, Any]:
    """Everything an endpoint config is built from besides the model: a change here needs a new config."""
    endpoint = target.endpoint_settings
    return {
        "instance_type": endpoint["instance_type"],
        "initial_instance_count": endpoint["initial_instance_count"],
        "data_capture": dict(endpoint["data_capture"]),
        "kms_key": settings.kms_key_arn,
        "data_capture_s3_uri": settings.data_capture_s3_uri,
    }


def settings_digest(settings: DeploySettings, target: UseCaseTarget) -> str:
    """Short stable digest of `config_inputs`, part of the endpoint config name."""
    canonical = json.dumps(config_inputs(settings, target), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:SETTINGS_DIGEST_LENGTH]


def model_name(settings: DeploySettings, target: UseCaseTarget, version: int) -> str:
    return naming.model_name(settings.prefix, settings.team, target.use_case, version)


def endpoint_config_name(settings: DeploySettings, target: UseCaseTarget, version: int) -> str:
    return naming.endpoint_config_name(
        settings.prefix, settings.team, target.use_case, version, settings_digest(settings, target)
    )


def ownership_tags(settings: DeploySettings, package_arn: str, version: int) -> list[dict[str, str]]:
    """Tags on every Model, EndpointConfig and Endpoint this Lambda creates."""
    result = [
        {"Key": tags.PLATFORM, "Value": settings.prefix},
        {"Key": tags.TEAM, "Value": settings.team},
        {"Key": tags.MANAGED_BY, "Value": tags.MANAGED_BY_VALUE},
        {"Key": tags.MODEL_PACKAGE_ARN, "Value": package_arn},
        {"Key": tags.MODEL_PACKAGE_VERSION, "Value": str(version)},
    ]
    if settings.cost_center:
        result.append({"Key": tags.COST_CENTER, "Value": settings.cost_center})
    return result


def endpoint_tags(settings: DeploySettings, package_arn: str, version: int, config_name: str) -> list[dict[str, str]]:
    """Ownership tags plus the config the endpoint is meant to serve (read by the verifier)."""
    return ownership_tags(settings, package_arn, version) + [
        {"Key": tags.INTENDED_ENDPOINT_CONFIG, "Value": config_name}
    ]


def create_model_request(settings: DeploySettings, target: UseCaseTarget, package_arn: str, version: int) -> dict:
    return {
        "ModelName": model_name(settings, target, version),
        "ExecutionRoleArn": settings.model_execution_role_arn,
        "Containers": [{"ModelPackageName": package_arn}],
        "Tags": ownership_tags(settings, package_arn, version),
    }


def create_endpoint_config_request(
    settings: DeploySettings, target: UseCaseTarget, package_arn: str, version: int
) -> dict:
    endpoint = target.endpoint_settings
    request: dict[str, Any] = {
        "EndpointConfigName": endpoint_config_name(settings, target, version),
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name(settings, target, version),
                "InstanceType": endpoint["instance_type"],
                "InitialInstanceCount": endpoint["initial_instance_count"],
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": ownership_tags(settings, package_arn, version),
    }
    if not has_local_storage(endpoint["instance_type"]):
        request["KmsKeyId"] = settings.kms_key_arn
    capture = target.data_capture
    if capture["enabled"]:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture["sampling_percent"],
            "DestinationS3Uri": settings.data_capture_s3_uri,
            "KmsKeyId": settings.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    return request


def traffic_routing(deployment: Mapping[str, Any], instance_count: int) -> dict[str, Any]:
    """The blue/green traffic shift of `deployment`.

    A canary or linear step must be at most half the fleet, so a one-instance endpoint shifts all at
    once (still blue/green: the new fleet bakes under the rollback alarms before the old one goes).
    """
    wait = deployment["wait_interval_seconds"]
    style = deployment["style"]
    if style == "canary" and instance_count >= 2:
        return {
            "Type": "CANARY",
            "WaitIntervalInSeconds": wait,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": deployment["canary_percent"]},
        }
    if style == "linear" and instance_count >= 2:
        return {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": wait,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": deployment["linear_step_percent"]},
        }
    return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}


def deployment_config(target: UseCaseTarget) -> dict[str, Any]:
    """Blue/green update with traffic shifting and rollback on the endpoint's two alarms."""
    deployment = target.deployment
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(
                deployment, target.endpoint_settings["initial_instance_count"]
            ),
            "TerminationWaitInSeconds": deployment["termination_wait_seconds"],
            "MaximumExecutionTimeoutInSeconds": deployment["maximum_execution_timeout_seconds"],
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in target.alarm_names]},
    }


def update_endpoint_request(target: UseCaseTarget, config_name: str) -> dict[str, Any]:
    """UpdateEndpoint to `config_name`. With autoscaling, the green fleet starts at the size the blue fleet has
    scaled to (not at ``initial_instance_count``), and only the new config's data capture replaces the old."""
    request: dict[str, Any] = {
        "EndpointName": target.endpoint,
        "EndpointConfigName": config_name,
        "DeploymentConfig": deployment_config(target),
    }
    if (target.endpoint_settings.get("autoscaling") or {}).get("enabled"):
        request["RetainAllVariantProperties"] = True
        request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DataCaptureConfig"}]
    return request
