"""The deploy Lambda: moto for the registry, models, configs, endpoints, tags and SNS; botocore Stubber
(which checks every request against the real API model) for what moto lacks: UpdateEndpoint and
endpoints that are busy or Failed (moto's endpoints are InService at once)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber
from common import clients, naming, tags
from deploy_on_approval import deploy, endpoint_spec, handler
from deploy_on_approval.deploy import Action
from deploy_on_approval.messages import (
    KNOWN_STATUSES,
    ApprovalChange,
    UnusableMessage,
    parse_message,
)
from deploy_on_approval.settings import DeploySettings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment
from tests.sagemaker_events import model_package_state_change

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "mlp"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CAPTURE_URI = "s3://mlp-fraud-data/data-capture"
TEAM = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [
            {
                "name": "fraud-detection",
                "endpoint": {
                    "instance_type": "ml.m5.large",
                    "initial_instance_count": 2,
                    "deployment": {"style": "canary", "canary_percent": 25, "wait_interval_seconds": 300},
                    "data_capture": {"enabled": True, "sampling_percent": 20},
                },
            },
            {"name": "churn", "endpoint": {"initial_instance_count": 2, "deployment": {"style": "linear"}}},
        ],
    }
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
SAGEMAKER_WRITES = {
    "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint", "AddTags",
}


def make_settings(topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts") -> DeploySettings:
    """The settings the deploy Lambda reads, from the environment the construct writes."""
    return DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": TEAM.name,
            "COST_CENTER": TEAM.cost_center,
            "MODEL_EXECUTION_ROLE_ARN": ROLE_ARN,
            "KMS_KEY_ARN": KEY_ARN,
            "DATA_CAPTURE_S3_URI": CAPTURE_URI,
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )


def package_arn(version: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def documented_event(group: str, version: int, status: str) -> dict:
    return model_package_state_change(group, version, status, region=REGION, account=ACCOUNT)


def compact_body(group: str, version: int, status: str) -> str:
    """The body the rule's input transformer sends (see the construct test for the transformer itself)."""
    return json.dumps(
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "group": group,
            "version": version,
            "status": status,
            "arn": package_arn(version, group),
        }
    )


def sqs_record(body: str, message_id: str = "m-1") -> dict:
    return {"messageId": message_id, "receiptHandle": "rh", "body": body, "attributes": {}, "eventSource": "aws:sqs"}


class CallLog:
    """Every API call a client makes, recorded through botocore's event hooks."""

    def __init__(self, *clients) -> None:
        self.calls: list[tuple[str, dict]] = []
        for client in clients:
            client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params, model, **_):
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def writes(self) -> list[str]:
        return [n for n in self.names() if n in SAGEMAKER_WRITES or n == "Publish"]

    def params(self, name: str) -> list[dict]:
        return [p for n, p in self.calls if n == name]


# --- moto: a registry, an SNS topic with an SQS subscriber to read the alerts ----------------------


class Aws:
    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn = self.sns.create_topic(Name="mlp-fraud-alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.settings = make_settings(self.topic_arn)
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        self.arns: dict[int, str] = {}

    def register(self, count: int) -> None:
        for _ in range(count):
            arn = self.sagemaker.create_model_package(
                ModelPackageGroupName=GROUP,
                InferenceSpecification={
                    "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelApprovalStatus="PendingManualApproval",
            )["ModelPackageArn"]
            self.arns[int(arn.rsplit("/", 1)[1])] = arn

    def set_status(self, version: int, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=self.arns[version], ModelApprovalStatus=status)

    def deliver(self, *bodies: str) -> dict:
        records = [sqs_record(b, f"m-{i}") for i, b in enumerate(bodies)]
        return handler.process_batch(records, self.sagemaker, self.sns, self.settings)

    def alerts(self) -> list[dict]:
        messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def tags_of(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.sagemaker.list_tags(ResourceArn=arn)["Tags"]}

    def endpoint_config(self) -> str:
        return self.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


def config_name(version: int) -> str:
    settings = make_settings()
    return endpoint_spec.endpoint_config_name(settings, settings.for_group(GROUP), version)


def model_name(version: int) -> str:
    return naming.model_name(PREFIX, "fraud", "fraud-detection", version)


# --- first approval, duplicates, out-of-order ------------------------------------------------------


def test_first_approval_creates_model_config_and_endpoint_with_tags(aws):
    aws.register(1)
    aws.set_status(1, "Approved")
    calls = CallLog(aws.sagemaker, aws.sns)

    assert aws.deliver(compact_body(GROUP, 1, "Approved")) == {"batchItemFailures": []}

    assert calls.writes() == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    [listing] = calls.params("ListModelPackages")
    assert listing == {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }
    model = aws.sagemaker.describe_model(ModelName=model_name(1))
    assert model["ExecutionRoleArn"] == ROLE_ARN
    assert model["Containers"] == [{"ModelPackageName": aws.arns[1]}]
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config_name(1))
    assert config["KmsKeyId"] == KEY_ARN
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ModelName"] == model_name(1)
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 20
    assert capture["DestinationS3Uri"] == CAPTURE_URI
    assert capture["KmsKeyId"] == KEY_ARN
    assert aws.endpoint_config() == config_name(1)

    expected = {
        tags.PLATFORM: PREFIX,
        tags.TEAM: "fraud",
        tags.MANAGED_BY: tags.MANAGED_BY_VALUE,
        tags.COST_CENTER: "CC-1001",
        tags.MODEL_PACKAGE_ARN: aws.arns[1],
        tags.MODEL_PACKAGE_VERSION: "1",
    }
    assert aws.tags_of(model["ModelArn"]) == expected
    assert aws.tags_of(config["EndpointConfigArn"]) == expected
    endpoint_arn = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    assert aws.tags_of(endpoint_arn) == {**expected, tags.INTENDED_ENDPOINT_CONFIG: config_name(1)}


def test_newest_approved_version_is_read_from_the_registry_not_the_event(aws):
    aws.register(3)
    for version in (1, 2, 3):
        aws.set_status(version, "Approved")

    aws.deliver(compact_body(GROUP, 1, "Approved"))

    assert aws.endpoint_config() == config_name(3)


def test_same_event_twice_and_late_events_make_no_writes(aws):
    aws.register(2)
    aws.set_status(1, "Approved")
    aws.set_status(2, "Approved")
    calls = CallLog(aws.sagemaker, aws.sns)

    aws.deliver(compact_body(GROUP, 2, "Approved"))
    first = calls.writes()
    aws.deliver(compact_body(GROUP, 2, "Approved"), compact_body(GROUP, 1, "Approved"))

    assert first == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert calls.writes() == first, "the duplicate and the older (out-of-order) event wrote something"
    assert aws.endpoint_config() == config_name(2)
    assert len(aws.sagemaker.list_models()["Models"]) == 1
    assert len(aws.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_full_eventbridge_event_as_body_is_accepted(aws):
    aws.register(1)
    aws.set_status(1, "Approved")

    aws.deliver(json.dumps(documented_event(GROUP, 1, "Approved")))

    assert aws.endpoint_config() == config_name(1)


def test_rejecting_the_only_approved_version_alerts_and_leaves_the_endpoint(aws):
    aws.register(1)
    aws.set_status(1, "Approved")
    aws.deliver(compact_body(GROUP, 1, "Approved"))
    aws.set_status(1, "Rejected")
    calls = CallLog(aws.sagemaker, aws.sns)

    assert aws.deliver(compact_body(GROUP, 1, "Rejected")) == {"batchItemFailures": []}

    assert calls.writes() == ["Publish"]
    assert aws.endpoint_config() == config_name(1)
    [alert] = aws.alerts()
    assert alert["model_package_group"] == GROUP
    assert alert["rejected_version"] == 1
    assert alert["endpoint"] == ENDPOINT
    assert alert["endpoint_config"] == config_name(1)


def test_rejecting_the_newest_selects_the_middle_version_with_moto_sorting(aws):
    aws.register(3)
    for version in (1, 2, 3):
        aws.set_status(version, "Approved")
    aws.set_status(3, "Rejected")

    newest = deploy.newest_approved_version(aws.sagemaker, GROUP)

    assert (newest.version, newest.arn) == (2, aws.arns[2])


# --- botocore Stubber: updates, busy and failed endpoints, races -----------------------------------


@contextmanager
def stubbed():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    with Stubber(sagemaker) as sm_stub, Stubber(sns) as sns_stub:
        yield sagemaker, sm_stub, sns, sns_stub
        sm_stub.assert_no_pending_responses()
        sns_stub.assert_no_pending_responses()


LIST_REQUEST = {
    "ModelPackageGroupName": GROUP,
    "ModelApprovalStatus": "Approved",
    "SortBy": "CreationTime",
    "SortOrder": "Descending",
    "MaxResults": 1,
}


def list_response(version: int | None) -> dict:
    if version is None:
        return {"ModelPackageSummaryList": []}
    return {
        "ModelPackageSummaryList": [
            {
                "ModelPackageGroupName": GROUP,
                "ModelPackageVersion": version,
                "ModelPackageArn": package_arn(version),
                "CreationTime": datetime(2026, 1, version, tzinfo=timezone.utc),
                "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": "Approved",
            }
        ]
    }


def endpoint_response(status: str, config: str, pending: str | None = None) -> dict:
    response = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "LastModifiedTime": datetime(2026, 1, 2, tzinfo=timezone.utc),
    }
    if pending:
        response["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    return response


def expect_update_to(stub: Stubber, version: int, deployment: dict) -> None:
    settings = make_settings()
    target = settings.for_group(GROUP)
    arn = package_arn(version)
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model_name(version)}"},
        endpoint_spec.create_model_request(settings, target, arn, version),
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{config_name(version)}"},
        endpoint_spec.create_endpoint_config_request(settings, target, arn, version),
    )
    stub.add_response(
        "add_tags",
        {},
        {
            "ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
            "Tags": endpoint_spec.endpoint_tags(settings, arn, version, config_name(version)),
        },
    )
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": config_name(version), "DeploymentConfig": deployment},
    )


ROLLBACK_ALARMS = {
    "Alarms": [
        {"AlarmName": f"{ENDPOINT}-invocation-5xx-errors"},
        {"AlarmName": f"{ENDPOINT}-model-latency"},
    ]
}


def reconcile(sagemaker, sns, version: int, status: str = "Approved"):
    settings = make_settings()
    change = parse_message(compact_body(GROUP, version, status))
    return deploy.reconcile(sagemaker, sns, settings, settings.for_group(GROUP), change)


def test_second_approval_updates_blue_green_with_canary_and_rollback_alarms():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_update_to(
            stub,
            2,
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 300,
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                    },
                    "TerminationWaitInSeconds": 120,
                    "MaximumExecutionTimeoutInSeconds": 3600,
                },
                "AutoRollbackConfiguration": ROLLBACK_ALARMS,
            },
        )

        outcome = reconcile(sagemaker, sns, 2)

    assert (outcome.action, outcome.version, outcome.retry) == (Action.UPDATED, 2, False)


def test_rejecting_the_serving_version_redeploys_the_newest_still_approved():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(3)), {"EndpointName": ENDPOINT})
        expect_update_to(stub, 2, ANY)

        outcome = reconcile(sagemaker, sns, 3, "Rejected")

    assert (outcome.action, outcome.version) == (Action.UPDATED, 2)


def test_serving_endpoint_with_a_stale_intended_config_gets_it_recorded():
    """An update to v3 rolled back to v2, then v3 was rejected: v2 is wanted and served; record it."""
    settings = make_settings()
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response(
            "list_tags", {"Tags": [{"Key": tags.INTENDED_ENDPOINT_CONFIG, "Value": config_name(3)}]}, {"ResourceArn": endpoint_arn}
        )
        stub.add_response(
            "add_tags",
            {},
            {"ResourceArn": endpoint_arn, "Tags": endpoint_spec.endpoint_tags(settings, package_arn(2), 2, config_name(2))},
        )

        outcome = reconcile(sagemaker, sns, 3, "Rejected")

    assert (outcome.action, outcome.version, outcome.retry) == (Action.RECORDED_INTENT, 2, False)


@pytest.mark.parametrize(
    ("style", "count", "expected"),
    [
        ("canary", 2, {"Type": "CANARY", "WaitIntervalInSeconds": 60, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}),
        ("linear", 4, {"Type": "LINEAR", "WaitIntervalInSeconds": 60, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20}}),
        ("all_at_once", 4, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}),
        ("canary", 1, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}),
        ("linear", 1, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}),
    ],
)
def test_traffic_routing_per_style(style, count, expected):
    deployment = {"style": style, "canary_percent": 10, "linear_step_percent": 20, "wait_interval_seconds": 60}
    assert endpoint_spec.traffic_routing(deployment, count) == expected


BUSY = ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "OutOfService", "UpdateRollbackFailed"]


@pytest.mark.parametrize("status", BUSY)
def test_busy_endpoint_is_retried_later_and_nothing_is_written(status):
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response(status, config_name(1)), {"EndpointName": ENDPOINT})

        outcome = reconcile(sagemaker, sns, 2)

    assert (outcome.action, outcome.retry) == (Action.ENDPOINT_BUSY, True)


def test_busy_endpoint_message_is_returned_to_the_queue():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("Updating", config_name(1)), {"EndpointName": ENDPOINT})
        records = [sqs_record(compact_body(GROUP, 2, "Approved"), "first"), sqs_record("{}", "second")]

        response = handler.process_batch(records, sagemaker, sns, make_settings())

    # FIFO: the record after a failed one is handed back unprocessed, in order.
    assert response == {"batchItemFailures": [{"itemIdentifier": "first"}, {"itemIdentifier": "second"}]}


@pytest.mark.parametrize(
    ("status", "current", "pending"),
    [("Creating", 2, None), ("Updating", 1, 2), ("SystemUpdating", 2, None)],
)
def test_endpoint_already_moving_to_the_wanted_config_is_left_alone(status, current, pending):
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response(
            "describe_endpoint",
            endpoint_response(status, config_name(current), config_name(pending) if pending else None),
            {"EndpointName": ENDPOINT},
        )

        outcome = reconcile(sagemaker, sns, 2)

    assert (outcome.action, outcome.retry) == (Action.ALREADY_IN_PROGRESS, False)


def test_failed_endpoint_is_deleted_and_recreated_on_the_retry():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("Failed", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})

        first = reconcile(sagemaker, sns, 2)

        settings = make_settings()
        target = settings.for_group(GROUP)
        stub.add_response("list_model_packages", list_response(2), LIST_REQUEST)
        stub.add_client_error(
            "describe_endpoint",
            "ValidationException",
            f"Could not find endpoint \"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}\".",
            expected_params={"EndpointName": ENDPOINT},
        )
        stub.add_response(
            "create_model",
            {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model_name(2)}"},
            endpoint_spec.create_model_request(settings, target, package_arn(2), 2),
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{config_name(2)}"},
            endpoint_spec.create_endpoint_config_request(settings, target, package_arn(2), 2),
        )
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"},
            {
                "EndpointName": ENDPOINT,
                "EndpointConfigName": config_name(2),
                "Tags": endpoint_spec.endpoint_tags(settings, package_arn(2), 2, config_name(2)),
            },
        )
        second = reconcile(sagemaker, sns, 2)

    assert (first.action, first.retry) == (Action.REPLACING_FAILED, True)
    assert (second.action, second.retry) == (Action.CREATED, False)


def test_concurrent_delivery_treats_already_existing_names_as_success():
    """A delivery that read the state before another one created everything: each create says 'exists'."""
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", list_response(1), LIST_REQUEST)
        stub.add_client_error(
            "describe_endpoint", "ValidationException", "Could not find endpoint \"x\".", expected_params={"EndpointName": ENDPOINT}
        )
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
        stub.add_client_error(
            "create_model", "ValidationException", f"Cannot create already existing model \"{arn}:model/{model_name(1)}\"."
        )
        stub.add_client_error(
            "create_endpoint_config",
            "ValidationException",
            f"Cannot create already existing endpoint configuration \"{arn}:endpoint-config/{config_name(1)}\".",
        )
        stub.add_client_error(
            "create_endpoint", "ValidationException", f"Cannot create already existing endpoint \"{arn}:endpoint/{ENDPOINT}\"."
        )

        outcome = reconcile(sagemaker, sns, 1)

    assert (outcome.action, outcome.retry) == (Action.CREATED, False)


def test_an_unexpected_error_is_retried_not_swallowed():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_client_error("list_model_packages", "ThrottlingException", "Rate exceeded", expected_params=LIST_REQUEST)

        response = handler.process_batch(
            [sqs_record(compact_body(GROUP, 1, "Approved"), "only")], sagemaker, sns, make_settings()
        )

    assert response == {"batchItemFailures": [{"itemIdentifier": "only"}]}


# --- malformed and foreign messages: logged, no call at all ---------------------------------------


def with_fields(**fields) -> str:
    """The compact body of version 1 with `fields` replaced."""
    return json.dumps({**json.loads(compact_body(GROUP, 1, "Approved")), **fields})


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


UNUSABLE = {
    "not json": "{not json",
    "json list": "[1, 2]",
    "missing version": json.dumps({k: v for k, v in json.loads(compact_body(GROUP, 1, "Approved")).items() if k != "version"}),
    "missing group": json.dumps({k: v for k, v in json.loads(compact_body(GROUP, 1, "Approved")).items() if k != "group"}),
    "version not a number": compact_body(GROUP, 1, "Approved").replace('"version": 1', '"version": "one"'),
    "version boolean": compact_body(GROUP, 1, "Approved").replace('"version": 1', '"version": true'),
    "unknown status": compact_body(GROUP, 1, "Approved").replace("Approved", "Maybe"),
    "arn not a model package": compact_body(GROUP, 1, "Approved").replace(":model-package/", ":model/"),
    "other detail-type": compact_body(GROUP, 1, "Approved").replace("Model Package State Change", "Endpoint State Change"),
    "other source": compact_body(GROUP, 1, "Approved").replace('"aws.sagemaker"', '"aws.ec2"'),
    "event without detail fields": json.dumps(
        {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": {}}
    ),
    # str.isdigit() is true for these: int() raises ValueError for "²" (issue 9) and for more than 4300
    # digits, and reads "٣" as 3; a version is ASCII digits only.
    "version superscript two": with_fields(version="\u00b2"),
    "version arabic-indic digit": with_fields(version="\u0663"),
    "version of 5000 digits": with_fields(version="9" * 5000),
    "version beyond the API's 32-bit integer": with_fields(version=2**31),
    "version with spaces": with_fields(version=" 1"),
    # json.loads raises RecursionError, which is neither TypeError nor ValueError (issue 9).
    "deeply nested list": "[" * 100_000 + "]" * 100_000,
    "deeply nested object": '{"a": ' * 50_000 + "1" + "}" * 50_000,
    "deeply nested field": with_fields(source=nested(900)),
    "valid change in an oversized body": compact_body(GROUP, 1, "Approved") + " " * 256 * 1024,
    "body not a string": None,
}
IGNORED = {
    **UNUSABLE,
    "other team's group": compact_body("mlp-pricing-price-elasticity", 1, "Approved"),
    "pending registration": compact_body(GROUP, 1, "PendingManualApproval"),
}


@pytest.mark.parametrize("body", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_unusable_messages_raise_unusable(body):
    with pytest.raises(UnusableMessage):
        parse_message(body)


@pytest.mark.parametrize("body", IGNORED.values(), ids=IGNORED.keys())
def test_ignored_messages_are_logged_and_make_no_call(body, caplog):
    with stubbed() as (sagemaker, _, sns, _), caplog.at_level(logging.INFO):
        calls = CallLog(sagemaker, sns)
        response = handler.process_batch([sqs_record(body)], sagemaker, sns, make_settings())

    assert response == {"batchItemFailures": []}, "an unusable message must be dropped, not retried"
    assert calls.names() == []
    assert [getattr(r, "action", None) for r in caplog.records] == ["ignored"], "one log line per dropped message"


def test_a_parser_failure_of_any_kind_drops_the_message_without_a_call(monkeypatch, caplog):
    """Whatever parsing raises, retrying cannot help: the message is dropped, never sent to the DLQ."""

    def broken_parser(body):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(handler, "parse_message", broken_parser)
    with stubbed() as (sagemaker, _, sns, _), caplog.at_level(logging.INFO):
        calls = CallLog(sagemaker, sns)
        response = handler.process_batch(
            [sqs_record("[]", "first"), sqs_record("[]", "second")], sagemaker, sns, make_settings()
        )

    assert response == {"batchItemFailures": []}
    assert calls.names() == []
    assert [getattr(r, "action", None) for r in caplog.records] == ["ignored", "ignored"]


# --- property: the parser returns a valid change or raises UnusableMessage, nothing else ----------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
digit_like = st.text(st.characters(categories=["Nd", "No", "Nl"]) | st.sampled_from("0123456789 +-_."), max_size=12)
VALID_FIELDS = json.loads(compact_body(GROUP, 1, "Approved"))
TRICKY_VALUES = {
    "source": st.text(max_size=20),
    "detail-type": st.text(max_size=40),
    "group": st.text(max_size=20),
    "version": st.integers(min_value=-(2**40), max_value=2**40) | digit_like | st.just("\u00b2") | st.text(max_size=5),
    "status": st.sampled_from(["Approved", "Rejected", "PendingManualApproval", "approved", ""]) | st.text(max_size=10),
    "arn": st.text(max_size=30).map(lambda t: "arn:" + t + ":model-package/" + t) | st.text(max_size=30),
}
DETAIL_KEYS = {
    "group": "ModelPackageGroupName", "version": "ModelPackageVersion",
    "status": "ModelApprovalStatus", "arn": "ModelPackageArn",
}


@st.composite
def typed_fields(draw) -> dict:
    """A valid change with some fields replaced: by a tricky value of the right type, any JSON value, or nothing."""
    fields = dict(VALID_FIELDS)
    for key in draw(st.sets(st.sampled_from(sorted(VALID_FIELDS)), max_size=3)):
        how = draw(st.sampled_from(["tricky", "any", "missing"]))
        if how == "missing":
            del fields[key]
        else:
            fields[key] = draw(TRICKY_VALUES[key] if how == "tricky" else json_values)
    return fields


@st.composite
def message_bodies(draw) -> str:
    kind = draw(st.sampled_from(["text", "json"] + ["compact", "event"] * 3))
    if kind == "text":
        return draw(st.text())
    if kind == "json":
        return json.dumps(draw(json_values))
    fields = draw(typed_fields())
    if kind == "event":
        head = {k: fields.pop(k) for k in ("source", "detail-type") if k in fields}
        detail = {DETAIL_KEYS[k]: v for k, v in fields.items()}
        fields = {**head, "detail": detail if draw(st.integers(0, 3)) else draw(json_values)}
    return json.dumps(fields)


def assert_valid_change(change: ApprovalChange) -> None:
    assert isinstance(change, ApprovalChange)
    assert isinstance(change.group, str) and change.group.strip()
    assert type(change.version) is int and 1 <= change.version <= 2**31 - 1  # the API's 32-bit integer
    assert change.status in KNOWN_STATUSES
    assert change.arn.startswith("arn:") and ":model-package/" in change.arn


@hypothesis_settings(max_examples=200, deadline=None)
@given(message_bodies())
def test_the_parser_returns_a_valid_change_or_raises_unusable_and_nothing_else(body):
    try:
        change = parse_message(body)
    except UnusableMessage:
        return
    assert_valid_change(change)


# Digits that str.isdigit() accepts: ASCII ones, and others that int() reads ("١") or refuses ("²", "①").
NON_ASCII_DIGITS = st.sampled_from(["\u00b2", "\u00b9", "\u2460", "\u0661\u0662", "\U0001d7d9", "\uff11"])


def expected_version(value) -> int | None:
    """The version the parser must return for `value`, or None when it must refuse it."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    return value if type(value) is int and 1 <= value <= 2**31 - 1 else None


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.integers()
    | digit_like
    | NON_ASCII_DIGITS
    | st.from_regex(r"[0-9]{1,12}", fullmatch=True)
    | st.text(max_size=8)
    | json_values
)
def test_a_version_of_any_type_is_read_as_ascii_digits_or_refused(version):
    body = with_fields(version=version)
    expected = expected_version(version)
    if expected is None:
        with pytest.raises(UnusableMessage):
            parse_message(body)
    else:
        assert parse_message(body).version == expected


def test_deploy_outcome_is_logged_with_group_version_and_action(aws, caplog):
    aws.register(1)
    aws.set_status(1, "Approved")

    with caplog.at_level(logging.INFO, logger="deploy_on_approval"):
        aws.deliver(compact_body(GROUP, 1, "Approved"))

    [record] = [r for r in caplog.records if getattr(r, "action", None) == Action.CREATED]
    assert (record.group, record.version, record.endpoint) == (GROUP, 1, ENDPOINT)
    assert record.endpoint_config == config_name(1)


def test_handler_reads_its_settings_from_the_environment(aws, monkeypatch):
    aws.register(1)
    aws.set_status(1, "Approved")
    env = {
        "PLATFORM_PREFIX": PREFIX, "TEAM_NAME": "fraud", "COST_CENTER": "CC-1001",
        "MODEL_EXECUTION_ROLE_ARN": ROLE_ARN, "KMS_KEY_ARN": KEY_ARN, "DATA_CAPTURE_S3_URI": CAPTURE_URI,
        "ALERT_TOPIC_ARN": aws.topic_arn, "USE_CASES": use_cases_environment(PREFIX, TEAM),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(handler, "_settings", None)
    monkeypatch.setattr(clients, "CLIENTS", {})

    response = handler.handler({"Records": [sqs_record(compact_body(GROUP, 1, "Approved"))]}, None)

    assert response == {"batchItemFailures": []}
    assert aws.endpoint_config() == config_name(1)


# --- endpoint config names and instance storage -------------------------------------------------


def test_a_settings_change_makes_a_new_config_name():
    settings = make_settings()
    target = settings.for_group(GROUP)
    bigger = Team.model_validate(
        {**TEAM.model_dump(), "use_cases": [{"name": "fraud-detection", "endpoint": {"initial_instance_count": 3}}]}
    )
    changed = DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX, "TEAM_NAME": "fraud", "MODEL_EXECUTION_ROLE_ARN": ROLE_ARN,
            "KMS_KEY_ARN": KEY_ARN, "DATA_CAPTURE_S3_URI": CAPTURE_URI, "ALERT_TOPIC_ARN": "arn:aws:sns:x",
            "USE_CASES": use_cases_environment(PREFIX, bigger),
        }
    )

    assert endpoint_spec.endpoint_config_name(settings, target, 1) != endpoint_spec.endpoint_config_name(
        changed, changed.for_group(GROUP), 1
    )
    assert endpoint_spec.endpoint_config_name(settings, target, 1) == endpoint_spec.endpoint_config_name(
        make_settings(), target, 1
    )


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [("ml.m5.large", False), ("ml.c5.xlarge", False), ("ml.m5d.large", True), ("ml.g4dn.xlarge", True),
     ("ml.g5.2xlarge", True), ("ml.p3.2xlarge", False), ("ml.inf1.xlarge", False), ("ml.t2.medium", False)],
)
def test_volume_key_is_left_out_only_for_instances_with_local_storage(instance_type, local):
    assert endpoint_spec.has_local_storage(instance_type) is local


# --- names: property test of lambdas/common/naming.py --------------------------------------------

prefixes = st.from_regex(r"[a-z][a-z0-9]{1,9}", fullmatch=True)
teams = st.from_regex(r"[a-z][a-z0-9]{1,19}", fullmatch=True)
# Mostly short names, and names whose full model and config names land right around SageMaker's limit.
use_cases = st.text(max_size=256) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=30, max_size=60)
versions = st.integers(min_value=1, max_value=10**9)
digests = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)


def all_names(prefix, team, use_case, version, digest) -> list[str]:
    return [
        naming.model_package_group_name(prefix, team, use_case),
        naming.endpoint_name(prefix, team, use_case),
        naming.model_name(prefix, team, use_case, version),
        naming.endpoint_config_name(prefix, team, use_case, version, digest),
    ]


@hypothesis_settings(max_examples=300, deadline=None)
@given(prefixes, teams, use_cases, versions, digests)
def test_every_generated_name_is_a_valid_sagemaker_name(prefix, team, use_case, version, digest):
    for name in all_names(prefix, team, use_case, version, digest):
        # SageMaker's rule for these names (its API reference), not the name builder's own constants.
        assert len(name) <= 63, name
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name


@hypothesis_settings(max_examples=300, deadline=None)
@given(prefixes, teams, st.tuples(use_cases, versions), st.tuples(use_cases, versions), digests)
def test_names_are_unique_per_group_and_version(prefix, team, first, second, digest):
    if first == second:
        return
    (case_a, version_a), (case_b, version_b) = first, second
    assert naming.model_name(prefix, team, case_a, version_a) != naming.model_name(prefix, team, case_b, version_b)
    assert naming.endpoint_config_name(prefix, team, case_a, version_a, digest) != naming.endpoint_config_name(
        prefix, team, case_b, version_b, digest
    )
    if case_a != case_b:
        assert naming.endpoint_name(prefix, team, case_a) != naming.endpoint_name(prefix, team, case_b)


def test_longest_configured_group_keeps_readable_names_up_to_version_99999():
    prefix, team = "abcdefghij", "team"
    use_case = "u" * (47 - len(f"{prefix}-{team}-"))
    group = naming.model_package_group_name(prefix, team, use_case)
    assert len(group) == 47
    assert naming.model_name(prefix, team, use_case, 99999) == f"{group}-v99999"
    config = naming.endpoint_config_name(prefix, team, use_case, 99999, "0123abcd")
    assert config == f"{group}-v99999-0123abcd"
    assert len(config) == 63
