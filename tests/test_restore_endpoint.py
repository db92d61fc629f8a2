"""`python -m tools.restore_endpoint NAME` brings back what the reaper deleted, from the name alone (moto)."""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from common import tags
from idle_endpoint_reaper import reaper, report, settings, teardown
from idle_endpoint_reaper.restore_record import parameter_name
from moto import mock_aws

from tools import restore_endpoint

REGION = "us-east-1"
PREFIX = "mlp"
NAME = "mlp-fraud-idle"
CONFIG = "mlp-fraud-idle-v3-abc123"
MODEL = "mlp-fraud-idle-v3"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ENDPOINT_TAGS = {
    tags.MANAGED_BY: tags.MANAGED_BY_VALUE,
    tags.PLATFORM: PREFIX,
    tags.TEAM: "fraud",
    tags.MODEL_PACKAGE_ARN: "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlp-fraud-idle/3",
}


@pytest.fixture
def reaped():
    """An endpoint with an autoscaled variant, deleted by a real (non-dry) reaper run."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        sagemaker.create_model(
            ModelName=MODEL, ExecutionRoleArn="arn:aws:iam::123456789012:role/m", PrimaryContainer={"Image": "image:1"}
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=CONFIG,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": MODEL,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(
            EndpointName=NAME,
            EndpointConfigName=CONFIG,
            Tags=[{"Key": k, "Value": v} for k, v in ENDPOINT_TAGS.items()],
        )
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{NAME}/variant/AllTraffic",
            ScalableDimension=VARIANT_DIMENSION,
            MinCapacity=1,
            MaxCapacity=3,
        )
        clients = reaper.Clients(
            sagemaker=sagemaker,
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            autoscaling=autoscaling,
            ssm=boto3.client("ssm", region_name=REGION),
        )
        config = settings.ReaperConfig(PREFIX, settings.TeamPolicy(24, 24, False), max_deletions_per_run=5)
        run = reaper.reap(clients, config, datetime.now(timezone.utc) + timedelta(hours=30))
        assert [o.endpoint for o in run.by_action(report.DELETED)] == [NAME]
        yield clients


def endpoint_tags(sagemaker, name: str) -> dict[str, str]:
    arn = sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"]
    return {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def test_restore_recreates_the_endpoint_from_its_last_config_with_its_tags(reaped, capsys):
    assert restore_endpoint.main([NAME]) == 0

    described = reaped.sagemaker.describe_endpoint(EndpointName=NAME)
    assert described["EndpointConfigName"] == CONFIG
    assert endpoint_tags(reaped.sagemaker, NAME) == ENDPOINT_TAGS
    out = capsys.readouterr().out
    assert f"endpoint config: {CONFIG}" in out
    assert f"autoscaling target deregistered at deletion: endpoint/{NAME}/variant/AllTraffic (min 1, max 3)" in out
    with pytest.raises(reaped.ssm.exceptions.ParameterNotFound):
        reaped.ssm.get_parameter(Name=parameter_name(NAME))


def test_a_second_restore_finds_nothing_to_restore(reaped, capsys):
    assert restore_endpoint.main([NAME]) == 0
    assert restore_endpoint.main([NAME]) == 1
    assert "no restore record for 'mlp-fraud-idle'" in capsys.readouterr().err


def test_unknown_endpoint_has_no_record(reaped, capsys):
    assert restore_endpoint.main(["mlp-fraud-never-existed"]) == 1
    assert "no restore record" in capsys.readouterr().err


def test_an_endpoint_that_exists_again_is_not_touched(reaped, capsys):
    reaped.sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=CONFIG)

    assert restore_endpoint.main([NAME]) == 1
    assert "exists already (status InService)" in capsys.readouterr().err
    reaped.ssm.get_parameter(Name=parameter_name(NAME))


def test_a_deleted_config_or_model_is_reported_before_anything_is_created(reaped, capsys):
    reaped.sagemaker.delete_model(ModelName=MODEL)
    assert restore_endpoint.main([NAME]) == 1
    assert f"model {MODEL!r} of config {CONFIG!r} no longer exists" in capsys.readouterr().err

    reaped.sagemaker.delete_endpoint_config(EndpointConfigName=CONFIG)
    assert restore_endpoint.main([NAME]) == 1
    assert f"endpoint config {CONFIG!r} no longer exists" in capsys.readouterr().err
    assert reaped.sagemaker.list_endpoints()["Endpoints"] == []


def test_dry_run_changes_nothing(reaped, capsys):
    assert restore_endpoint.main([NAME, "--dry-run"]) == 0

    assert "dry run: nothing was changed" in capsys.readouterr().out
    assert reaped.sagemaker.list_endpoints()["Endpoints"] == []
    reaped.ssm.get_parameter(Name=parameter_name(NAME))


def test_keep_until_makes_the_reaper_keep_the_restored_endpoint(reaped):
    assert restore_endpoint.main([NAME, "--keep-until", "2999-12-31"]) == 0
    assert endpoint_tags(reaped.sagemaker, NAME)[tags.KEEP_UNTIL] == "2999-12-31"

    config = settings.ReaperConfig(PREFIX, settings.TeamPolicy(24, 0, False), max_deletions_per_run=5)
    run = reaper.reap(reaped, config, datetime.now(timezone.utc) + timedelta(hours=30))

    assert [(o.endpoint, o.reason) for o in run.outcomes] == [(NAME, "opted out: mlops:keep-until=2999-12-31")]


def test_an_aws_failure_exits_3(reaped, capsys):
    with Stubber(reaped.ssm) as ssm_stub:
        ssm_stub.add_client_error("get_parameter", service_error_code="AccessDeniedException", http_status_code=400)

        assert restore_endpoint.main([NAME], sagemaker=reaped.sagemaker, ssm=reaped.ssm) == 3

    assert "AWS call failed" in capsys.readouterr().err


# --- autoscaling: recorded and printed, re-registered by hand (the platform registers none) ----------

ROOT = Path(__file__).resolve().parents[1]
REGISTER = "aws application-autoscaling register-scalable-target"
PUT_POLICY = "aws application-autoscaling put-scaling-policy"


def printed_commands(out: str, command: str) -> list[list[str]]:
    return [shlex.split(line.strip())[3:] for line in out.splitlines() if line.strip().startswith(command)]


def flags(words: list[str]) -> dict[str, str]:
    """``--min-capacity 1 ...`` as {"min-capacity": "1", ...}."""
    assert all(w.startswith("--") for w in words[::2]), words
    return {k.removeprefix("--"): v for k, v in zip(words[::2], words[1::2])}


def test_restore_prints_the_command_that_registers_each_recorded_target_again(reaped, capsys):
    assert restore_endpoint.main([NAME, "--region", REGION]) == 0
    out = capsys.readouterr().out

    assert "the endpoint verifier registers it again" in out and "the platform does not register" in out
    [register] = [flags(words) for words in printed_commands(out, REGISTER)]
    assert register == {
        "region": REGION,
        "service-namespace": "sagemaker",
        "resource-id": f"endpoint/{NAME}/variant/AllTraffic",
        "scalable-dimension": VARIANT_DIMENSION,
        "min-capacity": "1",
        "max-capacity": "3",
    }
    [policy] = [flags(words) for words in printed_commands(out, PUT_POLICY)]
    assert {k: policy[k] for k in ("region", "service-namespace", "resource-id", "scalable-dimension")} == {
        k: register[k] for k in ("region", "service-namespace", "resource-id", "scalable-dimension")
    }

    # The printed command, run as the AWS CLI would (same operation, same parameters), restores the target.
    reaped.autoscaling.register_scalable_target(
        ServiceNamespace=register["service-namespace"],
        ResourceId=register["resource-id"],
        ScalableDimension=register["scalable-dimension"],
        MinCapacity=int(register["min-capacity"]),
        MaxCapacity=int(register["max-capacity"]),
    )
    [target] = reaped.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        f"endpoint/{NAME}/variant/AllTraffic", 1, 3,
    )


def test_the_printed_dimension_is_the_one_the_reaper_deregisters():
    assert (restore_endpoint.AUTOSCALING_NAMESPACE, restore_endpoint.VARIANT_DIMENSION) == (
        teardown.AUTOSCALING_NAMESPACE, teardown.VARIANT_DIMENSION,
    )


def test_only_the_verifier_registers_autoscaling():
    """The verifier registers the configured scaling (with the construct granting it); nothing else does."""
    registering = re.compile(  # \b: the reaper's deregister_scalable_target is not a registration
        r"\b(register_scalable_target|put_scaling_policy)\b|aws_applicationautoscaling|ApplicationAutoScaling::"
    )
    found = [
        str(path.relative_to(ROOT))
        for folder in ("stacks", "lambdas", "pipeline_code")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if registering.search(path.read_text())
    ]
    assert found == ["lambdas/endpoint_verifier/scaling.py"]


@pytest.mark.parametrize("path", ["docs/idle-endpoint-reaper.md", "tools/restore_endpoint.py"])
def test_the_docs_say_configured_scaling_returns_and_hand_made_scaling_is_registered_by_hand(path):
    flat = " ".join((ROOT / path).read_text().split()).replace("``", "`")
    assert "verifier" in flat and "endpoint.autoscaling" in flat
    assert "the platform does not register" in flat
    assert "register-scalable-target" in flat and "put-scaling-policy" in flat
