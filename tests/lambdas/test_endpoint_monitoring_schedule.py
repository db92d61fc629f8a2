"""The monitoring schedule of an endpoint: the verifier creates it on InService for the serving version, keeps it
through scaling events, moves it to a new version, deletes it for a version without a baseline; the reaper
deletes it with the endpoint, the restored endpoint gets it back, and a deleted schedule group takes it away.
Exact requests with botocore Stubber; the whole life with moto (SageMaker, EventBridge Scheduler, SSM)."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from common import naming
from deploy_on_approval import deploy
from deploy_on_approval.messages import ApprovalChange
from deploy_on_approval.settings import DeploySettings
from endpoint_verifier import monitoring, verify
from endpoint_verifier.settings import VerifierSettings
from idle_endpoint_reaper import teardown
from idle_endpoint_reaper.inventory import ManagedEndpoint
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment
from tests.sagemaker_events import endpoint_state_change
from tools import restore_endpoint

REGION, ACCOUNT, PREFIX = "us-east-1", "123456789012", "mlp"
TEAM = Team.model_validate({
    "name": "fraud",
    "cost_center": "CC-1001",
    "use_cases": [
        {"name": "fraud-detection", "endpoint": {
            "data_capture": {"enabled": True},
            "monitoring": {"enabled": True, "schedule": "cron(15 0 * * ? *)", "window_hours": 24}}},
        {"name": "churn"},
    ],
})
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
UNMONITORED = naming.endpoint_name(PREFIX, "fraud", "churn")
SCHEDULE_GROUP = naming.monitoring_schedule_group(PREFIX, "fraud", "fraud-detection")
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{naming.monitoring_pipeline_name(PREFIX, 'fraud', 'fraud-detection')}"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlp-team-fraud-EndpointMonitoringSchedulerRole-1A2B3C"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts"
BUCKET = "mlp-fraud-data"


def environment() -> dict[str, str]:
    return {
        "PLATFORM_PREFIX": PREFIX, "TEAM_NAME": "fraud", "COST_CENTER": "CC-1001", "ALERT_TOPIC_ARN": TOPIC,
        "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution",
        "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "DATA_CAPTURE_S3_URI": f"s3://{BUCKET}/data-capture",
        "USE_CASES": use_cases_environment(PREFIX, TEAM),
        "MONITORING_SCHEDULER_ROLE_ARN": SCHEDULER_ROLE,
        "PIPELINE_ARN_PREFIX": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/",
    }


VERIFIER = VerifierSettings.from_env(environment())
DEPLOY = DeploySettings.from_env(environment())
SETTINGS = VERIFIER.for_endpoint(ENDPOINT).monitoring
LIVE = datetime(2026, 12, 3, 9, 30, 5, tzinfo=timezone.utc)


def package(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


def baseline(version: int) -> str:
    return f"s3://{BUCKET}/pipeline/runs/exec{version}/automl/drift-baseline/baseline.json"


def expected_schedule(version: int, since: str = "2026-12-03T09:30:05Z") -> dict:
    return {
        "Name": "drift-monitor",
        "GroupName": ENDPOINT,
        "Description": f"Monitoring of {ENDPOINT}: drift and quality against the serving version's baseline",
        "ScheduleExpression": "cron(15 0 * * ? *)",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": PIPELINE_ARN,
            "RoleArn": SCHEDULER_ROLE,
            "SageMakerPipelineParameters": {"PipelineParameterList": [
                {"Name": "ModelPackageArn", "Value": package(version)},
                {"Name": "BaselineUri", "Value": baseline(version)},
                {"Name": "ServingSince", "Value": since},
            ]},
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    }


def described_package(version: int, with_baseline: bool = True) -> dict:
    response = {"ModelPackageName": GROUP, "ModelPackageArn": package(version),
                "CreationTime": LIVE, "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []}}
    if with_baseline:
        response["DriftCheckBaselines"] = {"ModelDataQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": baseline(version)}}}
    return response


def existing(version: int, since: str = "2026-12-03T09:30:05Z") -> dict:
    request = expected_schedule(version, since)
    return {**{k: v for k, v in request.items() if k != "Description"}, "Arn": f"arn:aws:scheduler:{REGION}:"
            f"{ACCOUNT}:schedule/{ENDPOINT}/drift-monitor", "CreationDate": LIVE, "LastModificationDate": LIVE}


ENDPOINT_NOW = {"EndpointName": ENDPOINT, "LastModifiedTime": LIVE}
GET = {"Name": "drift-monitor", "GroupName": ENDPOINT}
MISSING = "ResourceNotFoundException"


def stubbed() -> tuple:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    scheduler = boto3.client("scheduler", region_name=REGION)
    return sagemaker, scheduler, Stubber(sagemaker), Stubber(scheduler)


def test_settings_name_the_use_cases_pipeline_group_and_role():
    assert SETTINGS == monitoring.MonitoringSettings("cron(15 0 * * ? *)", PIPELINE_ARN, SCHEDULE_GROUP, SCHEDULER_ROLE)
    assert SCHEDULE_GROUP == ENDPOINT
    assert VERIFIER.for_endpoint(UNMONITORED).monitoring is None


def test_first_in_service_creates_exactly_the_schedule_of_the_serving_version():
    sagemaker, scheduler, sm, sch = stubbed()
    sm.add_response("describe_model_package", described_package(3), {"ModelPackageName": package(3)})
    sch.add_client_error("get_schedule", MISSING, expected_params=GET, http_status_code=404)
    sch.add_response("create_schedule", {"ScheduleArn": "arn:aws:scheduler:x"}, expected_schedule(3))
    with sm, sch:
        changes = monitoring.ensure_schedule(scheduler, sagemaker, ENDPOINT_NOW, package(3), SETTINGS)
    sm.assert_no_pending_responses()
    sch.assert_no_pending_responses()
    assert changes == [f"schedule {ENDPOINT}/drift-monitor for {package(3)}"]


def test_an_update_of_the_same_version_keeps_its_serving_start_and_writes_nothing():
    """A scaling event updates the endpoint (a new LastModifiedTime) but the version served since LIVE."""
    sagemaker, scheduler, sm, sch = stubbed()
    sm.add_response("describe_model_package", described_package(3), {"ModelPackageName": package(3)})
    sch.add_response("get_schedule", existing(3), GET)
    later = {"EndpointName": ENDPOINT, "LastModifiedTime": datetime(2026, 12, 4, 15, tzinfo=timezone.utc)}
    with sm, sch:
        assert monitoring.ensure_schedule(scheduler, sagemaker, later, package(3), SETTINGS) == []
    sch.assert_no_pending_responses()


def test_a_new_version_moves_the_schedule_and_starts_its_window_when_it_went_live():
    went_live = datetime(2026, 12, 5, 8, 0, 0, tzinfo=timezone.utc)
    sagemaker, scheduler, sm, sch = stubbed()
    sm.add_response("describe_model_package", described_package(4), {"ModelPackageName": package(4)})
    sch.add_response("get_schedule", existing(3), GET)
    sch.add_response("update_schedule", {"ScheduleArn": "arn:aws:scheduler:x"},
                     expected_schedule(4, "2026-12-05T08:00:00Z"))
    with sm, sch:
        changes = monitoring.ensure_schedule(
            scheduler, sagemaker, {"EndpointName": ENDPOINT, "LastModifiedTime": went_live}, package(4), SETTINGS)
    sch.assert_no_pending_responses()
    assert changes == [f"schedule {ENDPOINT}/drift-monitor now for {package(4)}"]


def test_a_changed_expression_in_the_config_is_written():
    sagemaker, scheduler, sm, sch = stubbed()
    hourly = monitoring.MonitoringSettings("rate(1 hour)", PIPELINE_ARN, SCHEDULE_GROUP, SCHEDULER_ROLE)
    wanted = {**expected_schedule(3), "ScheduleExpression": "rate(1 hour)"}
    sm.add_response("describe_model_package", described_package(3), {"ModelPackageName": package(3)})
    sch.add_response("get_schedule", existing(3), GET)
    sch.add_response("update_schedule", {"ScheduleArn": "arn:aws:scheduler:x"}, wanted)
    with sm, sch:
        assert monitoring.ensure_schedule(scheduler, sagemaker, ENDPOINT_NOW, package(3), hourly)
    sch.assert_no_pending_responses()


def test_a_version_without_a_baseline_stops_the_monitoring():
    sagemaker, scheduler, sm, sch = stubbed()
    sm.add_response("describe_model_package", described_package(5, with_baseline=False),
                    {"ModelPackageName": package(5)})
    sch.add_response("get_schedule", existing(3), GET)
    sch.add_response("delete_schedule", {}, GET)
    with sm, sch:
        changes = monitoring.ensure_schedule(scheduler, sagemaker, ENDPOINT_NOW, package(5), SETTINGS)
    sch.assert_no_pending_responses()
    assert changes == [f"removed schedule: {package(5)} has no drift baseline"]


def test_the_baseline_metadata_property_stands_in_for_drift_check_baselines():
    sagemaker, _, sm, _ = stubbed()
    response = {**described_package(6, with_baseline=False),
                "CustomerMetadataProperties": {"DriftBaseline": baseline(6)}}
    sm.add_response("describe_model_package", response, {"ModelPackageName": package(6)})
    with sm:
        assert monitoring.baseline_uri(sagemaker, package(6)) == baseline(6)


def test_a_use_case_without_monitoring_makes_no_scheduler_call():
    sagemaker, scheduler, sm, sch = stubbed()
    with sm, sch:
        assert monitoring.ensure_schedule(scheduler, sagemaker, ENDPOINT_NOW, package(3), None) == []


# --- the life of an endpoint, with moto ----------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        self.autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sns.create_topic(Name="mlp-fraud-alerts")
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        self.scheduler.create_schedule_group(Name=SCHEDULE_GROUP)  # the stack's

    def approve_new_version(self) -> int:
        number = len(self.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) + 1
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/m:1", "ModelDataUrl": "s3://b/m.tar.gz"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            },
            DriftCheckBaselines={"ModelDataQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": baseline(number)}}},
        )["ModelPackageArn"]
        return int(arn.rsplit("/", 1)[-1])

    def deploy(self, version: int) -> deploy.Outcome:
        change = ApprovalChange(group=GROUP, version=version, status="Approved", arn=package(version))
        return deploy.reconcile(self.sagemaker, self.sns, DEPLOY, DEPLOY.for_group(GROUP), change)

    def verify(self, endpoint: str = ENDPOINT) -> verify.Report:
        event = endpoint_state_change(endpoint, "IN_SERVICE", region=REGION, account=ACCOUNT)
        return verify.handle_state_change(self.sagemaker, self.sns, VERIFIER, event, self.autoscaling,
                                          self.scheduler)

    def parameters(self) -> dict | None:
        try:
            found = self.scheduler.get_schedule(Name="drift-monitor", GroupName=SCHEDULE_GROUP)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return None
        return monitoring.schedule_parameters(found)


@pytest.fixture
def world():
    with mock_aws():
        yield World()


def test_deploy_verify_reap_restore_and_delete_the_use_case(world):
    first = world.approve_new_version()
    world.deploy(first)
    report = world.verify()
    assert report.monitoring_changes == [f"schedule {ENDPOINT}/drift-monitor for {package(first)}"]
    parameters = world.parameters()
    assert parameters["ModelPackageArn"] == package(first) and parameters["BaselineUri"] == baseline(first)
    assert world.verify().monitoring_changes == [], "a second InService changes nothing"

    endpoint = world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    endpoint_tags = {t["Key"]: t["Value"] for t in world.sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    managed = ManagedEndpoint(
        name=ENDPOINT, tags=endpoint_tags, config_name=endpoint["EndpointConfigName"], variants=("AllTraffic",),
        shadow_variants=(), serverless=False, status="InService", last_modified_time=LIVE,
    )
    result = teardown.tear_down(managed, [], sagemaker=world.sagemaker, autoscaling=world.autoscaling,
                                ssm=world.ssm, now=LIVE, scheduler=world.scheduler)
    assert result.error is None and result.schedule_deleted is True
    assert world.parameters() is None, "no monitoring job runs for a deleted endpoint"

    plan = restore_endpoint.plan_restore(world.sagemaker, world.ssm, ENDPOINT)
    restore_endpoint.restore(world.sagemaker, world.ssm, plan)
    assert world.verify().monitoring_changes == [f"schedule {ENDPOINT}/drift-monitor for {package(first)}"]
    assert world.parameters()["ModelPackageArn"] == package(first)

    world.scheduler.delete_schedule_group(Name=SCHEDULE_GROUP)  # the use case left the config
    assert world.parameters() is None


def test_the_reaper_reports_an_endpoint_without_a_schedule_as_plainly_deleted(world):
    assert teardown.delete_monitoring_schedule(world.scheduler, UNMONITORED) == (False, None)
    assert teardown.delete_monitoring_schedule(None, UNMONITORED) == (False, None), "no scheduler client, no call"


def test_an_unmonitored_endpoint_gets_no_schedule(world):
    group = naming.model_package_group_name(PREFIX, "fraud", "churn")
    world.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = world.sagemaker.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/m:1",
                                                "ModelDataUrl": "s3://b/m.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"]
    change = ApprovalChange(group=group, version=1, status="Approved", arn=arn)
    deploy.reconcile(world.sagemaker, world.sns, DEPLOY, DEPLOY.for_group(group), change)
    assert world.verify(UNMONITORED).monitoring_changes == []


def test_a_rolled_back_update_keeps_the_schedule_on_the_version_still_serving(world):
    from deploy_on_approval import endpoint_spec

    first = world.approve_new_version()
    world.deploy(first)
    world.verify()
    second = world.approve_new_version()
    # What the deploy Lambda writes before UpdateEndpoint; SageMaker then rolled the update back, so the
    # endpoint still serves the first version's config while its own tags name the second.
    target = DEPLOY.for_group(GROUP)
    wanted = endpoint_spec.endpoint_config_name(DEPLOY, target, second)
    arn = world.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    world.sagemaker.add_tags(ResourceArn=arn, Tags=endpoint_spec.endpoint_tags(DEPLOY, package(second), second, wanted))
    report = world.verify()
    assert report.action == "alerted_rolled_back"
    assert report.monitoring_changes == []
    assert world.parameters()["ModelPackageArn"] == package(first)
