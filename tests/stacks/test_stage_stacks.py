"""The stacks of config/multi-account.yaml: the development account builds, each stage account serves.

Synthesized once per session (`multi_account`); the example platform (no stages) is the control that shows
each check can fail.
"""

from __future__ import annotations

import fnmatch
import json

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk.assertions import Template

from lambdas.common import tags
from lambdas.idle_endpoint_reaper import settings as reaper_settings
from stacks import policy_checks
from stacks.app_builder import stage_environments, stage_platform_stack_name, stage_team_stack_name
from stacks.config import load_config, parse_config
from stacks.cross_account import ARTIFACT_KEY_PATTERNS
from stacks.stage_stacks import StagePlatformStack
from tests.conftest import MULTI_ACCOUNT_CONFIG, cdk_context, synthesize
from tools.iam.evaluate import Request, evaluate_access
from tools.iam.template import World
from tools.synth_report import stack_environment

DEVELOPMENT, STAGING, PRODUCTION, REGION = "111111111111", "222222222222", "333333333333", "eu-west-1"
STAGE_ACCOUNTS = {"staging": STAGING, "production": PRODUCTION}
SERVING = {("staging", "fraud"), ("staging", "churn"), ("production", "fraud")}
# What only the development account holds.
BUILDING_TYPES = (
    "AWS::SageMaker::Domain",
    "AWS::SageMaker::UserProfile",
    "AWS::SageMaker::Space",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::Pipeline",
    "AWS::SageMaker::MlflowApp",
    "AWS::EC2::VPC",
    "AWS::ServiceQuotas::ServiceQuota",
    "AWS::Budgets::Budget",
)
SERVING_HANDLERS = ("deploy_on_approval.handler.handler", "endpoint_verifier.handler.handler")
SERVING_EVENTS = ("SageMaker Model Package State Change", "SageMaker Endpoint State Change")


def _resources(template: dict, *types: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] in types}


def _environments(outdir) -> dict[str, str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {name: artifact["environment"] for name, artifact in manifest["artifacts"].items()
            if artifact["type"] == "aws:cloudformation:stack"}


def _endpoint_resources(template: dict) -> list[str]:
    """Logical ids of what serves or watches endpoints: deploy automation, endpoint alarms, dashboards."""
    found = [k for k, r in _resources(template, "AWS::Lambda::Function").items()
             if r["Properties"].get("Handler") in SERVING_HANDLERS]
    # Every queue and rule but those that forward registry events to the stage accounts.
    found += [k for k in _resources(template, "AWS::SQS::Queue") if not k.startswith("ForwardFailedEventsQueue")]
    found += [k for k, r in _resources(template, "AWS::CloudWatch::Dashboard").items()
              if "AWS/SageMaker" in json.dumps(r["Properties"]["DashboardBody"])]
    found += [k for k, r in _resources(template, "AWS::Events::Rule").items()
              if set(r["Properties"].get("EventPattern", {}).get("detail-type", [])) & set(SERVING_EVENTS)
              and not k.startswith("ForwardRegistryEvents")]
    found += [k for k, r in _resources(template, "AWS::CloudWatch::Alarm").items()
              if r["Properties"].get("Namespace") == "AWS/SageMaker"]
    found += [k for k in _resources(template, "AWS::IAM::Role") if k.startswith("ModelExecutionRole")]
    return found


def _imports(node) -> list[str]:
    """The export names a template imports."""
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"}:
            return [node["Fn::ImportValue"]]
        return [name for value in node.values() for name in _imports(value)]
    if isinstance(node, list):
        return [name for value in node for name in _imports(value)]
    return []


def test_the_cloud_assembly_names_the_development_account_and_each_stage_account(multi_account):
    environments = _environments(multi_account.outdir)
    expected = {"mlp-network": DEVELOPMENT, "mlp-platform": DEVELOPMENT, "mlp-team-fraud": DEVELOPMENT,
                "mlp-team-churn": DEVELOPMENT}
    for stage, account in STAGE_ACCOUNTS.items():
        expected[f"mlp-{stage}-platform"] = account
    for stage, team in SERVING:
        expected[f"mlp-{stage}-team-{team}"] = STAGE_ACCOUNTS[stage]
    assert environments == {name: f"aws://{account}/{REGION}" for name, account in expected.items()}
    assert len({env.split("/")[2] for env in environments.values()}) == 3


def test_the_synth_summary_names_each_stacks_account_and_region(multi_account, example):
    manifest = json.loads((multi_account.outdir / "manifest.json").read_text())
    assert stack_environment(manifest["artifacts"]["mlp-production-team-fraud"]) == f"{PRODUCTION}/{REGION}"
    assert stack_environment(manifest["artifacts"]["mlp-team-churn"]) == f"{DEVELOPMENT}/{REGION}"
    unpinned = json.loads((example.outdir / "manifest.json").read_text())
    assert stack_environment(unpinned["artifacts"]["mlp-platform"]) == "any/any"


def test_each_team_serving_in_a_stage_has_a_stack_in_that_stage_only(multi_account):
    assert set(multi_account.platform.stage_teams) == SERVING
    assert set(multi_account.platform.stages) == set(STAGE_ACCOUNTS)
    assert "mlp-production-team-churn" not in multi_account.templates


def test_stage_templates_hold_no_studio_registry_or_pipeline_resource(multi_account, example):
    stage_stacks = [name for name in multi_account.templates if name.startswith(("mlp-staging-", "mlp-production-"))]
    assert len(stage_stacks) == 5
    for name in stage_stacks:
        assert _resources(multi_account.template(name), *BUILDING_TYPES) == {}, name
        stage = name.split("-")[1]
        imports = _imports(multi_account.template(name))
        assert all(i.startswith(f"mlp-{stage}-platform:") for i in imports), f"{name} imports {imports}"
        assert bool(imports) == ("-team-" in name)
    # The control: the development account's stacks hold every kind of building resource above but two.
    development = {r["Type"] for t in example.templates.values() for r in t["Resources"].values()}
    assert len(set(BUILDING_TYPES) & development) >= len(BUILDING_TYPES) - 2


@pytest.mark.parametrize("team", ["fraud", "churn"])
def test_the_development_stack_of_a_staged_team_holds_no_endpoint_resources(multi_account, example, team):
    template = multi_account.template(f"mlp-team-{team}")
    assert _endpoint_resources(template) == []
    assert _resources(template, "AWS::SageMaker::ModelPackageGroup", "AWS::SageMaker::Pipeline",
                      "AWS::SageMaker::MlflowApp", "AWS::SageMaker::UserProfile")
    assert "ModelExecutionRoleArn" not in template.get("Outputs", {})
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "AWS/Sagemaker/ModelBuildingPipeline" in body and "ExecutionFailed" in body
    # The control: without stages the same team's stack holds them all.
    assert len(_endpoint_resources(example.template(f"mlp-team-{team}"))) >= 8


@pytest.mark.parametrize(("stage", "team"), sorted(SERVING))
def test_a_stage_team_stack_holds_the_teams_serving_side(multi_account, stage, team):
    template = multi_account.template(stage_team_stack_name(multi_account.platform.platform.config, stage, team))
    handlers = sorted(r["Properties"]["Handler"] for r in _resources(template, "AWS::Lambda::Function").values()
                      if r["Properties"].get("Handler") in SERVING_HANDLERS)
    assert handlers == sorted(SERVING_HANDLERS)
    assert len(_resources(template, "AWS::SQS::Queue")) == 3
    assert len(_resources(template, "AWS::CloudWatch::Dashboard")) == 1
    (role,) = [k for k in _resources(template, "AWS::IAM::Role") if k.startswith("ModelExecutionRole")]
    (bucket,) = _resources(template, "AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"] == f"mlp-{stage}-team-{team}/"
    sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "Fn::ImportValue" in json.dumps(sse), "the capture bucket is encrypted with the stage's platform key"
    assert role in json.dumps(template["Outputs"]["ModelExecutionRoleArn"])


def _deploy_function(template: dict) -> dict:
    (function,) = [r for r in _resources(template, "AWS::Lambda::Function").values()
                   if r["Properties"].get("Handler") == SERVING_HANDLERS[0]]
    return function


def test_the_deploy_automation_of_a_stage_reads_the_development_registry(multi_account, example):
    template = multi_account.template("mlp-staging-team-fraud")
    registry = [r for _, _, s in policy_checks.policy_statements({"t": template})
                for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
                if "model-package" in json.dumps(r)]
    assert registry, "no registry statement found"
    rendered = json.dumps(registry)
    assert f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/mlp-fraud-fraud-detection" in rendered
    assert f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package/mlp-fraud-fraud-detection/*" in rendered
    assert STAGING not in rendered and "AWS::AccountId" not in rendered
    # The control: without stages the registry is the stack's own account.
    own = [r for _, _, s in policy_checks.policy_statements({"t": example.template("mlp-team-fraud")})
           for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
           if "model-package-group/mlp-fraud" in json.dumps(r)]
    assert own and all("AWS::AccountId" in json.dumps(r) for r in own)


def test_endpoints_in_a_stage_run_as_the_stages_role_and_capture_into_its_bucket(multi_account):
    stack = multi_account.platform.stage_teams[("production", "fraud")]
    template = multi_account.template("mlp-production-team-fraud")
    environment = _deploy_function(template)["Properties"]["Environment"]["Variables"]
    role = stack.get_logical_id(stack.model_execution_role.node.default_child)
    bucket = stack.get_logical_id(stack.capture_bucket.node.default_child)
    assert environment["MODEL_EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": [role, "Arn"]}
    assert bucket in json.dumps(environment["DATA_CAPTURE_S3_URI"])


def test_a_stage_model_execution_role_writes_only_its_capture_and_reads_only_the_development_accounts_models(
        multi_account):
    stack = multi_account.platform.stage_teams[("staging", "churn")]
    template = multi_account.template("mlp-staging-team-churn")
    role = stack.get_logical_id(stack.model_execution_role.node.default_child)
    bucket = stack.get_logical_id(stack.capture_bucket.node.default_child)
    s3 = []
    for resource in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} not in resource["Properties"].get("Roles", []):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            s3 += [(a, json.dumps(statement["Resource"]), statement.get("Condition")) for a in actions
                   if a.startswith("s3:")]
    assert [a for a, _, _ in s3] == ["s3:PutObject", "s3:GetObject"]
    assert bucket in s3[0][1] and "/data-capture/*" in s3[0][1]
    # it reads only the registered models of a bucket of the development account
    assert s3[1][2] == {"StringEquals": {"s3:ResourceAccount": DEVELOPMENT}}
    assert sorted(json.loads(s3[1][1])) == sorted(f"arn:aws:s3:::*/{pattern}" for pattern in ARTIFACT_KEY_PATTERNS)


def test_the_capture_bucket_denies_its_data_to_all_but_the_endpoints_role(multi_account):
    stack = multi_account.platform.stage_teams[("staging", "fraud")]
    template = multi_account.template("mlp-staging-team-fraud")
    role = stack.get_logical_id(stack.model_execution_role.node.default_child)
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
               if s.get("Sid") == "CaptureOnlyForTheTeamsEndpoints"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [{"Fn::GetAtt": [role, "Arn"]}]
    assert "s3:GetObject*" in deny["Action"] and "s3:PutObject*" in deny["Action"]


def _key_statements(template: dict) -> list[dict]:
    (key,) = _resources(template, "AWS::KMS::Key").values()
    return key["Properties"]["KeyPolicy"]["Statement"]


def test_a_stage_platform_key_has_the_development_keys_service_statements(multi_account):
    development = json.dumps([s for s in _key_statements(multi_account.template("mlp-platform"))
                              if s.get("Sid") != "StageModelRolesDecryptRegisteredModelsThroughS3"])
    for stage, account in STAGE_ACCOUNTS.items():
        statements = json.dumps(_key_statements(multi_account.template(f"mlp-{stage}-platform")))
        assert statements == development.replace(DEVELOPMENT, account), stage
        assert DEVELOPMENT not in statements


def _reaper_environment(template: dict) -> dict:
    (function,) = [r for r in _resources(template, "AWS::Lambda::Function").values()
                   if "idle_endpoint_reaper" in r["Properties"].get("Handler", "")]
    return function["Properties"]["Environment"]["Variables"]


def test_each_stage_has_its_reaper_with_the_stages_settings(multi_account):
    config = load_config(MULTI_ACCOUNT_CONFIG)
    staging = _reaper_environment(multi_account.template(stage_platform_stack_name(config, "staging")))
    production = _reaper_environment(multi_account.template(stage_platform_stack_name(config, "production")))
    development = _reaper_environment(multi_account.template("mlp-platform"))
    assert staging[reaper_settings.ENV_IDLE_WINDOW_HOURS] == development[reaper_settings.ENV_IDLE_WINDOW_HOURS] == "24"
    assert production[reaper_settings.ENV_IDLE_WINDOW_HOURS] == "168"
    assert production[reaper_settings.ENV_DRY_RUN] == "true"


def test_a_stages_reaper_knows_the_overrides_of_the_teams_serving_there_only():
    data = yaml.safe_load(MULTI_ACCOUNT_CONFIG.read_text())
    data["teams"][0]["reaper"] = {"grace_period_hours": 48}  # fraud: staging and production
    data["teams"][1]["reaper"] = {"exempt": True}  # churn: staging only
    config = parse_config(data)
    overrides = {}
    for stage in config.stages:
        stack = StagePlatformStack(cdk.App(context=cdk_context()), f"t-{stage.name}", config=config, stage=stage,
                                   env=cdk.Environment(account=stage.account, region=stage.region))
        environment = _reaper_environment(Template.from_stack(stack).to_json())
        overrides[stage.name] = json.loads(environment[reaper_settings.ENV_TEAM_OVERRIDES])
    assert overrides == {"staging": {"fraud": {"grace_period_hours": 48}, "churn": {"exempt": True}},
                         "production": {"fraud": {"grace_period_hours": 48}}}


def test_stage_stacks_carry_the_stage_team_and_cost_center_tags(multi_account):
    template = multi_account.template("mlp-production-team-fraud")
    (bucket,) = _resources(template, "AWS::S3::Bucket").values()
    found = {t["Key"]: t["Value"] for t in bucket["Properties"]["Tags"]}
    assert found[tags.STAGE] == "production" and found[tags.TEAM] == "fraud"
    assert found[tags.COST_CENTER] == "CC-1001" and found[tags.PLATFORM] == "mlp"
    (key,) = _resources(multi_account.template("mlp-staging-platform"), "AWS::KMS::Key").values()
    assert {t["Key"]: t["Value"] for t in key["Properties"]["Tags"]}[tags.STAGE] == "staging"


def _team_resource_arns(team: str, account: str) -> list[str]:
    base = f"arn:aws:sagemaker:{REGION}:{account}"
    group = {"fraud": "mlp-fraud-fraud-detection", "churn": "mlp-churn-churn-propensity"}[team]
    return [
        f"{base}:endpoint/{group}",
        f"{base}:endpoint-config/{group}-v1-abc",
        f"{base}:model/{group}-v1",
        f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/{group}",
        f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package/{group}/1",
        f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{group}-model-latency",
    ]


def _allowed_patterns(multi_account, stack: str) -> list[str]:
    """The resources every Allow statement of `stack` names, resolved as deployed in the stack's account."""
    config = load_config(MULTI_ACCOUNT_CONFIG)
    world = World(multi_account.templates, account=config.account, region=config.region,
                  environments=stage_environments(config))
    patterns = []
    for _, _, statement in policy_checks.policy_statements({stack: multi_account.template(stack)}):
        if statement.get("Effect") == "Allow":
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            patterns += [str(world.resolve(stack, resource)) for resource in resources]
    return patterns


@pytest.mark.parametrize(("owner", "other"), [("fraud", "churn"), ("churn", "fraud")])
def test_a_stage_team_stack_grants_nothing_on_another_teams_resources(multi_account, owner, other):
    patterns = [p for p in _allowed_patterns(multi_account, f"mlp-staging-team-{owner}") if p != "*"]
    assert patterns
    for arn in _team_resource_arns(other, STAGING):
        assert not [p for p in patterns if fnmatch.fnmatchcase(arn, p)], arn
    own = _team_resource_arns(owner, STAGING)
    assert all(any(fnmatch.fnmatchcase(arn, p) for p in patterns) for arn in own), "own resources unreachable"


def test_selecting_a_team_builds_its_stage_stacks_and_every_stage_platform(tmp_path):
    selected = synthesize(load_config(MULTI_ACCOUNT_CONFIG), tmp_path, policy_gates=False, teams=["churn"])
    assert set(selected.templates) == {"mlp-network", "mlp-platform", "mlp-team-churn", "mlp-staging-platform",
                                       "mlp-production-platform", "mlp-staging-team-churn"}


def test_every_log_group_and_function_of_a_stage_uses_that_stages_key_and_may_decrypt(multi_account):
    config = load_config(MULTI_ACCOUNT_CONFIG)
    world = World(multi_account.templates, account=config.account, region=config.region,
                  environments=stage_environments(config))
    keys = {}
    for stage in config.stages:
        platform = multi_account.platform.stages[stage.name]
        keys[stage.name] = world.arn(platform.stack_name, platform.get_logical_id(platform.key.node.default_child))
        assert keys[stage.name].split(":")[4] == stage.account
    checked = 0
    for kind, key_property in (("AWS::Logs::LogGroup", "KmsKeyId"), ("AWS::Lambda::Function", "KmsKeyArn")):
        for resource in world.resources(kind):
            stage = resource.stack.split("-")[1]
            if stage not in keys:
                continue
            assert world.resolve(resource.stack, resource.properties[key_property]) == keys[stage], resource
            checked += 1
            if kind != "AWS::Lambda::Function":
                continue
            role = world.function_role(resource.stack, resource.logical_id)
            request = Request("kms:Decrypt", keys[stage], principal_arn=world.role_arn(resource.stack, role))
            decision = evaluate_access(world.role_statements(resource.stack, role),
                                       world.resource_statements(keys[stage]), request, key_policy=True)
            assert decision.allowed, f"{resource.stack}/{resource.logical_id}: {decision.explain()}"
    assert checked >= 2 * 2 + 3 * 4
