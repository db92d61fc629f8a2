"""Every cdk-nag finding the platform accepts, one list per stack kind, each with its reason.

An entry names the construct path below its stack (``*`` matches one path segment), the exact finding
id cdk-nag reports (``AwsSolutions::<rule>[<finding>]``), and why it is acceptable. A test fails when
an entry is unused, so this list never hides more than it must.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct


@dataclass(frozen=True)
class Acknowledgment:
    path: str
    finding: str
    reason: str


SAGEMAKER_ARN = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
IAM5 = "AwsSolutions-IAM5"


def network_acknowledgments(stack: "NetworkStack") -> list[Acknowledgment]:
    return []


def platform_acknowledgments(stack: "PlatformStack") -> list[Acknowledgment]:
    return [
        Acknowledgment(
            "AccessLogs/Resource",
            "AwsSolutions-S1",
            "This is the server-access-log bucket itself; logging it into itself would loop.",
        ),
    ]


def team_acknowledgments(stack: "TeamStack") -> list[Acknowledgment]:
    from stacks.team_stack import TEAM_NAMED_RESOURCE_TYPES

    prefix = stack.resource_prefix
    domain = _token_text(stack, stack.domain_id)
    bucket = f"<{stack.get_logical_id(stack.data_bucket.node.default_child)}.Arn>"
    role = "ExecutionRole/DefaultPolicy/Resource"
    model_role = "ModelExecutionRole/DefaultPolicy/Resource"
    named = "Team-prefixed names: the team creates these resources at run time, so the name is known only as a prefix."
    entries = [
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:{kind}/{prefix}*]", named)
        for kind in TEAM_NAMED_RESOURCE_TYPES
    ]
    entries += [
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:model-package/{prefix}*/*]",
                       "Versions of the team's own registry groups; versions are created at run time."),
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:pipeline/{prefix}*/execution/*]",
                       "Executions of the team's own pipelines; execution ids are made at run time."),
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:user-profile/{domain}/{stack.team.name}-*]",
                       "The team's Studio profiles in the shared domain, named <team>-<user>."),
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:space/{domain}/{stack.team.name}-*]",
                       "Studio spaces the team's users create, named <team>-... by convention of the platform."),
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:app/{domain}/{stack.team.name}-*/*]",
                       "Studio apps of the team's own profiles and spaces; app names are made at run time."),
        Acknowledgment(role, f"{IAM5}[Resource::*]",
                       "Only List*/Search/ecr:GetAuthorizationToken (no resource-level permissions) and "
                       "cloudwatch:PutMetricData limited by a namespace condition."),
        Acknowledgment(model_role, f"{IAM5}[Resource::*]",
                       "Only ecr:GetAuthorizationToken (no resource-level permissions) and cloudwatch:PutMetricData "
                       "limited by a namespace condition."),
        Acknowledgment(role, f"{IAM5}[Resource::{bucket}/*]", "Objects of the team's own data bucket."),
        Acknowledgment(model_role, f"{IAM5}[Resource::{bucket}/*]",
                       "Endpoints read model artifacts anywhere in the team's own bucket (read only)."),
        Acknowledgment(model_role, f"{IAM5}[Resource::{bucket}/data-capture/*]",
                       "Endpoints write captured requests under data-capture/ of the team's own bucket."),
    ]
    ecr = "arn:<AWS::Partition>:ecr:<AWS::Region>:*:repository/*"
    ecr_reason = "SageMaker's own images live in AWS-owned accounts that differ per region and framework."
    logs = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group"
    entries += [
        Acknowledgment(role, f"{IAM5}[Resource::{ecr}]", ecr_reason),
        Acknowledgment(model_role, f"{IAM5}[Resource::{ecr}]", ecr_reason),
        Acknowledgment(role, f"{IAM5}[Resource::{logs}:/aws/sagemaker/*]",
                       "Jobs write to log groups SageMaker names per job type under /aws/sagemaker/."),
        Acknowledgment(model_role, f"{IAM5}[Resource::{logs}:/aws/sagemaker/Endpoints/*]",
                       "Endpoints write to /aws/sagemaker/Endpoints/<endpoint>, named at run time."),
    ]
    return entries


def _token_text(stack: cdk.Stack, value: str) -> str:
    """How cdk-nag prints a token in a finding id (an import is shown by its export name)."""
    resolved = stack.resolve(value)
    if isinstance(resolved, dict) and "Fn::ImportValue" in resolved:
        return str(resolved["Fn::ImportValue"])
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    return str(resolved)


def acknowledgments_for(stack: cdk.Stack) -> list[Acknowledgment]:
    from stacks.network_stack import NetworkStack
    from stacks.platform_stack import PlatformStack
    from stacks.team_stack import TeamStack

    if isinstance(stack, NetworkStack):
        return network_acknowledgments(stack)
    if isinstance(stack, PlatformStack):
        return platform_acknowledgments(stack)
    if isinstance(stack, TeamStack):
        return team_acknowledgments(stack)
    return []


def _relative_path(stack: cdk.Stack, construct: IConstruct) -> str:
    return construct.node.path[len(stack.node.path) + 1 :]


def acknowledge_findings(stack: cdk.Stack) -> None:
    """Attach this stack kind's acknowledgments to the constructs they name."""
    entries = acknowledgments_for(stack)
    if not entries:
        return
    for construct in stack.node.find_all():
        relative = _relative_path(stack, construct)
        for entry in entries:
            if relative and fnmatch.fnmatchcase(relative, entry.path):
                cdk.Validations.of(construct).acknowledge(
                    cdk.Acknowledgment(id=f"AwsSolutions::{entry.finding}", reason=entry.reason)
                )
