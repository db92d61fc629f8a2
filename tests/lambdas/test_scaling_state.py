"""Scaling state that AWS owns is never overwritten from config: one test per writer of a target's limits.

The writers: the verifier (a new target gets the config's limits; an existing one only the limit the config
changed since its record), a scheduled floor (it raises MinCapacity when its schedule fires), an operator (any
limit, or a suspended state), and the deploy Lambda's release before an instance-type change (the target is
deregistered and is new again). Exact requests with botocore
Stubber; the release with moto."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from common import naming
from deploy_on_approval import deploy, endpoint_spec
from deploy_on_approval.settings import DeploySettings
from endpoint_verifier import scaling
from endpoint_verifier.settings import VerifierSettings
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "mlp"
SCALING = {
    "enabled": True,
    "min_instances": 2,
    "max_instances": 6,
    "target_invocations_per_instance": 750,
    "scale_in_cooldown_seconds": 600,
    "scale_out_cooldown_seconds": 45,
    "scheduled_floors": [
        {"name": "business-hours", "schedule": "cron(0 7 ? * MON-FRI *)", "min_instances": 3},
        {"name": "night", "schedule": "cron(0 20 ? * * *)", "min_instances": 2},
    ],
}
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# the target whose ownership tags tests/lambdas/conftest.py knows (ASSUMED_TAGS)
TARGET_ARN = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/056ff2f5d8ba4a2e90b1f5e3c4ac7c4e"
OWNER_TAGS = {"mlops:managed-by": "sagemaker-mlops-platform", "mlops:team": "fraud", "mlops:platform": PREFIX}
NOW = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


def team(instance_type: str = "ml.m5.large") -> Team:
    return Team.model_validate({
        "name": "fraud", "cost_center": "CC-1001",
        "use_cases": [{"name": "fraud-detection", "endpoint": {
            "instance_type": instance_type, "initial_instance_count": 2, "autoscaling": SCALING}}],
    })


def environment(instance_type: str = "ml.m5.large") -> dict[str, str]:
    return {
        "PLATFORM_PREFIX": PREFIX, "TEAM_NAME": "fraud", "COST_CENTER": "CC-1001",
        "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts",
        "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution",
        "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "DATA_CAPTURE_S3_URI": "s3://mlp-fraud-data/datacapture",
        "USE_CASES": use_cases_environment(PREFIX, team(instance_type)),
    }


SETTINGS = VerifierSettings.from_env(environment()).for_endpoint(ENDPOINT).scaling
DESCRIBE_TARGET = {"ServiceNamespace": "sagemaker", "ResourceIds": [RESOURCE_ID], "ScalableDimension": DIMENSION}
DESCRIBE_POLICY = {
    "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
    "PolicyNames": [f"{ENDPOINT}-invocations-per-instance"],
}
DESCRIBE_FLOORS = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION}


def registered_target(low: int, high: int, **more: object) -> dict:
    return {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
            "MinCapacity": low, "MaxCapacity": high, "RoleARN": "arn:role", "CreationTime": NOW,
            "ScalableTargetARN": TARGET_ARN, **more}


def registered_policy(settings=SETTINGS) -> dict:
    return {**scaling.policy_request(ENDPOINT, settings), "PolicyARN": "arn:policy", "Alarms": [], "CreationTime": NOW}


def registered_floors(settings=SETTINGS) -> list[dict]:
    return [{**request, "ScheduledActionARN": f"arn:{request['ScheduledActionName']}", "CreationTime": NOW}
            for request in scaling.floor_requests(ENDPOINT, settings)]


def run_against(target: dict | None, *, floors: list[dict] | None = None, writes: list[tuple[str, dict]] = (),
                settings=SETTINGS, recorded: str | None = None, records: list[str] | None = None) -> list[str]:
    """ensure_scaling against a stubbed account holding `target`, the configured policy and `floors`;
    `writes` are the only write requests expected, in order, with their exact parameters. `recorded` is the
    endpoint's record of the limits; the new records the verifier makes are appended to `records`."""
    client = boto3.client("application-autoscaling", region_name=REGION)
    floors = registered_floors(settings) if floors is None else floors
    with Stubber(client) as stub:
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [target] if target else []}, DESCRIBE_TARGET)
        for operation, request in writes:
            if operation == "register_scalable_target":
                stub.add_response(operation, {"ScalableTargetARN": TARGET_ARN}, request)
        policy = [registered_policy(settings)] if target else []
        stub.add_response("describe_scaling_policies", {"ScalingPolicies": policy}, DESCRIBE_POLICY)
        for operation, request in writes:
            if operation == "put_scaling_policy":
                stub.add_response(operation, {"PolicyARN": "arn:policy", "Alarms": []}, request)
        stub.add_response("describe_scheduled_actions", {"ScheduledActions": floors}, DESCRIBE_FLOORS)
        for operation, request in writes:
            if operation == "put_scheduled_action":
                stub.add_response(operation, {}, request)
        changes = scaling.ensure_scaling(
            client, ENDPOINT, settings, team="fraud", prefix=PREFIX, recorded_limits=recorded,
            record_limits=None if records is None else records.append,
        )
        stub.assert_no_pending_responses()
    return changes


def test_a_scheduled_floor_in_effect_is_not_lowered_by_an_in_service_after_a_model_update():
    """The business-hours floor raised MinCapacity to 3; the config's min_instances is 2."""
    changes = run_against(registered_target(3, 6))
    assert changes == []


def test_an_operator_raised_max_capacity_and_suspended_state_are_not_reset():
    suspended = {"DynamicScalingInSuspended": True, "DynamicScalingOutSuspended": False,
                 "ScheduledScalingSuspended": False}
    changes = run_against(registered_target(2, 10, SuspendedState=suspended))
    assert changes == []


def test_a_first_registration_gets_the_configured_limits_tagged_with_the_team():
    register = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
                "MinCapacity": 2, "MaxCapacity": 6, "Tags": OWNER_TAGS}
    writes = [("register_scalable_target", register),
              ("put_scaling_policy", scaling.policy_request(ENDPOINT, SETTINGS)),
              *[("put_scheduled_action", floor) for floor in scaling.floor_requests(ENDPOINT, SETTINGS)]]
    changes = run_against(None, floors=[], writes=writes)
    assert changes == ["target 2-6", f"policy {ENDPOINT}-invocations-per-instance",
                       f"floor {ENDPOINT}-floor-business-hours", f"floor {ENDPOINT}-floor-night"]


def test_after_a_release_for_an_instance_type_change_the_target_is_registered_again_from_config():
    """`deploy.release_scaling` deregisters the target (AWS deletes its policy and scheduled actions with it, moto
    keeps them); the target is then new, so the verifier registers the config's limits. The floor that was in
    effect before the release is not re-applied: it holds again from its schedule's next run."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        sagemaker.create_model(ModelName="m", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
                               PrimaryContainer={"Image": "123.dkr.ecr.us-east-1.amazonaws.com/m:1"})
        settings = DeploySettings.from_env(environment())
        serving = endpoint_spec.endpoint_config_name(settings, settings.for_group(GROUP), 1)
        sagemaker.create_endpoint_config(EndpointConfigName=serving, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}])
        assert scaling.ensure_scaling(autoscaling, ENDPOINT, SETTINGS, team="fraud", prefix=PREFIX)[0] == "target 2-6"
        # the business-hours floor fires (what AWS does at its schedule)
        autoscaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID,
                                             ScalableDimension=DIMENSION, MinCapacity=3)
        assert scaling.ensure_scaling(autoscaling, ENDPOINT, SETTINGS, team="fraud", prefix=PREFIX) == []
        assert limits(autoscaling) == (3, 6)

        larger = DeploySettings.from_env(environment("ml.m5.xlarge")).for_group(GROUP)
        endpoint = {"EndpointName": ENDPOINT, "EndpointConfigName": serving}
        assert deploy.release_scaling(sagemaker, autoscaling, larger, endpoint) == RESOURCE_ID
        assert limits(autoscaling) is None

        changes = scaling.ensure_scaling(autoscaling, ENDPOINT, SETTINGS, team="fraud", prefix=PREFIX)
        assert changes[0] == "target 2-6"
        assert limits(autoscaling) == (2, 6)


def limits(autoscaling) -> tuple[int, int] | None:
    found = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE_ID])
    targets = found["ScalableTargets"]
    return (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) if targets else None


# --- a change of the config's limits reaches an existing target, and only the limit that changed -----------

def configured(low: int, high: int):
    return dataclasses.replace(SETTINGS, min_instances=low, max_instances=high)


def update(**capacity: int) -> dict:
    return {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION, **capacity}


def test_a_raised_max_instances_is_sent_alone_so_the_floor_in_effect_stays():
    """Recorded 2-6; the config now says 2-10 while the business-hours floor holds MinCapacity at 3."""
    records: list[str] = []
    changes = run_against(registered_target(3, 6), settings=configured(2, 10), recorded="2-6", records=records,
                          writes=[("register_scalable_target", update(MaxCapacity=10))])
    assert changes == ["target MaxCapacity 10"] and records == ["2-10"]


def test_a_lowered_min_instances_is_sent_alone_so_an_operators_max_stays():
    records: list[str] = []
    changes = run_against(registered_target(2, 12), settings=configured(1, 6), recorded="2-6", records=records,
                          writes=[("register_scalable_target", update(MinCapacity=1))])
    assert changes == ["target MinCapacity 1"] and records == ["1-6"]


def test_a_max_below_the_floor_in_effect_brings_the_min_along():
    """MaxCapacity below the registered MinCapacity is refused by the API: the config's min goes with it."""
    records: list[str] = []
    run_against(registered_target(3, 6), settings=configured(2, 2), recorded="2-6", records=records,
                writes=[("register_scalable_target", update(MinCapacity=2, MaxCapacity=2))])
    assert records == ["2-2"]


def test_unchanged_recorded_limits_write_nothing_and_record_nothing():
    records: list[str] = []
    assert run_against(registered_target(3, 10), recorded="2-6", records=records) == []
    assert records == []


@pytest.mark.parametrize("recorded", [None, "", "two-six", "2-"])
def test_without_a_usable_record_the_target_is_left_and_the_config_recorded(recorded):
    records: list[str] = []
    assert run_against(registered_target(3, 10), recorded=recorded, records=records) == []
    assert records == ["2-6"]


def test_a_new_target_is_recorded_with_the_limits_it_was_registered_with():
    register = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
                "MinCapacity": 2, "MaxCapacity": 6, "Tags": OWNER_TAGS}
    writes = [("register_scalable_target", register),
              ("put_scaling_policy", scaling.policy_request(ENDPOINT, SETTINGS)),
              *[("put_scheduled_action", floor) for floor in scaling.floor_requests(ENDPOINT, SETTINGS)]]
    records: list[str] = []
    run_against(None, floors=[], writes=writes, recorded="2-4", records=records)
    assert records == ["2-6"]
