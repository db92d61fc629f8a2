"""The endpoint verifier: moto for endpoints, configs, models, tags and SNS; botocore Stubber for an
endpoint whose status moved on after the event (moto's endpoints are InService at once)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from common import clients, naming, tags
from deploy_on_approval import endpoint_spec
from deploy_on_approval.settings import DeploySettings
from endpoint_verifier import handler, verify
from endpoint_verifier.settings import VerifierSettings
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment
from tests.sagemaker_events import endpoint_state_change

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "mlp"
TEAM = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [
            {"name": "fraud-detection", "endpoint": {"keep_previous_configs": 2}},
            {"name": "churn"},
        ],
    }
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
OTHER_ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "churn")
WRITES = {"DeleteEndpointConfig", "DeleteModel", "DeleteEndpoint", "CreateEndpoint", "UpdateEndpoint", "AddTags"}


def state_change(endpoint: str, status: str, **extra) -> dict:
    return endpoint_state_change(endpoint, status, region=REGION, account=ACCOUNT, **extra)


def deploy_settings(topic_arn: str, team: str = "fraud") -> DeploySettings:
    return DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": team,
            "COST_CENTER": "CC-1001",
            "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/model-execution",
            "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "DATA_CAPTURE_S3_URI": "s3://bucket/data-capture",
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )


def verifier_settings(topic_arn: str) -> VerifierSettings:
    return VerifierSettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": "fraud",
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )


class CallLog:
    def __init__(self, client) -> None:
        self.names: list[str] = []
        client.meta.events.register("provide-client-params.*.*", lambda model, **_: self.names.append(model.name))

    def writes(self) -> list[str]:
        return [n for n in self.names if n in WRITES]


class Aws:
    """Models and configs made exactly as the deploy Lambda makes them (same requests, same tags)."""

    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn = self.sns.create_topic(Name="alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.deploy = deploy_settings(self.topic_arn)
        self.settings = verifier_settings(self.topic_arn)

    def package(self, version: int, group: str = GROUP) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"

    def make_version(self, version: int, settings: DeploySettings | None = None) -> str:
        settings = settings or self.deploy
        target = settings.for_group(GROUP)
        arn = self.package(version)
        self.sagemaker.create_model(**endpoint_spec.create_model_request(settings, target, arn, version))
        request = endpoint_spec.create_endpoint_config_request(settings, target, arn, version)
        self.sagemaker.create_endpoint_config(**request)
        return request["EndpointConfigName"]

    def serve(self, version: int, intended: int | None = None, endpoint: str = ENDPOINT) -> None:
        intended = version if intended is None else intended
        self.sagemaker.create_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=self.config(version),
            Tags=endpoint_spec.endpoint_tags(self.deploy, self.package(intended), intended, self.config(intended)),
        )

    def config(self, version: int) -> str:
        return endpoint_spec.endpoint_config_name(self.deploy, self.deploy.for_group(GROUP), version)

    def model(self, version: int) -> str:
        return naming.model_name(PREFIX, "fraud", "fraud-detection", version)

    def configs(self) -> set[str]:
        return {c["EndpointConfigName"] for c in self.sagemaker.list_endpoint_configs()["EndpointConfigs"]}

    def models(self) -> set[str]:
        return {m["ModelName"] for m in self.sagemaker.list_models()["Models"]}

    def verify(self, event: dict) -> verify.Report:
        return verify.handle_state_change(self.sagemaker, self.sns, self.settings, event)

    def alerts(self) -> list[dict]:
        messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


def test_healthy_endpoint_keeps_current_and_newest_k_older_configs_and_models(aws):
    for version in range(1, 6):
        aws.make_version(version)
    aws.serve(5)

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report.action == "verified"
    assert sorted(report.deleted_configs) == [aws.config(1), aws.config(2)]
    assert sorted(report.deleted_models) == [aws.model(1), aws.model(2)]
    assert aws.configs() == {aws.config(v) for v in (3, 4, 5)}
    assert aws.models() == {aws.model(v) for v in (3, 4, 5)}
    assert aws.alerts() == []


def test_nothing_an_endpoint_references_is_deleted(aws):
    for version in range(1, 6):
        aws.make_version(version)
    aws.serve(5)
    aws.serve(1, endpoint=OTHER_ENDPOINT)

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report.deleted_configs == [aws.config(2)]
    assert report.deleted_models == [aws.model(2)]
    assert aws.config(1) in aws.configs() and aws.model(1) in aws.models()


def test_only_resources_managed_for_this_team_and_group_are_deleted(aws):
    """Older look-alikes by name: untagged, another team's, another group's. None of them is deleted."""
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    ours = endpoint_spec.ownership_tags(aws.deploy, aws.package(9), 9)
    look_alikes = {
        f"{ENDPOINT}-v9-untagged": [],
        f"{ENDPOINT}-v9-otherteam": [t if t["Key"] != tags.TEAM else {"Key": tags.TEAM, "Value": "pricing"} for t in ours],
        f"{ENDPOINT}-v9-othergroup": [
            t if t["Key"] != tags.MODEL_PACKAGE_ARN else {"Key": tags.MODEL_PACKAGE_ARN, "Value": aws.package(9, "mlp-fraud-churn")}
            for t in ours
        ],
    }
    for name, resource_tags in look_alikes.items():
        kwargs = {"Tags": resource_tags} if resource_tags else {}
        aws.sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", Containers=[], **kwargs
        )
        aws.sagemaker.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[{**variant, "ModelName": name}], **kwargs
        )
    for version in range(1, 6):
        aws.make_version(version)
    aws.serve(5)

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert sorted(report.deleted_configs) == [aws.config(1), aws.config(2)]
    assert sorted(report.deleted_models) == [aws.model(1), aws.model(2)]
    assert set(look_alikes) <= aws.configs()
    assert set(look_alikes) <= aws.models()


def test_configs_and_models_newer_than_the_serving_one_are_kept(aws):
    for version in range(1, 5):
        aws.make_version(version)
    aws.serve(4)
    aws.make_version(5)

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report.deleted_configs == [aws.config(1)]
    assert aws.config(5) in aws.configs() and aws.model(5) in aws.models()


def test_rolled_back_update_alerts_and_prunes_nothing(aws, caplog):
    for version in range(1, 6):
        aws.make_version(version)
    aws.serve(4, intended=5)
    calls = CallLog(aws.sagemaker)

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert (report.action, report.serving_config, report.intended_config) == (
        "alerted_rolled_back", aws.config(4), aws.config(5)
    )
    assert calls.writes() == []
    [alert] = aws.alerts()
    assert (alert["serving_config"], alert["intended_config"]) == (aws.config(4), aws.config(5))
    assert alert["intended_model_package_arn"] == aws.package(5)


def test_failed_endpoint_alerts_with_the_reason(aws):
    event = state_change(ENDPOINT, "FAILED", FailureReason="Model container failed to respond to ping")

    report = aws.verify(event)

    assert report.action == "alerted_failed"
    [alert] = aws.alerts()
    assert alert["endpoint"] == ENDPOINT
    assert alert["failure_reason"] == "Model container failed to respond to ping"


def test_api_spelling_of_the_status_is_understood_too(aws):
    aws.make_version(1)
    aws.serve(1)

    assert aws.verify(state_change(ENDPOINT, "InService")).action == "verified"


def test_endpoint_without_intended_config_tag_is_not_pruned(aws):
    for version in range(1, 5):
        aws.make_version(version)
    aws.sagemaker.create_endpoint(
        EndpointName=ENDPOINT,
        EndpointConfigName=aws.config(4),
        Tags=endpoint_spec.ownership_tags(aws.deploy, aws.package(4), 4),
    )

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report.action == "skipped_no_intended_config"
    assert len(aws.configs()) == 4


def test_endpoint_not_managed_by_the_platform_is_left_alone(aws):
    for version in range(1, 5):
        aws.make_version(version)
    aws.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=aws.config(4))

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report.action == "ignored_unmanaged_endpoint"
    assert len(aws.configs()) == 4


def test_endpoint_that_moved_on_since_the_event_is_not_verified():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
    with Stubber(sagemaker) as stub, Stubber(sns):
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
                "EndpointConfigName": "mlp-fraud-fraud-detection-v4-0123abcd",
                "EndpointStatus": "Updating",
                "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
                "LastModifiedTime": datetime(2026, 1, 2, tzinfo=timezone.utc),
            },
            {"EndpointName": ENDPOINT},
        )

        report = verify.handle_state_change(sagemaker, sns, verifier_settings(topic), state_change(ENDPOINT, "IN_SERVICE"))

        stub.assert_no_pending_responses()
    assert report.action == "skipped_not_in_service_any_more"


IGNORED = {
    "other team's endpoint": state_change("mlp-pricing-price-elasticity", "IN_SERVICE"),
    "status that needs nothing": state_change(ENDPOINT, "UPDATING"),
    "other detail-type": {**state_change(ENDPOINT, "IN_SERVICE"), "detail-type": "SageMaker Model State Change"},
    "other source": {**state_change(ENDPOINT, "IN_SERVICE"), "source": "aws.ec2"},
    "no detail": {k: v for k, v in state_change(ENDPOINT, "IN_SERVICE").items() if k != "detail"},
    "no endpoint name": state_change(None, "IN_SERVICE"),
    "not an object": ["SageMaker Endpoint State Change"],
}


@pytest.mark.parametrize("event", IGNORED.values(), ids=IGNORED.keys())
def test_ignored_events_make_no_call(event):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    with Stubber(sagemaker), Stubber(sns):
        calls = CallLog(sagemaker)
        report = verify.handle_state_change(sagemaker, sns, verifier_settings("arn:aws:sns:us-east-1:1:t"), event)
    assert report.action.startswith("ignored")
    assert calls.names == []


def test_handler_reads_its_environment_and_logs_one_structured_line(aws, monkeypatch, caplog):
    for version in range(1, 5):
        aws.make_version(version)
    aws.serve(4)
    for key, value in {
        "PLATFORM_PREFIX": PREFIX, "TEAM_NAME": "fraud", "ALERT_TOPIC_ARN": aws.topic_arn,
        "USE_CASES": use_cases_environment(PREFIX, TEAM),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(handler, "_settings", None)
    monkeypatch.setattr(clients, "CLIENTS", {})

    with caplog.at_level(logging.INFO, logger="endpoint_verifier"):
        summary = handler.handler(state_change(ENDPOINT, "IN_SERVICE"), None)

    assert summary["action"] == "verified"
    assert summary["deleted_configs"] == [aws.config(1)]
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "verified"]
    assert (record.endpoint, record.deleted_models) == (ENDPOINT, [aws.model(1)])


def test_model_package_group_is_read_from_the_arn():
    assert verify.group_of_package(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/12") == GROUP
    assert verify.group_of_package("") == ""
    assert verify.group_of_package(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/unversioned") == ""
    assert tags.MODEL_PACKAGE_ARN == "mlops:model-package-arn"
