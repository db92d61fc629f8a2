"""What the stage accounts of config/multi-account.yaml may do in the development account, decided as IAM decides a
cross-account request (both sides must allow, a Deny of either wins) on the synthesized templates, each stack
resolved in its own account (`tools.iam.template.World`):

- every request the real deploy handler (`deploy_on_approval.handler.process_record`) makes for an Approved message
  and for a Rejected one (rollback to the previous version), recorded from stubbed clients and mapped by
  `tools.iam.requests.iam_requests`, is allowed to the stage deploy role it runs as;
- a stage deploy role reaches only its own team's groups and versions: never another team's, a group nobody granted,
  or a registry write; a role of another account with the same name reaches nothing;
- a stage model execution role reads only the model tarballs of its own team's bucket, and decrypts them only
  through S3.

Each allow has a control: the same request is denied once the grant it rests on is removed from a copy of the
templates.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from deploy_on_approval import endpoint_spec, handler
from deploy_on_approval.settings import DeploySettings

from stacks.app_builder import stage_environments
from stacks.config import load_config
from tests.conftest import MULTI_ACCOUNT_CONFIG
from tools.iam.evaluate import Decision, Request, evaluate, evaluate_access
from tools.iam.requests import iam_requests
from tools.iam.template import World

DEV, STAGING, PRODUCTION, OTHER = "111111111111", "222222222222", "333333333333", "444444444444"
REGION = "eu-west-1"
STAGE_ACCOUNTS = {"staging": STAGING, "production": PRODUCTION}
GROUPS = {"fraud": "mlp-fraud-fraud-detection", "churn": "mlp-churn-churn-propensity"}
SERVING = [("staging", "fraud"), ("production", "fraud"), ("staging", "churn")]
REGISTRY = f"arn:aws:sagemaker:{REGION}:{DEV}"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def group_arn(group: str) -> str:
    return f"{REGISTRY}:model-package-group/{group}"


def version_arn(group: str, version: int) -> str:
    return f"{REGISTRY}:model-package/{group}/{version}"


def make_world(templates: dict) -> World:
    config = load_config(MULTI_ACCOUNT_CONFIG)
    return World(templates, account=config.account, region=config.region, environments=stage_environments(config))


@pytest.fixture(scope="module")
def world(multi_account) -> World:
    return make_world(multi_account.templates)


def without_statement(templates: dict, stack: str, sid: str) -> dict:
    """A copy of `templates` in which the statement `sid` of `stack` is gone (from whichever policy holds it)."""
    changed = copy.deepcopy(templates)
    removed = 0
    for resource in changed[stack]["Resources"].values():
        properties = resource.get("Properties", {})
        for name in ("PolicyDocument", "KeyPolicy", "ModelPackageGroupPolicy"):
            document = properties.get(name)
            if isinstance(document, dict) and isinstance(document.get("Statement"), list):
                kept = [s for s in document["Statement"] if s.get("Sid") != sid]
                removed += len(document["Statement"]) - len(kept)
                document["Statement"] = kept
    assert removed == 1, f"{stack}: {removed} statements {sid!r}"
    return changed


def decide(world: World, identity: list[dict], request: Request) -> Decision:
    """The decision on `request` joining `identity` and the policy the world gives its resource."""
    resource = request.resource
    key_policy = resource.startswith("arn:aws:kms:") and ":key/" in resource
    bucket_account = world.bucket_account(resource) if resource.startswith("arn:aws:s3:::") else None
    return evaluate_access(identity, world.resource_statements(resource), request, key_policy=key_policy,
                           resource_account=bucket_account)


# --- roles ----------------------------------------------------------------------------------------------


def deploy_role(multi_account, world: World, stage: str, team: str) -> tuple[str, list[dict]]:
    """(ARN, identity statements) of the stage deploy function's role."""
    stack = multi_account.platform.stage_teams[(stage, team)]
    logical_id = stack.get_logical_id(stack.deploy_on_approval.deploy_function.role.node.default_child)
    return world.role_arn(stack.stack_name, logical_id), world.role_statements(stack.stack_name, logical_id)


def model_role(multi_account, world: World, stage: str, team: str) -> tuple[str, list[dict]]:
    stack = multi_account.platform.stage_teams[(stage, team)]
    logical_id = stack.get_logical_id(stack.model_execution_role.node.default_child)
    return world.role_arn(stack.stack_name, logical_id), world.role_statements(stack.stack_name, logical_id)


def deploy_settings(multi_account, world: World, stage: str, team: str) -> DeploySettings:
    """The settings the stage deploy function reads, from its synthesized environment as deployed."""
    stack = multi_account.platform.stage_teams[(stage, team)]
    function = stack.get_logical_id(stack.deploy_on_approval.deploy_function.node.default_child)
    variables = world.resource(stack.stack_name, function).properties["Environment"]["Variables"]
    return DeploySettings.from_env(world.resolve(stack.stack_name, variables))


def test_the_stage_roles_have_the_fixed_names_the_development_account_admits(multi_account, world):
    for stage, team in SERVING:
        account = STAGE_ACCOUNTS[stage]
        assert deploy_role(multi_account, world, stage, team)[0] == f"arn:aws:iam::{account}:role/mlp-{stage}-{team}-deploy"
        assert model_role(multi_account, world, stage, team)[0] == (
            f"arn:aws:iam::{account}:role/mlp-{stage}-{team}-model-execution")
        settings = deploy_settings(multi_account, world, stage, team)
        assert settings.registry_group(settings.for_group(GROUPS[team])) == group_arn(GROUPS[team])
        assert settings.model_execution_role_arn == model_role(multi_account, world, stage, team)[0]


# --- 1. what the real deploy handler asks for -------------------------------------------------------------


def record_calls(client, calls: list) -> None:
    service = client.meta.service_model.service_name

    def record(params, model, **_):
        calls.append((service, model.name, copy.deepcopy(params)))

    client.meta.events.register(f"provide-client-params.{service}.*", record)


def run_handler(settings: DeploySettings, group: str, status: str, account: str) -> list[tuple[str, str, dict]]:
    """Run `process_record` for `status` of version 3 of `group` against stubbed clients; the calls it made.

    Approved: the registry's newest Approved version is 3 and there is no endpoint yet (create all). Rejected: the
    newest Approved is 2 and the endpoint serves version 3's config (roll back: new model and config, update)."""
    target = settings.for_group(group)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    calls: list[tuple[str, str, dict]] = []
    for client in (sagemaker, sns, autoscaling):
        record_calls(client, calls)
    newest = 3 if status == "Approved" else 2
    newest_arn = version_arn(group, newest)
    wanted = endpoint_spec.endpoint_config_name(settings, target, newest)
    serving = endpoint_spec.endpoint_config_name(settings, target, 3)
    stage_arn = f"arn:aws:sagemaker:{REGION}:{account}"
    endpoint_arn = f"{stage_arn}:endpoint/{target.endpoint}"
    stub = Stubber(sagemaker)
    stub.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [{
            "ModelPackageGroupName": group, "ModelPackageVersion": newest, "ModelPackageArn": newest_arn,
            "CreationTime": NOW, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}]},
        {"ModelPackageGroupName": group_arn(group), "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
         "SortOrder": "Descending", "MaxResults": 1},
    )
    if status == "Approved":
        stub.add_client_error("describe_endpoint", "ValidationException",
                              f"Could not find endpoint \"{target.endpoint}\".", 400,
                              expected_params={"EndpointName": target.endpoint})
    else:
        stub.add_response("describe_endpoint", {
            "EndpointName": target.endpoint, "EndpointArn": endpoint_arn, "EndpointConfigName": serving,
            "EndpointStatus": "InService", "CreationTime": NOW, "LastModifiedTime": NOW,
        }, {"EndpointName": target.endpoint})
    model = endpoint_spec.model_name(settings, target, newest)
    stub.add_response("create_model", {"ModelArn": f"{stage_arn}:model/{model}"})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"{stage_arn}:endpoint-config/{wanted}"})
    if status == "Approved":
        stub.add_response("create_endpoint", {"EndpointArn": endpoint_arn})
    else:
        if (target.endpoint_settings.get("autoscaling") or {}).get("enabled"):
            # the new config keeps the instance type: the scalable target stays registered
            stub.add_response("describe_endpoint_config", {
                "EndpointConfigName": serving, "EndpointConfigArn": f"{stage_arn}:endpoint-config/{serving}",
                "CreationTime": NOW,
                "ProductionVariants": [{"VariantName": endpoint_spec.VARIANT_NAME, "ModelName": "m",
                                        "InstanceType": target.endpoint_settings["instance_type"]}],
            }, {"EndpointConfigName": serving})
        stub.add_response("add_tags", {}, None)
        stub.add_response("update_endpoint", {"EndpointArn": endpoint_arn}, None)
    record = {"messageId": "m-1", "body": json.dumps({
        "source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "group": group,
        "version": 3, "status": status, "arn": version_arn(group, 3)})}
    with stub, Stubber(sns), Stubber(autoscaling):  # sns and autoscaling: any call fails the stub
        assert handler.process_record(record, sagemaker, sns, settings, autoscaling) is True
        stub.assert_no_pending_responses()
    return calls


def handler_requests(settings: DeploySettings, group: str, status: str, account: str) -> tuple[list, list]:
    """The calls of `run_handler` and their IAM requests, as (operation, request)."""
    calls = run_handler(settings, group, status, account)
    requests = []
    for service, operation, params in calls:
        requests += [(operation, r) for r in iam_requests(service, operation, params, region=REGION, account=account)]
    return calls, requests


EXPECTED_OPERATIONS = {
    "Approved": ["ListModelPackages", "DescribeEndpoint", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"],
    "Rejected": ["ListModelPackages", "DescribeEndpoint", "CreateModel", "CreateEndpointConfig", "AddTags",
                 "UpdateEndpoint"],
}


@pytest.mark.parametrize("status", ["Approved", "Rejected"])
@pytest.mark.parametrize(("stage", "team"), SERVING)
def test_every_request_of_the_stage_deploy_handler_is_allowed_to_its_role(multi_account, world, stage, team, status):
    account = STAGE_ACCOUNTS[stage]
    group = GROUPS[team]
    settings = deploy_settings(multi_account, world, stage, team)
    role_arn, identity = deploy_role(multi_account, world, stage, team)
    calls, requests = handler_requests(settings, group, status, account)

    operations = [operation for _, operation, _ in calls]
    expected = list(EXPECTED_OPERATIONS[status])
    if status == "Rejected" and team == "fraud":  # autoscaling: the serving config's instance type is read
        expected.insert(4, "DescribeEndpointConfig")
    assert operations == expected
    newest = version_arn(group, 3 if status == "Approved" else 2)
    (create_model,) = [params for _, operation, params in calls if operation == "CreateModel"]
    assert create_model["Containers"] == [{"ModelPackageName": newest}]
    assert create_model["ExecutionRoleArn"] == f"arn:aws:iam::{account}:role/mlp-{stage}-{team}-model-execution"
    # the requests on the development account's registry are among them, not folded into *
    on_registry = sorted((r.action, r.resource) for _, r in requests if f":{DEV}:" in r.resource)
    assert on_registry == sorted([("sagemaker:ListModelPackages", f"{REGISTRY}:model-package/{group}/*"),
                                  ("sagemaker:CreateModel", newest)])

    refused = []
    for operation, request in requests:
        decision = decide(world, identity, replace(request, principal_arn=role_arn))
        if not decision.allowed:
            refused.append(f"{operation}: {request} ({request.reason or 'own action'}): {decision.explain()}")
    assert not refused, "\n".join(refused)


def topic_key(world: World, topic_arn: str) -> str:
    """The key the world's topic `topic_arn` is encrypted with."""
    (key,) = [world.resolve(r.stack, r.properties["KmsMasterKeyId"]) for r in world.resources("AWS::SNS::Topic")
              if world.arn(r.stack, r.logical_id) == topic_arn]
    return key


@pytest.mark.parametrize(("stage", "team"), SERVING)
def test_the_alert_of_a_rejection_that_leaves_no_approved_version_is_allowed(multi_account, world, stage, team):
    account, group = STAGE_ACCOUNTS[stage], GROUPS[team]
    settings = deploy_settings(multi_account, world, stage, team)
    target = settings.for_group(group)
    role_arn, identity = deploy_role(multi_account, world, stage, team)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    calls: list[tuple[str, str, dict]] = []
    record_calls(sagemaker, calls)
    record_calls(sns, calls)
    stub, sns_stub = Stubber(sagemaker), Stubber(sns)
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                      {"ModelPackageGroupName": group_arn(group), "ModelApprovalStatus": "Approved",
                       "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})
    stub.add_response("describe_endpoint", {
        "EndpointName": target.endpoint, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{account}:endpoint/{target.endpoint}",
        "EndpointConfigName": endpoint_spec.endpoint_config_name(settings, target, 3), "EndpointStatus": "InService",
        "CreationTime": NOW, "LastModifiedTime": NOW}, {"EndpointName": target.endpoint})
    sns_stub.add_response("publish", {"MessageId": "1"})
    record = {"messageId": "m-1", "body": json.dumps({
        "source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "group": group,
        "version": 3, "status": "Rejected", "arn": version_arn(group, 3)})}
    with stub, sns_stub:
        assert handler.process_record(record, sagemaker, sns, settings) is True
        stub.assert_no_pending_responses()
        sns_stub.assert_no_pending_responses()

    assert [operation for _, operation, _ in calls] == ["ListModelPackages", "DescribeEndpoint", "Publish"]
    topic = calls[-1][2]["TopicArn"]
    assert topic.startswith(f"arn:aws:sns:{REGION}:{account}:mlp-{stage}-team-{team}-")
    keys = {topic: topic_key(world, topic)}
    requests = [r for service, operation, params in calls
                for r in iam_requests(service, operation, params, region=REGION, account=account, topic_keys=keys)]
    assert {r.action for r in requests} >= {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    for request in requests:
        decision = decide(world, identity, replace(request, principal_arn=role_arn))
        assert decision.allowed, f"{request}: {decision.explain()}"


REGISTRY_GRANTS = [
    # (stack, statement removed, requests it alone allows)
    ("mlp-team-fraud", "StageDeployRolesDeployItsVersions", {"sagemaker:ListModelPackages", "sagemaker:CreateModel"}),
    ("mlp-staging-team-fraud", "CreateModelsFromTheTeamsVersionsInTheRegistryAccount", {"sagemaker:CreateModel"}),
    ("mlp-staging-team-fraud", "ListModelPackagesHasNoResourceLevelPermissions", {"sagemaker:ListModelPackages"}),
]


@pytest.mark.parametrize(("stack", "sid", "needed_by"), REGISTRY_GRANTS, ids=[g[1] for g in REGISTRY_GRANTS])
def test_without_either_sides_grant_the_handlers_registry_requests_are_denied(multi_account, world, stack, sid,
                                                                              needed_by):
    """The control: the same recorded requests, once the group policy's or the role's statement is gone."""
    settings = deploy_settings(multi_account, world, "staging", "fraud")
    _, requests = handler_requests(settings, GROUPS["fraud"], "Approved", STAGING)
    role_arn, identity = deploy_role(multi_account, world, "staging", "fraud")
    changed = make_world(without_statement(multi_account.templates, stack, sid))
    _, changed_identity = deploy_role(multi_account, changed, "staging", "fraud")
    denied = set()
    for _, request in requests:
        request = replace(request, principal_arn=role_arn)
        assert decide(world, identity, request).allowed, request
        if not decide(changed, changed_identity, request).allowed:
            denied.add((request.action, f":{DEV}:" in request.resource))
    assert denied == {(action, True) for action in needed_by}


# --- 2. what the stage deploy roles may not do -------------------------------------------------------------


def registry_reads(group: str, version: int = 3) -> list[tuple[str, str, dict]]:
    """The registry calls of a deploy (and a describe) naming `group` of the development account."""
    return [
        ("sagemaker", "ListModelPackages", {"ModelPackageGroupName": group_arn(group), "ModelApprovalStatus": "Approved"}),
        ("sagemaker", "DescribeModelPackageGroup", {"ModelPackageGroupName": group_arn(group)}),
        ("sagemaker", "DescribeModelPackage", {"ModelPackageName": version_arn(group, version)}),
        ("sagemaker", "CreateModel", {"ModelName": f"{group}-v{version}",
                                      "Containers": [{"ModelPackageName": version_arn(group, version)}]}),
    ]


def registry_decisions(world: World, identity: list[dict], principal: str, calls) -> dict[tuple[str, str], bool]:
    """(action, resource) -> allowed, for the requests of `calls` on the development account's registry."""
    account = principal.split(":")[4]
    decisions = {}
    for service, operation, params in calls:
        for request in iam_requests(service, operation, params, region=REGION, account=account):
            if f":{DEV}:" in request.resource:
                decisions[(request.action, request.resource)] = decide(
                    world, identity, replace(request, principal_arn=principal)).allowed
    return decisions


@pytest.mark.parametrize(("stage", "team"), SERVING)
def test_a_stage_deploy_role_reads_and_deploys_its_own_teams_versions(multi_account, world, stage, team):
    role_arn, identity = deploy_role(multi_account, world, stage, team)
    decisions = registry_decisions(world, identity, role_arn, registry_reads(GROUPS[team]))
    assert len(decisions) == 4 and all(decisions.values()), decisions


@pytest.mark.parametrize(("stage", "team", "other"), [("staging", "fraud", "churn"), ("production", "fraud", "churn"),
                                                      ("staging", "churn", "fraud")])
def test_a_stage_deploy_role_is_denied_another_teams_group_and_versions(multi_account, world, stage, team, other):
    role_arn, identity = deploy_role(multi_account, world, stage, team)
    decisions = registry_decisions(world, identity, role_arn, registry_reads(GROUPS[other]))
    assert len(decisions) == 4 and not any(decisions.values()), decisions
    # ListModelPackages is allowed on * by the role's own policy: the other team's group policy refuses it
    versions = f"{REGISTRY}:model-package/{GROUPS[other]}/*"
    request = Request("sagemaker:ListModelPackages", versions, principal_arn=role_arn)
    assert evaluate(identity, request).allowed
    assert not decide(world, identity, request).allowed
    assert decide(world, identity, replace(request, resource=f"{REGISTRY}:model-package/{GROUPS[team]}/*")).allowed


def test_a_stage_deploy_role_is_denied_a_group_nobody_granted(multi_account, world):
    role_arn, identity = deploy_role(multi_account, world, "staging", "fraud")
    for group in ("mlp-fraud-unshared", "mlp-fraud-fraud-detection-copy"):
        decisions = registry_decisions(world, identity, role_arn, registry_reads(group))
        assert len(decisions) == 4 and not any(decisions.values()), decisions
    # the same role, once the group's policy admits it, is allowed: the denial is the missing group policy
    request = Request("sagemaker:ListModelPackages", f"{REGISTRY}:model-package/mlp-fraud-unshared/*",
                      principal_arn=role_arn)
    granted = [{**s, "Resource": s["Resource"].replace(GROUPS["fraud"], "mlp-fraud-unshared")}
               for s in world.resource_statements(f"{REGISTRY}:model-package/{GROUPS['fraud']}/1")]
    assert evaluate_access(identity, [], request).allowed is False
    assert evaluate_access(identity, granted, request).allowed


def test_a_role_of_another_account_with_the_stage_roles_name_is_denied(multi_account, world):
    _, identity = deploy_role(multi_account, world, "staging", "fraud")
    impostor = f"arn:aws:iam::{OTHER}:role/mlp-staging-fraud-deploy"
    admin = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    for statements in (identity, admin):
        decisions = registry_decisions(world, statements, impostor, registry_reads(GROUPS["fraud"]))
        assert len(decisions) == 4 and not any(decisions.values()), decisions
    # a role of a stage account that is not the stage deploy role, even with every permission, is denied too
    other_role = f"arn:aws:iam::{STAGING}:role/mlp-staging-fraud-admin"
    decisions = registry_decisions(world, admin, other_role, registry_reads(GROUPS["fraud"]))
    assert len(decisions) == 4 and not any(decisions.values()), decisions


REGISTRY_WRITES = [
    ("UpdateModelPackage", {"ModelPackageArn": version_arn(GROUPS["fraud"], 3), "ModelApprovalStatus": "Approved"}),
    ("DeleteModelPackage", {"ModelPackageName": version_arn(GROUPS["fraud"], 3)}),
    ("PutModelPackageGroupPolicy", {"ModelPackageGroupName": group_arn(GROUPS["fraud"]), "ResourcePolicy": "{}"}),
    ("DeleteModelPackageGroupPolicy", {"ModelPackageGroupName": group_arn(GROUPS["fraud"])}),
    ("DeleteModelPackageGroup", {"ModelPackageGroupName": group_arn(GROUPS["fraud"])}),
]


@pytest.mark.parametrize(("operation", "params"), REGISTRY_WRITES, ids=[w[0] for w in REGISTRY_WRITES])
@pytest.mark.parametrize("stage", ["staging", "production"])
def test_a_stage_deploy_role_may_not_write_the_registry(multi_account, world, stage, operation, params):
    role_arn, identity = deploy_role(multi_account, world, stage, "fraud")
    sagemaker_admin = [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]
    requests = [r for r in iam_requests("sagemaker", operation, params, region=REGION, account=STAGE_ACCOUNTS[stage])
                if f":{DEV}:" in r.resource]
    assert requests
    for request in requests:
        request = replace(request, principal_arn=role_arn)
        assert not decide(world, identity, request).allowed, request
        # not even with every SageMaker permission of its own account: the group policy grants no write
        assert not decide(world, sagemaker_admin, request).allowed, request
    # the control: the same admin identity may read the group (the group policy admits the role for that)
    read = Request("sagemaker:DescribeModelPackageGroup", group_arn(GROUPS["fraud"]), principal_arn=role_arn)
    assert decide(world, sagemaker_admin, read).allowed


# --- 3. what the stage model execution roles may read ------------------------------------------------------

EXECUTION = "pipelines-abc123def456"
ARTIFACTS = [
    f"pipeline/runs/{EXECUTION}/xgboost/models/pipelines-abc123-TrainXGBoost-XyZ/output/model.tar.gz",
    f"pipeline/runs/{EXECUTION}/automl/automl-abc123/data-processor-models/x/output/model.tar.gz",
]
NOT_ARTIFACTS = [
    f"pipeline/runs/{EXECUTION}/split/train/part.csv",
    f"pipeline/runs/{EXECUTION}/split/train/model.tar.gz",
    f"pipeline/runs/{EXECUTION}/evaluation/evaluation.json",
    "pipeline/data/{use_case}/transactions.csv",
    "mlflow/1/0123456789abcdef/artifacts/model/model.pkl",
    "mlflow/1/0123456789abcdef/artifacts/model.tar.gz",
    "pipeline/code/pipeline_code/definition.py",
]
USE_CASES = {"fraud": "fraud-detection", "churn": "churn-propensity"}


def team_bucket(multi_account, world: World, team: str) -> str:
    stack = multi_account.platform.teams[team]
    return world.physical_name(stack.stack_name, stack.get_logical_id(stack.data_bucket.node.default_child))


def development_key(multi_account, world: World) -> str:
    platform = multi_account.platform.platform
    return world.arn(platform.stack_name, platform.get_logical_id(platform.key.node.default_child))


def get_object(bucket: str, key: str, principal: str) -> Request:
    # S3 sets s3:ResourceAccount to the bucket owner's account
    return Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {"s3:ResourceAccount": DEV}, principal_arn=principal)


def read_decision(world: World, identity: list[dict], request: Request) -> Decision:
    assert world.bucket_account(request.resource) == DEV
    return evaluate_access(identity, world.resource_statements(request.resource), request, resource_account=DEV)


def test_the_principals_and_resources_are_the_deployed_ones(multi_account, world):
    assert model_role(multi_account, world, "staging", "fraud")[0] == (
        f"arn:aws:iam::{STAGING}:role/mlp-staging-fraud-model-execution")
    assert team_bucket(multi_account, world, "fraud") != team_bucket(multi_account, world, "churn")
    assert development_key(multi_account, world).startswith(f"arn:aws:kms:{REGION}:{DEV}:key/")


@pytest.mark.parametrize(("stage", "team"), SERVING)
def test_a_stage_model_role_reads_its_teams_registered_models_and_nothing_else(multi_account, world, stage, team):
    principal, identity = model_role(multi_account, world, stage, team)
    bucket = team_bucket(multi_account, world, team)
    for key in ARTIFACTS:
        decision = read_decision(world, identity, get_object(bucket, key, principal))
        assert decision.allowed, f"{key}: {decision.explain()}"
    for key in NOT_ARTIFACTS:
        key = key.format(use_case=USE_CASES[team])
        assert not read_decision(world, identity, get_object(bucket, key, principal)).allowed, key


@pytest.mark.parametrize(("stage", "team", "other"), [("staging", "fraud", "churn"), ("production", "fraud", "churn"),
                                                      ("staging", "churn", "fraud")])
def test_a_stage_model_role_is_denied_another_teams_models(multi_account, world, stage, team, other):
    principal, identity = model_role(multi_account, world, stage, team)
    bucket = team_bucket(multi_account, world, other)
    for key in ARTIFACTS:
        request = get_object(bucket, key, principal)
        assert evaluate(identity, request).allowed  # its own policy allows any development bucket's models
        decision = read_decision(world, identity, request)
        assert not decision.allowed, key
        # the other team's bucket both fails to admit the role and denies its data to it
        assert [s.get("Sid") for s in decision.denies] == ["DataOnlyForTheTeamsRoles"]


def test_a_model_role_of_another_account_with_the_stage_roles_name_is_denied(multi_account, world):
    _, identity = model_role(multi_account, world, "staging", "fraud")
    impostor = f"arn:aws:iam::{OTHER}:role/mlp-staging-fraud-model-execution"
    bucket = team_bucket(multi_account, world, "fraud")
    for key in ARTIFACTS:
        assert not read_decision(world, identity, get_object(bucket, key, impostor)).allowed
    key = development_key(multi_account, world)
    assert not decide(world, identity, Request("kms:Decrypt", key, dict(VIA_S3), principal_arn=impostor)).allowed


@pytest.mark.parametrize(("stage", "team"), SERVING)
def test_a_stage_model_role_decrypts_with_the_development_key_through_s3_only(multi_account, world, stage, team):
    principal, identity = model_role(multi_account, world, stage, team)
    key = development_key(multi_account, world)
    through_s3 = Request("kms:Decrypt", key, dict(VIA_S3), principal_arn=principal)
    decision = decide(world, identity, through_s3)
    assert decision.allowed, decision.explain()
    assert not decide(world, identity, replace(through_s3, context={})).allowed
    assert not decide(world, identity, replace(through_s3, context={"kms:ViaService": f"sqs.{REGION}.amazonaws.com"})
                      ).allowed
    for action in ("kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:ReEncryptFrom"):
        assert not decide(world, identity, replace(through_s3, action=action)).allowed, action


ARTIFACT_GRANTS = [
    ("mlp-team-fraud", "StageModelRolesReadRegisteredModels", "read"),
    ("mlp-staging-team-fraud", "ReadRegisteredModelsOfTheDevelopmentAccount", "read"),
    ("mlp-platform", "StageModelRolesDecryptRegisteredModelsThroughS3", "decrypt"),
    ("mlp-staging-team-fraud", "DecryptRegisteredModelsThroughS3", "decrypt"),
]


@pytest.mark.parametrize(("stack", "sid", "needed_for"), ARTIFACT_GRANTS, ids=[g[1] for g in ARTIFACT_GRANTS])
def test_without_either_sides_grant_the_model_role_can_read_no_model(multi_account, world, stack, sid, needed_for):
    """The control: the staging fraud model role's reads, once the bucket's, key's or role's statement is gone."""
    principal, identity = model_role(multi_account, world, "staging", "fraud")
    changed = make_world(without_statement(multi_account.templates, stack, sid))
    _, changed_identity = model_role(multi_account, changed, "staging", "fraud")
    bucket, key = team_bucket(multi_account, world, "fraud"), development_key(multi_account, world)
    requests = {"read": [get_object(bucket, k, principal) for k in ARTIFACTS],
                "decrypt": [Request("kms:Decrypt", key, dict(VIA_S3), principal_arn=principal)]}
    for kind, kind_requests in requests.items():
        for request in kind_requests:
            assert decide(world, identity, request).allowed, request
            assert decide(changed, changed_identity, request).allowed is (kind != needed_for), (kind, request)
