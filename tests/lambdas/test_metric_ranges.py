"""Every datum cost tracking sends to CloudWatch is one PutMetricData accepts, whatever the budgets say.

The documented limits (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html): a value is 0 or has a
magnitude in [2^-360, 2^360], never NaN or infinite; at most 30 dimensions per metric; metric and dimension
names 1-255 characters; dimension values 1-255 here (the API takes 1,024, CloudFormation alarm dimensions 255);
at most 1,000 datums per request. The checks below are written from those numbers, not from the code under test.
CloudWatch is moto; a botocore event handler on the client records each request's parameters; Budgets is a
botocore Stubber (moto has no CalculatedSpend).
"""

from __future__ import annotations

import json
import logging
import math

import boto3
from botocore.stub import Stubber
from common import metric_datums
from cost_tracking import handler, spend
from moto import mock_aws

from tests.cloudwatch_limits import EXTREMES, LARGEST, SMALLEST, acceptable, problems_of, recorded

NAMESPACE = "mlp/Costs"
ACCOUNT = "123456789012"


def send(data: list) -> list:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        requests = recorded(cloudwatch)
        spend.publish(cloudwatch, NAMESPACE, data)
    return requests


def test_extreme_spends_and_a_long_team_name_are_made_acceptable_and_non_finite_ones_are_left_out(caplog):
    spends = [spend.Spend(f"team{i}", value, value, value) for i, value in enumerate(EXTREMES)]
    spends.append(spend.Spend("t" * 300, 100.0, 50.0, None))
    with caplog.at_level(logging.WARNING):
        requests = send(spend.metric_data(spends))
    assert problems_of(requests) == []
    sent = {(d["Dimensions"][0]["Value"], d["MetricName"]): d["Value"] for r in requests for d in r["MetricData"]}
    actual = {team: value for (team, name), value in sent.items() if name == spend.METRIC_ACTUAL}
    assert actual == {"team0": SMALLEST, "team1": 0.0, "team2": 0.0, "team3": SMALLEST, "team4": LARGEST,
                      "team5": -LARGEST, metric_datums.dimension_value("t" * 300): 50.0}
    assert math.copysign(1.0, actual["team2"]) == 1.0
    for team in ("team6", "team7", "team8"):
        assert f"Team={team}" in caplog.text, caplog.text


def test_the_handler_publishes_a_budget_with_unusable_amounts_without_losing_the_other_teams():
    budgets = boto3.client("budgets", region_name="us-east-1")
    stub = Stubber(budgets)
    for name, (limit, actual, forecast) in {"mlp-fraud": ("1e300", "NaN", "1.15e-232"),
                                            "mlp-pricing": ("2500", "12.5", "30")}.items():
        calculated = {"ActualSpend": {"Amount": actual, "Unit": "USD"},
                      "ForecastedSpend": {"Amount": forecast, "Unit": "USD"}}
        stub.add_response("describe_budget", {"Budget": {
            "BudgetName": name, "BudgetLimit": {"Amount": limit, "Unit": "USD"}, "TimeUnit": "MONTHLY",
            "BudgetType": "COST", "CalculatedSpend": calculated}}, {"AccountId": ACCOUNT, "BudgetName": name})
    environment = {"ACCOUNT_ID": ACCOUNT, "COST_NAMESPACE": NAMESPACE, "ACTIVATE_TAG_KEYS": "",
                   "TEAM_BUDGETS": json.dumps([{"team": "fraud", "budget_name": "mlp-fraud"},
                                               {"team": "pricing", "budget_name": "mlp-pricing"}])}
    with mock_aws(), stub:
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        requests = recorded(cloudwatch)
        handler.track_costs(environment, None, budgets, cloudwatch)
    assert problems_of(requests) == []
    sent = {(d["Dimensions"][0]["Value"], d["MetricName"]): d["Value"] for r in requests for d in r["MetricData"]}
    assert sent == {("fraud", spend.METRIC_LIMIT): LARGEST, ("fraud", spend.METRIC_FORECAST): SMALLEST,
                    ("pricing", spend.METRIC_LIMIT): 2500.0, ("pricing", spend.METRIC_ACTUAL): 12.5,
                    ("pricing", spend.METRIC_FORECAST): 30.0}


def test_2501_datums_go_in_three_requests_of_at_most_1000():
    spends = [spend.Spend(f"team{i}", 1e300, 1.15e-232, -0.0) for i in range(834)]
    data = spend.metric_data(spends)[:2501]
    requests = send(data)
    assert [len(r["MetricData"]) for r in requests] == [1000, 1000, 501]
    assert problems_of(requests) == []


def test_a_datum_with_31_dimensions_or_an_overlong_name_is_left_out_with_its_reason():
    wide = {"MetricName": "M", "Value": 1.0, "Dimensions": [{"Name": f"D{i}", "Value": "v"} for i in range(31)]}
    long_name = {"MetricName": "M" * 256, "Value": 1.0}
    long_dimension_name = {"MetricName": "M", "Value": 1.0, "Dimensions": [{"Name": "N" * 256, "Value": "v"}]}
    empty_value = {"MetricName": "M", "Value": 1.0, "Dimensions": [{"Name": "Team", "Value": ""}]}
    good = {"MetricName": "M", "Value": 1.0, "Dimensions": [{"Name": f"D{i}", "Value": "v"} for i in range(30)]}
    kept, dropped = metric_datums.valid_data([wide, long_name, long_dimension_name, empty_value, good])
    assert kept == [good]
    assert [reason.split(": ", 1)[1] for reason in dropped] == [
        "31 dimensions, more than 30", "metric name of 256 characters, not 1-255",
        "dimension name of 256 characters, not 1-255", "empty value of dimension 'Team'"]


def test_values_counts_and_statistic_sets_are_made_acceptable_too():
    datum = {"MetricName": "M", "Values": [1e-300, math.nan, 1e300, 2.0], "Counts": [1.0, 2.0, 3.0, 4.0]}
    kept, dropped = metric_datums.valid_data([datum, {"MetricName": "S", "StatisticValues": {
        "SampleCount": 2.0, "Sum": 1e300, "Minimum": 5e-324, "Maximum": 1e300}},
        {"MetricName": "T", "StatisticValues": {"SampleCount": 1.0, "Sum": math.inf, "Minimum": 0.0,
                                                "Maximum": 0.0}}])
    assert kept[0]["Values"] == [SMALLEST, LARGEST, 2.0] and kept[0]["Counts"] == [1.0, 3.0, 4.0]
    assert kept[1]["StatisticValues"] == {"SampleCount": 2.0, "Sum": LARGEST, "Minimum": SMALLEST, "Maximum": LARGEST}
    assert len(kept) == 2 and "T" in dropped[-1] and "Sum" in dropped[-1]
    assert all(acceptable(v) for v in kept[0]["Values"] + list(kept[1]["StatisticValues"].values()))
