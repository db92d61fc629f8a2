"""The instance-quota custom resource: botocore Stubber (moto lacks Service Quotas), config validation."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from common import clients
from instance_quotas import handler, logic

from stacks.config import ConfigError, parse_config

REGION = "us-east-1"
NAME = "ml.m5.4xlarge for processing job usage"
CODE = "L-0A1B2C3D"
OTHER = {"QuotaName": "ml.m5.large for processing job usage", "QuotaCode": "L-99999999", "Value": 0.0, "Adjustable": True}


@pytest.fixture
def client():
    return boto3.client("service-quotas", region_name=REGION, config=logic.client_config())


def event(request_type="Create", desired="4", **extra):
    body = {
        "RequestType": request_type,
        "RequestId": "req-1",
        "LogicalResourceId": "MlM54xlargeProcessing",
        "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/mlp-platform/abc",
        "ResourceType": "Custom::SageMakerInstanceQuota",
        "ResourceProperties": {"InstanceType": "ml.m5.4xlarge", "Usage": "processing", "DesiredValue": desired},
    }
    if request_type != "Create":
        body["PhysicalResourceId"] = NAME
    body.update(extra)
    return body


def quota(name=NAME, code=CODE, value=0.0, adjustable=True):
    return {"QuotaName": name, "QuotaCode": code, "Value": value, "Adjustable": adjustable, "ServiceCode": "sagemaker"}


def expect_resolve(stubber, pages=None):
    """ListAWSDefaultServiceQuotas pages; default: the quota on the second page."""
    pages = pages or [[OTHER], [quota()]]
    for index, items in enumerate(pages):
        params = {"ServiceCode": "sagemaker", "MaxResults": 100}
        if index:
            params["NextToken"] = f"page-{index}"
        response = {"Quotas": items}
        if index < len(pages) - 1:
            response["NextToken"] = f"page-{index + 1}"
        stubber.add_response("list_aws_default_service_quotas", response, params)


def expect_applied(stubber, value):
    stubber.add_response(
        "get_service_quota", {"Quota": quota(value=value)}, {"ServiceCode": "sagemaker", "QuotaCode": CODE}
    )


def expect_history(stubber, *requests):
    stubber.add_response(
        "list_requested_service_quota_change_history_by_quota",
        {"RequestedQuotas": list(requests)},
        {"ServiceCode": "sagemaker", "QuotaCode": CODE, "MaxResults": 100},
    )


def history_item(request_id, status, desired, days_ago=1):
    return {
        "Id": request_id,
        "Status": status,
        "DesiredValue": float(desired),
        "QuotaCode": CODE,
        "ServiceCode": "sagemaker",
        "Created": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) - dt.timedelta(days=days_ago),
    }


def expect_request(stubber, desired, request_id="req-abc", status="PENDING"):
    stubber.add_response(
        "request_service_quota_increase",
        {"RequestedQuota": {"Id": request_id, "Status": status, "DesiredValue": float(desired), "QuotaCode": CODE}},
        {"ServiceCode": "sagemaker", "QuotaCode": CODE, "DesiredValue": float(desired)},
    )


def run(client, stubber, body):
    with stubber:
        result = handler.handle(body, client_factory=lambda: client)
    stubber.assert_no_pending_responses()
    return result


def test_quota_already_high_enough_makes_no_request(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 10.0)
    expect_history(stubber)
    result = run(client, stubber, event(desired="4"))
    assert result["PhysicalResourceId"] == NAME
    assert result["Data"] == {
        "QuotaName": NAME,
        "QuotaCode": CODE,
        "DesiredValue": "4",
        "AppliedValue": "10",
        "RequestId": "none",
        "RequestStatus": "none",
        "Status": "SUFFICIENT",
        "Message": "applied value 10 already meets the desired 4",
    }


@pytest.mark.parametrize("open_status", ["PENDING", "CASE_OPENED"])
def test_open_request_means_no_new_request(client, open_status):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, history_item("old-1", "APPROVED", 1, days_ago=30), history_item("open-7", open_status, 8))
    data = run(client, stubber, event(desired="4"))["Data"]
    assert (data["Status"], data["RequestId"], data["RequestStatus"]) == ("REQUEST_OPEN", "open-7", open_status)


def test_below_desired_opens_exactly_one_request(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 1.0)
    expect_history(stubber, history_item("old-1", "APPROVED", 1, days_ago=60))
    expect_request(stubber, 4, request_id="req-new")
    data = run(client, stubber, event(desired="4"))["Data"]
    assert (data["Status"], data["RequestId"], data["RequestStatus"], data["AppliedValue"]) == (
        "REQUESTED",
        "req-new",
        "PENDING",
        "1",
    )


def test_never_changed_quota_falls_back_to_the_aws_default(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    stubber.add_client_error(
        "get_service_quota",
        service_error_code="NoSuchResourceException",
        service_message="The request failed because the specified service quota does not exist.",
        expected_params={"ServiceCode": "sagemaker", "QuotaCode": CODE},
    )
    stubber.add_response(
        "get_aws_default_service_quota", {"Quota": quota(value=2.0)}, {"ServiceCode": "sagemaker", "QuotaCode": CODE}
    )
    expect_history(stubber)
    data = run(client, stubber, event(desired="2"))["Data"]
    assert (data["AppliedValue"], data["Status"]) == ("2", "SUFFICIENT")


def test_quota_code_is_found_in_applied_quotas_when_defaults_lack_it(client):
    stubber = Stubber(client)
    expect_resolve(stubber, pages=[[OTHER]])
    stubber.add_response(
        "list_service_quotas", {"Quotas": [quota(value=5.0)]}, {"ServiceCode": "sagemaker", "MaxResults": 100}
    )
    expect_applied(stubber, 5.0)
    expect_history(stubber)
    assert run(client, stubber, event(desired="5"))["Data"]["QuotaCode"] == CODE


def test_unknown_quota_name_fails_with_a_message_naming_it(client):
    stubber = Stubber(client)
    expect_resolve(stubber, pages=[[OTHER]])
    stubber.add_response("list_service_quotas", {"Quotas": [OTHER]}, {"ServiceCode": "sagemaker", "MaxResults": 100})
    body = event()
    body["ResourceProperties"]["InstanceType"] = "ml.m5.9xlarge"
    with stubber, pytest.raises(logic.QuotaNotFoundError, match=r"'ml\.m5\.9xlarge for processing job usage'"):
        handler.handle(body, client_factory=lambda: client)


def test_create_then_update_with_same_value_never_opens_a_second_request(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    expect_request(stubber, 4, request_id="req-first")
    # Second deployment: the request made by the first is open now.
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, history_item("req-first", "PENDING", 4, days_ago=0))
    # Third deployment (Create again, e.g. a retried stack creation): still open.
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, history_item("req-first", "CASE_OPENED", 4, days_ago=0))
    with stubber:
        first = handler.handle(event("Create"), client_factory=lambda: client)
        second = handler.handle(event("Update"), client_factory=lambda: client)
        third = handler.handle(event("Create"), client_factory=lambda: client)
    stubber.assert_no_pending_responses()
    assert first["Data"]["Status"] == "REQUESTED"
    assert [r["Data"]["RequestId"] for r in (first, second, third)] == ["req-first"] * 3
    assert [r["Data"]["Status"] for r in (second, third)] == ["REQUEST_OPEN", "REQUEST_OPEN"]
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"] == third["PhysicalResourceId"] == NAME


def test_delete_makes_no_call_at_all(client):
    def no_client():
        raise AssertionError("Delete must not build a client")

    stubber = Stubber(client)
    with stubber:
        result = handler.handle(event("Delete"), client_factory=no_client)
    assert result == {"PhysicalResourceId": NAME}


@pytest.mark.parametrize("status", ["DENIED", "NOT_APPROVED", "CASE_CLOSED"])
def test_request_closed_without_increase_is_reported_not_repeated(client, status):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, history_item("req-denied", status, 4))
    data = run(client, stubber, event(desired="4"))["Data"]
    assert (data["Status"], data["RequestId"], data["RequestStatus"]) == ("NOT_GRANTED", "req-denied", status)


def test_refused_value_is_requested_again_when_desired_changes(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, history_item("req-denied", "DENIED", 8))
    expect_request(stubber, 4, request_id="req-smaller")
    assert run(client, stubber, event(desired="4"))["Data"]["RequestId"] == "req-smaller"


@pytest.mark.parametrize("error_code", ["QuotaExceededException", "IllegalArgumentException"])
def test_aws_refusing_the_request_is_reported_and_does_not_fail(client, error_code):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error(
        "request_service_quota_increase",
        service_error_code=error_code,
        service_message="Requested value is above the maximum for this quota.",
        expected_params={"ServiceCode": "sagemaker", "QuotaCode": CODE, "DesiredValue": 9999.0},
    )
    data = run(client, stubber, event(desired="9999"))["Data"]
    assert data["Status"] == "REQUEST_REFUSED"
    assert data["RequestStatus"] == error_code
    assert "above the maximum" in data["Message"]


def test_request_already_open_but_not_yet_listed_is_reported_as_open(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error("request_service_quota_increase", service_error_code="ResourceAlreadyExistsException",
                             service_message="A request for this quota is already open.")
    data = run(client, stubber, event(desired="4"))["Data"]
    assert (data["Status"], data["RequestStatus"]) == ("REQUEST_OPEN", "ResourceAlreadyExistsException")


def test_missing_permission_fails_the_deployment(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error("request_service_quota_increase", service_error_code="AccessDeniedException")
    with stubber, pytest.raises(Exception, match="AccessDeniedException"):
        handler.handle(event(), client_factory=lambda: client)


def test_quota_that_cannot_be_raised_is_not_requested(client):
    stubber = Stubber(client)
    expect_resolve(stubber, pages=[[quota(adjustable=False)]])
    expect_applied(stubber, 1.0)
    expect_history(stubber)
    assert run(client, stubber, event(desired="4"))["Data"]["Status"] == "NOT_ADJUSTABLE"


@pytest.mark.parametrize(
    "properties, message",
    [
        ({"InstanceType": "ml.m5.large", "Usage": "gpu", "DesiredValue": "1"}, "unknown quota usage 'gpu'"),
        ({"InstanceType": "ml.m5.large", "Usage": "endpoint", "DesiredValue": "0"}, "greater than 0"),
        ({"InstanceType": "ml.m5.large", "Usage": "endpoint", "DesiredValue": "two"}, "whole number"),
        ({"InstanceType": "ml.m5.large", "Usage": "endpoint"}, "DesiredValue is required"),
    ],
)
def test_bad_resource_properties_fail_before_any_call(client, properties, message):
    body = event()
    body["ResourceProperties"] = properties
    with Stubber(client), pytest.raises(ValueError, match=message):
        handler.handle(body, client_factory=lambda: client)


@pytest.mark.parametrize(
    "usage, name",
    [
        ("processing", "ml.m5.4xlarge for processing job usage"),
        ("transform", "ml.m5.4xlarge for transform job usage"),
        ("training", "ml.m5.4xlarge for training job usage"),
        ("spot-training", "ml.m5.4xlarge for spot training job usage"),
        ("endpoint", "ml.m5.4xlarge for endpoint usage"),
        ("notebook-instance", "ml.m5.4xlarge for notebook instance usage"),
    ],
)
def test_quota_names_follow_sagemakers_naming(usage, name):
    assert logic.quota_name("ml.m5.4xlarge", usage) == name


def test_every_config_usage_has_a_quota_name():
    from stacks.config import QuotaUsage

    assert {u.value for u in QuotaUsage} == set(logic.USAGE_PHRASES)


# Throttling. botocore's Stubber answers before the client's retry handler runs (a stubbed
# ThrottlingException is raised at once), so these tests answer one layer lower: a `before-send`
# hook returns recorded-shape HTTP responses, and the real client parses them and applies its
# retry config exactly as it would with AWS.


class _Body:
    def __init__(self, payload: dict):
        self._data = json.dumps(payload).encode()

    def stream(self, **_kwargs):
        yield self._data


def _http(status: int, payload: dict) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "0000"}
    return AWSResponse("https://servicequotas.us-east-1.amazonaws.com/", status, headers, _Body(payload))


@pytest.mark.parametrize("throttle_code", ["ThrottlingException", "TooManyRequestsException"])
def test_throttled_call_is_retried_then_succeeds(throttle_code):
    client = boto3.client("service-quotas", region_name=REGION, config=logic.client_config())
    answers = [
        _http(400, {"__type": throttle_code, "message": "Rate exceeded"}),
        _http(200, {"Quota": quota(value=3.0)}),
    ]
    sent = []

    def answer(request, **_kwargs):
        sent.append(request.headers.get("X-Amz-Target", b""))
        return answers.pop(0)

    client.meta.events.register("before-send.service-quotas.GetServiceQuota", answer)
    assert logic.applied_value(client, CODE) == 3.0
    assert len(sent) == 2 and not answers


def test_lambda_clients_use_the_standard_retry_config(monkeypatch):
    monkeypatch.setattr(clients, "CLIENTS", {})
    retries = handler.service_quotas_client().meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 9}, "the first call and 8 retries"
    assert handler.service_quotas_client() is handler.service_quotas_client()


# The config model's validation of `quotas` (stacks/config.py).

BASE_CONFIG = {"prefix": "mlp", "teams": [{"name": "fraud", "cost_center": "CC-1"}]}


@pytest.mark.parametrize(
    "entry, field, words",
    [
        ({"instance_type": "m5.large", "usage": "endpoint", "desired": 1}, "quotas[0].instance_type", "ml."),
        ({"instance_type": "ml.m5.large", "usage": "gpu", "desired": 1}, "quotas[0].usage", "'spot-training'"),
        ({"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 0}, "quotas[0].desired", "greater than 0"),
        ({"instance_type": "ml.m5.large", "usage": "endpoint", "desired": -3}, "quotas[0].desired", "greater than 0"),
        ({"instance_type": "ml.m5.large", "usage": "endpoint"}, "quotas[0].desired", "required"),
    ],
)
def test_config_rejects_bad_quota_entries_naming_the_field(entry, field, words):
    with pytest.raises(ConfigError) as error:
        parse_config({**BASE_CONFIG, "quotas": [entry]}, "platform.yaml")
    message = str(error.value)
    assert f"{field}:" in message and words in message


def test_config_rejects_a_quota_listed_twice():
    entry = {"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 1}
    with pytest.raises(ConfigError, match=r"quotas: .*duplicate quota"):
        parse_config({**BASE_CONFIG, "quotas": [entry, {**entry, "desired": 2}]}, "platform.yaml")


def test_long_refusal_messages_are_cut_to_fit_the_response(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error("request_service_quota_increase", service_error_code="IllegalArgumentException",
                             service_message="x" * 5000)
    data = run(client, stubber, event(desired="4"))["Data"]
    assert len(data["Message"]) == 500
    assert len(json.dumps(data)) < 4096
