"""The grants that connect the development account to the stage accounts, as the templates of
config/multi-account.yaml carry them (`stacks.cross_account`): who each names, on what, and that a team
without stages gets none of them."""

from __future__ import annotations

import fnmatch
import json

import pytest

from stacks import cross_account
from stacks.app_builder import stage_environments
from stacks.config import load_config
from stacks.constructs.deploy_on_approval import MODEL_PACKAGE_STATE_CHANGE
from tests.conftest import MULTI_ACCOUNT_CONFIG

DEVELOPMENT, STAGING, PRODUCTION, REGION = "111111111111", "222222222222", "333333333333", "eu-west-1"
# fraud serves in staging and production, churn in staging only (config/multi-account.yaml)
TEAM_STAGES = {"fraud": {"staging": STAGING, "production": PRODUCTION}, "churn": {"staging": STAGING}}
GROUPS = {"fraud": "mlp-fraud-fraud-detection", "churn": "mlp-churn-churn-propensity"}


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _role_arns(team: str, purpose: str) -> list[str]:
    return [f"arn:aws:iam::{account}:role/mlp-{stage}-{team}-{purpose}" for stage, account in TEAM_STAGES[team].items()]


def _roots(team: str) -> list[str]:
    return [f"arn:aws:iam::{account}:root" for account in TEAM_STAGES[team].values()]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_role_names_are_fixed_readable_and_short_enough_for_iam():
    assert cross_account.role_name("mlp", "staging", "fraud", cross_account.DEPLOY_ROLE) == "mlp-staging-fraud-deploy"
    long = cross_account.role_name("p" * 20, "s" * 16, "t" * 40, cross_account.MODEL_EXECUTION_ROLE)
    assert len(long) <= 64 and long != cross_account.role_name("p" * 20, "s" * 16, "t" * 41,
                                                               cross_account.MODEL_EXECUTION_ROLE)
    assert cross_account.forward_role_name("mlp", "fraud") == "mlp-fraud-forward-registry-events"


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
def test_the_group_policy_lets_only_the_teams_stage_deploy_roles_read_it_and_create_models(multi_account, team):
    (group,) = _resources(multi_account.template(f"mlp-team-{team}"), "AWS::SageMaker::ModelPackageGroup").values()
    policy = group["Properties"]["ModelPackageGroupPolicy"]
    assert group["DeletionPolicy"] == "Retain"
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"StageDeployRolesDescribeTheGroup", "StageDeployRolesDeployItsVersions"}
    group_arn = f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/{GROUPS[team]}"
    describe, deploy = by_sid["StageDeployRolesDescribeTheGroup"], by_sid["StageDeployRolesDeployItsVersions"]
    assert describe["Resource"] == group_arn
    assert sorted(describe["Action"]) == ["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"]
    assert deploy["Resource"] == f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package/{GROUPS[team]}/*"
    assert sorted(deploy["Action"]) == ["sagemaker:CreateModel", "sagemaker:DescribeModelPackage",
                                        "sagemaker:ListModelPackages"]
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert sorted(_as_list(statement["Principal"]["AWS"])) == sorted(_roots(team))
        assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": _role_arns(team, "deploy")}}
        # nothing that writes the registry
        assert not any(a.startswith(("sagemaker:Update", "sagemaker:Delete", "sagemaker:Put", "sagemaker:CreateModelP"))
                       for a in statement["Action"])


def test_a_team_without_stages_shares_nothing(example):
    for name, template in example.templates.items():
        for group in _resources(template, "AWS::SageMaker::ModelPackageGroup").values():
            assert "ModelPackageGroupPolicy" not in group["Properties"], name
        text = json.dumps(template)
        assert "StageModelRoles" not in text and "ForwardRegistryEvents" not in text, name


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
def test_the_team_bucket_admits_the_stage_model_roles_to_the_registered_models_only(multi_account, team):
    template = multi_account.template(f"mlp-team-{team}")
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    read = statements["StageModelRolesReadRegisteredModels"]
    assert read["Effect"] == "Allow" and read["Action"] == "s3:GetObject"
    assert sorted(_as_list(read["Principal"]["AWS"])) == sorted(_roots(team))
    assert read["Condition"] == {"ArnEquals": {"aws:PrincipalArn": _role_arns(team, "model-execution")}}
    keys = sorted(json.dumps(r) for r in read["Resource"])
    assert len(keys) == len(cross_account.ARTIFACT_KEY_PATTERNS)
    assert all(any(f"/{p}" in k for k in keys) for p in cross_account.ARTIFACT_KEY_PATTERNS)
    # the bucket's deny of data to all other principals lets the stage roles through
    deny = statements["DataOnlyForTheTeamsRoles"]
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert all(arn in allowed for arn in _role_arns(team, "model-execution"))


def test_the_development_key_lets_every_stage_model_role_decrypt_through_s3_only(multi_account):
    (key,) = _resources(multi_account.template("mlp-platform"), "AWS::KMS::Key").values()
    (statement,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                    if s.get("Sid") == "StageModelRolesDecryptRegisteredModelsThroughS3"]
    assert statement["Action"] == "kms:Decrypt"
    assert sorted(statement["Principal"]["AWS"]) == sorted(f"arn:aws:iam::{a}:root" for a in (STAGING, PRODUCTION))
    # one pattern per stage: the key policy does not grow with the teams (the team buckets name each role)
    assert sorted(statement["Condition"]["ArnLike"]["aws:PrincipalArn"]) == [
        f"arn:aws:iam::{STAGING}:role/mlp-staging-*-model-execution",
        f"arn:aws:iam::{PRODUCTION}:role/mlp-production-*-model-execution"]
    for role in (arn for team in TEAM_STAGES for arn in _role_arns(team, "model-execution")):
        assert any(fnmatch.fnmatchcase(role, p) for p in statement["Condition"]["ArnLike"]["aws:PrincipalArn"]), role
    assert statement["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}


@pytest.mark.parametrize("team", sorted(TEAM_STAGES))
def test_each_staged_group_has_a_rule_forwarding_its_events_to_the_teams_stage_buses(multi_account, team):
    template = multi_account.template(f"mlp-team-{team}")
    rules = {k: r for k, r in _resources(template, "AWS::Events::Rule").items() if k.startswith("ForwardRegistryEvents")}
    (rule,) = rules.values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"], "detail-type": [MODEL_PACKAGE_STATE_CHANGE], "account": [DEVELOPMENT],
        "detail": {"ModelPackageGroupName": [GROUPS[team]]}}
    buses = sorted(t["Arn"] for t in rule["Properties"]["Targets"])
    assert buses == sorted(f"arn:aws:events:{REGION}:{a}:event-bus/default" for a in TEAM_STAGES[team].values())
    (role_id,) = {t["RoleArn"]["Fn::GetAtt"][0] for t in rule["Properties"]["Targets"]}
    role = template["Resources"][role_id]
    assert role["Properties"]["RoleName"] == f"mlp-{team}-forward-registry-events"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": DEVELOPMENT}}
    statements = [s for p in _resources(template, "AWS::IAM::Policy").values()
                  if {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert {a for s in statements for a in _as_list(s["Action"])} == {"events:PutEvents"}
    assert sorted(r for s in statements for r in _as_list(s["Resource"])) == buses
    # undeliverable events are kept and alarmed
    dead_letters = {t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for t in rule["Properties"]["Targets"]}
    assert len(dead_letters) == 1
    (alarm,) = [a for a in _resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"]["AlarmName"] == f"mlp-{team}-registry-events-not-forwarded"]
    assert alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] in dead_letters


@pytest.mark.parametrize(("stage", "teams"), [("staging", ["fraud", "churn"]), ("production", ["fraud"])])
def test_a_stage_bus_admits_only_the_development_accounts_forwarders_and_their_events(multi_account, stage, teams):
    (policy,) = _resources(multi_account.template(f"mlp-{stage}-platform"), "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert policy["Properties"]["EventBusName"] == "default"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{DEVELOPMENT}:root"}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == f"arn:aws:events:{REGION}:{TEAM_STAGES['fraud'][stage]}:event-bus/default"
    assert statement["Condition"] == {
        "StringEquals": {"events:source": "aws.sagemaker", "events:detail-type": MODEL_PACKAGE_STATE_CHANGE},
        "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{DEVELOPMENT}:role/mlp-*-forward-registry-events"},
    }
    # the pattern takes the forwarding role of each team serving in the stage
    for team in teams:
        assert fnmatch.fnmatchcase(f"arn:aws:iam::{DEVELOPMENT}:role/{cross_account.forward_role_name('mlp', team)}",
                                   statement["Condition"]["ArnLike"]["aws:PrincipalArn"])


@pytest.mark.parametrize(("stage", "team"), [("staging", "fraud"), ("staging", "churn"), ("production", "fraud")])
def test_a_stage_deploy_function_serves_from_the_development_registry(multi_account, stage, team):
    stack = multi_account.platform.stage_teams[(stage, team)]
    template = multi_account.template(f"mlp-{stage}-team-{team}")
    deploy = stack.deploy_on_approval
    role = template["Resources"][stack.get_logical_id(deploy.deploy_function.role.node.default_child)]
    assert role["Properties"]["RoleName"] == f"mlp-{stage}-{team}-deploy"
    model_role = template["Resources"][stack.get_logical_id(stack.model_execution_role.node.default_child)]
    assert model_role["Properties"]["RoleName"] == f"mlp-{stage}-{team}-model-execution"
    function = template["Resources"][stack.get_logical_id(deploy.deploy_function.node.default_child)]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["MODEL_PACKAGE_GROUP_ARN_PREFIX"] == f"arn:aws:sagemaker:{REGION}:{DEVELOPMENT}:model-package-group/"
    (rule,) = [r for k, r in _resources(template, "AWS::Events::Rule").items() if k.startswith("DeployOnApprovalApprovals")]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["account"] == [DEVELOPMENT] and pattern["detail"]["ModelPackageGroupName"] == [GROUPS[team]]


def test_no_cross_account_statement_admits_everyone(multi_account):
    """Every Allow that names another account's principal names accounts (never ``*``) and matches role ARNs."""
    config = load_config(MULTI_ACCOUNT_CONFIG)
    accounts = {config.account, *(s.account for s in config.stages)}
    environments = stage_environments(config)
    found = 0
    for name, template in multi_account.templates.items():
        own = environments.get(name, (config.account, config.region))[0]
        for resource in template["Resources"].values():
            properties = resource.get("Properties", {})
            documents = [properties.get(k) for k in ("PolicyDocument", "KeyPolicy", "ModelPackageGroupPolicy")]
            documents.append({"Statement": [properties["Statement"]]} if "Statement" in properties else None)
            for document in filter(None, documents):
                for statement in _as_list(document.get("Statement", [])):
                    principals = statement.get("Principal")
                    if statement.get("Effect") != "Allow" or not isinstance(principals, dict) or "AWS" not in principals:
                        continue
                    names = [json.dumps(p) for p in _as_list(principals["AWS"])]
                    assert "*" not in [json.loads(n) for n in names if n.startswith('"')], (name, statement)
                    foreign = [n for n in names if any(a in n for a in accounts - {own})]
                    if foreign:
                        found += 1
                        assert "aws:PrincipalArn" in json.dumps(statement.get("Condition", {})), (name, statement)
    assert found >= 6  # two groups (two statements each), two bucket statements, the key, two buses


def test_the_key_and_bus_policies_do_not_grow_with_the_teams(multi_account, tmp_path_factory):
    """A key policy holds at most 32 KB and a bus policy 10 KB: with 60 teams serving in every stage they are what
    they are with the example's two teams; the per-team grants live in each team's own group and bucket policies."""
    import yaml

    from stacks.config import parse_config
    from tests.conftest import synthesize

    data = yaml.safe_load(MULTI_ACCOUNT_CONFIG.read_text())
    fraud = next(t for t in data["teams"] if t["name"] == "fraud")
    data["teams"] = [{**fraud, "name": f"team{i}", "users": []} for i in range(60)]
    data["studio"]["default_mlflow_team"] = "team0"
    many = synthesize(parse_config(data), tmp_path_factory.mktemp("many-staged-teams"), policy_gates=False,
                      teams=["team0"])

    def key_statements(templates):
        (key,) = _resources(templates["mlp-platform"], "AWS::KMS::Key").values()
        return [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                if s.get("Sid") == "StageModelRolesDecryptRegisteredModelsThroughS3"]

    def bus_statement(templates, stage):
        (policy,) = _resources(templates[f"mlp-{stage}-platform"], "AWS::Events::EventBusPolicy").values()
        return policy["Properties"]["Statement"]

    assert len(key_statements(many.templates)) == 1
    assert key_statements(many.templates) == key_statements(multi_account.templates)
    for stage in ("staging", "production"):
        assert bus_statement(many.templates, stage) == bus_statement(multi_account.templates, stage)
