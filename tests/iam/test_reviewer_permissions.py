"""Maker-checker in IAM, decided on the synthesized templates of the edge config "reviewers" (reviewers required;
team alpha reviewed by Studio users r1 and u2 and by a platform-wide role; team beta by that role only):

- the team execution role registers versions only as PendingManualApproval (or with the status omitted, which
  registers as pending), may set a version to Rejected and never to Approved;
- the team's reviewer role approves and rejects only its own team's versions, and may do nothing else of the team
  (no pipeline, job, endpoint, registration or data write);
- the reviewer Studio profiles are out of the team role's reach;
- without reviewers required, the team role keeps approving (the default is unchanged).

Requests are mapped from the API calls by `tools.iam.requests.iam_requests`, so ``sagemaker:ModelApprovalStatus``
is set exactly when the call carries a status (the Service Authorization Reference lists the key for both actions).
"""

from __future__ import annotations

import pytest

from stacks.config import parse_config
from tests.conftest import EDGE_CONFIGS, synthesize
from tools.iam.evaluate import Request, evaluate_access
from tools.iam.requests import iam_requests
from tools.iam.template import World

ACCOUNT, REGION = "210987654321", "eu-west-1"
SAGEMAKER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def reviewers(edge):
    return edge("reviewers")


@pytest.fixture(scope="module")
def world(reviewers) -> World:
    return World(reviewers.templates, account=ACCOUNT, region=REGION)


@pytest.fixture(scope="module")
def domain(world) -> str:
    """The Studio domain id as the world resolves the platform stack's domain (the team stacks import it)."""
    statements = world.role_statements("edge-team-alpha", role_id(world.templates, "edge-team-alpha", "ExecutionRole"))
    (domain_id,) = {arn.split("/")[1] for s in statements if s.get("Effect") == "Allow"
                    for arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
                    if ":user-profile/" in arn}
    assert domain_id.startswith("d-")
    return domain_id


def role_id(templates: dict, stack: str, prefix: str) -> str:
    (logical_id,) = [k for k, r in templates[stack]["Resources"].items()
                     if r["Type"] == "AWS::IAM::Role" and k.startswith(prefix)]
    return logical_id


def allowed(world: World, stack: str, role: str, service: str, operation: str, params: dict) -> bool:
    """Whether every IAM request of the call is allowed to the role (identity policies and resource policies)."""
    statements = world.role_statements(stack, role_id(world.templates, stack, role))
    requests = iam_requests(service, operation, params, region=REGION, account=ACCOUNT)
    assert requests
    return all(evaluate_access(statements, world.resource_statements(r.resource), r).allowed for r in requests)


def version(team: str, use_case: str = "score", number: int = 3) -> str:
    return f"{SAGEMAKER}:model-package/edge-{team}-{use_case}/{number}"


REGISTRATION = {
    "InferenceSpecification": {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"],
                               "SupportedResponseMIMETypes": ["text/csv"]},
}


@pytest.mark.parametrize(("status", "expected"), [
    ("PendingManualApproval", True), (None, True), ("Approved", False), ("Rejected", False)])
def test_the_team_role_registers_only_pending_versions(world, status, expected):
    params = {"ModelPackageGroupName": "edge-alpha-score", **REGISTRATION}
    if status:
        params["ModelApprovalStatus"] = status
    assert allowed(world, "edge-team-alpha", "ExecutionRole", "sagemaker", "CreateModelPackage", params) is expected


@pytest.mark.parametrize(("status", "expected"), [
    ("Approved", False), ("PendingManualApproval", False), (None, False), ("Rejected", True)])
def test_the_team_role_may_reject_but_never_approve(world, status, expected):
    params = {"ModelPackageArn": version("alpha"), **({"ModelApprovalStatus": status} if status else {})}
    assert allowed(world, "edge-team-alpha", "ExecutionRole", "sagemaker", "UpdateModelPackage", params) is expected


@pytest.mark.parametrize("team", ["alpha", "beta"])
@pytest.mark.parametrize("status", ["Approved", "Rejected"])
def test_each_reviewer_role_decides_only_its_own_teams_versions(world, team, status):
    for reviewed, other in (("alpha", "beta"), ("beta", "alpha")):
        stack = f"edge-team-{reviewed}"
        for use_case in ("score", "rank") if reviewed == "alpha" else ("score",):
            assert allowed(world, stack, "ReviewerRole", "sagemaker", "UpdateModelPackage",
                           {"ModelPackageArn": version(reviewed, use_case), "ModelApprovalStatus": status})
        assert not allowed(world, stack, "ReviewerRole", "sagemaker", "UpdateModelPackage",
                           {"ModelPackageArn": version(other), "ModelApprovalStatus": status})
        assert not allowed(world, stack, "ReviewerRole", "sagemaker", "DescribeModelPackage",
                           {"ModelPackageName": version(other)})


@pytest.mark.parametrize(("operation", "params"), [
    ("CreateModelPackage", {"ModelPackageGroupName": "edge-alpha-score", "ModelApprovalStatus": "Approved",
                            **REGISTRATION}),
    ("StartPipelineExecution", {"PipelineName": "edge-alpha-score"}),
    ("CreateEndpoint", {"EndpointName": "edge-alpha-score", "EndpointConfigName": "edge-alpha-score-v1-x"}),
    ("CreateProcessingJob", {"ProcessingJobName": "edge-alpha-x", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/x",
                             "AppSpecification": {"ImageUri": "img"},
                             "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                                       "InstanceType": "ml.m5.large",
                                                                       "VolumeSizeInGB": 1}}}),
    ("DeleteModelPackage", {"ModelPackageName": version("alpha")}),
])
def test_the_reviewer_role_does_nothing_else_of_the_team(world, operation, params):
    assert not allowed(world, "edge-team-alpha", "ReviewerRole", "sagemaker", operation, params)


def test_the_team_role_cannot_open_the_reviewers_studio_profiles(world, domain):
    for profile in ("alpha-review-r1", "alpha-review-u2"):
        assert not allowed(world, "edge-team-alpha", "ExecutionRole", "sagemaker", "CreatePresignedDomainUrl",
                           {"DomainId": domain, "UserProfileName": profile})
    assert allowed(world, "edge-team-alpha", "ExecutionRole", "sagemaker", "CreatePresignedDomainUrl",
                   {"DomainId": domain, "UserProfileName": "alpha-u1"})
    assert allowed(world, "edge-team-alpha", "ReviewerRole", "sagemaker", "CreatePresignedDomainUrl",
                   {"DomainId": domain, "UserProfileName": "alpha-review-r1"})
    assert not allowed(world, "edge-team-alpha", "ReviewerRole", "sagemaker", "CreatePresignedDomainUrl",
                       {"DomainId": domain, "UserProfileName": "alpha-u1"})


def test_reviewer_profiles_run_as_the_reviewer_role_and_its_trust_names_the_reviewers(reviewers):
    resources = reviewers.templates["edge-team-alpha"]["Resources"]
    profiles = {r["Properties"]["UserProfileName"]: r["Properties"]["UserSettings"]["ExecutionRole"]
                for r in resources.values() if r["Type"] == "AWS::SageMaker::UserProfile"}
    reviewer = role_id(reviewers.templates, "edge-team-alpha", "ReviewerRole")
    assert {name for name, role in profiles.items() if role == {"Fn::GetAtt": [reviewer, "Arn"]}} == {
        "alpha-review-r1", "alpha-review-u2"}
    trust = resources[reviewer]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assume = [s for s in trust if s["Action"] == "sts:AssumeRole"]
    assert [s["Principal"] for s in assume] == [{"AWS": "arn:aws:iam::210987654321:role/governance/ModelRisk",
                                                 "Service": "sagemaker.amazonaws.com"}]
    assert [s["Principal"] for s in trust if s["Action"] == "sts:SetSourceIdentity"] == [
        {"AWS": "arn:aws:iam::210987654321:role/governance/ModelRisk"}]
    assert resources[reviewer]["Properties"]["RoleName"] == "edge-alpha-model-reviewer"
    beta = reviewers.templates["edge-team-beta"]["Resources"]
    beta_trust = beta[role_id(reviewers.templates, "edge-team-beta", "ReviewerRole")]["Properties"]
    assert all("Service" not in s["Principal"] for s in beta_trust["AssumeRolePolicyDocument"]["Statement"])


def test_a_team_without_use_cases_has_no_reviewer_role(reviewers):
    assert not [k for k, r in reviewers.templates["edge-team-risk"]["Resources"].items()
                if r["Type"] == "AWS::IAM::Role" and k.startswith("ReviewerRole")]


def test_without_reviewers_required_the_team_role_still_approves(tmp_path_factory):
    config = {**EDGE_CONFIGS["reviewers"], "approval": {"reviewers_required": False}}
    built = synthesize(parse_config(config), tmp_path_factory.mktemp("unreviewed"), policy_gates=False,
                       teams=["alpha"])
    world = World(built.templates, account=ACCOUNT, region=REGION)
    assert allowed(world, "edge-team-alpha", "ExecutionRole", "sagemaker", "UpdateModelPackage",
                   {"ModelPackageArn": version("alpha"), "ModelApprovalStatus": "Approved"})
    deploy = next(r for r in built.templates["edge-team-alpha"]["Resources"].values()
                  if r["Type"] == "AWS::Lambda::Function"
                  and "USE_CASES" in r["Properties"].get("Environment", {}).get("Variables", {})
                  and "COST_CENTER" in r["Properties"]["Environment"]["Variables"])
    assert "APPROVAL_RULES" not in deploy["Properties"]["Environment"]["Variables"]


def test_the_deploy_function_gets_the_teams_rules(reviewers):
    import json

    functions = [r for r in reviewers.templates["edge-team-alpha"]["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function"
                 and "APPROVAL_RULES" in r["Properties"].get("Environment", {}).get("Variables", {})]
    (deploy,) = functions
    assert json.loads(deploy["Properties"]["Environment"]["Variables"]["APPROVAL_RULES"]) == {
        "reviewer_role": "edge-alpha-model-reviewer", "users": ["r1", "u2"],
        "role_arns": ["arn:aws:iam::210987654321:role/governance/ModelRisk"]}


def test_requests_carry_the_approval_status_only_when_the_call_does():
    with_status = iam_requests("sagemaker", "UpdateModelPackage",
                               {"ModelPackageArn": version("alpha"), "ModelApprovalStatus": "Approved"},
                               region=REGION, account=ACCOUNT)
    without = iam_requests("sagemaker", "UpdateModelPackage", {"ModelPackageArn": version("alpha")},
                           region=REGION, account=ACCOUNT)
    assert [r.context.get("sagemaker:ModelApprovalStatus") for r in with_status] == ["Approved"]
    assert [r.context.get("sagemaker:ModelApprovalStatus") for r in without] == [None]
    assert isinstance(with_status[0], Request)
