"""Every datum the monitoring job sends to CloudWatch is one PutMetricData accepts, whatever the scores are.

The documented limits (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html): a value is 0 or has a
magnitude in [2^-360, 2^360], never NaN or infinite; at most 30 dimensions per metric; metric and dimension
names 1-255 characters; dimension values 1-255 here (the API takes 1,024, CloudFormation alarm dimensions 255);
at most 1,000 datums per request. The checks below are written from those numbers, not from the code under test.
Requests go to moto; a botocore event handler on the client records each request's parameters.
"""

from __future__ import annotations

import math

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_code import drift, monitor
from tests.cloudwatch_limits import EXTREMES, LARGEST, SMALLEST, acceptable, problems_of, recorded

NAMESPACE = "mlp/fraud/Monitoring"
ENDPOINT = "mlp-fraud-fraud-detection"


def report_with(scores: list, feature_names: list | None = None) -> dict:
    names = feature_names or [f"feature_{i}" for i in range(len(scores))]
    columns = [{"column": name, "kind": drift.NUMERICAL, "test": "ks", "score": score, "threshold": 0.05,
                "drifted": not score > 0.05} for name, score in zip(names, scores)]
    return {"endpoint": ENDPOINT, "model_version": "7", "rows": 400, "status": monitor.OK,
            "drift": {"columns": columns, "drifted_share": 1.0},
            "quality": {"rows": 50, "metrics": {"auc": 1e300, "log_loss": 5e-324}}}


def send(data: list) -> tuple:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        requests = recorded(cloudwatch)
        count = monitor.publish(cloudwatch, NAMESPACE, data)
    return requests, count


def test_a_strongly_drifted_window_publishes_only_acceptable_values():
    reference = pd.DataFrame({"amount": np.arange(390, dtype=float)})
    current = pd.DataFrame({"amount": np.arange(390, dtype=float) + 780})
    result = drift.dataset_drift(reference, current, {"amount": drift.NUMERICAL})
    assert result["columns"][0]["test"] == "ks" and 0 < result["columns"][0]["score"] < SMALLEST
    report = {"endpoint": ENDPOINT, "model_version": "7", "rows": 390, "status": monitor.OK, "drift": result}
    requests, _ = send(monitor.metric_data(report))
    assert problems_of(requests) == []
    sent = {d["MetricName"]: d["Value"] for r in requests for d in r["MetricData"]}
    assert 0 < sent[monitor.METRIC_DRIFT_SCORE] < 0.05, "the score must still read as drifted"
    assert sent[monitor.METRIC_DRIFTED_SHARE] == 1.0


def test_extreme_scores_and_a_long_feature_name_are_made_acceptable_and_non_finite_ones_are_left_out(capsys):
    long_name = "f" * 300
    scores = EXTREMES + [0.2]
    names = [f"feature_{i}" for i in range(len(EXTREMES))] + [long_name]
    requests, count = send(monitor.metric_data(report_with(scores, names)))
    assert count == 1 and problems_of(requests) == []
    sent = [d for r in requests for d in r["MetricData"]]
    scores_sent = {d["Dimensions"][2]["Value"]: d["Value"] for d in sent
                   if d["MetricName"] == monitor.METRIC_DRIFT_SCORE}
    assert scores_sent == {"feature_0": SMALLEST, "feature_1": 0.0, "feature_2": 0.0, "feature_3": SMALLEST,
                           "feature_4": LARGEST, "feature_5": -LARGEST,
                           monitor.dimension_value(long_name): 0.2}
    assert all(math.copysign(1.0, v) == 1.0 for k, v in scores_sent.items() if k in ("feature_1", "feature_2"))
    assert {d["MetricName"] for d in sent} >= {monitor.METRIC_DRIFTED_SHARE, "Quality_auc", "Quality_log_loss"}
    dropped = capsys.readouterr().err
    for feature, value in (("feature_6", "nan"), ("feature_7", "inf"), ("feature_8", "-inf")):
        assert f"Feature={feature}" in dropped and value in dropped


def test_a_long_dimension_value_is_cut_to_a_stable_distinct_value():
    first, second = "x" * 300, "x" * 299 + "y"
    assert len(monitor.dimension_value(first)) == 255
    assert monitor.dimension_value(first) == monitor.dimension_value("x" * 300)
    assert monitor.dimension_value(first) != monitor.dimension_value(second)
    assert monitor.dimension_value(first).startswith("x" * 200)
    assert monitor.dimension_value("amount") == "amount"


def test_2501_datums_go_in_three_requests_of_at_most_1000():
    data = [{"MetricName": monitor.METRIC_DRIFT_SCORE, "Value": EXTREMES[i % len(EXTREMES)], "Unit": "None",
             "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "Feature", "Value": f"f{i}"}]}
            for i in range(2501)]
    data = [d for d in data if math.isfinite(d["Value"])]
    data += [dict(data[0], Value=0.5) for _ in range(2501 - len(data))]
    requests, count = send(data)
    assert count == 3 and [len(r["MetricData"]) for r in requests] == [1000, 1000, 501]
    assert problems_of(requests) == []


@pytest.mark.parametrize("value", EXTREMES + [0.5, -3.0, SMALLEST, LARGEST, 2.0 ** 361])
def test_the_job_and_the_lambdas_make_the_same_value_of_a_datum(value):
    from lambdas.common import metric_datums as shared

    mine, reason = monitor.valid_datum({"MetricName": "M", "Value": value})
    theirs, their_reason = shared.valid_datum({"MetricName": "M", "Value": value})
    assert (mine is None) == (theirs is None) and (reason is None) == (their_reason is None)
    if mine is not None:
        assert mine["Value"] == theirs["Value"] and math.copysign(1, mine["Value"]) == math.copysign(1, theirs["Value"])
        assert acceptable(mine["Value"])


def test_the_job_and_the_lambdas_cut_a_long_dimension_value_alike():
    from lambdas.common import metric_datums as shared

    assert monitor.dimension_value("é" * 10 + "z" * 300) == shared.dimension_value("é" * 10 + "z" * 300)
