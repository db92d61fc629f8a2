"""Cost tracking: the team tag's cost-allocation activation (idempotent, patient with a key Cost Explorer does not
know yet, clear when the account may not) and each team's budget spend as CloudWatch metrics. Exact requests
with botocore Stubber (moto has neither Cost Explorer's tag API nor Budgets' CalculatedSpend); CloudWatch on moto."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from cost_tracking import handler, spend, tag_activation
from moto import mock_aws

KEY = "mlops:team"
ACCOUNT = "123456789012"
LIST = {"TagKeys": [KEY], "Type": "UserDefined"}
ACTIVATE = {"CostAllocationTagsStatus": [{"TagKey": KEY, "Status": "Active"}]}


def tag(status: str) -> dict:
    return {"CostAllocationTags": [{"TagKey": KEY, "Type": "UserDefined", "Status": status}]}


def ce_client():
    client = boto3.client("ce", region_name="us-east-1")
    return client, Stubber(client)


def test_an_inactive_tag_is_activated_once():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", tag("Inactive"), LIST)
    stub.add_response("update_cost_allocation_tags_status", {"Errors": []}, ACTIVATE)
    with stub:
        assert tag_activation.ensure_tag_active(ce, KEY) == (tag_activation.ACTIVATED,
                                                             f"{KEY} activated for cost allocation")
    stub.assert_no_pending_responses()


def test_an_active_tag_gets_no_write():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", tag("Active"), LIST)
    with stub:
        assert tag_activation.ensure_tag_active(ce, KEY)[0] == tag_activation.ACTIVE


def test_a_key_cost_explorer_does_not_know_yet_is_pending_not_an_error():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": []}, LIST)
    with stub:
        state, detail = tag_activation.ensure_tag_active(ce, KEY)
    assert state == tag_activation.PENDING and "up to 24 h" in detail


def test_errors_in_the_answer_leave_the_tag_pending():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", tag("Inactive"), LIST)
    stub.add_response("update_cost_allocation_tags_status",
                      {"Errors": [{"TagKey": KEY, "Code": "TAG_KEY_NOT_FOUND", "Message": "not found"}]}, ACTIVATE)
    with stub:
        assert tag_activation.ensure_tag_active(ce, KEY) == (
            tag_activation.PENDING, f"{KEY} not activated yet: TAG_KEY_NOT_FOUND not found")


def test_a_member_account_is_told_where_to_activate_the_tag():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", tag("Inactive"), LIST)
    stub.add_client_error("update_cost_allocation_tags_status", "AccessDeniedException", http_status_code=400,
                          expected_params=ACTIVATE)
    with stub:
        state, detail = tag_activation.ensure_tag_active(ce, KEY)
    assert state == tag_activation.REFUSED
    assert "only the payer account" in detail and "cost_allocation.activate_tag: false" in detail


def budget_response(limit: str, actual: str, forecast: str | None) -> dict:
    calculated = {"ActualSpend": {"Amount": actual, "Unit": "USD"}}
    if forecast is not None:
        calculated["ForecastedSpend"] = {"Amount": forecast, "Unit": "USD"}
    return {"Budget": {"BudgetName": "mlp-fraud", "BudgetLimit": {"Amount": limit, "Unit": "USD"},
                       "TimeUnit": "MONTHLY", "BudgetType": "COST", "CalculatedSpend": calculated,
                       "TimePeriod": {"Start": datetime(2026, 12, 1, tzinfo=timezone.utc),
                                      "End": datetime(2087, 6, 15, tzinfo=timezone.utc)}}}


ENVIRONMENT = {"ACCOUNT_ID": ACCOUNT, "COST_NAMESPACE": "mlp/Costs", "ACTIVATE_TAG_KEYS": KEY,
               "TEAM_BUDGETS": json.dumps([{"team": "fraud", "budget_name": "mlp-fraud"}])}


def test_a_run_activates_the_tag_and_publishes_each_teams_spend_against_its_limit():
    ce, ce_stub = ce_client()
    budgets = boto3.client("budgets", region_name="us-east-1")
    budgets_stub = Stubber(budgets)
    ce_stub.add_response("list_cost_allocation_tags", tag("Active"), LIST)
    budgets_stub.add_response("describe_budget", budget_response("2500.0", "1234.56", "2600.1"),
                              {"AccountId": ACCOUNT, "BudgetName": "mlp-fraud"})
    with mock_aws(), ce_stub, budgets_stub:
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        summary = handler.track_costs(ENVIRONMENT, ce, budgets, cloudwatch)
        metrics = {m["MetricName"]: m["Dimensions"] for m in cloudwatch.list_metrics(Namespace="mlp/Costs")["Metrics"]}
        value = cloudwatch.get_metric_statistics(
            Namespace="mlp/Costs", MetricName="MonthToDateCost", Dimensions=[{"Name": "Team", "Value": "fraud"}],
            StartTime=datetime(2000, 1, 1, tzinfo=timezone.utc), EndTime=datetime(2100, 1, 1, tzinfo=timezone.utc),
            Period=86400, Statistics=["Maximum"])["Datapoints"][0]["Maximum"]
    assert summary["tags"][KEY]["state"] == tag_activation.ACTIVE
    assert summary["teams"] == {"fraud": {"limit": 2500.0, "actual": 1234.56, "forecast": 2600.1}}
    assert summary["budgets_missing"] == []
    assert metrics == {name: [{"Name": "Team", "Value": "fraud"}] for name in
                       (spend.METRIC_ACTUAL, spend.METRIC_LIMIT, spend.METRIC_FORECAST)}
    assert value == pytest.approx(1234.56)


def test_without_a_tag_to_activate_cost_explorer_is_not_called():
    budgets = boto3.client("budgets", region_name="us-east-1")
    ce, ce_stub = ce_client()
    budgets_stub = Stubber(budgets)
    budgets_stub.add_response("describe_budget", budget_response("800", "0", None),
                              {"AccountId": ACCOUNT, "BudgetName": "mlp-fraud"})
    environment = {**ENVIRONMENT, "ACTIVATE_TAG_KEYS": "",
                   "TEAM_BUDGETS": json.dumps([{"team": "fraud", "budget_name": "mlp-fraud"}])}
    with mock_aws(), ce_stub, budgets_stub:
        summary = handler.track_costs(environment, ce, budgets, boto3.client("cloudwatch", region_name="us-east-1"))
    assert "tags" not in summary
    assert summary["teams"]["fraud"] == {"limit": 800.0, "actual": 0.0, "forecast": None}
    assert spend.metric_data([spend.Spend("fraud", 800.0, 0.0, None)]) == [
        {"MetricName": "MonthToDateCost", "Dimensions": [{"Name": "Team", "Value": "fraud"}], "Value": 0.0,
         "Unit": "None"},
        {"MetricName": "BudgetLimit", "Dimensions": [{"Name": "Team", "Value": "fraud"}], "Value": 800.0,
         "Unit": "None"}]


def test_a_budget_not_deployed_yet_is_reported_missing_and_publishes_nothing():
    budgets = boto3.client("budgets", region_name="us-east-1")
    ce, ce_stub = ce_client()
    budgets_stub = Stubber(budgets)
    budgets_stub.add_client_error("describe_budget", "NotFoundException", http_status_code=404,
                                  expected_params={"AccountId": ACCOUNT, "BudgetName": "mlp-fraud"})
    with mock_aws(), ce_stub, budgets_stub:
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        summary = handler.track_costs({**ENVIRONMENT, "ACTIVATE_TAG_KEYS": ""}, ce, budgets, cloudwatch)
        assert cloudwatch.list_metrics(Namespace="mlp/Costs")["Metrics"] == []
    assert summary == {"teams": {}, "budgets_missing": ["fraud"]}


def test_each_configured_tag_is_ensured_on_its_own():
    ce, stub = ce_client()
    stub.add_response("list_cost_allocation_tags", tag("Active"), LIST)
    stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": []},
                      {"TagKeys": ["mlops:platform"], "Type": "UserDefined"})
    with mock_aws(), stub:
        summary = handler.track_costs({**ENVIRONMENT, "ACTIVATE_TAG_KEYS": f"{KEY},mlops:platform",
                                       "TEAM_BUDGETS": "[]"}, ce, None, boto3.client("cloudwatch", region_name="us-east-1"))
    stub.assert_no_pending_responses()
    assert {key: value["state"] for key, value in summary["tags"].items()} == {
        KEY: tag_activation.ACTIVE, "mlops:platform": tag_activation.PENDING}
