"""InstanceQuotaRequests and StudioTeardown in minimal test stacks: wiring, order, least privilege, nag, cfn-lint."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Match, Template

from stacks.config import QuotaRequest, QuotaUsage
from stacks.constructs.instance_quotas import InstanceQuotaRequests
from stacks.constructs.studio_teardown import TEARDOWN_DEADLINE, StudioTeardown
from stacks.nag_acknowledgments import acknowledge_findings, construct_acknowledgments
from tests.conftest import cdk_context
from tools.synth_report import cfn_lint

VPC_ID = "vpc-0123456789abcdef0"
TEAM_DOMAIN_EXPORT = "mlp-platform-domain-id"
SAGEMAKER_ARN = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
IAM5 = "AwsSolutions-IAM5"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"
# Every platform_function role: its own log group, and decrypting its environment with the platform key.
BASELINE_SIDS = ("WriteOwnLogs", "DecryptOwnEnvironment")


def domain(stack: cdk.Stack, name: str) -> sagemaker.CfnDomain:
    return sagemaker.CfnDomain(
        stack,
        "Domain",
        auth_mode="IAM",
        domain_name=name,
        app_network_access_type="VpcOnly",
        vpc_id=VPC_ID,
        subnet_ids=["subnet-0123456789abcdef0"],
        default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
            execution_role="arn:aws:iam::111122223333:role/studio", security_groups=["sg-0123456789abcdef0"]
        ),
    )


QUOTAS = [
    QuotaRequest(instance_type="ml.m5.4xlarge", usage=QuotaUsage.processing, desired=4),
    QuotaRequest(instance_type="ml.m5.large", usage=QuotaUsage.endpoint, desired=2),
]


@dataclass
class Synth:
    platform: Template
    team: Template
    retain: Template
    stacks: dict
    constructs: dict
    report: dict
    outdir: object


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Synth:
    outdir = tmp_path_factory.mktemp("quota-teardown-cdk-out")
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    platform = cdk.Stack(app, "QtPlatform")
    cfn_domain = domain(platform, "mlp")
    key = kms.Key(platform, "Key", enable_key_rotation=True)
    quotas = InstanceQuotaRequests(platform, "Quotas", quotas=QUOTAS, kms_key=key)
    domain_teardown = StudioTeardown(
        platform, "StudioTeardown", domain=cfn_domain, kms_key=key, home_efs_on_delete="delete"
    )

    team = cdk.Stack(app, "QtTeam")
    shared_domain_id = cdk.Fn.import_value(TEAM_DOMAIN_EXPORT)  # a team stack gets the id as a token
    profiles = [
        sagemaker.CfnUserProfile(team, f"Profile{user.title()}", domain_id=shared_domain_id,
                                 user_profile_name=f"fraud-{user}")
        for user in ("alice", "bob")
    ]
    team_key = kms.Key(team, "Key", enable_key_rotation=True)
    team_teardown = StudioTeardown(
        team, "StudioTeardown", domain=shared_domain_id, kms_key=team_key, user_profiles=profiles
    )

    retain = cdk.Stack(app, "QtRetain")
    retain_domain = domain(retain, "kept")
    retain_teardown = StudioTeardown(
        retain, "StudioTeardown", domain=retain_domain, kms_key=kms.Key(retain, "Key", enable_key_rotation=True)
    )

    for stack in (platform, team, retain):
        acknowledge_findings(stack)
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    app.synth()  # raises RuntimeError listing any unacknowledged finding
    return Synth(
        platform=Template.from_stack(platform),
        team=Template.from_stack(team),
        retain=Template.from_stack(retain),
        stacks={"platform": platform, "team": team, "retain": retain},
        constructs={"quotas": quotas, "domain": domain_teardown, "team": team_teardown, "retain": retain_teardown,
                    "profiles": profiles, "cfn_domain": cfn_domain},
        report=json.loads((outdir / "validation-report.json").read_text()),
        outdir=outdir,
    )


def logical_id(stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child if hasattr(construct.node, "default_child")
                                and construct.node.default_child else construct)


def resources(template: Template, type_: str) -> dict:
    return template.find_resources(type_)


def statements_of(template: Template, role_logical_id: str) -> list[dict]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def role_of(stack, function) -> str:
    return stack.get_logical_id(function.role.node.default_child)


def actions(statement) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


def resolved(stack, value):
    return json.dumps(stack.resolve(value), sort_keys=True)


# cdk-nag and cfn-lint


def test_cdk_nag_leaves_no_open_finding_and_every_acknowledgment_is_used(synth):
    violations = [v for plugin in synth.report["pluginReports"] for v in plugin["violations"]]
    assert violations == []
    used = {
        (c["constructPath"], v["acknowledgedId"])
        for plugin in synth.report["pluginReports"]
        for v in plugin["suppressedViolations"]
        for c in v["violatingConstructs"]
    }
    assert used, "the acknowledgments were never exercised"
    c = synth.constructs
    stacks = synth.stacks
    expected = {
        "platform": construct_acknowledgments(c["quotas"]) + construct_acknowledgments(c["domain"]),
        "team": construct_acknowledgments(c["team"]),
        "retain": construct_acknowledgments(c["retain"]),
    }
    for key, acks in expected.items():
        name = stacks[key].stack_name
        for ack in acks:
            assert any(
                finding == f"AwsSolutions::{ack.finding}" and fnmatch.fnmatchcase(path, f"{name}/{ack.path}")
                for path, finding in used
            ), f"unused acknowledgment in {name}: {ack}"


def _cdk_role_dependency(problem: str) -> bool:
    """cfn-lint W3005 on the DependsOn CDK itself adds from a Lambda function or state machine to its role."""
    return " W3005 " in problem and ("/Properties/Role' " in problem or "/Properties/RoleArn' " in problem)


def test_cfn_lint_reports_nothing_but_cdks_own_role_dependencies(synth):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    files = [synth.outdir / a["properties"]["templateFile"] for a in manifest["artifacts"].values()
             if a["type"] == "aws:cloudformation:stack"]
    assert len(files) == 3
    problems = cfn_lint(files)
    assert [p for p in problems if not _cdk_role_dependency(p)] == []


# Instance quotas


def test_one_quota_resource_per_config_entry_wired_to_the_provider(synth):
    stack = synth.stacks["platform"]
    quotas = synth.constructs["quotas"]
    found = resources(synth.platform, "Custom::SageMakerInstanceQuota")
    assert len(found) == 2
    properties = sorted((r["Properties"]["InstanceType"], r["Properties"]["Usage"], r["Properties"]["DesiredValue"])
                        for r in found.values())
    assert properties == [("ml.m5.4xlarge", "processing", "4"), ("ml.m5.large", "endpoint", "2")]
    token = resolved(stack, quotas.provider.service_token)
    assert all(json.dumps(r["Properties"]["ServiceToken"], sort_keys=True) == token for r in found.values())
    handler_id = stack.get_logical_id(quotas.function.node.default_child)
    synth.platform.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "instance_quotas.handler.handler", "Runtime": Match.string_like_regexp("python")}
    )
    synth.platform.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "framework.onEvent", "Environment": {"Variables": Match.object_like(
            {"USER_ON_EVENT_FUNCTION_ARN": {"Fn::GetAtt": [handler_id, "Arn"]}})}},
    )


def test_quota_resources_are_created_one_after_another(synth):
    stack = synth.stacks["platform"]
    first, second = (synth.constructs["quotas"].requests[(q.instance_type, q.usage.value)] for q in QUOTAS)
    template = synth.platform.to_json()["Resources"]
    assert stack.get_logical_id(first.node.default_child) in template[
        stack.get_logical_id(second.node.default_child)].get("DependsOn", [])


def test_each_quota_is_exposed_as_an_output(synth):
    outputs = synth.platform.find_outputs("*")
    quota_outputs = {k: v for k, v in outputs.items() if "Quota" in k}
    assert len(quota_outputs) == 2
    for output in quota_outputs.values():
        joined = json.dumps(output["Value"])
        for attribute in ("QuotaCode", "AppliedValue", "DesiredValue", "Status", "RequestId", "RequestStatus"):
            assert f'"{attribute}"' in joined


def test_quota_role_is_least_privilege(synth):
    stack = synth.stacks["platform"]
    statements = [s for s in statements_of(synth.platform, role_of(stack, synth.constructs["quotas"].function))
                  if s.get("Sid") not in BASELINE_SIDS]
    unconditioned = [s for s in statements if s["Resource"] == "*" and "Condition" not in s]
    # The reads take no resource and, in AWS's published reference, no condition key: a condition would
    # never match, so they are granted on `*` alone (they reveal quota values only).
    assert sorted(a for s in unconditioned for a in actions(s)) == sorted([
        "servicequotas:GetAWSDefaultServiceQuota",
        "servicequotas:GetServiceQuota",
        "servicequotas:ListAWSDefaultServiceQuotas",
        "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
        "servicequotas:ListServiceQuotas",
    ])
    # The increase is authorized on `*` too (its quota resource type is optional); the condition key the
    # reference lists for it keeps the grant to SageMaker's quotas.
    scoped = next(s for s in statements if "servicequotas:RequestServiceQuotaIncrease" in actions(s))
    assert actions(scoped) == ["servicequotas:RequestServiceQuotaIncrease"]
    assert scoped["Resource"] == "*"
    assert scoped["Condition"] == {"StringEquals": {"servicequotas:service": "sagemaker"}}
    linked_role = next(s for s in statements if "iam:CreateServiceLinkedRole" in actions(s))
    assert linked_role["Condition"] == {"StringEquals": {"iam:AWSServiceName": "servicequotas.amazonaws.com"}}
    assert "AWSServiceRoleForServiceQuotas" in json.dumps(linked_role["Resource"])
    assert len(statements) == 3


def test_no_quotas_means_no_resources():
    app = cdk.App()
    stack = cdk.Stack(app, "Empty")
    InstanceQuotaRequests(stack, "Quotas", quotas=[], kms_key=kms.Key.from_key_arn(stack, "Key", KEY_ARN))
    assert Template.from_stack(stack).to_json().get("Resources", {}) == {}


# Studio teardown


def test_teardown_properties_per_scope(synth):
    platform = synth.stacks["platform"]
    (domain_resource,) = resources(synth.platform, "Custom::StudioTeardown").values()
    assert domain_resource["Properties"]["Scope"] == "domain"
    assert domain_resource["Properties"]["HomeEfsOnDelete"] == "delete"
    assert domain_resource["Properties"]["VpcId"] == VPC_ID
    assert domain_resource["Properties"]["DomainId"] == {"Fn::GetAtt": [platform.get_logical_id(
        synth.constructs["cfn_domain"]), "DomainId"]}
    assert domain_resource["Properties"]["ServiceTimeout"] == "3600"
    (team_resource,) = resources(synth.team, "Custom::StudioTeardown").values()
    assert team_resource["Properties"]["Scope"] == "user-profiles"
    assert team_resource["Properties"]["UserProfileNames"] == ["fraud-alice", "fraud-bob"]
    assert "Fn::ImportValue" in team_resource["Properties"]["DomainId"]
    assert "VpcId" not in team_resource["Properties"]
    (retain_resource,) = resources(synth.retain, "Custom::StudioTeardown").values()
    assert retain_resource["Properties"]["HomeEfsOnDelete"] == "retain" and "VpcId" not in retain_resource["Properties"]


def test_teardown_is_deleted_before_the_profiles_and_the_domain(synth):
    team = synth.stacks["team"]
    (team_resource,) = resources(synth.team, "Custom::StudioTeardown").values()
    profile_ids = {team.get_logical_id(p) for p in synth.constructs["profiles"]}
    assert profile_ids <= set(team_resource.get("DependsOn", []))
    # The domain of the same stack is a dependency through Fn::GetAtt (CloudFormation orders deletes by it).
    (domain_resource,) = resources(synth.platform, "Custom::StudioTeardown").values()
    assert domain_resource["Properties"]["DomainId"]["Fn::GetAtt"][0] == synth.stacks["platform"].get_logical_id(
        synth.constructs["cfn_domain"])


def test_teardown_provider_polls_every_30_seconds_for_45_minutes(synth):
    for template in (synth.platform, synth.team):
        (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
        definition = "".join(p if isinstance(p, str) else "" for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1])
        assert '"IntervalSeconds":30,"MaxAttempts":90,"BackoffRate":1' in definition
        assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    synth.platform.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "studio_teardown.handler.is_complete",
         "Environment": {"Variables": {"TEARDOWN_DEADLINE_SECONDS": str(int(TEARDOWN_DEADLINE.to_seconds()))}}},
    )
    assert TEARDOWN_DEADLINE.to_seconds() == 45 * 60 - 60


def test_teardown_framework_wires_both_handlers(synth):
    stack = synth.stacks["platform"]
    teardown = synth.constructs["domain"]
    on_event = stack.get_logical_id(teardown.on_event_function.node.default_child)
    is_complete = stack.get_logical_id(teardown.is_complete_function.node.default_child)
    synth.platform.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "framework.onEvent",
        "Environment": {"Variables": Match.object_like({
            "USER_ON_EVENT_FUNCTION_ARN": {"Fn::GetAtt": [on_event, "Arn"]},
            "USER_IS_COMPLETE_FUNCTION_ARN": {"Fn::GetAtt": [is_complete, "Arn"]},
        })},
    })
    (resource,) = resources(synth.platform, "Custom::StudioTeardown").values()
    assert json.dumps(resource["Properties"]["ServiceToken"], sort_keys=True) == resolved(
        stack, teardown.provider.service_token)


def _teardown_statements(synth, key):
    stack = synth.stacks[key]
    template = {"platform": synth.platform, "team": synth.team, "retain": synth.retain}[key]
    function = synth.constructs[key if key != "platform" else "domain"].is_complete_function
    return stack, [s for s in statements_of(template, role_of(stack, function)) if s.get("Sid") not in BASELINE_SIDS]


def _by_action(statements):
    found = {}
    for statement in statements:
        for action in actions(statement):
            found[action] = statement
    return found


def test_on_event_may_only_read_its_own_stack(synth):
    for key, name in (("platform", "domain"), ("team", "team"), ("retain", "retain")):
        stack = synth.stacks[key]
        template = {"platform": synth.platform, "team": synth.team, "retain": synth.retain}[key]
        statements = [s for s in statements_of(template, role_of(stack, synth.constructs[name].on_event_function))
                      if s.get("Sid") not in BASELINE_SIDS]
        assert statements == [{"Action": "cloudformation:DescribeStacks", "Effect": "Allow",
                               "Resource": {"Ref": "AWS::StackId"}, "Sid": "ReadOwnStackStatus"},
                              {"Action": "cloudformation:ListStacks", "Effect": "Allow",
                               "Resource": "*", "Sid": "DescribeStacksNeedsListStacks"}]


def test_team_teardown_can_delete_only_apps_and_spaces_of_the_domain(synth):
    stack, statements = _teardown_statements(synth, "team")
    granted = _by_action(statements)
    assert set(granted) == {"sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:DeleteApp", "sagemaker:DeleteSpace"}
    assert granted["sagemaker:ListApps"]["Resource"] == "*"
    app_arn = json.dumps(granted["sagemaker:DeleteApp"]["Resource"])
    assert ":app/" in app_arn and "Fn::ImportValue" in app_arn and app_arn.endswith('"/*"]]}')
    space_arn = json.dumps(granted["sagemaker:DeleteSpace"]["Resource"])
    assert ":space/" in space_arn and "Fn::ImportValue" in space_arn


def test_domain_teardown_with_retained_volume_cannot_touch_the_domain_or_network(synth):
    _, statements = _teardown_statements(synth, "retain")
    granted = _by_action(statements)
    assert "sagemaker:DeleteDomain" not in granted and not any(a.startswith("ec2:") for a in granted)
    assert ":user-profile/" in json.dumps(granted["sagemaker:DeleteUserProfile"]["Resource"])


def test_domain_teardown_with_deleted_volume_is_scoped_to_the_domain_and_its_groups(synth):
    stack, statements = _teardown_statements(synth, "platform")
    granted = _by_action(statements)
    domain_id = stack.get_logical_id(synth.constructs["cfn_domain"])
    domain_arn = granted["sagemaker:DeleteDomain"]["Resource"]
    assert granted["sagemaker:DescribeDomain"]["Resource"] == domain_arn
    assert ":domain/" in json.dumps(domain_arn) and domain_id in json.dumps(domain_arn)
    assert granted["ec2:DescribeSecurityGroups"]["Resource"] == "*"
    delete_groups = granted["ec2:DeleteSecurityGroup"]
    assert sorted(actions(delete_groups)) == ["ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupEgress",
                                              "ec2:RevokeSecurityGroupIngress"]
    assert ":security-group/*" in json.dumps(delete_groups["Resource"])
    conditions = delete_groups["Condition"]
    assert f":vpc/{VPC_ID}" in json.dumps(conditions["ArnEquals"]["ec2:Vpc"])
    assert conditions["StringEquals"]["aws:ResourceTag/ManagedByAmazonSageMakerResource"] == domain_arn
    wildcard_actions = sorted(a for s in statements if s["Resource"] == "*" for a in actions(s))
    assert wildcard_actions == ["ec2:DescribeSecurityGroups", "sagemaker:ListApps", "sagemaker:ListSpaces",
                                "sagemaker:ListUserProfiles"]
    assert not any(a.startswith("elasticfilesystem:") for a in granted)


def test_no_role_uses_an_aws_managed_policy(synth):
    for template in (synth.platform, synth.team, synth.retain):
        for logical_id, role in resources(template, "AWS::IAM::Role").items():
            assert not role["Properties"].get("ManagedPolicyArns"), logical_id


def test_handlers_may_write_only_their_own_log_group(synth):
    stack = synth.stacks["platform"]
    functions = [synth.constructs["quotas"].function, synth.constructs["domain"].on_event_function,
                 synth.constructs["domain"].is_complete_function]
    for function in functions:
        statements = statements_of(synth.platform, role_of(stack, function))
        (logs,) = [s for s in statements if any(a.startswith("logs:") for a in actions(s))]
        assert sorted(actions(logs)) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert logs["Resource"] == stack.resolve(function.log_group.log_group_arn)


def test_handlers_and_provider_functions_decrypt_their_environment_with_the_stack_key(synth):
    for key, template in (("platform", synth.platform), ("team", synth.team), ("retain", synth.retain)):
        stack = synth.stacks[key]
        key_arn = stack.resolve(next(c for c in stack.node.children if c.node.id == "Key").key_arn)
        functions = template.find_resources("AWS::Lambda::Function")
        assert functions
        for logical_id, function in functions.items():
            assert function["Properties"]["KmsKeyArn"] == key_arn, (key, logical_id)
            role = function["Properties"]["Role"]["Fn::GetAtt"][0]
            decrypt = [s for s in statements_of(template, role) if s.get("Sid") == "DecryptOwnEnvironment"]
            assert decrypt == [{"Action": "kms:Decrypt", "Effect": "Allow", "Resource": key_arn,
                                "Sid": "DecryptOwnEnvironment"}], (key, logical_id)
        for logical_id, group in template.find_resources("AWS::Logs::LogGroup").items():
            assert group["Properties"]["KmsKeyId"] == key_arn, (key, logical_id)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"domain": "d-123"}, "must be built in the stack that owns the domain"),
        ({"domain": "d-123", "user_profiles": [], "home_efs_on_delete": "delete"}, "domain-wide teardown only"),
        ({"domain": "d-123", "user_profiles": [], "home_efs_on_delete": "keep"}, "'retain' or 'delete'"),
    ],
)
def test_teardown_rejects_inconsistent_arguments(kwargs, message):
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError, match=message):
        StudioTeardown(stack, "Teardown", kms_key=kms.Key.from_key_arn(stack, "Key", KEY_ARN), **kwargs)


def test_deleting_the_home_volume_needs_the_domains_vpc():
    stack = cdk.Stack(cdk.App(), "NoVpc")
    no_vpc = sagemaker.CfnDomain(stack, "Domain", auth_mode="IAM", domain_name="x",
                                 default_user_settings={"executionRole": "arn:aws:iam::111122223333:role/x"})
    with pytest.raises(ValueError, match="VpcId"):
        key = kms.Key.from_key_arn(stack, "Key", KEY_ARN)
        StudioTeardown(stack, "Teardown", domain=no_vpc, kms_key=key, home_efs_on_delete="delete")
