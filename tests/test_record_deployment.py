"""`python -m tools.record_deployment CONFIG` writes the lock only for settings CloudFormation shows deployed.

CloudFormation is moto's (stacks created from the guarded resources of the synthesized templates: moto
stores resource types it cannot create and returns the template body from GetTemplate) or botocore's
Stubber (requests and responses checked against the CloudFormation API model) for stack states moto
cannot reach. No test reaches AWS.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from stacks.config import load_config
from stacks.replacement_guard import GUARDED_TYPES, lock_path_for
from tests.conftest import EXAMPLE_CONFIG
from tools import record_deployment as rd

REGION = "us-east-1"
# moto warns once per SageMaker type it stores without creating.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning")
STACKS = ["mlp-platform", "mlp-team-fraud", "mlp-team-churn", "mlp-team-pricing"]


@pytest.fixture
def config_path(tmp_path) -> Path:
    """A copy of the example config, so the lock lands in tmp_path and never in the repository's config/."""
    path = tmp_path / "platform.yaml"
    shutil.copy(EXAMPLE_CONFIG, path)
    return path


@pytest.fixture(scope="module")
def synthesized() -> dict[str, dict]:
    return rd.synthesized_templates(load_config(EXAMPLE_CONFIG))


def guarded_only(template: dict) -> dict:
    """The template's guarded resources alone: what moto can hold (it creates none of the other resources)."""
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] in GUARDED_TYPES}
    return {"Resources": copy.deepcopy(resources)}


def deploy(templates: dict[str, dict], names=STACKS) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    for name in names:
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(guarded_only(templates[name])))


def never_synthesize(config):
    raise AssertionError("no template is synthesized once a stack state refuses the record")


def test_without_credentials_it_refuses_and_says_how(config_path, monkeypatch, capsys):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config_path.parent / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_path.parent / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    # Were a request signed after all, it would go to a closed local port, not to AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    # boto3's default session keeps the credentials an earlier test of this process resolved
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    assert rd.main([str(config_path)]) == 2
    err = capsys.readouterr().err
    assert "Unable to locate credentials" in err
    assert "with credentials for the target account and region" in err
    assert f"make deploy CONFIG={config_path}" in err
    assert not lock_path_for(config_path).exists()


@mock_aws
def test_nothing_deployed_refuses_naming_every_stack(config_path, capsys):
    assert rd.main([str(config_path)]) == 1
    err = capsys.readouterr().err
    for name in STACKS:
        assert f"- {name}: not deployed (no such stack in region {REGION})" in err
    assert "platform.lock.json was not written" in err
    assert not lock_path_for(config_path).exists()


@mock_aws
def test_deployed_stacks_holding_the_config_are_recorded(config_path, synthesized, capsys):
    deploy(synthesized)
    assert rd.main([str(config_path)]) == 0
    lock = lock_path_for(config_path)
    assert f"recorded fixed settings in {lock}" in capsys.readouterr().out
    recorded = json.loads(lock.read_text())["fixed_settings"]
    assert recorded["prefix"] == "mlp"
    assert recorded["teams[fraud].use_cases[fraud-detection].description"] == "Card transaction fraud classifier"


@mock_aws
def test_a_missing_team_stack_refuses_the_whole_record(config_path, synthesized):
    deploy(synthesized, names=STACKS[:-1])
    with pytest.raises(rd.NotDeployed) as caught:
        rd.record_deployment(boto3.client("cloudformation", region_name=REGION), load_config(config_path),
                             config_path, synthesize=never_synthesize)
    assert caught.value.problems == [f"mlp-team-pricing: not deployed (no such stack in region {REGION})"]
    assert not lock_path_for(config_path).exists()


@mock_aws
def test_a_different_deployed_setting_refuses_naming_stack_and_setting(config_path, synthesized):
    deployed = copy.deepcopy(synthesized)
    registry = deployed["mlp-team-fraud"]["Resources"]["Registryfrauddetection"]
    registry["Properties"]["ModelPackageGroupDescription"] = "Older words"
    deployed["mlp-team-churn"]["Resources"]["Profilecarol"]["Properties"]["UserProfileName"] = "churn-karol"
    deploy(deployed)
    with pytest.raises(rd.NotDeployed) as caught:
        rd.record_deployment(boto3.client("cloudformation", region_name=REGION), load_config(config_path),
                             config_path, synthesize=lambda config: synthesized)
    assert sorted(caught.value.problems) == [
        "mlp-team-churn/Profilecarol (AWS::SageMaker::UserProfile): UserProfileName changes "
        "between the deployed template and this config",
        "mlp-team-fraud/Registryfrauddetection (AWS::SageMaker::ModelPackageGroup): ModelPackageGroupDescription "
        "changes between the deployed template and this config",
    ]
    assert not lock_path_for(config_path).exists()


@mock_aws
def test_a_profile_of_the_config_not_yet_deployed_refuses(config_path, synthesized):
    deployed = copy.deepcopy(synthesized)
    del deployed["mlp-team-fraud"]["Resources"]["Profilebob"]
    deploy(deployed)
    with pytest.raises(rd.NotDeployed) as caught:
        rd.record_deployment(boto3.client("cloudformation", region_name=REGION), load_config(config_path),
                             config_path, synthesize=lambda config: synthesized)
    assert caught.value.problems == [
        "mlp-team-fraud/Profilebob (AWS::SageMaker::UserProfile): not in the deployed template"
    ]


@mock_aws
def test_stacks_of_another_account_refuse(config_path, synthesized):
    data = yaml.safe_load(config_path.read_text())
    data["account"] = "210987654321"
    config_path.write_text(yaml.safe_dump(data))
    deploy(synthesized)
    with pytest.raises(rd.NotDeployed) as caught:
        rd.record_deployment(boto3.client("cloudformation", region_name=REGION), load_config(config_path),
                             config_path, synthesize=never_synthesize)
    assert caught.value.problems[0] == (
        "mlp-platform: deployed in account 123456789012, the config's account is 210987654321"
    )
    assert len(caught.value.problems) == len(STACKS)


def stack_entry(name: str, status: str) -> dict:
    return {
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/{name}/0f2a5c40-0000-11ef-8000-0a1b2c3d4e5f",
        "StackName": name,
        "CreationTime": "2025-01-01T00:00:00Z",
        "StackStatus": status,
    }


@pytest.mark.parametrize(
    "status, meaning",
    [
        ("UPDATE_ROLLBACK_COMPLETE", "the last update failed and was rolled back: the previous template is live"),
        ("ROLLBACK_COMPLETE", "its creation failed and its resources were deleted"),
        ("UPDATE_IN_PROGRESS", "its last create or update did not complete"),
    ],
)
def test_a_stack_not_left_by_a_successful_deploy_refuses_naming_it(config_path, status, meaning):
    cfn = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cfn) as stub:
        for name in STACKS:
            stub.add_response(
                "describe_stacks",
                {"Stacks": [stack_entry(name, status if name == "mlp-team-churn" else "UPDATE_COMPLETE")]},
                {"StackName": name},
            )
        with pytest.raises(rd.NotDeployed) as caught:
            rd.record_deployment(cfn, load_config(config_path), config_path, synthesize=never_synthesize)
        stub.assert_no_pending_responses()
    assert caught.value.problems == [f"mlp-team-churn: status {status}: {meaning}"]
    assert not lock_path_for(config_path).exists()


def test_a_denied_describe_stacks_cannot_verify(config_path):
    cfn = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "AccessDenied", "not authorized to perform: "
                              "cloudformation:DescribeStacks", 403, expected_params={"StackName": "mlp-platform"})
        with pytest.raises(rd.CannotVerify, match="DescribeStacks mlp-platform: .*AccessDenied"):
            rd.record_deployment(cfn, load_config(config_path), config_path, synthesize=never_synthesize)
    assert not lock_path_for(config_path).exists()
