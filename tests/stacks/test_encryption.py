"""Encryption at rest with the platform key: every log group, every Lambda environment, and the key policy.

Templates are resolved for one account and region (``tools.iam.template.World``), so a team stack's
imported key ARN and the platform stack's own ``Fn::GetAtt`` compare as the same concrete ARN.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from stacks.constructs.resource_policies import LOGS_KEY_ACTIONS
from tools.iam.evaluate import Request, evaluate, evaluate_access
from tools.iam.reference import key_in_request
from tools.iam.template import World

TEAMS = ("fraud", "churn", "pricing")
BUCKET_DEPLOYMENT_FUNCTION = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C512MiB/Resource"

# The network stack deploys before the platform key exists: its log groups (VPC flow logs, the default
# security group cleanup) get the network stack's own key, and its one function has no environment.
NETWORK_LOG_GROUPS = {"mlp-network/FlowLogs/Resource", "mlp-network/DefaultSecurityGroupCleanupLogs/Resource"}
NETWORK_FUNCTION = "mlp-network/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler"


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates)


@pytest.fixture(scope="module")
def key_arn(example, world) -> str:
    platform = example.platform.platform
    return world.arn(platform.stack_name, platform.get_logical_id(platform.key.node.default_child))


@pytest.fixture(scope="module")
def flow_logs_key_arn(example, world) -> str:
    network = example.platform.network
    return world.arn(network.stack_name, network.get_logical_id(network.flow_logs_key.node.default_child))


@pytest.fixture(scope="module")
def paths(example) -> dict[tuple[str, str], str]:
    """(stack name, logical id) -> construct path, for every CloudFormation resource of the example."""
    found = {}
    for stack in example.platform.stacks:
        for construct in stack.node.find_all():
            if isinstance(construct, cdk.CfnResource):
                found[(stack.stack_name, stack.get_logical_id(construct))] = construct.node.path
    return found


def _resources(world: World, resource_type: str):
    return list(world.resources(resource_type))


def test_every_log_group_uses_the_platform_key(world, key_arn, flow_logs_key_arn, paths):
    groups = _resources(world, "AWS::Logs::LogGroup")
    assert len(groups) > 20
    for group in groups:
        expected = flow_logs_key_arn if paths[(group.stack, group.logical_id)] in NETWORK_LOG_GROUPS else key_arn
        assert "KmsKeyId" in group.properties, (group.stack, group.logical_id)
        assert world.resolve(group.stack, group.properties["KmsKeyId"]) == expected, (group.stack, group.logical_id)


def test_flow_logs_key_admits_cloudwatch_logs_of_this_account_and_region_only(world, flow_logs_key_arn):
    policy = world.resource_statements(flow_logs_key_arn)
    service = "logs.us-east-1.amazonaws.com"
    own = "arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flow-logs"
    foreign = "arn:aws:logs:us-east-1:999999999999:log-group:/vpc/flow-logs"
    for arn, allowed in ((own, True), (foreign, False)):
        request = Request("kms:GenerateDataKey", flow_logs_key_arn, {"kms:EncryptionContext:aws:logs:arn": arn},
                          principal_service=service)
        assert evaluate(policy, request, resource_policy=True).allowed is allowed, arn


def test_every_lambda_environment_uses_the_platform_key(world, key_arn, paths):
    functions = _resources(world, "AWS::Lambda::Function")
    assert len(functions) > 20
    assert any(BUCKET_DEPLOYMENT_FUNCTION in paths[(f.stack, f.logical_id)] for f in functions)
    for function in functions:
        if paths[(function.stack, function.logical_id)] == NETWORK_FUNCTION:
            assert "Environment" not in function.properties
            continue
        assert "KmsKeyArn" in function.properties, paths[(function.stack, function.logical_id)]
        assert world.resolve(function.stack, function.properties["KmsKeyArn"]) == key_arn, function.logical_id


def test_every_encrypted_function_may_decrypt_its_environment(world, key_arn):
    key_policy = world.resource_statements(key_arn)
    checked = 0
    for function in _resources(world, "AWS::Lambda::Function"):
        if "KmsKeyArn" not in function.properties:
            continue
        role = world.function_role(function.stack, function.logical_id)
        request = Request("kms:Decrypt", key_arn, principal_arn=world.role_arn(function.stack, role))
        identity = world.role_statements(function.stack, role)
        decision = evaluate_access(identity, key_policy, request, key_policy=True)
        assert decision.allowed, f"{function.stack}/{function.logical_id}: {decision.explain()}"
        checked += 1
    assert checked > 20


def _logs_statement(example) -> dict:
    platform = example.template("mlp-platform")
    (key,) = [r for r in platform["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchLogsOfThisAccountAndRegion"]
    assert len(statements) == 1
    return statements[0]


def test_key_policy_admits_cloudwatch_logs_for_log_groups_of_this_account_and_region(example):
    statement = _logs_statement(example)
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(LOGS_KEY_ACTIONS)
    assert statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert statement["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":logs:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":log-group:*",
                    ],
                ]
            }
        }
    }


def test_cloudwatch_logs_may_use_the_key_for_every_log_group_and_nothing_else(world, key_arn):
    key_policy = world.resource_statements(key_arn)
    logs = f"logs.{world.region}.amazonaws.com"

    def allowed(action: str, log_group_arn: str | None, service: str = logs) -> bool:
        context = {} if log_group_arn is None else {"kms:EncryptionContext:aws:logs:arn": log_group_arn}
        request = Request(action, key_arn, context=context, principal_service=service)
        return evaluate(key_policy, request, resource_policy=True).allowed

    groups = [g for g in _resources(world, "AWS::Logs::LogGroup") if "KmsKeyId" in g.properties]
    for group in groups:
        arn = f"arn:aws:logs:{world.region}:{world.account}:log-group:{world.physical_name(group.stack, group.logical_id)}"
        for action in ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom"):
            assert allowed(action, arn), (group.stack, group.logical_id, action)
        # The CloudWatch Logs user guide ("Encrypt log data in CloudWatch Logs using AWS KMS") puts
        # kms:Describe* under the same encryption-context condition; the reference lists no encryption
        # context for kms:DescribeKey, so that part of the documented grant never matches.
        assert not key_in_request("kms:DescribeKey", key_arn, "kms:EncryptionContext:aws:logs:arn")
        assert not allowed("kms:DescribeKey", arn)
    some_group = f"log-group:{world.physical_name(groups[0].stack, groups[0].logical_id)}"
    assert not allowed("kms:Decrypt", f"arn:aws:logs:{world.region}:999999999999:{some_group}")
    assert not allowed("kms:Decrypt", f"arn:aws:logs:eu-west-1:{world.account}:{some_group}")
    assert not allowed("kms:Decrypt", None)
    assert not allowed("kms:Decrypt", f"arn:aws:logs:{world.region}:{world.account}:{some_group}", "logs.eu-west-1.amazonaws.com")
    assert not allowed("kms:CreateGrant", f"arn:aws:logs:{world.region}:{world.account}:{some_group}")


def test_key_policy_names_no_team_stack(example):
    """Team stacks deploy on their own: the key policy refers to nothing they hold."""
    platform = example.template("mlp-platform")
    (key,) = [r for r in platform["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    text = json.dumps(key["Properties"]["KeyPolicy"])
    assert "Fn::ImportValue" not in text
    for team in TEAMS:
        assert f"mlp-team-{team}" not in text and f"-{team}-" not in text
