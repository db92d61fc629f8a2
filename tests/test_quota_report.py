"""`python -m tools.quota_report`: the quota table of a deployed account, read with the custom resource's logic."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from lambdas.instance_quotas import logic
from tools import quota_report

REGION = "eu-west-1"


@pytest.fixture
def client():
    return boto3.client("service-quotas", region_name=REGION, config=logic.client_config())


def write_config(tmp_path, quotas):
    path = tmp_path / "platform.yaml"
    path.write_text(
        yaml.safe_dump(
            {"prefix": "mlp", "region": REGION, "quotas": quotas, "teams": [{"name": "fraud", "cost_center": "CC-1"}]}
        )
    )
    return str(path)


QUOTAS = [
    {"instance_type": "ml.m5.4xlarge", "usage": "processing", "desired": 4},
    {"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 4},
    {"instance_type": "ml.g5.xlarge", "usage": "spot-training", "desired": 2},
]


def listed(name, code, value=0.0):
    return {"QuotaName": name, "QuotaCode": code, "Value": value, "Adjustable": True}


def expect_quota(stubber, code, applied, history=()):
    stubber.add_response(
        "get_service_quota", {"Quota": {"QuotaCode": code, "Value": applied}}, {"ServiceCode": "sagemaker", "QuotaCode": code}
    )
    stubber.add_response(
        "list_requested_service_quota_change_history_by_quota",
        {"RequestedQuotas": list(history)},
        {"ServiceCode": "sagemaker", "QuotaCode": code, "MaxResults": 100},
    )


def test_prints_desired_applied_open_request_and_status(tmp_path, client, capsys):
    stubber = Stubber(client)
    stubber.add_response(
        "list_aws_default_service_quotas",
        {
            "Quotas": [
                listed("ml.m5.4xlarge for processing job usage", "L-AAAA1111"),
                listed("ml.m5.large for endpoint usage", "L-BBBB2222"),
                listed("ml.g5.xlarge for spot training job usage", "L-CCCC3333"),
            ]
        },
        {"ServiceCode": "sagemaker", "MaxResults": 100},
    )
    expect_quota(stubber, "L-AAAA1111", 8.0)
    expect_quota(
        stubber,
        "L-BBBB2222",
        1.0,
        [{"Id": "req-77", "Status": "CASE_OPENED", "DesiredValue": 4.0, "Created": dt.datetime(2026, 11, 1)}],
    )
    expect_quota(stubber, "L-CCCC3333", 0.0)
    with stubber:
        code = quota_report.main(["-c", write_config(tmp_path, QUOTAS)], client=client)
    stubber.assert_no_pending_responses()
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["instance", "type", "usage"]
    rows = {line.split()[0] + " " + line.split()[1]: line.split() for line in lines[1:]}
    assert rows["ml.m5.4xlarge processing"][2:7] == ["L-AAAA1111", "4", "8", "none", "SUFFICIENT"]
    assert rows["ml.m5.large endpoint"][2:8] == ["L-BBBB2222", "4", "1", "req-77", "(CASE_OPENED)", "REQUEST_OPEN"]
    assert rows["ml.g5.xlarge spot-training"][2:7] == ["L-CCCC3333", "2", "0", "none", "BELOW_DESIRED"]


def test_report_never_requests_an_increase(tmp_path, client, capsys):
    stubber = Stubber(client)
    stubber.add_response(
        "list_aws_default_service_quotas",
        {"Quotas": [listed("ml.m5.4xlarge for processing job usage", "L-AAAA1111")]},
        {"ServiceCode": "sagemaker", "MaxResults": 100},
    )
    expect_quota(stubber, "L-AAAA1111", 0.0)
    with stubber:
        assert quota_report.main(["-c", write_config(tmp_path, QUOTAS[:1])], client=client) == 0
    stubber.assert_no_pending_responses()
    assert "BELOW_DESIRED" in capsys.readouterr().out


def test_unknown_quota_is_shown_and_exits_1(tmp_path, client, capsys):
    stubber = Stubber(client)
    stubber.add_response("list_aws_default_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker", "MaxResults": 100})
    stubber.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker", "MaxResults": 100})
    with stubber:
        code = quota_report.main(["-c", write_config(tmp_path, QUOTAS[:1])], client=client)
    out = capsys.readouterr().out
    assert code == 1
    assert "UNKNOWN_QUOTA" in out and "'ml.m5.4xlarge for processing job usage'" in out


def test_invalid_config_exits_2_naming_the_field(tmp_path, client, capsys):
    path = write_config(tmp_path, [{"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 0}])
    with Stubber(client):
        assert quota_report.main(["-c", path], client=client) == 2
    assert "quotas[0].desired" in capsys.readouterr().err


def test_config_without_quotas_prints_so(tmp_path, client, capsys):
    with Stubber(client):
        assert quota_report.main(["-c", write_config(tmp_path, [])], client=client) == 0
    assert "no quotas configured" in capsys.readouterr().out


def test_aws_errors_exit_3_with_the_reason(tmp_path, client, capsys):
    stubber = Stubber(client)
    stubber.add_client_error("list_aws_default_service_quotas", service_error_code="AccessDeniedException",
                             service_message="not allowed")
    with stubber:
        assert quota_report.main(["-c", write_config(tmp_path, QUOTAS[:1])], client=client) == 3
    assert "AccessDeniedException" in capsys.readouterr().err


def test_client_reads_the_given_region_with_the_lambdas_retry_config():
    client = quota_report.service_quotas_client("eu-central-1")
    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": logic.RETRY_CONFIG["max_attempts"] + 1}


def test_region_option_overrides_the_configs_region(tmp_path):
    from stacks.config import load_config

    config = load_config(write_config(tmp_path, QUOTAS[:1]))
    assert quota_report.region_for(quota_report.parse_args(["--region", "us-west-2"]), config) == "us-west-2"
    assert quota_report.region_for(quota_report.parse_args([]), config) == REGION
    assert quota_report.parse_args([]).config == "config/platform.yaml"


def test_region_falls_back_to_aws_region(monkeypatch):
    from stacks.config import parse_config

    config = parse_config({"prefix": "mlp", "teams": [{"name": "fraud", "cost_center": "CC-1"}]})
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    assert quota_report.region_for(quota_report.parse_args([]), config) == "ca-central-1"


def test_no_region_anywhere_says_how_to_give_one(tmp_path, monkeypatch, capsys):
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump({"prefix": "mlp", "quotas": [
        {"instance_type": "ml.m5.4xlarge", "usage": "processing", "desired": 2}],
        "teams": [{"name": "fraud", "cost_center": "CC-1"}]}))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert quota_report.main(["-c", str(path)]) == 3
    err = capsys.readouterr().err
    assert "--region" in err and "make quotas REGION=" in err and "AWS_REGION" in err
