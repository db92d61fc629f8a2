"""Team isolation, evaluated the way IAM does: no role of one team can act on another team's resources.

A generated platform of teams whose names share prefixes (``fraud``, ``fraudx``, ``f0``) is synthesized
once and resolved for one account. For every ordered pair of teams (A, B), every IAM role of A's stack,
every resource of B (its bucket and objects, registry group and versions, endpoint, endpoint config,
model, pipeline and executions, its endpoint monitoring pipeline, schedule group and schedule, its budget and
dashboard, jobs named with its prefix, jobs and models SageMaker Pipelines names
``pipelines-...`` but tags with B's team, Clarify shadow endpoints, Studio profiles, spaces and apps,
experiments, its MLflow App, its topic, queues, alarms, functions, log groups and roles) and every action the Service
Authorization Reference authorizes on that resource type is evaluated with B's tags as resource tags,
once without request tags and once tagging for A (A's ownership tags) (except creating a ``pipelines-...`` name tagged for
A, which makes A's own job): each must be denied, by A's identity policies or by
B's resource policy (its scalable target with the namespace and dimension of an endpoint variant).
Actions the reference authorizes only on ``*`` (List*, Search...) name no resource
and cannot be scoped; ``docs/permissions.md`` lists who holds them.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdas.common import naming, tags
from stacks.config import parse_config
from tests.conftest import synthesize
from tools.iam.evaluate import Request, evaluate, evaluate_access
from tools.iam.reference import action_facts, actions_on_resource_type, resource_type_of
from tools.iam.template import World

ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX = "iso"
TEAMS = ("fraud", "fraudx", "f0")
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/PlatformAdmin"
CONFIG = {
    "prefix": PREFIX,
    "account": ACCOUNT,
    "region": REGION,
    "break_glass_role_arns": [BREAK_GLASS],
    "teams": [
        {
            "name": name,
            "cost_center": f"CC-{i}",
            "users": ["alice", "bob"],
            "budget": {"monthly_usd": 100},
            "use_cases": [
                {"name": "detect", "endpoint": {"data_capture": {"enabled": True}, "monitoring": {"enabled": True},
                                                "autoscaling": {"enabled": True, "max_instances": 3}}},
                {"name": "score-v2"},
            ],
        }
        for i, name in enumerate(TEAMS)
    ],
}


# What a request on an endpoint variant's scalable target carries (absent where the reference does not list it).
SCALING_CONTEXT = {"application-autoscaling:service-namespace": "sagemaker",
                   "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount"}


@dataclass(frozen=True)
class Target:
    """A resource of one team: its ARN, the tags it carries, and its service's IAM prefix."""

    arn: str
    tags: tuple[tuple[str, str], ...]
    named_by_sagemaker: bool = False

    @property
    def service(self) -> str:
        return self.arn.split(":")[2]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    result = synthesize(parse_config(CONFIG), tmp_path_factory.mktemp("isolation"), policy_gates=False)
    return World(result.templates, account=ACCOUNT, region=REGION)


def stack_of(team: str) -> str:
    return f"{PREFIX}-team-{team}"


def team_roles(world: World, team: str) -> list[str]:
    return sorted(r.logical_id for r in world.resources("AWS::IAM::Role") if r.stack == stack_of(team))


def targets_of(world: World, team: str) -> list[Target]:
    """Every resource of `team` that another team must not touch, as deployed and as made at run time."""
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    own = naming.team_resource_prefix(PREFIX, team)
    team_tags = ((tags.TEAM, team), (tags.PLATFORM, PREFIX))
    managed = team_tags + ((tags.MANAGED_BY, tags.MANAGED_BY_VALUE),)
    stack = stack_of(team)
    domain = world.resolve(stack, world.resource(stack, next(
        r.logical_id for r in world.resources("AWS::SageMaker::UserProfile") if r.stack == stack
    )).properties["DomainId"])
    found = []
    for use_case in ("detect", "score-v2"):
        group = naming.model_package_group_name(PREFIX, team, use_case)
        endpoint = naming.endpoint_name(PREFIX, team, use_case)
        found += [
            Target(f"{sm}:model-package-group/{group}", team_tags),
            Target(f"{sm}:model-package/{group}/3", team_tags),
            Target(f"{sm}:endpoint/{endpoint}", managed),
            Target(f"{sm}:endpoint-config/{naming.endpoint_config_name(PREFIX, team, use_case, 3, 'abc123')}", managed),
            Target(f"{sm}:model/{naming.model_name(PREFIX, team, use_case, 3)}", managed),
            Target(f"{sm}:pipeline/{group}", team_tags),
            Target(f"{sm}:pipeline/{group}/execution/abc123def456", team_tags),
        ]
    monitored = naming.monitoring_pipeline_name(PREFIX, team, "detect")
    group = naming.monitoring_schedule_group(PREFIX, team, "detect")
    scheduler = f"arn:aws:scheduler:{REGION}:{ACCOUNT}"
    found += [
        Target(f"{sm}:pipeline/{monitored}", team_tags),
        Target(f"{sm}:pipeline/{monitored}/execution/abc123def456", team_tags),
        Target(f"{scheduler}:schedule-group/{group}", team_tags),
        Target(f"{scheduler}:schedule/{group}/{naming.MONITORING_SCHEDULE_NAME}", ()),
        Target(f"{sm}:processing-job/pipelines-abc123def456-MonitorEndpoint-x1y2z3", team_tags,
               named_by_sagemaker=True),
        Target(f"arn:aws:budgets::{ACCOUNT}:budget/{PREFIX}-{team}", team_tags),
        Target(f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{PREFIX}-{team}", ()),
        # the endpoint's scalable target, registered by the team's verifier with the ownership tags; its ARN
        # ends in an id Application Auto Scaling makes, so only the tags tell whose it is
        Target(f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/"
               f"{hashlib.md5(team.encode()).hexdigest()}", managed),
    ]
    for kind in ("training-job", "processing-job", "transform-job", "automl-job", "hyper-parameter-tuning-job"):
        found.append(Target(f"{sm}:{kind}/{own}manual-1", team_tags))
        found.append(Target(f"{sm}:{kind}/pipelines-abc123def456-Step-x1y2z3", team_tags, named_by_sagemaker=True))
    found += [
        Target(f"{sm}:model/pipelines-abc123def456-AutoMLModel-x1y2z3", team_tags, named_by_sagemaker=True),
        Target(f"{sm}:endpoint/{own}1a2b3c4d5e6f", ()),
        Target(f"{sm}:endpoint-config/{own}1a2b3c4d5e6f", ()),
        Target(f"{sm}:experiment/{own}study", team_tags),
        Target(f"{sm}:experiment-trial/{own}trial", team_tags),
        Target(f"{sm}:user-profile/{domain}/{team}-alice", team_tags),
        Target(f"{sm}:space/{domain}/{team}-alice-space", team_tags),
        Target(f"{sm}:app/{domain}/{team}-alice/jupyterlab/default", team_tags),
    ]
    for resource in world.resources():
        if resource.stack != stack:
            continue
        if resource.type == "AWS::S3::Bucket":
            bucket = world.arn(stack, resource.logical_id)
            found += [Target(bucket, team_tags), Target(f"{bucket}/pipeline/runs/abc/model.tar.gz", team_tags)]
        elif resource.type == "AWS::SageMaker::MlflowApp":
            found.append(Target(world.arn(stack, resource.logical_id), team_tags))
        elif resource.type in ("AWS::SNS::Topic", "AWS::SQS::Queue", "AWS::CloudWatch::Alarm", "AWS::Lambda::Function",
                               "AWS::IAM::Role", "AWS::Logs::LogGroup"):
            found.append(Target(world.arn(stack, resource.logical_id), team_tags))
    return found


def tagging_for(team: str) -> dict:
    """The request tags a role of `team` puts on what it makes: the team's and the platform's ownership tags."""
    request_tags = {tags.TEAM: team, tags.PLATFORM: PREFIX, tags.MANAGED_BY: tags.MANAGED_BY_VALUE}
    return {**{f"aws:RequestTag/{k}": v for k, v in request_tags.items()}, "aws:TagKeys": sorted(request_tags)}


def denied_or_leak(world: World, owner: str, other: str) -> list[str]:
    leaks = []
    targets = targets_of(world, other)
    roles = team_roles(world, owner)
    assert len(roles) >= 8, roles
    checked = 0
    for role in roles:
        identity = world.role_statements(stack_of(owner), role)
        principal = world.role_arn(stack_of(owner), role)
        for target in targets:
            resource_type = resource_type_of(target.service, target.arn)
            assert resource_type, f"no resource type of the reference matches {target.arn}"
            resource_policy = world.resource_statements(target.arn)
            for facts in actions_on_resource_type(target.service, resource_type):
                if facts.authorized_on_star:
                    continue
                resource_tags = {f"aws:ResourceTag/{k}": v for k, v in target.tags}
                for request_tags in ({}, tagging_for(owner)):
                    if request_tags and target.named_by_sagemaker and facts.action.split(":")[1].startswith("Create"):
                        # A new `pipelines-...` job tagged for the asking team is that team's own job: a
                        # name SageMaker makes is never another team's resource until it exists.
                        continue
                    context = {**resource_tags, **request_tags, **SCALING_CONTEXT,
                               "iam:PassedToService": "sagemaker.amazonaws.com"}
                    request = Request(facts.action, target.arn, context, principal_arn=principal)
                    decision = evaluate_access(identity, resource_policy, request)
                    checked += 1
                    if decision.allowed:
                        leaks.append(f"{owner}/{role}: {facts.action} on {target.arn} ({decision.explain()})")
    assert checked > 1000
    return sorted(set(leaks))


@pytest.mark.parametrize("owner,other", list(itertools.permutations(TEAMS, 2)))
def test_no_role_of_a_team_can_act_on_another_teams_resources(world, owner, other):
    assert denied_or_leak(world, owner, other) == []


def test_the_check_sees_a_leak(world):
    """Widen one statement of fraudx's execution role to every team's endpoints: the check names the leak."""
    stack = stack_of("fraudx")
    template = world.templates[stack]
    leaky = {name: dict(body) for name, body in template["Resources"].items()}
    role = next(r for r in team_roles(world, "fraudx") if r.startswith("ExecutionRole"))
    leaky["LeakyPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "leak",
            "Roles": [{"Ref": role}],
            "PolicyDocument": {
                "Statement": [{"Effect": "Allow", "Action": "sagemaker:DeleteEndpoint",
                               "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{PREFIX}-fraud*"}]
            },
        },
    }
    mutated = World({**world.templates, stack: {**template, "Resources": leaky}}, account=ACCOUNT, region=REGION)
    leaks = denied_or_leak(mutated, "fraudx", "fraud")
    assert any("sagemaker:DeleteEndpoint on" in leak and f"endpoint/{PREFIX}-fraud-detect" in leak for leak in leaks)


def test_the_check_covers_tag_scoped_pipeline_jobs(world):
    """Without B's team tag, a `pipelines-...` job of B would be open to A: the tag condition is what denies it."""
    stack = stack_of("fraud")
    role = next(r for r in team_roles(world, "fraud") if r.startswith("ExecutionRole"))
    identity = world.role_statements(stack, role)
    job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc123def456-Step-x1y2z3"
    ask = "sagemaker:DescribeProcessingJob"
    assert not action_facts(ask).authorized_on_star
    own = Request(ask, job, {f"aws:ResourceTag/{tags.TEAM}": "fraud"})
    other = Request(ask, job, {f"aws:ResourceTag/{tags.TEAM}": "fraudx"})
    assert evaluate_access(identity, [], own).allowed
    assert not evaluate_access(identity, [], other).allowed


def _mlflow_app(world: World, team: str) -> str:
    stack = stack_of(team)
    (app,) = [r for r in world.resources("AWS::SageMaker::MlflowApp") if r.stack == stack]
    return world.arn(stack, app.logical_id)


def _execution_role(world: World, team: str) -> str:
    return next(r for r in team_roles(world, team) if r.startswith("ExecutionRole"))


MLFLOW_USE = ("sagemaker:CallMlflowAppApi", "sagemaker:DescribeMlflowApp", "sagemaker:CreatePresignedMlflowAppUrl")


@pytest.mark.parametrize("owner,other", list(itertools.permutations(TEAMS, 2)))
def test_team_roles_use_their_own_mlflow_app_and_not_anothers(world, owner, other):
    """Pipeline steps and Studio users (the team's execution role) call MLflow on their App, never on another's."""
    stack = stack_of(owner)
    role = _execution_role(world, owner)
    identity = world.role_statements(stack, role)
    principal = world.role_arn(stack, role)
    own, foreign = _mlflow_app(world, owner), _mlflow_app(world, other)
    assert own != foreign
    for action in MLFLOW_USE:
        assert not action_facts(action).authorized_on_star
        allowed = evaluate_access(identity, [], Request(action, own, principal_arn=principal))
        assert allowed.allowed, (action, allowed.explain())
        denied = evaluate_access(identity, [], Request(action, foreign, principal_arn=principal))
        assert not denied.allowed, (action, denied.explain())
    for action in ("sagemaker:UpdateMlflowApp", "sagemaker:DeleteMlflowApp"):
        assert not evaluate_access(identity, [], Request(action, own, principal_arn=principal)).allowed, action


def test_mlflow_app_role_reaches_only_mlflow_artifacts_of_its_team(world):
    stack = stack_of("fraud")
    role = next(r for r in team_roles(world, "fraud") if r.startswith("MlflowAppRole"))
    identity = world.role_statements(stack, role)
    principal = world.role_arn(stack, role)
    for team, key, expected in (("fraud", "mlflow/1/run/artifacts/model.pkl", True),
                                ("fraud", "pipeline/data/raw/transactions.csv", False),
                                ("fraudx", "mlflow/1/run/artifacts/model.pkl", False)):
        obj = f"{_bucket(world, team)}/{key}"
        for action in ("s3:GetObject", "s3:PutObject"):
            decision = evaluate_access(identity, world.resource_statements(obj), Request(action, obj, principal_arn=principal))
            assert decision.allowed is expected, (team, key, action, decision.explain())


BROAD_S3 = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "_Policy": "an account admin's policy"}]


def _bucket(world: World, team: str) -> str:
    stack = stack_of(team)
    bucket = next(r for r in world.resources("AWS::S3::Bucket") if r.stack == stack)
    return world.arn(stack, bucket.logical_id)


@pytest.mark.parametrize("action", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"])
def test_bucket_policy_denies_team_data_to_principals_with_broad_s3_rights(world, action):
    bucket = _bucket(world, "fraud")
    resource = bucket if action == "s3:ListBucket" else f"{bucket}/pipeline/data/raw/transactions.csv"
    policy = world.resource_statements(bucket if action == "s3:ListBucket" else resource)
    outsider = f"arn:aws:iam::{ACCOUNT}:role/SomeAnalyticsRole"
    denied = evaluate_access(BROAD_S3, policy, Request(action, resource, principal_arn=outsider))
    assert not denied.allowed and denied.denies, denied.explain()
    for allowed_role in (BREAK_GLASS, world.role_arn(stack_of("fraud"), next(
        r for r in team_roles(world, "fraud") if r.startswith("ExecutionRole")
    ))):
        decision = evaluate_access(BROAD_S3, policy, Request(action, resource, principal_arn=allowed_role))
        assert decision.allowed, (allowed_role, decision.explain())


def test_bucket_policy_leaves_bucket_management_and_aws_services_alone(world):
    bucket = _bucket(world, "fraud")
    policy = world.resource_statements(bucket)
    deployer = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"
    for action in ("s3:PutBucketPolicy", "s3:PutEncryptionConfiguration", "s3:PutBucketTagging", "s3:GetBucketPolicy"):
        decision = evaluate_access(BROAD_S3, policy, Request(action, bucket, principal_arn=deployer))
        assert decision.allowed, (action, decision.explain())
    service = Request("s3:GetObject", f"{bucket}/x", {"aws:PrincipalIsAWSService": "true"},
                      principal_service="sagemaker.amazonaws.com")
    assert not evaluate(policy, service, resource_policy=True).denies


def test_bucket_policy_names_exactly_the_teams_roles_its_upload_and_break_glass(world):
    bucket = _bucket(world, "fraud")
    deny = next(s for s in world.resource_statements(bucket) if s.get("Sid") == "DataOnlyForTheTeamsRoles")
    allowed = set(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    stack = stack_of("fraud")
    names = {r for r in team_roles(world, "fraud") if r.startswith(
        ("ExecutionRole", "ModelExecutionRole", "MlflowAppRole", "CustomCDKBucketDeployment"))}
    assert allowed == {world.role_arn(stack, r) for r in names} | {BREAK_GLASS}
    assert len(names) == 4


@pytest.mark.parametrize("owner,other", list(itertools.permutations(TEAMS, 2)))
def test_a_team_publishes_monitoring_metrics_only_to_its_own_namespace(world, owner, other):
    """PutMetricData names no resource; the namespace condition is what keeps a team from writing another
    team's drift and quality metrics (and so from firing or silencing its alarms)."""
    identity = world.role_statements(stack_of(owner), _execution_role(world, owner))

    def publish(team: str) -> Request:
        return Request("cloudwatch:PutMetricData", "*",
                       {"cloudwatch:namespace": naming.monitoring_namespace(PREFIX, team)})

    assert evaluate_access(identity, [], publish(owner)).allowed
    assert not evaluate_access(identity, [], publish(other)).allowed


def _unnarrowable_section() -> str:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    return doc.split("## Reads no policy can narrow to a team", 1)[1].split("\n## ", 1)[0]


# The role names of docs/security.md's table -> the logical-id prefixes of the team stack's roles they stand for.
ROLE_LABELS = {
    "execution role": ("ExecutionRole",),
    "model execution role": ("ModelExecutionRole",),
    "deploy function": ("DeployOnApprovalDeployFunctionRole",),
    "verifier": ("DeployOnApprovalVerifierFunctionRole",),
    "Studio teardown": ("StudioTeardownOnEventRole", "StudioTeardownIsCompleteRole"),
}


def _label_of(role: str) -> str:
    (label,) = [name for name, prefixes in ROLE_LABELS.items() if role.startswith(prefixes)] or [role]
    return label


def _documented_holders() -> dict:
    """Action -> the role names its row of docs/security.md's table gives (a short name takes the row's prefix)."""
    import re

    found = {}
    for line in _unnarrowable_section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        prefix = names[0].split(":", 1)[0]
        holders = {h.strip() for h in cells[1].split(",")}
        for name in names:
            found[name if ":" in name else f"{prefix}:{name}"] = holders
    return found


def test_what_a_team_role_holds_on_star_cannot_be_narrowed_and_is_documented(world):
    """Every unconditioned Allow on `*` of a team's roles is an action the reference authorizes only on `*`,
    listed in docs/security.md with exactly the roles that hold it and what it reveals across teams."""
    documented = _documented_holders()
    held: dict = {}
    problems = []
    for team in TEAMS:
        for role in team_roles(world, team):
            if "Provider" in role:  # the CDK Provider framework's own roles (acknowledged in nag and checkov)
                continue
            for statement in world.role_statements(stack_of(team), role):
                resources = statement.get("Resource")
                if statement.get("Effect") != "Allow" or resources not in ("*", ["*"]) or statement.get("Condition"):
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    facts = action_facts(action)
                    if not facts.authorized_on_star:
                        problems.append(f"{team}/{role}: {action} on * although the reference authorizes it on "
                                        f"{[t.name for t in facts.resource_choices]}")
                    held.setdefault(action, set()).add(_label_of(role))
    for action, holders in sorted(held.items()):
        if action not in documented:
            problems.append(f"{action} on * (held by {sorted(holders)}) is not in docs/security.md's table")
        elif documented[action] != holders:
            problems.append(f"{action}: docs/security.md says {sorted(documented[action])}, held by {sorted(holders)}")
    assert problems == []
    assert "sagemaker:ListModelPackages" in held


def test_the_unnarrowable_table_names_only_real_star_actions():
    """The table's actions are ones the reference authorizes only on `*` (no stale entry)."""
    named = set(_documented_holders())
    assert "sagemaker:ListModelPackages" in named
    assert [a for a in sorted(named) if not action_facts(a).authorized_on_star] == []
