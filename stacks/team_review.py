"""Maker-checker for a team's registry: the reviewer role and profiles, and what the team role may no longer do.

`add_reviewers` adds the team's reviewer role ``<prefix>-<team>-model-reviewer`` (a fixed name) and one Studio
profile ``<team>-review-<user>`` per reviewer user, which runs as that role. The role approves and rejects the
team's versions and reads what a review needs (the registry and the reports the versions link); it touches
nothing else of the team. Configured reviewer role ARNs may assume it.

`separate_duties` narrows the team execution role when ``approval.reviewers_required`` is on: it registers
versions only as PendingManualApproval, may set a version only to Rejected (stopping a model is never
blocked), and cannot open the reviewers' Studio profiles. `sagemaker:ModelApprovalStatus` is listed by the
Service Authorization Reference for CreateModelPackage and UpdateModelPackage; what IAM cannot say (the
approver is not the builder, an approval carries a description) the deploy function checks
(``lambdas/deploy_on_approval/approval.py``).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from lambdas.common import naming, tags
from stacks.config import Reviewers, Team

PENDING, REJECTED = "PendingManualApproval", "Rejected"
APPROVAL_STATUS_KEY = "sagemaker:ModelApprovalStatus"
# The reports a version links (ModelMetrics, DriftCheckBaselines): evaluation, bias and SHAP analysis, baseline.
REPORT_KEY_PATTERNS = ("pipeline/runs/*/evaluation/*", "pipeline/runs/*/analysis/*", "pipeline/runs/*/drift-baseline/*")
# What a Studio user does in their own profile (team members in theirs, reviewers in theirs).
STUDIO_ACTIONS = (
    "sagemaker:CreateApp",
    "sagemaker:DeleteApp",
    "sagemaker:DescribeApp",
    "sagemaker:CreateSpace",
    "sagemaker:UpdateSpace",
    "sagemaker:DeleteSpace",
    "sagemaker:DescribeSpace",
    "sagemaker:DescribeUserProfile",
    "sagemaker:CreatePresignedDomainUrl",
)


def _sagemaker_arn(resource: str) -> str:
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def reviewer_studio_arns(domain_id: str, team: str) -> list[str]:
    """The reviewers' profiles, spaces and apps of `team` (``<team>-review-*``)."""
    prefix = naming.reviewer_profile_name(team, "")
    return [
        _sagemaker_arn(f"user-profile/{domain_id}/{prefix}*"),
        _sagemaker_arn(f"space/{domain_id}/{prefix}*"),
        _sagemaker_arn(f"app/{domain_id}/{prefix}*/*"),
    ]


def team_version_arns(prefix: str, team: str) -> list[str]:
    resource_prefix = naming.team_resource_prefix(prefix, team)
    return [_sagemaker_arn(f"model-package/{resource_prefix}*/*")]


def team_group_arns(prefix: str, team: str) -> list[str]:
    return [_sagemaker_arn(f"model-package-group/{naming.team_resource_prefix(prefix, team)}*")]


class TeamReviewers:
    """The reviewer role of a team and its reviewers' Studio profiles."""

    def __init__(self, scope: Construct, *, prefix: str, team: Team, reviewers: Reviewers, data_bucket: s3.IBucket,
                 key: kms.IKey, domain_id: str) -> None:
        self.reviewers = reviewers
        principals: list[iam.IPrincipal] = [iam.ArnPrincipal(arn) for arn in reviewers.role_arns]
        if reviewers.users:
            principals.append(iam.ServicePrincipal("sagemaker.amazonaws.com"))
        self.role = iam.Role(
            scope,
            "ReviewerRole",
            role_name=naming.reviewer_role_name(prefix, team.name),
            assumed_by=iam.CompositePrincipal(*principals),
            description=f"Reviewers of team {team.name}: approve and reject its model versions, read their reports",
        )
        if reviewers.role_arns:
            # A caller whose session carries a source identity keeps it only where the trust allows setting it.
            self.role.assume_role_policy.add_statements(iam.PolicyStatement(
                actions=["sts:SetSourceIdentity"],
                principals=[iam.ArnPrincipal(arn) for arn in reviewers.role_arns],
            ))
        policy = iam.Policy(self.role, "ReviewPolicy", roles=[self.role])
        policy.add_statements(
            iam.PolicyStatement(
                sid="ApproveAndRejectTheTeamsVersions",
                actions=["sagemaker:UpdateModelPackage"],
                resources=team_version_arns(prefix, team.name),
            ),
            iam.PolicyStatement(
                sid="ReadTheTeamsRegistry",
                actions=["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup",
                         "sagemaker:ListTags"],
                resources=team_group_arns(prefix, team.name) + team_version_arns(prefix, team.name),
            ),
            iam.PolicyStatement(
                sid="ListsHaveNoResourceLevelPermissions",
                actions=["sagemaker:ListModelPackageGroups", "sagemaker:ListModelPackages"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ReadTheReportsVersionsLink",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(pattern) for pattern in REPORT_KEY_PATTERNS],
            ),
            iam.PolicyStatement(
                sid="DecryptReportsThroughS3",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            ),
        )
        self.profiles: list[sagemaker.CfnUserProfile] = []
        if reviewers.users:
            policy.add_statements(
                iam.PolicyStatement(
                    sid="StudioInTheReviewersOwnProfiles",
                    actions=list(STUDIO_ACTIONS),
                    resources=reviewer_studio_arns(domain_id, team.name),
                ),
                iam.PolicyStatement(
                    sid="StudioReadsTheDomain",
                    actions=["sagemaker:DescribeDomain"],
                    resources=[_sagemaker_arn(f"domain/{domain_id}")],
                ),
                iam.PolicyStatement(
                    sid="StudioListsHaveNoResourceLevelPermissions",
                    actions=["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
                    resources=["*"],
                ),
            )
            self.profiles = [
                sagemaker.CfnUserProfile(
                    scope,
                    f"ReviewerProfile-{user}",
                    domain_id=domain_id,
                    user_profile_name=naming.reviewer_profile_name(team.name, user),
                    user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(execution_role=self.role.role_arn),
                    # Tags on a UserProfile force its replacement: only values fixed for its lifetime.
                    tags=[
                        {"key": tags.PLATFORM, "value": prefix},
                        {"key": tags.TEAM, "value": team.name},
                        {"key": tags.MANAGED_BY, "value": tags.MANAGED_BY_VALUE},
                    ],
                )
                for user in reviewers.users
            ]
            for profile in self.profiles:
                profile.node.add_dependency(policy)


def separate_duties(role: iam.Role, *, prefix: str, team: str, domain_id: str) -> None:
    """The team role registers only pending versions, may only reject, and cannot enter the reviewers' Studio."""
    resources = team_group_arns(prefix, team) + team_version_arns(prefix, team)
    # A policy of its own: the role's default policy is near its size limit (its overflow has no fixed path).
    policy = iam.Policy(role, "RegistryDutiesPolicy", roles=[role])
    policy.add_statements(iam.PolicyStatement(
        sid="RegisterVersionsOnlyPendingApproval",
        actions=["sagemaker:CreateModelPackage"],
        resources=resources,
        # An omitted status registers as PendingManualApproval, so the key may be absent.
        conditions={"StringEqualsIfExists": {APPROVAL_STATUS_KEY: PENDING}},
    ))
    policy.add_statements(iam.PolicyStatement(
        sid="RejectVersionsButNeverApprove",
        actions=["sagemaker:UpdateModelPackage"],
        resources=team_version_arns(prefix, team),
        conditions={"StringEquals": {APPROVAL_STATUS_KEY: REJECTED}},
    ))
    policy.add_statements(iam.PolicyStatement(
        sid="NotTheReviewersStudioProfiles",
        effect=iam.Effect.DENY,
        actions=list(STUDIO_ACTIONS),
        resources=reviewer_studio_arns(domain_id, team),
    ))
