"""Autoscaling from config: the verifier registers it on InService, updates keep it, the reaper's teardown
deregisters it and the restored endpoint gets it back. Exact requests with botocore Stubber; the whole
life of an endpoint with moto (SageMaker, Application Auto Scaling, SSM)."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from common import naming, tags
from deploy_on_approval import deploy, endpoint_spec
from deploy_on_approval.messages import ApprovalChange
from deploy_on_approval.settings import DeploySettings
from endpoint_verifier import scaling, verify
from endpoint_verifier.settings import VerifierSettings
from idle_endpoint_reaper import teardown
from idle_endpoint_reaper.inventory import ManagedEndpoint
from moto import mock_aws

from stacks.config import Team
from stacks.constructs import deploy_on_approval as construct
from stacks.constructs.deploy_on_approval import use_cases_environment
from tests.sagemaker_events import endpoint_state_change
from tools import restore_endpoint

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
        {"name": "business-hours", "schedule": "cron(0 7 ? * MON-FRI *)", "min_instances": 4},
        {"name": "night", "schedule": "cron(0 20 ? * * *)", "min_instances": 2},
    ],
}
TEAM = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [
            {"name": "fraud-detection", "endpoint": {"initial_instance_count": 2, "autoscaling": SCALING}},
            {"name": "churn"},
        ],
    }
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
UNSCALED = naming.endpoint_name(PREFIX, "fraud", "churn")
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TARGET_ARN = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/056ff2f5d8ba4a2e90b1f5e3c4ac7c4e"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts"
OWNER_TAGS = {"mlops:managed-by": "sagemaker-mlops-platform", "mlops:team": "fraud", "mlops:platform": PREFIX}


def environment() -> dict[str, str]:
    return {
        "PLATFORM_PREFIX": PREFIX,
        "TEAM_NAME": "fraud",
        "COST_CENTER": "CC-1001",
        "ALERT_TOPIC_ARN": TOPIC,
        "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution",
        "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "DATA_CAPTURE_S3_URI": "s3://mlp-fraud-data/datacapture",
        "USE_CASES": use_cases_environment(PREFIX, TEAM),
    }


VERIFIER = VerifierSettings.from_env(environment())
DEPLOY = DeploySettings.from_env(environment())


def in_service(endpoint: str = ENDPOINT) -> dict:
    return endpoint_state_change(endpoint, "IN_SERVICE", region=REGION, account=ACCOUNT)


# --- the exact requests -------------------------------------------------------------------------------------


def expected_register() -> dict:
    return {
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
        "MinCapacity": 2, "MaxCapacity": 6, "Tags": OWNER_TAGS,
    }


def expected_policy() -> dict:
    return {
        "PolicyName": f"{ENDPOINT}-invocations-per-instance",
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 750.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 600,
            "ScaleOutCooldown": 45,
        },
    }


def expected_floor(name: str, schedule: str, low: int) -> dict:
    return {
        "ServiceNamespace": "sagemaker", "ScheduledActionName": f"{ENDPOINT}-floor-{name}",
        "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION, "Schedule": schedule, "Timezone": "UTC",
        "ScalableTargetAction": {"MinCapacity": low, "MaxCapacity": 6},
    }


DESCRIBE_TARGET = {"ServiceNamespace": "sagemaker", "ResourceIds": [RESOURCE_ID], "ScalableDimension": DIMENSION}
DESCRIBE_POLICY = {
    "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
    "PolicyNames": [f"{ENDPOINT}-invocations-per-instance"],
}
DESCRIBE_FLOORS = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION}
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_first_in_service_registers_exactly_the_configured_target_policy_and_floors():
    client = boto3.client("application-autoscaling", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("describe_scalable_targets", {"ScalableTargets": []}, DESCRIBE_TARGET)
        stub.add_response("register_scalable_target", {"ScalableTargetARN": TARGET_ARN}, expected_register())
        stub.add_response("describe_scaling_policies", {"ScalingPolicies": []}, DESCRIBE_POLICY)
        stub.add_response("put_scaling_policy", {"PolicyARN": "arn:policy", "Alarms": []}, expected_policy())
        stub.add_response("describe_scheduled_actions", {"ScheduledActions": []}, DESCRIBE_FLOORS)
        stub.add_response("put_scheduled_action", {}, expected_floor("business-hours", "cron(0 7 ? * MON-FRI *)", 4))
        stub.add_response("put_scheduled_action", {}, expected_floor("night", "cron(0 20 ? * * *)", 2))
        changes = scaling.ensure_scaling(
            client, ENDPOINT, VERIFIER.for_endpoint(ENDPOINT).scaling, team="fraud", prefix=PREFIX
        )
        stub.assert_no_pending_responses()
    assert changes == [
        "target 2-6", f"policy {ENDPOINT}-invocations-per-instance",
        f"floor {ENDPOINT}-floor-business-hours", f"floor {ENDPOINT}-floor-night",
    ]


def registered_as_configured() -> tuple[dict, dict, list[dict]]:
    target = {**{k: expected_register()[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")},
              "MinCapacity": 2, "MaxCapacity": 6, "RoleARN": "arn:role", "CreationTime": NOW,
              "ScalableTargetARN": TARGET_ARN}
    policy = {**expected_policy(), "PolicyARN": "arn:policy", "Alarms": [], "CreationTime": NOW}
    floors = [
        {**{k: v for k, v in expected_floor(n, s, low).items()}, "ScheduledActionARN": f"arn:{n}", "CreationTime": NOW}
        for n, s, low in (("business-hours", "cron(0 7 ? * MON-FRI *)", 4), ("night", "cron(0 20 ? * * *)", 2))
    ]
    return target, policy, floors


def test_a_target_already_as_configured_gets_no_write():
    client = boto3.client("application-autoscaling", region_name=REGION)
    target, policy, floors = registered_as_configured()
    with Stubber(client) as stub:
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [target]}, DESCRIBE_TARGET)
        stub.add_response("describe_scaling_policies", {"ScalingPolicies": [policy]}, DESCRIBE_POLICY)
        stub.add_response("describe_scheduled_actions", {"ScheduledActions": floors}, DESCRIBE_FLOORS)
        changes = scaling.ensure_scaling(
            client, ENDPOINT, VERIFIER.for_endpoint(ENDPOINT).scaling, team="fraud", prefix=PREFIX
        )
        stub.assert_no_pending_responses()
    assert changes == []


def test_other_limits_on_an_existing_target_stay_and_a_floor_no_longer_configured_is_removed_but_foreign_actions_stay():
    """The limits of an existing target are AWS's (floors, operators): no RegisterScalableTarget."""
    client = boto3.client("application-autoscaling", region_name=REGION)
    target, policy, floors = registered_as_configured()
    target = {**target, "MaxCapacity": 3}
    stale = {**floors[1], "ScheduledActionName": f"{ENDPOINT}-floor-weekend"}
    by_hand = {**floors[1], "ScheduledActionName": "someone-elses-action"}
    with Stubber(client) as stub:
        # the team's tags on the target, as the verifier's first registration set them
        stub.add_response("list_tags_for_resource", {"Tags": OWNER_TAGS}, {"ResourceARN": TARGET_ARN})
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [target]}, DESCRIBE_TARGET)
        stub.add_response("describe_scaling_policies", {"ScalingPolicies": [policy]}, DESCRIBE_POLICY)
        stub.add_response(
            "describe_scheduled_actions", {"ScheduledActions": [floors[0], stale], "NextToken": "t"}, DESCRIBE_FLOORS
        )
        stub.add_response(
            "describe_scheduled_actions", {"ScheduledActions": [floors[1], by_hand]}, {**DESCRIBE_FLOORS, "NextToken": "t"}
        )
        stub.add_response("delete_scheduled_action", {}, {
            "ServiceNamespace": "sagemaker", "ScheduledActionName": f"{ENDPOINT}-floor-weekend",
            "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION,
        })
        client.list_tags_for_resource(ResourceARN=TARGET_ARN)
        changes = scaling.ensure_scaling(
            client, ENDPOINT, VERIFIER.for_endpoint(ENDPOINT).scaling, team="fraud", prefix=PREFIX
        )
        stub.assert_no_pending_responses()
    assert changes == [f"removed floor {ENDPOINT}-floor-weekend"]


def test_a_use_case_without_autoscaling_makes_no_autoscaling_call():
    client = boto3.client("application-autoscaling", region_name=REGION)
    with Stubber(client) as stub:
        assert scaling.ensure_scaling(client, UNSCALED, VERIFIER.for_endpoint(UNSCALED).scaling,
                                      team="fraud", prefix=PREFIX) == []
        stub.assert_no_pending_responses()
    assert VERIFIER.for_endpoint(UNSCALED).scaling is None


def test_update_of_an_autoscaled_endpoint_keeps_the_scaled_fleet_size_but_takes_the_new_data_capture():
    scaled = DEPLOY.for_group(GROUP)
    request = endpoint_spec.update_endpoint_request(scaled, "cfg-v2")
    assert request["RetainAllVariantProperties"] is True
    assert request["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]
    assert request["DeploymentConfig"] == endpoint_spec.deployment_config(scaled)
    plain = DEPLOY.for_group(naming.model_package_group_name(PREFIX, "fraud", "churn"))
    assert set(endpoint_spec.update_endpoint_request(plain, "cfg-v2")) == {
        "EndpointName", "EndpointConfigName", "DeploymentConfig"
    }


def test_the_construct_grants_the_dimension_the_verifier_registers():
    assert construct.SCALABLE_DIMENSION == scaling.DIMENSION


# --- the life of an endpoint, with moto ----------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sns.create_topic(Name="mlp-fraud-alerts")
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)

    def approve_new_version(self) -> int:
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/m:1", "ModelDataUrl": "s3://b/m.tar.gz"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        return int(arn.rsplit("/", 1)[-1])

    def deploy(self, version: int) -> deploy.Outcome:
        change = ApprovalChange(group=GROUP, version=version, status="Approved",
                                arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}")
        return deploy.reconcile(self.sagemaker, self.sns, DEPLOY, DEPLOY.for_group(GROUP), change)

    def verify(self, settings: VerifierSettings = VERIFIER) -> verify.Report:
        return verify.handle_state_change(self.sagemaker, self.sns, settings, in_service(), self.autoscaling)

    def target(self) -> tuple[int, int] | None:
        found = self.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE_ID])
        targets = found["ScalableTargets"]
        return (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) if targets else None

    def policies(self) -> list[str]:
        found = self.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID)
        return [p["PolicyName"] for p in found["ScalingPolicies"]]

    def floors(self) -> dict[str, int]:
        found = self.autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID)
        return {a["ScheduledActionName"]: a["ScalableTargetAction"]["MinCapacity"] for a in found["ScheduledActions"]}


@pytest.fixture
def world():
    with mock_aws():
        yield World()


def test_deploy_register_reap_and_restore_keep_the_configured_scaling(world):
    version = world.approve_new_version()
    assert world.deploy(version).action == deploy.Action.CREATED
    report = world.verify()
    assert report.action == "verified"
    assert report.scaling_changes[0] == "target 2-6"
    assert world.target() == (2, 6)
    assert world.policies() == [f"{ENDPOINT}-invocations-per-instance"]
    assert world.floors() == {f"{ENDPOINT}-floor-business-hours": 4, f"{ENDPOINT}-floor-night": 2}

    again = world.verify()
    assert again.scaling_changes == [], "a second InService (e.g. after an update) changes nothing"
    assert world.target() == (2, 6)

    endpoint = world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    endpoint_tags = {t["Key"]: t["Value"] for t in world.sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert endpoint_tags[tags.SCALING_LIMITS] == "2-6", "the verifier records the limits it registered"
    managed = ManagedEndpoint(
        name=ENDPOINT, tags=endpoint_tags, config_name=endpoint["EndpointConfigName"], variants=("AllTraffic",),
        shadow_variants=(), serverless=False, status="InService", last_modified_time=NOW,
    )
    targets, errors = teardown.find_scalable_targets(world.autoscaling, [managed])
    assert errors == {} and [t.resource_id for t in targets[ENDPOINT]] == [RESOURCE_ID]
    result = teardown.tear_down(managed, targets[ENDPOINT], sagemaker=world.sagemaker,
                                autoscaling=world.autoscaling, ssm=world.ssm, now=NOW)
    assert result.error is None and result.deregistered == (RESOURCE_ID,)
    # AWS deletes the target's policy and scheduled actions with it; moto keeps them, which changes nothing below.
    assert world.target() is None

    plan = restore_endpoint.plan_restore(world.sagemaker, world.ssm, ENDPOINT)
    restore_endpoint.restore(world.sagemaker, world.ssm, plan)
    restored = world.verify()
    assert restored.scaling_changes[0] == "target 2-6"
    assert world.target() == (2, 6)
    assert world.floors() == {f"{ENDPOINT}-floor-business-hours": 4, f"{ENDPOINT}-floor-night": 2}


def test_a_config_change_of_the_limits_reaches_the_live_target_at_the_next_in_service(world):
    """max_instances 6 -> 10 deployed while the business-hours floor holds MinCapacity at 4: the next InService
    sends MaxCapacity 10 alone, the floor stays, and the endpoint's record follows."""
    assert world.deploy(world.approve_new_version()).action == deploy.Action.CREATED
    world.verify()
    world.autoscaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID,
                                               ScalableDimension=scaling.DIMENSION, MinCapacity=4)
    wider = Team.model_validate({**TEAM.model_dump(mode="json"), "use_cases": [
        {**TEAM.use_cases[0].model_dump(mode="json"),
         "endpoint": {**TEAM.use_cases[0].endpoint.model_dump(mode="json"),
                      "autoscaling": {**SCALING, "max_instances": 10}}},
        *[u.model_dump(mode="json") for u in TEAM.use_cases[1:]]]})
    settings = VerifierSettings.from_env({**environment(), "USE_CASES": use_cases_environment(PREFIX, wider)})

    report = world.verify(settings)

    assert report.scaling_changes[0] == "target MaxCapacity 10"
    assert world.target() == (4, 10)
    endpoint = world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    recorded = {t["Key"]: t["Value"] for t in world.sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert recorded[tags.SCALING_LIMITS] == "2-10"
    assert world.verify(settings).scaling_changes == []


# --- an instance type change of an autoscaled endpoint -------------------------------------------------------

LARGER = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [
            {"name": "fraud-detection",
             "endpoint": {"instance_type": "ml.m5.xlarge", "initial_instance_count": 2, "autoscaling": SCALING}},
            {"name": "churn"},
        ],
    }
)


def larger_settings() -> DeploySettings:
    return DeploySettings.from_env({**environment(), "USE_CASES": use_cases_environment(PREFIX, LARGER)})


def package(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


def test_an_update_to_another_instance_type_first_releases_the_target_then_updates():
    """Application Auto Scaling refuses an update that changes a registered variant's instance type."""
    settings = larger_settings()
    target = settings.for_group(GROUP)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    sm, asg = Stubber(sagemaker), Stubber(autoscaling)
    serving = endpoint_spec.endpoint_config_name(settings, target, 1)
    wanted = endpoint_spec.endpoint_config_name(settings, target, 2)
    endpoint = {"EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
                "EndpointConfigName": serving, "EndpointStatus": "InService", "CreationTime": now,
                "LastModifiedTime": now}
    sm.add_response("list_model_packages", {"ModelPackageSummaryList": [{
        "ModelPackageGroupName": GROUP, "ModelPackageVersion": 2, "ModelPackageArn": package(2),
        "CreationTime": now, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}]},
        {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
         "SortOrder": "Descending", "MaxResults": 1})
    sm.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:x:1:model/m"},
                    endpoint_spec.create_model_request(settings, target, package(2), 2))
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"},
                    endpoint_spec.create_endpoint_config_request(settings, target, package(2), 2))
    sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": serving, "EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/s", "CreationTime": now,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
                                "InitialInstanceCount": 2}]}, {"EndpointConfigName": serving})
    asg.add_response("describe_scalable_targets", {"ScalableTargets": [{
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION, "MinCapacity": 2,
        "MaxCapacity": 6, "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/x", "CreationTime": now,
        "ScalableTargetARN": TARGET_ARN}]}, DESCRIBE_TARGET)
    asg.add_response("deregister_scalable_target", {},
                     {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION})
    sm.add_response("add_tags", {}, {"ResourceArn": endpoint["EndpointArn"],
                                     "Tags": endpoint_spec.endpoint_tags(settings, package(2), 2, wanted)})
    sm.add_response("update_endpoint", {"EndpointArn": endpoint["EndpointArn"]},
                    endpoint_spec.update_endpoint_request(target, wanted))
    change = ApprovalChange(group=GROUP, version=2, status="Approved", arn=package(2))
    with sm, asg:
        outcome = deploy.reconcile(sagemaker, None, settings, target, change, autoscaling)
    sm.assert_no_pending_responses()
    asg.assert_no_pending_responses()
    assert (outcome.action, outcome.released_scaling) == (deploy.Action.UPDATED, RESOURCE_ID)


def test_the_same_instance_type_keeps_the_target_and_a_missing_one_is_no_error(world):
    version = world.approve_new_version()
    world.deploy(version)
    world.verify()
    endpoint = world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert deploy.release_scaling(world.sagemaker, world.autoscaling, DEPLOY.for_group(GROUP), endpoint) is None
    assert world.target() == (2, 6), "same instance type: scaling stays"
    larger = larger_settings().for_group(GROUP)
    assert deploy.release_scaling(world.sagemaker, world.autoscaling, larger, endpoint) == RESOURCE_ID
    assert world.target() is None
    assert deploy.release_scaling(world.sagemaker, world.autoscaling, larger, endpoint) is None, "already released"
    unscaled = DEPLOY.for_group(naming.model_package_group_name(PREFIX, "fraud", "churn"))
    assert deploy.release_scaling(world.sagemaker, world.autoscaling, unscaled, endpoint) is None
