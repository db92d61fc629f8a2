"""Registry events from the development account to the stage deploy handlers (config/multi-account.yaml).

A documented "SageMaker Model Package State Change" event of the development account goes through the dev
team stack's forwarding rule, the stage bus policy and the stage approval rule's input transformer, and the
resulting SQS message through the real deploy handler against Stubber-backed SageMaker and SNS clients.
The example config (single account) is the control: its rules and functions name no other account.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.common import naming
from stacks.app_builder import stage_environments
from stacks.config import load_config
from stacks.constructs.deploy_on_approval import MODEL_PACKAGE_STATE_CHANGE
from tests.conftest import MULTI_ACCOUNT_CONFIG
from tests.sagemaker_events import model_package_state_change
from tests.stacks.test_deploy_on_approval_construct import pattern_matches, transform
from tools.iam.evaluate import Request, statement_applies
from tools.iam.template import World

DEVELOPMENT, STAGING, PRODUCTION, OTHER = "111111111111", "222222222222", "333333333333", "444444444444"
REGION = "eu-west-1"
STAGE_ACCOUNTS = {"staging": STAGING, "production": PRODUCTION}
USE_CASES = {"fraud": "fraud-detection", "churn": "churn-propensity"}
GROUPS = {"fraud": "mlp-fraud-fraud-detection", "churn": "mlp-churn-churn-propensity"}
TEAM_STAGES = {"fraud": ["staging", "production"], "churn": ["staging"]}
STAGED = [(stage, team) for team, stages in TEAM_STAGES.items() for stage in stages]
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def event(team: str, version: int, status: str, *, account: str = DEVELOPMENT, **overrides) -> dict:
    return {**model_package_state_change(GROUPS[team], version, status, region=REGION, account=account), **overrides}


def moto_matches(pattern: dict, evt: dict) -> bool:
    from moto.events.models import EventPattern

    return EventPattern(json.dumps(pattern), pattern).matches_event(evt)


def matches(pattern: dict, evt: dict) -> bool:
    """Our matcher's answer, checked against moto's."""
    ours = pattern_matches(pattern, evt)
    assert moto_matches(pattern, evt) == ours, f"moto disagrees on {pattern} for {evt['account']}/{evt['detail']}"
    return ours


# --- templates ------------------------------------------------------------------------------------------


def forwarding_rule(multi_account, team: str) -> dict:
    stack = multi_account.platform.teams[team]
    rule = stack.forwarding.rules[USE_CASES[team]]
    logical_id = stack.get_logical_id(rule.node.default_child)
    assert logical_id.startswith(f"ForwardRegistryEvents{USE_CASES[team].replace('-', '')}")
    return multi_account.templates[f"mlp-team-{team}"]["Resources"][logical_id]["Properties"]


def approval_rule(synth, stack_name: str, stack, use_case: str) -> dict:
    rule = stack.deploy_on_approval.approval_rules[use_case]
    return synth.templates[stack_name]["Resources"][stack.get_logical_id(rule)]["Properties"]


def stage_approval_rule(multi_account, stage: str, team: str) -> dict:
    stack = multi_account.platform.stage_teams[(stage, team)]
    return approval_rule(multi_account, f"mlp-{stage}-team-{team}", stack, USE_CASES[team])


def deploy_function_environment(world: World, synth, stack_name: str, stack) -> dict[str, str]:
    """The deploy function's environment with every token resolved as deployed."""
    function = stack.deploy_on_approval.deploy_function
    variables = synth.templates[stack_name]["Resources"][stack.get_logical_id(function.node.default_child)][
        "Properties"]["Environment"]["Variables"]
    resolved = world.resolve(stack_name, variables)
    assert all(isinstance(v, str) and "<" not in v and "${" not in v for v in resolved.values()), resolved
    return resolved


@pytest.fixture(scope="module")
def stage_world(multi_account) -> World:
    environments = stage_environments(load_config(MULTI_ACCOUNT_CONFIG))
    return World(multi_account.templates, account=DEVELOPMENT, region=REGION, environments=environments)


def forwarded(multi_account, team: str, evt: dict) -> dict[str, dict]:
    """What each stage account's default bus receives of `evt` through the dev forwarding rule, by account."""
    rule = forwarding_rule(multi_account, team)
    if not matches(rule["EventPattern"], evt):
        return {}
    delivered = {}
    for target in rule["Targets"]:
        assert not {"InputTransformer", "Input", "InputPath"} & set(target), "a bus target forwards the event as is"
        account = target["Arn"].split(":")[4]
        delivered[account] = json.loads(json.dumps(evt))
    return delivered


# --- 1. the development account's forwarding rule -------------------------------------------------------


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
@pytest.mark.parametrize("status", ["Approved", "Rejected", "PendingManualApproval"])
def test_the_forwarding_rule_forwards_every_state_change_of_its_group_from_the_development_account(
        multi_account, team, status):
    pattern = forwarding_rule(multi_account, team)["EventPattern"]
    assert matches(pattern, event(team, 3, status))


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
def test_the_forwarding_rule_forwards_nothing_else(multi_account, team):
    pattern = forwarding_rule(multi_account, team)["EventPattern"]
    other_team = next(t for t in GROUPS if t != team)
    refused = {
        "another team's group": event(other_team, 3, "Approved"),
        "another group of the same prefix": {**event(team, 3, "Approved"),
                                             "detail": {**event(team, 3, "Approved")["detail"],
                                                        "ModelPackageGroupName": GROUPS[team] + "-v2"}},
        "from a stage account": event(team, 3, "Approved", account=STAGING),
        "from a third account": event(team, 3, "Approved", account=OTHER),
        "another detail-type": event(team, 3, "Approved", **{"detail-type": "SageMaker Model State Change"}),
        "another source": event(team, 3, "Approved", source="aws.ec2"),
    }
    assert {name for name, evt in refused.items() if matches(pattern, evt)} == set()


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
def test_the_forwarding_rule_targets_exactly_the_default_buses_of_the_teams_stage_accounts(multi_account, team):
    targets = forwarding_rule(multi_account, team)["Targets"]
    assert sorted(t["Arn"] for t in targets) == sorted(
        f"arn:aws:events:{REGION}:{STAGE_ACCOUNTS[s]}:event-bus/default" for s in TEAM_STAGES[team])
    assert len(targets) == len(TEAM_STAGES[team])
    for target in targets:
        # EventBridge refuses an input transformer (or Input/InputPath) on a cross-account event bus target.
        assert not {"InputTransformer", "Input", "InputPath"} & set(target), target
        assert "RoleArn" in target


# --- 2. the stage side: bus policy and approval rule -----------------------------------------------------


@pytest.mark.parametrize(("stage", "team"), STAGED)
def test_a_forwarded_event_arrives_unchanged_and_only_approvals_and_rejections_reach_the_deploy_queue(
        multi_account, stage, team):
    account = STAGE_ACCOUNTS[stage]
    pattern = stage_approval_rule(multi_account, stage, team)["EventPattern"]
    for status in ("Approved", "Rejected"):
        original = event(team, 3, status)
        arrived = forwarded(multi_account, team, original)[account]
        assert arrived == original and arrived["account"] == DEVELOPMENT
        assert matches(pattern, arrived), status
    refused = {
        "pending registration": forwarded(multi_account, team, event(team, 3, "PendingManualApproval"))[account],
        "from the stage account itself": event(team, 3, "Approved", account=account),
        "from a third account": event(team, 3, "Approved", account=OTHER),
        **{f"group of {other}": event(other, 3, "Approved") for other in GROUPS if other != team},
    }
    assert {name for name, evt in refused.items() if matches(pattern, evt)} == set()


@pytest.mark.parametrize(("stage", "team"), STAGED)
def test_another_teams_approval_rule_in_the_stage_ignores_the_event(multi_account, stage, team):
    account = STAGE_ACCOUNTS[stage]
    arrived = forwarded(multi_account, team, event(team, 3, "Approved"))[account]
    reached = [other for (s, other) in multi_account.platform.stage_teams if s == stage
               if matches(stage_approval_rule(multi_account, stage, other)["EventPattern"], arrived)]
    assert reached == [team]


def _bus_admits(statement: dict, *, principal: str, source: str, detail_type: str, bus: str) -> bool:
    request = Request("events:PutEvents", bus, {"events:source": source, "events:detail-type": detail_type},
                      principal_arn=principal)
    return statement_applies(statement, request, resource_policy=True, account_admits=True)


@pytest.mark.parametrize("stage", sorted(STAGE_ACCOUNTS))
def test_the_stage_bus_admits_only_the_development_accounts_registry_events(multi_account, stage_world, stage):
    stack_name = f"mlp-{stage}-platform"
    policies = {k: r for k, r in multi_account.templates[stack_name]["Resources"].items()
                if r["Type"] == "AWS::Events::EventBusPolicy"}
    (policy,) = policies.values()
    statement = stage_world.resolve(stack_name, policy["Properties"]["Statement"])
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{DEVELOPMENT}:root"}
    assert statement["Condition"]["StringEquals"] == {
        "events:source": "aws.sagemaker", "events:detail-type": MODEL_PACKAGE_STATE_CHANGE}
    bus = f"arn:aws:events:{REGION}:{STAGE_ACCOUNTS[stage]}:event-bus/default"
    forwarder = f"arn:aws:iam::{DEVELOPMENT}:role/mlp-fraud-forward-registry-events"
    good = {"principal": forwarder, "source": "aws.sagemaker", "detail_type": MODEL_PACKAGE_STATE_CHANGE, "bus": bus}
    assert _bus_admits(statement, **good)
    refused = {
        "a third account's role of that name": {**good, "principal": forwarder.replace(DEVELOPMENT, OTHER)},
        "another development role": {**good, "principal": f"arn:aws:iam::{DEVELOPMENT}:role/mlp-fraud-execution"},
        "another source": {**good, "source": "aws.ec2"},
        "another detail-type": {**good, "detail_type": "SageMaker Model State Change"},
        "another bus": {**good, "bus": bus.replace(STAGE_ACCOUNTS[stage], OTHER)},
    }
    assert {name for name, request in refused.items() if _bus_admits(statement, **request)} == set()


# --- 3. through the stage deploy handler -----------------------------------------------------------------


def sqs_record(rule: dict, evt: dict) -> dict:
    """The SQS record the deploy function receives for `evt` through `rule`'s deploy-queue target."""
    (target,) = rule["Targets"]
    group = target["SqsParameters"]["MessageGroupId"]
    return {"messageId": f"m-{evt['detail']['ModelPackageVersion']}",
            "body": transform(target["InputTransformer"], evt), "attributes": {"MessageGroupId": group}}


def package_summary(version: int, account: str = DEVELOPMENT) -> dict:
    group = GROUPS["fraud"]
    return {"ModelPackageGroupName": group, "ModelPackageVersion": version,
            "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{account}:model-package/{group}/{version}",
            "CreationTime": NOW, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}


def list_request(group: str) -> dict:
    return {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
            "SortOrder": "Descending", "MaxResults": 1}


def not_found(stubber: Stubber, endpoint: str) -> None:
    stubber.add_client_error("describe_endpoint", service_error_code="ValidationException",
                             service_message=f'Could not find endpoint "{endpoint}".', http_status_code=400,
                             expected_params={"EndpointName": endpoint})


class Clients:
    """Real boto3 clients of the stage account's region, stubbed."""

    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        self.stubs = [Stubber(c) for c in (self.sagemaker, self.sns, self.autoscaling)]
        self.stub = self.stubs[0]

    def __enter__(self) -> Clients:
        for stub in self.stubs:
            stub.activate()
        return self

    def __exit__(self, *exc) -> None:
        for stub in self.stubs:
            stub.deactivate()

    def assert_done(self) -> None:
        for stub in self.stubs:
            stub.assert_no_pending_responses()


@pytest.fixture(scope="module")
def stage_settings(multi_account, stage_world):
    from deploy_on_approval.settings import DeploySettings

    def settings(stage: str):
        stack_name = f"mlp-{stage}-team-fraud"
        stack = multi_account.platform.stage_teams[(stage, "fraud")]
        env = deploy_function_environment(stage_world, multi_account, stack_name, stack)
        return env, DeploySettings.from_env(env)

    return settings


@pytest.mark.parametrize("stage", sorted(STAGE_ACCOUNTS))
def test_an_approval_in_the_development_account_creates_the_stage_endpoint_from_the_development_version(
        multi_account, stage_settings, stage):
    from deploy_on_approval import endpoint_spec, handler

    account = STAGE_ACCOUNTS[stage]
    env, settings = stage_settings(stage)
    assert env["MODEL_PACKAGE_GROUP_ARN_PREFIX"] == f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/"
    assert env["MODEL_EXECUTION_ROLE_ARN"] == f"arn:aws:iam::{account}:role/mlp-{stage}-fraud-model-execution"
    assert f":{account}:" in env["KMS_KEY_ARN"] and f":{account}:" in env["ALERT_TOPIC_ARN"]
    group, endpoint = GROUPS["fraud"], naming.endpoint_name("mlp", "fraud", "fraud-detection")
    target = settings.for_group(group)
    rule = stage_approval_rule(multi_account, stage, "fraud")
    approved = forwarded(multi_account, "fraud", event("fraud", 3, "Approved"))[account]
    assert matches(rule["EventPattern"], approved)
    record = sqs_record(rule, approved)

    v3 = package_summary(3)
    config_name = endpoint_spec.endpoint_config_name(settings, target, 3)
    model_name = f"{group}-v3"
    with Clients() as clients:
        stub = clients.stub
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": [v3]},
                          list_request(f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/{group}"))
        not_found(stub, endpoint)
        stub.add_response(
            "create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:{account}:model/{model_name}"},
            {"ModelName": model_name,
             "ExecutionRoleArn": f"arn:aws:iam::{account}:role/mlp-{stage}-fraud-model-execution",
             "Containers": [{"ModelPackageName": f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package/{group}/3"}],
             "Tags": ANY})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{account}:endpoint-config/{config_name}"},
            {"EndpointConfigName": config_name,
             "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model_name,
                                     "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
                                     "InitialVariantWeight": 1.0}],
             "KmsKeyId": env["KMS_KEY_ARN"],
             "DataCaptureConfig": {"EnableCapture": True, "InitialSamplingPercentage": ANY,
                                   "DestinationS3Uri": env["DATA_CAPTURE_S3_URI"], "KmsKeyId": env["KMS_KEY_ARN"],
                                   "CaptureOptions": ANY},
             "Tags": ANY})
        stub.add_response("create_endpoint",
                          {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{account}:endpoint/{endpoint}"},
                          {"EndpointName": endpoint, "EndpointConfigName": config_name, "Tags": ANY})

        done = handler.process_record(record, clients.sagemaker, clients.sns, settings, clients.autoscaling)

        assert done is True
        clients.assert_done()
    assert env["DATA_CAPTURE_S3_URI"].startswith("s3://") and DEVELOPMENT not in env["DATA_CAPTURE_S3_URI"]


@pytest.mark.parametrize("stage", sorted(STAGE_ACCOUNTS))
def test_a_rejection_in_the_development_account_rolls_the_stage_endpoint_back(multi_account, stage_settings, stage):
    from deploy_on_approval import endpoint_spec, handler

    account = STAGE_ACCOUNTS[stage]
    env, settings = stage_settings(stage)
    group, endpoint = GROUPS["fraud"], naming.endpoint_name("mlp", "fraud", "fraud-detection")
    target = settings.for_group(group)
    rule = stage_approval_rule(multi_account, stage, "fraud")
    rejected = forwarded(multi_account, "fraud", event("fraud", 3, "Rejected"))[account]
    assert matches(rule["EventPattern"], rejected)
    record = sqs_record(rule, rejected)

    v2 = package_summary(2)
    serving, wanted = (endpoint_spec.endpoint_config_name(settings, target, v) for v in (3, 2))
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{account}:endpoint/{endpoint}"
    exists = {"service_error_code": "ValidationException", "http_status_code": 400}
    with Clients() as clients:
        stub = clients.stub
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": [v2]},
                          list_request(f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/{group}"))
        stub.add_response("describe_endpoint", {
            "EndpointName": endpoint, "EndpointArn": endpoint_arn, "EndpointConfigName": serving,
            "EndpointStatus": "InService", "CreationTime": NOW, "LastModifiedTime": NOW}, {"EndpointName": endpoint})
        # v2 served before v3: its model and config still exist, which is success.
        stub.add_client_error(
            "create_model", service_message=f"Cannot create already existing model \"arn:aws:sagemaker:{REGION}:"
                                            f"{account}:model/{group}-v2\".",
            expected_params={"ModelName": f"{group}-v2", "ExecutionRoleArn": env["MODEL_EXECUTION_ROLE_ARN"],
                             "Containers": [{"ModelPackageName": v2["ModelPackageArn"]}], "Tags": ANY}, **exists)
        stub.add_client_error(
            "create_endpoint_config", service_message="Cannot create already existing endpoint configuration.",
            expected_params={"EndpointConfigName": wanted, "ProductionVariants": ANY, "KmsKeyId": env["KMS_KEY_ARN"],
                             "DataCaptureConfig": ANY, "Tags": ANY}, **exists)
        # autoscaling is on: the serving config's instance type is the wanted one, so nothing is released
        stub.add_response("describe_endpoint_config", {
            "EndpointConfigName": serving,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{account}:endpoint-config/{serving}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"{group}-v3",
                                    "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}],
            "CreationTime": NOW}, {"EndpointConfigName": serving})
        stub.add_response("add_tags", {"Tags": []}, {"ResourceArn": endpoint_arn, "Tags": ANY})
        stub.add_response("update_endpoint", {"EndpointArn": endpoint_arn}, {
            "EndpointName": endpoint, "EndpointConfigName": wanted, "DeploymentConfig": ANY,
            "RetainAllVariantProperties": True, "ExcludeRetainedVariantProperties": ANY})

        calls = []
        clients.sagemaker.meta.events.register("provide-client-params.sagemaker.*",
                                               lambda params, model, **_: calls.append((model.name, params)))
        done = handler.process_record(record, clients.sagemaker, clients.sns, settings, clients.autoscaling)

        assert done is True
        clients.assert_done()
    (tags,) = [p["Tags"] for name, p in calls if name == "AddTags"]
    tag_values = {t["Key"]: t["Value"] for t in tags}
    assert v2["ModelPackageArn"] in tag_values.values() and wanted in tag_values.values()
    assert [name for name, _ in calls] == ["ListModelPackages", "DescribeEndpoint", "CreateModel",
                                           "CreateEndpointConfig", "DescribeEndpointConfig", "AddTags",
                                           "UpdateEndpoint"]


# --- 4. the development account serves unstaged teams as before -----------------------------------------


def _serving_teams(example) -> list[str]:
    return sorted(name for name, stack in example.platform.teams.items() if stack.deploy_on_approval is not None
                  and stack.deploy_on_approval.enabled)


def test_in_a_single_account_platform_the_approval_rules_and_deploy_functions_name_no_other_account(example):
    teams = _serving_teams(example)
    assert teams, "the example config serves some team in the development account"
    for team in teams:
        stack = example.platform.teams[team]
        assert stack.deploy_on_approval.reads_another_account is False
        for use_case in stack.deploy_on_approval.approval_rules:
            rule = approval_rule(example, f"mlp-team-{team}", stack, use_case)
            assert "account" not in rule["EventPattern"], rule["EventPattern"]
        function = stack.deploy_on_approval.deploy_function
        variables = example.templates[f"mlp-team-{team}"]["Resources"][
            stack.get_logical_id(function.node.default_child)]["Properties"]["Environment"]["Variables"]
        assert "MODEL_PACKAGE_GROUP_ARN_PREFIX" not in variables


def test_in_a_single_account_platform_the_handler_lists_the_group_by_name(example, example_config):
    from deploy_on_approval import handler
    from deploy_on_approval.settings import DeploySettings

    team = _serving_teams(example)[0]
    stack = example.platform.teams[team]
    stack_name = f"mlp-team-{team}"
    world = World(example.templates, account=example_config.account or DEVELOPMENT,
                  region=example_config.region or REGION)
    env = deploy_function_environment(world, example, stack_name, stack)
    settings = DeploySettings.from_env(env)
    assert settings.group_arn_prefix == ""
    use_case = next(iter(stack.deploy_on_approval.approval_rules))
    group = naming.model_package_group_name("mlp", team, use_case)
    endpoint = naming.endpoint_name("mlp", team, use_case)
    rule = approval_rule(example, stack_name, stack, use_case)
    evt = model_package_state_change(group, 1, "Approved", region=world.region, account=world.account)
    assert matches(rule["EventPattern"], evt)
    with Clients() as clients:
        clients.stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, list_request(group))
        not_found(clients.stub, endpoint)

        done = handler.process_record(sqs_record(rule, evt), clients.sagemaker, clients.sns, settings,
                                      clients.autoscaling)

        assert done is True
        clients.assert_done()
