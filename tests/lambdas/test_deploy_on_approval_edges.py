"""The deploy Lambda on paths only AWS produces and at its boundaries: UpdateEndpoint refused because the
endpoint is busy, a model left by an interrupted delivery before its endpoint config, a registry summary
without its version, an endpoint with no tags, version 0 and 1, two instances for a linear shift, and the
alert subject at SNS's 100-character limit. botocore Stubber where moto lacks the API, moto for SNS."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from common import clients, naming
from deploy_on_approval import deploy, endpoint_spec, handler
from deploy_on_approval.deploy import Action
from deploy_on_approval.messages import ApprovalChange, UnusableMessage, parse_message
from deploy_on_approval.settings import DeploySettings
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "mlp"
TEAM = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [{"name": "fraud-detection", "endpoint": {"initial_instance_count": 2}}],
    }
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts"
ENV = {
    "PLATFORM_PREFIX": PREFIX,
    "TEAM_NAME": "fraud",
    "COST_CENTER": "CC-1001",
    "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution",
    "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "DATA_CAPTURE_S3_URI": "s3://mlp-fraud-data/data-capture",
    "ALERT_TOPIC_ARN": TOPIC,
    "USE_CASES": use_cases_environment(PREFIX, TEAM),
}
LIST_REQUEST = {
    "ModelPackageGroupName": GROUP,
    "ModelApprovalStatus": "Approved",
    "SortBy": "CreationTime",
    "SortOrder": "Descending",
    "MaxResults": 1,
}


def make_settings(topic_arn: str = TOPIC) -> DeploySettings:
    return DeploySettings.from_env({**ENV, "ALERT_TOPIC_ARN": topic_arn})


def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


def config_name(version: int) -> str:
    settings = make_settings()
    return endpoint_spec.endpoint_config_name(settings, settings.for_group(GROUP), version)


def listed(version: int, with_version_field: bool = True) -> dict:
    summary = {
        "ModelPackageGroupName": GROUP,
        "ModelPackageArn": package_arn(version),
        "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved",
    }
    if with_version_field:
        summary["ModelPackageVersion"] = version
    return {"ModelPackageSummaryList": [summary]}


def endpoint(status: str, config: str) -> dict:
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "LastModifiedTime": datetime(2026, 1, 2, tzinfo=timezone.utc),
    }


def change(version: int, status: str = "Approved") -> ApprovalChange:
    return ApprovalChange(GROUP, version, status, package_arn(version))


@contextmanager
def stubbed() -> Iterator[tuple]:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    with Stubber(sagemaker) as stub, Stubber(sns):
        yield sagemaker, stub, sns
        stub.assert_no_pending_responses()


def reconcile(sagemaker, sns, version: int, status: str = "Approved"):
    settings = make_settings()
    return deploy.reconcile(sagemaker, sns, settings, settings.for_group(GROUP), change(version, status))


def expect_new_version(stub, version: int) -> None:
    stub.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"})
    stub.add_response(
        "create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/c"}
    )


# --- UpdateEndpoint refused because the endpoint is busy ------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        f'Cannot update in-progress endpoint "{ENDPOINT_ARN}".',
        "Endpoint update is in progress; try again later.",
        f"Cannot update endpoint {ENDPOINT} while it is being updated.",
    ],
)
def test_update_refused_as_busy_comes_back_later_with_the_intent_recorded(message):
    """The endpoint started an update (a deploy racing this one) between DescribeEndpoint and UpdateEndpoint."""
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_new_version(stub, 2)
        stub.add_response("add_tags", {}, {"ResourceArn": ENDPOINT_ARN, "Tags": ANY})
        stub.add_client_error("update_endpoint", "ValidationException", message)

        outcome = reconcile(sagemaker, sns, 2)

    assert (outcome.action, outcome.version, outcome.endpoint_config, outcome.endpoint_status, outcome.retry) == (
        Action.ENDPOINT_BUSY,
        2,
        config_name(2),
        "InService",
        True,
    )


def test_a_busy_refusal_sends_the_message_back_to_the_queue():
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_new_version(stub, 2)
        stub.add_response("add_tags", {}, {"ResourceArn": ENDPOINT_ARN, "Tags": ANY})
        stub.add_client_error("update_endpoint", "ValidationException", "Cannot update in-progress endpoint.")
        body = json.dumps(
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "group": GROUP,
                "version": 2,
                "status": "Approved",
                "arn": package_arn(2),
            }
        )

        response = handler.process_batch([{"messageId": "m-1", "body": body}], sagemaker, sns, make_settings())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", "One or more of the alarms does not exist."),
        ("ThrottlingException", "Update in progress for too many endpoints"),
        ("ResourceLimitExceeded", "Cannot update: the account's instance limit is reached"),
    ],
)
def test_an_update_refused_for_another_reason_is_raised(code, message):
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_new_version(stub, 2)
        stub.add_response("add_tags", {}, {"ResourceArn": ENDPOINT_ARN, "Tags": ANY})
        stub.add_client_error("update_endpoint", code, message)

        with pytest.raises(ClientError, match=code):
            reconcile(sagemaker, sns, 2)


# --- an interrupted delivery left a model, but no endpoint config ----------------------------------


def test_a_model_left_by_an_interrupted_delivery_is_reused_and_the_deploy_completes():
    settings = make_settings()
    target = settings.for_group(GROUP)
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(1), LIST_REQUEST)
        stub.add_client_error("describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT_ARN}".')
        stub.add_client_error(
            "create_model",
            "ValidationException",
            f'Cannot create already existing model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/x".',
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/c"},
            endpoint_spec.create_endpoint_config_request(settings, target, package_arn(1), 1),
        )
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": ENDPOINT_ARN},
            {
                "EndpointName": ENDPOINT,
                "EndpointConfigName": config_name(1),
                "Tags": endpoint_spec.endpoint_tags(settings, package_arn(1), 1, config_name(1)),
            },
        )

        outcome = reconcile(sagemaker, sns, 1)

    assert (outcome.action, outcome.version, outcome.endpoint_config, outcome.endpoint_status) == (
        Action.CREATED,
        1,
        config_name(1),
        "absent",
    )


@pytest.mark.parametrize("code", ["ResourceInUse", "ResourceInUseException"])
def test_already_existing_reported_as_resource_in_use_is_success(code):
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(1), LIST_REQUEST)
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint.")
        stub.add_client_error("create_model", code, "Model already exists.")
        stub.add_client_error("create_endpoint_config", code, "Endpoint configuration already exists.")
        stub.add_client_error("create_endpoint", code, "Endpoint already exists.")

        assert reconcile(sagemaker, sns, 1).action == Action.CREATED


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", "Could not access model data at s3://bucket/model.tar.gz."),
        ("ResourceLimitExceeded", "Cannot create model: it would exist beyond the account's limit"),
    ],
)
def test_a_create_refused_for_another_reason_is_raised(code, message):
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(1), LIST_REQUEST)
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint.")
        stub.add_client_error("create_model", code, message)

        with pytest.raises(ClientError, match=code):
            reconcile(sagemaker, sns, 1)


# --- what the registry and the endpoint report --------------------------------------------------------


def test_a_registry_summary_without_its_version_number_takes_it_from_the_arn():
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(12, with_version_field=False), LIST_REQUEST)

        newest = deploy.newest_approved_version(sagemaker, GROUP)

    assert newest == deploy.PackageVersion(package_arn(12), 12)


def test_a_serving_endpoint_without_any_tag_gets_its_intent_recorded():
    settings = make_settings()
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response("list_tags", {}, {"ResourceArn": ENDPOINT_ARN})
        stub.add_response(
            "add_tags",
            {},
            {
                "ResourceArn": ENDPOINT_ARN,
                "Tags": endpoint_spec.endpoint_tags(settings, package_arn(2), 2, config_name(2)),
            },
        )

        outcome = reconcile(sagemaker, sns, 2)

    assert outcome.action == Action.RECORDED_INTENT


def test_linear_shifting_starts_at_two_instances():
    deployment = {"style": "linear", "canary_percent": 10, "linear_step_percent": 50, "wait_interval_seconds": 60}
    assert endpoint_spec.traffic_routing(deployment, 2)["Type"] == "LINEAR"
    assert endpoint_spec.traffic_routing({**deployment, "style": "canary"}, 2)["Type"] == "CANARY"


# --- versions at their bounds ------------------------------------------------------------------------


def body(version) -> str:
    return json.dumps(
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "group": GROUP,
            "version": version,
            "status": "Approved",
            "arn": package_arn(1),
        }
    )


@pytest.mark.parametrize("version", [0, -1, "0", 2**31, "2147483648", "00000000001"])
def test_versions_outside_1_to_the_apis_32_bit_maximum_are_unusable(version):
    with pytest.raises(UnusableMessage, match="version must be an integer from 1 to 2147483647"):
        parse_message(body(version))


@pytest.mark.parametrize(("version", "expected"), [(1, 1), ("1", 1), ("0000000001", 1), (2**31 - 1, 2**31 - 1)])
def test_versions_from_1_to_the_maximum_are_read(version, expected):
    assert parse_message(body(version)).version == expected


def test_an_unusable_value_is_shown_short_in_the_reason():
    with pytest.raises(UnusableMessage) as error:
        parse_message(body("x" * 500))
    reason = str(error.value)
    assert reason.startswith("version must be an integer from 1 to 2147483647, got 'xxxxxxxxxx")
    assert "..." in reason and len(reason) < 150, "a long value is cut in the reason"


# --- the alert of a rejection with no approved version left ------------------------------------------


class Sns:
    def __init__(self) -> None:
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn = self.sns.create_topic(Name="mlp-fraud-alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn)

    def alerts(self) -> list[tuple[str, dict]]:
        messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        return [(json.loads(m["Body"])["Subject"], json.loads(json.loads(m["Body"])["Message"])) for m in messages]


def test_the_rejection_alert_says_what_happened_and_what_to_do():
    with mock_aws():
        alerts = Sns()
        settings = make_settings(alerts.topic_arn)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        with Stubber(sagemaker) as stub:
            stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, LIST_REQUEST)
            stub.add_response("describe_endpoint", endpoint("InService", config_name(3)), {"EndpointName": ENDPOINT})

            outcome = deploy.reconcile(
                sagemaker, alerts.sns, settings, settings.for_group(GROUP), change(3, "Rejected")
            )

        assert outcome == deploy.Outcome(Action.NO_APPROVED_VERSION, endpoint_status="InService")
        [(subject, details)] = alerts.alerts()
    assert subject == f"{ENDPOINT}: no Approved version left, endpoint left as is"
    assert details == {
        "team": "fraud",
        "model_package_group": GROUP,
        "rejected_version": 3,
        "rejected_model_package_arn": package_arn(3),
        "endpoint": ENDPOINT,
        "endpoint_status": "InService",
        "endpoint_config": config_name(3),
        "what_to_do": "Approve a version of the group to deploy it, or delete the endpoint by hand.",
    }


def test_an_alert_about_the_longest_endpoint_name_still_goes_out_with_its_subject_cut_to_100():
    long_endpoint = "mlp-fraud-" + "e" * 53  # 63 characters, the longest name SageMaker allows
    subject = f"{long_endpoint}: no Approved version left, endpoint left as is"
    with mock_aws():
        alerts = Sns()
        deploy.send_alert(alerts.sns, alerts.topic_arn, subject, {"endpoint": long_endpoint})
        [(sent, details)] = alerts.alerts()
    assert (sent, len(sent)) == (subject[:100], 100)
    assert details == {"endpoint": long_endpoint}


# --- the handler's event ----------------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch):
    with mock_aws():
        alerts = Sns()
        for key, value in {**ENV, "ALERT_TOPIC_ARN": alerts.topic_arn}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(handler, "_settings", None)
        monkeypatch.setattr(clients, "CLIENTS", {})
        yield alerts


@pytest.mark.parametrize("event", [None, "not an event", {}, {"Records": []}])
def test_an_event_without_records_processes_nothing(monkeypatch, event):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(handler, "_settings", None)
    monkeypatch.setattr(clients, "CLIENTS", {})
    assert handler.handler(event, None) == {"batchItemFailures": []}


def test_the_handler_alerts_through_its_own_sns_client(environment):
    sagemaker = clients.cached_client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    record = {
        "messageId": "m-1",
        "body": json.dumps(
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "group": GROUP,
                "version": 1,
                "status": "Rejected",
                "arn": package_arn(1),
            }
        ),
    }

    assert handler.handler({"Records": [record]}, None) == {"batchItemFailures": []}
    [(subject, details)] = environment.alerts()
    assert subject == f"{ENDPOINT}: no Approved version left, endpoint left as is"
    assert details["endpoint_status"] == "absent"


# --- why a message is unusable, in the words the log line gives ------------------------------------------

VALID = {
    "source": "aws.sagemaker",
    "detail-type": "SageMaker Model Package State Change",
    "group": GROUP,
    "version": 1,
    "status": "Approved",
    "arn": package_arn(1),
}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "body must be a string, got NoneType"),
        ("{", "body is not JSON: 'Expecting property name enclosed in double quotes: line 1 column 2 (char 1)'"),
        ("[]", "body must be a JSON object, got list"),
        (json.dumps({k: v for k, v in VALID.items() if k != "source"}), "field 'source' is missing"),
        (
            json.dumps({**VALID, "source": "aws.ec2"}),
            "not a model package state change (source 'aws.ec2', detail-type 'SageMaker Model Package State Change')",
        ),
        (
            json.dumps(
                {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": []}
            ),
            "field 'detail' must be an object",
        ),
        (json.dumps({**VALID, "status": "Maybe"}), "unknown approval status 'Maybe'"),
        (json.dumps({**VALID, "status": " "}), "field 'status' must be a non-empty string, got ' '"),
        (
            json.dumps({**VALID, "arn": "arn:aws:sagemaker:x:model/y"}),
            "field 'arn' is not a model package ARN: 'arn:aws:sagemaker:x:model/y'",
        ),
        (json.dumps({**VALID, "group": ""}), "field 'group' must be a non-empty string, got ''"),
    ],
    ids=[
        "not text",
        "not json",
        "not an object",
        "no source",
        "other source",
        "detail not an object",
        "unknown status",
        "blank status",
        "not a package arn",
        "empty group",
    ],
)
def test_an_unusable_message_says_why(body, reason):
    with pytest.raises(UnusableMessage) as error:
        parse_message(body)
    assert str(error.value) == reason


def test_a_body_of_exactly_the_event_size_limit_is_read_and_one_character_more_is_not():
    compact = json.dumps(VALID)
    limit = 256 * 1024
    assert parse_message(compact + " " * (limit - len(compact))).version == 1
    with pytest.raises(UnusableMessage, match=r"^body has 262145 characters, more than the 262144 an event can have$"):
        parse_message(compact + " " * (limit - len(compact) + 1))


# --- the outcome of each endpoint state, as the structured log line records it ---------------------------


@pytest.mark.parametrize(
    ("status", "current", "pending", "expected"),
    [
        ("InService", 2, None, (Action.ALREADY_SERVING, 2, "InService")),
        ("Updating", 1, 2, (Action.ALREADY_IN_PROGRESS, 2, "Updating")),
        ("Creating", 2, None, (Action.ALREADY_IN_PROGRESS, 2, "Creating")),
        ("Updating", 1, 3, (Action.ENDPOINT_BUSY, 2, "Updating")),
        ("OutOfService", 1, None, (Action.ENDPOINT_BUSY, 2, "OutOfService")),
    ],
)
def test_each_endpoint_state_gives_its_outcome_with_version_config_and_status(status, current, pending, expected):
    described = endpoint(status, config_name(current))
    if pending:
        described["PendingDeploymentSummary"] = {"EndpointConfigName": config_name(pending)}
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", described, {"EndpointName": ENDPOINT})
        if expected[0] == Action.ALREADY_SERVING:
            tags_on_endpoint = endpoint_spec.endpoint_tags(make_settings(), package_arn(2), 2, config_name(2))
            stub.add_response("list_tags", {"Tags": tags_on_endpoint}, {"ResourceArn": ENDPOINT_ARN})

        outcome = reconcile(sagemaker, sns, 2)

    action, version, reported_status = expected
    assert outcome == deploy.Outcome(action, version, config_name(2), reported_status)


@pytest.mark.parametrize(
    "delete_error",
    [None, ("ValidationException", f'Could not find endpoint "{ENDPOINT_ARN}".')],
    ids=["deleted", "gone"],
)
def test_a_failed_endpoint_is_deleted_or_found_gone_and_the_message_comes_back(delete_error):
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("Failed", config_name(1)), {"EndpointName": ENDPOINT})
        if delete_error:
            stub.add_client_error("delete_endpoint", *delete_error, expected_params={"EndpointName": ENDPOINT})
        else:
            stub.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})

        outcome = reconcile(sagemaker, sns, 2)

    assert outcome == deploy.Outcome(Action.REPLACING_FAILED, 2, config_name(2), "Failed")
    assert outcome.retry


def test_a_failed_endpoint_that_cannot_be_deleted_raises():
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("Failed", config_name(1)), {"EndpointName": ENDPOINT})
        stub.add_client_error("delete_endpoint", "AccessDeniedException", "not found in your permissions")

        with pytest.raises(ClientError, match="AccessDeniedException"):
            reconcile(sagemaker, sns, 2)


def test_an_endpoint_reported_not_found_counts_as_absent():
    with stubbed() as (sagemaker, stub, sns):
        stub.add_client_error("describe_endpoint", "ValidationException", f"Endpoint {ENDPOINT} not found.")
        assert deploy.describe_endpoint(sagemaker, ENDPOINT) is None


def test_an_update_refused_as_in_progress_alone_is_busy():
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_new_version(stub, 2)
        stub.add_response("add_tags", {}, {"ResourceArn": ENDPOINT_ARN, "Tags": ANY})
        stub.add_client_error("update_endpoint", "ValidationException", "The endpoint is in-progress.")

        assert reconcile(sagemaker, sns, 2).action == Action.ENDPOINT_BUSY


# --- the log lines of dropped and failed records -----------------------------------------------------------


def handled(record: dict, caplog, sagemaker=None, sns=None) -> tuple[dict, list]:
    sagemaker = sagemaker or boto3.client("sagemaker", region_name=REGION)
    sns = sns or boto3.client("sns", region_name=REGION)
    with caplog.at_level(logging.INFO, logger="deploy_on_approval"):
        response = handler.process_batch([record], sagemaker, sns, make_settings())
    return response, [r for r in caplog.records if r.name.startswith("deploy_on_approval")]


@pytest.mark.parametrize(
    ("record", "message", "fields"),
    [
        (
            {"messageId": "m"},
            "ignored unusable message",
            {"reason": "body is not JSON: 'Expecting value: line 1 column 1 (char 0)'"},
        ),
        (
            {"messageId": "m", "body": json.dumps({**VALID, "group": "mlp-pricing-price-elasticity"})},
            "ignored message for a group this team does not own",
            {"group": "mlp-pricing-price-elasticity", "version": 1},
        ),
        (
            {"messageId": "m", "body": json.dumps({**VALID, "status": "PendingManualApproval"})},
            "ignored status that does not deploy",
            {"group": GROUP, "version": 1, "status": "PendingManualApproval"},
        ),
    ],
    ids=["no body", "other team's group", "pending"],
)
def test_a_dropped_record_is_logged_once_with_why(record, message, fields, caplog):
    with Stubber(boto3.client("sagemaker", region_name=REGION)) as stub:
        response, records = handled(record, caplog, sagemaker=stub.client)

    assert response == {"batchItemFailures": []}
    [line] = records
    assert line.getMessage() == message
    assert {"action": line.action, **{k: getattr(line, k) for k in fields}} == {"action": "ignored", **fields}


def test_a_record_the_parser_fails_on_is_logged_with_the_error(monkeypatch, caplog):
    def broken(body):
        raise KeyError("x" * 300)

    monkeypatch.setattr(handler, "parse_message", broken)
    response, [line] = handled({"messageId": "m", "body": "{}"}, caplog)

    assert response == {"batchItemFailures": []}
    assert (line.levelname, line.getMessage(), line.action) == (
        "ERROR",
        "ignored message the parser failed on",
        "ignored",
    )
    assert line.reason == f"parser error KeyError: {str(KeyError('x' * 300))[:200]}"


def test_a_failing_deploy_is_logged_as_an_error_with_its_traceback(caplog):
    with Stubber(boto3.client("sagemaker", region_name=REGION)) as stub:
        stub.add_client_error("list_model_packages", "ThrottlingException", "Rate exceeded")
        response, [line] = handled({"messageId": "m", "body": json.dumps(VALID)}, caplog, sagemaker=stub.client)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert (line.levelname, line.getMessage(), line.action) == (
        "ERROR",
        "deploy failed, message will be retried",
        "error",
    )
    assert line.exc_info is not None


# --- settings ------------------------------------------------------------------------------------------------


def test_without_a_cost_center_no_cost_center_tag_is_written():
    settings = DeploySettings.from_env({k: v for k, v in ENV.items() if k != "COST_CENTER"})
    assert "mlops:cost-center" not in {t["Key"] for t in endpoint_spec.ownership_tags(settings, package_arn(1), 1)}


def test_bad_or_missing_settings_are_named():
    from common.environment import SettingsError

    with pytest.raises(SettingsError, match=r"^USE_CASES is not the JSON list the construct writes: "):
        DeploySettings.from_env({**ENV, "USE_CASES": "{"})
    with pytest.raises(SettingsError, match=r"^environment variable KMS_KEY_ARN is missing or empty$"):
        DeploySettings.from_env({k: v for k, v in ENV.items() if k != "KMS_KEY_ARN"})


@pytest.mark.parametrize("prefix", [
    "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group",  # no trailing slash
    "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlp-fraud-fraud-detection",  # a group, not a prefix
    "arn:aws:sagemaker:eu-west-1:1111:model-package-group/",
    "arn:aws:s3:::bucket/",
])
def test_a_registry_group_prefix_that_is_no_group_arn_prefix_is_named(prefix):
    from common.environment import SettingsError

    with pytest.raises(SettingsError, match=r"^MODEL_PACKAGE_GROUP_ARN_PREFIX is .* not a model package group ARN"):
        DeploySettings.from_env({**ENV, "MODEL_PACKAGE_GROUP_ARN_PREFIX": prefix})


def test_the_registry_names_a_group_by_arn_in_another_account_and_by_name_in_its_own():
    own = DeploySettings.from_env(ENV)
    other = DeploySettings.from_env(
        {**ENV, "MODEL_PACKAGE_GROUP_ARN_PREFIX": "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/"})
    (target,) = [t for t in own.use_cases.values() if t.group == GROUP]
    assert own.registry_group(target) == GROUP
    assert other.registry_group(target) == f"arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/{GROUP}"


# --- names and requests that must not change between releases ------------------------------------------------


def test_the_endpoint_config_name_of_unchanged_settings_is_stable_across_releases():
    """A redeploy of the same version with the same settings must find its existing config: the settings
    digest in the name (instance type and count, data capture, key, capture location) may not drift."""
    assert config_name(1) == "mlp-fraud-fraud-detection-v1-8c1b2904"


def test_data_capture_records_both_requests_and_responses():
    team = Team.model_validate(
        {
            "name": "fraud",
            "cost_center": "CC-1001",
            "use_cases": [
                {"name": "fraud-detection", "endpoint": {"data_capture": {"enabled": True, "sampling_percent": 5}}}
            ],
        }
    )
    settings = DeploySettings.from_env({**ENV, "USE_CASES": use_cases_environment(PREFIX, team)})
    request = endpoint_spec.create_endpoint_config_request(settings, settings.for_group(GROUP), package_arn(1), 1)
    assert request["DataCaptureConfig"]["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]


def test_an_update_and_a_recorded_intent_report_version_config_and_status():
    settings = make_settings()
    with stubbed() as (sagemaker, stub, sns):
        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_new_version(stub, 2)
        stub.add_response("add_tags", {}, {"ResourceArn": ENDPOINT_ARN, "Tags": ANY})
        stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
        updated = reconcile(sagemaker, sns, 2)

        stub.add_response("list_model_packages", listed(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint("InService", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response("list_tags", {"Tags": []}, {"ResourceArn": ENDPOINT_ARN})
        stub.add_response(
            "add_tags",
            {},
            {
                "ResourceArn": ENDPOINT_ARN,
                "Tags": endpoint_spec.endpoint_tags(settings, package_arn(2), 2, config_name(2)),
            },
        )
        recorded = reconcile(sagemaker, sns, 2)

    assert updated == deploy.Outcome(Action.UPDATED, 2, config_name(2), "InService")
    assert recorded == deploy.Outcome(Action.RECORDED_INTENT, 2, config_name(2), "InService")


def test_the_deploy_log_line_carries_the_event_and_the_outcome(caplog):
    outcome = deploy.Outcome(Action.ENDPOINT_BUSY, 2, config_name(2), "Updating")
    with caplog.at_level(logging.INFO, logger="deploy_on_approval"):
        deploy.log_outcome(change(3, "Rejected"), make_settings().for_group(GROUP), outcome)

    [line] = caplog.records
    assert line.getMessage() == "deploy endpoint_busy_retry_later"
    assert {
        k: getattr(line, k)
        for k in (
            "group",
            "event_version",
            "event_status",
            "version",
            "endpoint",
            "endpoint_config",
            "endpoint_status",
            "action",
        )
    } == {
        "group": GROUP,
        "event_version": 3,
        "event_status": "Rejected",
        "version": 2,
        "endpoint": ENDPOINT,
        "endpoint_config": config_name(2),
        "endpoint_status": "Updating",
        "action": "endpoint_busy_retry_later",
    }


def test_a_body_that_is_not_text_names_its_type():
    with pytest.raises(UnusableMessage, match=r"^body must be a string, got bytes$"):
        parse_message(b"{}")
