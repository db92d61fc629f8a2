"""The serving side names the model registry through one helper (`stacks.constructs.model_registry`): by
default the stack's own account and region (the templates stay exactly as they were: the digest test), and
with a location, that account and region in every registry grant and nowhere else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stacks.config import Team
from stacks.constructs.model_registry import RegistryLocation, registry_arn

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = RegistryLocation(account="210987654321", region="eu-central-1")
TEAM = Team.model_validate({
    "name": "fraud",
    "cost_center": "CC-1",
    "use_cases": [{"name": "detect", "endpoint": {"monitoring": {"enabled": True}, "data_capture": {"enabled": True}}}],
})


def _deploy_template(registry: RegistryLocation | None) -> dict:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.constructs.deploy_on_approval import DeployOnApproval

    app = cdk.App()
    stack = cdk.Stack(app, "Serving", env=cdk.Environment(account="123456789012", region="us-east-1"))
    key = kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    role = iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    construct = DeployOnApproval(
        stack, "DeployOnApproval", prefix="mlp", team=TEAM, model_execution_role=role, kms_key=key,
        alert_topic=sns.Topic.from_topic_arn(stack, "Topic", "arn:aws:sns:us-east-1:123456789012:mlp-fraud-alerts"),
        data_bucket=s3.Bucket.from_bucket_name(stack, "Bucket", "mlp-fraud-data"),
        **({} if registry is None else {"registry": registry}),
    )
    scheduler = iam.Role(stack, "SchedulerRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
    construct.enable_monitoring(scheduler, ["mlp-fraud-detect-monitor"], ["mlp-fraud-detect"])
    return app.synth().get_stack_by_name("Serving").template


def _registry_resources(template: dict) -> list[str]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            found += [json.dumps(r) for r in resources if "model-package" in json.dumps(r)]
    return found


@pytest.fixture(scope="module")
def templates():
    return {"default": _deploy_template(None), "elsewhere": _deploy_template(REGISTRY)}


def test_the_default_location_renders_the_stacks_own_arns(templates):
    assert templates["default"] == _deploy_template(RegistryLocation())
    found = _registry_resources(templates["default"])
    assert found and all(":sagemaker:us-east-1:123456789012:model-package" in r for r in found), found


def test_a_registry_elsewhere_is_named_in_every_registry_grant_and_nowhere_else(templates):
    found = _registry_resources(templates["elsewhere"])
    assert found and all(f":sagemaker:{REGISTRY.region}:{REGISTRY.account}:model-package" in r for r in found), found
    groups = {r for r in found if "model-package-group/" in r}
    versions = {r for r in found if "model-package/" in r}
    assert groups and versions, "the deploy function reads the groups and versions; the verifier the versions"
    text = json.dumps(templates["elsewhere"])
    # the registry's account and region appear in registry ARNs only, besides the deploy function's group ARN
    # prefix and the approval rules' account
    variables = [r["Properties"]["Environment"]["Variables"] for r in templates["elsewhere"]["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function" and "deploy_on_approval" in r["Properties"]["Handler"]]
    (prefix,) = [json.dumps(v["MODEL_PACKAGE_GROUP_ARN_PREFIX"]) for v in variables]
    assert f":sagemaker:{REGISTRY.region}:{REGISTRY.account}:model-package-group/" in prefix
    rules = [r["Properties"]["EventPattern"] for r in templates["elsewhere"]["Resources"].values()
             if r["Type"] == "AWS::Events::Rule" and "Model Package" in json.dumps(r["Properties"]["EventPattern"])]
    assert rules and all(rule["account"] == [REGISTRY.account] for rule in rules)
    in_arns = found + [prefix]
    assert text.count(REGISTRY.account) == sum(r.count(REGISTRY.account) for r in in_arns) + len(rules)
    assert text.count(REGISTRY.region) == sum(r.count(REGISTRY.region) for r in in_arns)
    # the stack's own registry is named nowhere: no account field in its rules, no group ARN prefix
    default = templates["default"]["Resources"].values()
    assert all("account" not in r["Properties"]["EventPattern"] for r in default if r["Type"] == "AWS::Events::Rule")
    assert all("MODEL_PACKAGE_GROUP_ARN_PREFIX" not in r["Properties"]["Environment"]["Variables"]
               for r in default if r["Type"] == "AWS::Lambda::Function")
    endpoints = re.findall(r':sagemaker:[^"]*:endpoint/[^"]*', text)
    assert endpoints and all(":us-east-1:123456789012:" in e for e in endpoints)


def test_only_registry_resources_get_a_registry_arn():
    import aws_cdk as cdk

    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="us-east-1"))
    assert registry_arn(stack, "model-package-group/g", REGISTRY).endswith(
        ":sagemaker:eu-central-1:210987654321:model-package-group/g")
    with pytest.raises(ValueError, match="endpoint/x"):
        registry_arn(stack, "endpoint/x")


def test_the_serving_constructs_build_no_registry_arn_of_their_own():
    """Every `model-package` ARN of the serving side goes through registry_arn: no other literal builds one."""
    for path in ("stacks/constructs/deploy_on_approval.py", "stacks/constructs/endpoint_monitoring.py",
                 "stacks/team_serving.py"):
        source = (ROOT / path).read_text()
        for line in source.splitlines():
            if re.search(r"[\"']model-package(-group)?/", line):
                assert "_registry_arn(" in line, f"{path}: {line.strip()}"
