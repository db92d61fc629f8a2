"""The instance-quota custom resource on what Service Quotas really returns (botocore Stubber; moto has no
Service Quotas): more than one closed request, requests without a creation time, empty pages, entries
without optional fields, and the messages and log lines an operator reads."""

from __future__ import annotations

import datetime as dt
import logging

import boto3
import pytest
from botocore.stub import Stubber
from instance_quotas import handler, logic

REGION = "us-east-1"
NAME = "ml.m5.4xlarge for processing job usage"
CODE = "L-0A1B2C3D"
DAY = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


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


def quota(value=0.0, **fields):
    return {
        "QuotaName": NAME,
        "QuotaCode": CODE,
        "Value": value,
        "Adjustable": True,
        "ServiceCode": "sagemaker",
        **fields,
    }


def expect_resolve(stubber, items=None):
    stubber.add_response(
        "list_aws_default_service_quotas",
        {"Quotas": items if items is not None else [quota()]},
        {"ServiceCode": "sagemaker", "MaxResults": 100},
    )


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


def request(request_id, status, desired, days_ago=None, **drop):
    item = {
        "Id": request_id,
        "Status": status,
        "DesiredValue": float(desired),
        "QuotaCode": CODE,
        "ServiceCode": "sagemaker",
    }
    if days_ago is not None:
        item["Created"] = DAY - dt.timedelta(days=days_ago)
    for key in drop:
        item.pop(key)
    return item


def expect_request(stubber, desired, request_id="req-new", status="PENDING"):
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


# --- more than one request in the history --------------------------------------------------------------


def test_of_two_closed_requests_the_later_one_decides_a_denial_is_not_repeated(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 2.0)
    # Listed oldest first: an approved request for 2 long ago, then a denial of 4 yesterday.
    expect_history(stubber, request("old-ok", "APPROVED", 2, days_ago=90), request("new-no", "DENIED", 4, days_ago=1))

    data = run(client, stubber, event(desired="4"))["Data"]

    assert data == {
        "QuotaName": NAME,
        "QuotaCode": CODE,
        "DesiredValue": "4",
        "AppliedValue": "2",
        "RequestId": "new-no",
        "RequestStatus": "DENIED",
        "Status": "NOT_GRANTED",
        "Message": "request new-no for 4 ended DENIED and the applied value is still 2; it is not repeated for the "
        "same value (change 'desired' or ask AWS Support)",
    }


def test_of_two_closed_requests_the_later_one_decides_an_old_denial_is_asked_again(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 2.0)
    # Listed newest first: an approval for 2 yesterday came after the denial of 4, which is asked again.
    expect_history(stubber, request("new-ok", "APPROVED", 2, days_ago=1), request("old-no", "DENIED", 4, days_ago=90))
    expect_request(stubber, 4)

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"], data["Message"]) == (
        "REQUESTED",
        "req-new",
        "requested 4 (applied value 2)",
    )


def test_of_two_open_requests_the_later_one_is_reported(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(
        stubber, request("open-old", "CASE_OPENED", 2, days_ago=20), request("open-new", "PENDING", 8, days_ago=2)
    )

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"], data["RequestStatus"], data["Message"]) == (
        "REQUEST_OPEN",
        "open-new",
        "PENDING",
        "request open-new for 8 is PENDING; AWS is still reviewing it",
    )


def test_a_request_without_a_creation_time_counts_as_the_oldest(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 2.0)
    expect_history(stubber, request("dated", "DENIED", 4, days_ago=5), request("undated", "APPROVED", 2))

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"]) == ("NOT_GRANTED", "dated")


def test_history_entries_without_optional_fields_are_read_with_defaults(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    # No desired value: it is not the value asked for now, so the request is made.
    expect_history(stubber, request("no-value", "DENIED", 1, days_ago=1, DesiredValue=None))
    expect_request(stubber, 1)

    assert run(client, stubber, event(desired="1"))["Data"]["Status"] == "REQUESTED"


def test_an_open_request_without_an_id_still_gives_string_attributes(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, request("x", "PENDING", 4, days_ago=1, Id=None))

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"]) == ("REQUEST_OPEN", "none")
    assert all(isinstance(v, str) and v for v in data.values())


def test_a_request_answer_without_id_or_status_gives_none_not_empty(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_response("request_service_quota_increase", {"RequestedQuota": {"QuotaCode": CODE}})

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"], data["RequestStatus"]) == ("REQUESTED", "none", "none")


# --- listings: empty pages, missing fields ------------------------------------------------------------


def test_an_empty_page_before_the_quota_is_skipped(client):
    stubber = Stubber(client)
    stubber.add_response(
        "list_aws_default_service_quotas", {"NextToken": "p2"}, {"ServiceCode": "sagemaker", "MaxResults": 100}
    )
    stubber.add_response(
        "list_aws_default_service_quotas",
        {"Quotas": [quota()]},
        {"ServiceCode": "sagemaker", "MaxResults": 100, "NextToken": "p2"},
    )
    expect_applied(stubber, 9.0)
    stubber.add_response(
        "list_requested_service_quota_change_history_by_quota",
        {},
        {"ServiceCode": "sagemaker", "QuotaCode": CODE, "MaxResults": 100},
    )

    assert run(client, stubber, event(desired="4"))["Data"]["Status"] == "SUFFICIENT"


def test_a_quota_listed_without_adjustable_counts_as_adjustable(client):
    stubber = Stubber(client)
    listed = quota()
    del listed["Adjustable"]
    expect_resolve(stubber, [listed])
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    expect_request(stubber, 4)

    assert run(client, stubber, event(desired="4"))["Data"]["Status"] == "REQUESTED"


# --- messages and log lines -------------------------------------------------------------------------------


def test_a_quota_that_cannot_be_raised_says_so(client):
    stubber = Stubber(client)
    expect_resolve(stubber, [quota(Adjustable=False)])
    expect_applied(stubber, 1.0)
    expect_history(stubber)

    assert run(client, stubber, event(desired="4"))["Data"]["Message"] == "AWS does not allow increases of this quota"


def test_the_read_only_assessment_says_how_far_below_the_quota_is(client):
    stubber = Stubber(client)
    expect_applied(stubber, 1.0)
    expect_history(stubber)
    with stubber:
        state = logic.read_state(client, logic.QuotaInfo(NAME, CODE, True), 4)
    outcome = logic.assess(state)
    assert (outcome.status, outcome.message) == ("BELOW_DESIRED", "applied value 1 is below the desired 4")


def test_a_refusal_is_reported_with_its_code_and_message_and_logged_as_a_warning(client, caplog):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error(
        "request_service_quota_increase",
        service_error_code="QuotaExceededException",
        service_message="Requested value is above the maximum.",
    )

    with caplog.at_level(logging.INFO):
        data = run(client, stubber, event(desired="9999"))["Data"]

    assert data["Message"] == "QuotaExceededException: Requested value is above the maximum."
    [refused] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert (refused.getMessage(), refused.quota_name, refused.quota_code, refused.error_code) == (
        "quota increase refused",
        NAME,
        CODE,
        "QuotaExceededException",
    )


def test_a_request_and_the_outcome_are_logged_with_the_quota_and_the_request(client, caplog):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    expect_request(stubber, 4, request_id="req-77")

    with caplog.at_level(logging.INFO):
        run(client, stubber, event("Update", desired="4"))

    requested = [r for r in caplog.records if r.getMessage() == "quota increase requested"]
    assert [(r.quota_name, r.quota_code, r.request_id) for r in requested] == [(NAME, CODE, "req-77")]
    [outcome] = [r for r in caplog.records if r.getMessage() == "quota outcome"]
    assert (outcome.request_type, outcome.Status, outcome.RequestId) == ("Update", "REQUESTED", "req-77")


def test_delete_is_logged_with_the_resource_and_the_lambda_entry_point_needs_no_client(caplog):
    with caplog.at_level(logging.INFO):
        result = handler.handler(event("Delete"), None)

    assert result == {"PhysicalResourceId": NAME}
    assert [(r.levelname, r.getMessage(), r.physical_resource_id) for r in caplog.records] == [
        ("INFO", "delete leaves quotas unchanged", NAME)
    ]


def test_an_event_without_properties_names_the_first_missing_one(client):
    body = event()
    del body["ResourceProperties"]
    with Stubber(client), pytest.raises(ValueError, match=r"^resource property InstanceType is required$"):
        handler.handle(body, client_factory=lambda: client)


def test_an_unknown_usage_lists_the_usages_there_are():
    with pytest.raises(ValueError) as error:
        logic.quota_name("ml.m5.large", "gpu")
    assert str(error.value) == (
        "unknown quota usage 'gpu'; one of: processing, transform, training, spot-training, endpoint, notebook-instance"
    )


def test_an_unknown_request_type_is_refused():
    with pytest.raises(ValueError, match=r"^unknown RequestType 'Replace'$"):
        handler.handle(event("Replace"), client_factory=lambda: None)


def test_a_closed_request_without_a_status_is_reported_as_none(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber, request("r-1", "DENIED", 4, days_ago=1, Status=None))

    data = run(client, stubber, event(desired="4"))["Data"]

    assert (data["Status"], data["RequestId"], data["RequestStatus"]) == ("NOT_GRANTED", "r-1", "none")


def test_a_request_already_open_but_not_listed_is_reported_with_aws_words(client):
    stubber = Stubber(client)
    expect_resolve(stubber)
    expect_applied(stubber, 0.0)
    expect_history(stubber)
    stubber.add_client_error(
        "request_service_quota_increase",
        service_error_code="ResourceAlreadyExistsException",
        service_message="A request is open.",
    )

    data = run(client, stubber, event(desired="4"))["Data"]

    assert data["Message"] == "AWS reports a request for this quota is already open: A request is open."
