"""Every cdk-nag finding the platform accepts, one list per stack kind, each with its reason.

An entry names the construct path below its stack (``*`` matches one path segment), the exact finding
id cdk-nag reports (``AwsSolutions::<rule>[<finding>]``), and why it is acceptable. A test fails when
an entry is unused, so this list never hides more than it must.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, NamedTuple

import aws_cdk as cdk
from constructs import IConstruct

from lambdas.common import naming

if TYPE_CHECKING:
    from stacks.network_stack import NetworkStack
    from stacks.platform_stack import PlatformStack
    from stacks.team_stack import TeamStack


class Acknowledgment(NamedTuple):
    path: str
    finding: str
    reason: str


SAGEMAKER_ARN = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
IAM5 = "AwsSolutions-IAM5"
IAM4 = "AwsSolutions-IAM4"


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
    from stacks.team_stack import MLFLOW_PREFIX, PIPELINE_JOB_RESOURCES, TEAM_NAMED_RESOURCE_TYPES

    prefix = stack.resource_prefix
    domain = _token_text(stack, stack.domain_id)
    bucket = f"<{stack.get_logical_id(stack.data_bucket.node.default_child)}.Arn>"
    # The execution role's statements exceed one inline policy; CDK spills them into overflow policies.
    role = "ExecutionRole/*Policy*/Resource"
    model_role = "ModelExecutionRole/*Policy/Resource"
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
        Acknowledgment("MlflowAppRole/DefaultPolicy/Resource", f"{IAM5}[Resource::{bucket}/{MLFLOW_PREFIX}*]",
                       "The team's MLflow App reads and writes run artifacts under mlflow/ of the team's own "
                       "bucket only; artifact keys are made per run at run time."),
    ]
    entries += [
        Acknowledgment(role, f"{IAM5}[Resource::{SAGEMAKER_ARN}:{resource}]",
                       "Jobs and models SageMaker Pipelines names pipelines-... when the team's pipeline runs "
                       "with this role; creating, describing, stopping and tagging them needs the team's tag.")
        for resource in PIPELINE_JOB_RESOURCES
    ]
    if stack.pipelines:
        deployment = "Custom::CDKBucketDeployment*/ServiceRole"
        copy_reason = ("CDK BucketDeployment copies the pipeline's step scripts from the CDK asset bucket into "
                       "the team's own bucket; its grants are generated by CDK for exactly those two buckets.")
        entries += [
            Acknowledgment(f"{deployment}/Resource",
                           f"{IAM4}[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                           "CDK BucketDeployment's own function role (logs only); CDK exposes no option to replace it."),
            Acknowledgment("Custom::CDKBucketDeployment*/Resource", "AwsSolutions-L1",
                           "CDK BucketDeployment's own function; CDK chooses and maintains its runtime."),
            Acknowledgment(f"{deployment}/DefaultPolicy/Resource", f"{IAM5}[Resource::{bucket}/*]", copy_reason),
            Acknowledgment(
                f"{deployment}/DefaultPolicy/Resource",
                f"{IAM5}[Resource::arn:{_partition(stack)}:s3:::cdk-hnb659fds-assets-"
                f"{_shown(stack, stack.account, 'AWS::AccountId')}-{_shown(stack, stack.region, 'AWS::Region')}/*]",
                copy_reason,
            ),
        ] + [
            Acknowledgment(f"{deployment}/DefaultPolicy/Resource", f"{IAM5}[Action::{action}]", copy_reason)
            for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*",
                           "kms:GenerateDataKey*", "kms:ReEncrypt*")
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
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        logical_id, attribute = resolved["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    return str(resolved)


def _shown(stack: cdk.Stack, value: str, pseudo: str) -> str:
    return f"<{pseudo}>" if cdk.Token.is_unresolved(value) else value


def _sagemaker_arn(stack: cdk.Stack) -> str:
    region = _shown(stack, stack.region, "AWS::Region")
    account = _shown(stack, stack.account, "AWS::AccountId")
    return f"arn:{_partition(stack)}:sagemaker:{region}:{account}"


def _partition(stack: cdk.Stack) -> str:
    """The partition as ARNs built from the stack show it: literal once the region is known."""
    return _shown(stack, stack.partition, "AWS::Partition")


def _arn_of(stack: cdk.Stack, construct: IConstruct) -> str:
    return f"<{stack.get_logical_id(construct.node.default_child)}.Arn>"


def _provider_invoke(stack: cdk.Stack, path: str, functions) -> list[Acknowledgment]:
    return [
        Acknowledgment(
            path,
            f"{IAM5}[Resource::{_arn_of(stack, fn)}:*]",
            "The CDK Provider framework grants invoke on the handler's versions and aliases (ARN:*).",
        )
        for fn in functions
    ]


def deploy_on_approval_acknowledgments(construct) -> list[Acknowledgment]:
    if not construct.enabled:
        return []
    stack = cdk.Stack.of(construct)
    here = _relative_path(stack, construct)
    sagemaker = _sagemaker_arn(stack)
    prefix = construct.resource_prefix
    deploy_policy = f"{here}/DeployFunctionRole/DefaultPolicy/Resource"
    verifier_policy = f"{here}/VerifierFunctionRole/DefaultPolicy/Resource"
    region = _shown(stack, stack.region, "AWS::Region")
    account = _shown(stack, stack.account, "AWS::AccountId")
    run_time = "Models and endpoint configs are created at run time, named <team prefix><use case>-v<n>..."
    scaled = any(u.endpoint.autoscaling.enabled for u in construct.use_cases)
    entries = [
        Acknowledgment(deploy_policy, f"{IAM5}[Resource::{sagemaker}:model-package/{group}/*]",
                       f"Versions of the team's own registry group {group}; versions are created at run time.")
        for group in sorted(construct.groups.values())
    ]
    entries += [
        Acknowledgment(deploy_policy, f"{IAM5}[Resource::{sagemaker}:model/{prefix}*]", run_time),
        Acknowledgment(deploy_policy, f"{IAM5}[Resource::{sagemaker}:endpoint-config/{prefix}*]", run_time),
        Acknowledgment(verifier_policy, f"{IAM5}[Resource::{sagemaker}:model/{prefix}*]",
                       run_time + "; deletes also require the platform's managed-by and team tags."),
        Acknowledgment(verifier_policy, f"{IAM5}[Resource::{sagemaker}:endpoint-config/{prefix}*]",
                       run_time + "; deletes also require the platform's managed-by and team tags."),
        Acknowledgment(verifier_policy, f"{IAM5}[Resource::{sagemaker}:endpoint/{prefix}*]",
                       "Describe and ListTags: checks which configs any of the team's endpoints still uses"
                       + ("; UpdateEndpointWeightsAndCapacities, which Application Auto Scaling requires of whoever "
                          "registers the team's endpoints as scalable targets." if scaled else ".")),
        Acknowledgment(deploy_policy, f"{IAM5}[Resource::*]",
                       "Only sagemaker:ListModelPackages, which the Service Authorization Reference authorizes on * "
                       "(its model-package resource type is optional); the versions it reads are the team's own."),
        Acknowledgment(verifier_policy, f"{IAM5}[Resource::*]",
                       "Only sagemaker:ListEndpoints, ListEndpointConfigs and ListModels"
                       + (" and application-autoscaling:DescribeScalableTargets, DescribeScalingPolicies and "
                          "DescribeScheduledActions" if scaled else "")
                       + ", which have no resource-level permissions."),
        *([
            Acknowledgment(
                deploy_policy,
                f"{IAM5}[Resource::arn:{_partition(stack)}:application-autoscaling:{region}:{account}:scalable-target/*]",
                "DeregisterScalableTarget before an update that changes an endpoint's instance type, only of targets "
                "tagged with the team (scalable target ARNs carry a random id made at registration).",
            ),
            Acknowledgment(
                verifier_policy,
                f"{IAM5}[Resource::arn:{_partition(stack)}:application-autoscaling:{region}:{account}:scalable-target/*]",
                "Scalable target ARNs carry a random id made at registration; registering needs the platform's "
                "team tag on the new target, and changing a target needs the team's tag on it.",
            ),
            Acknowledgment(
                verifier_policy,
                f"{IAM5}[Resource::arn:{_partition(stack)}:cloudwatch:{region}:{account}:alarm:TargetTracking-endpoint/"
                f"{prefix}*]",
                "The target-tracking alarms Application Auto Scaling creates for the team's endpoints in the caller's "
                "name (TargetTracking-<resource id>-AlarmHigh/Low-<uuid>).",
            ),
        ] if scaled else []),
        *[
            Acknowledgment(verifier_policy, f"{IAM5}[Resource::{sagemaker}:model-package/{group}/*]",
                           f"DescribeModelPackage of the versions of the team's registry group {group} that its "
                           "endpoint serves: the verifier reads their drift baselines for the monitoring schedule.")
            for group in sorted(construct.monitored_groups)
        ],
        Acknowledgment(f"{here}/FailedEventsQueue/Resource", "AwsSolutions-SQS3",
                       "This queue is itself a dead-letter queue: of the EventBridge rule targets and of the "
                       "verifier's asynchronous invocations (not a redrive policy, which cdk-nag does not see)."),
    ]
    return entries


def idle_endpoint_reaper_acknowledgments(construct) -> list[Acknowledgment]:
    from lambdas.idle_endpoint_reaper import restore_record

    stack = cdk.Stack.of(construct)
    policy = _relative_path(stack, construct.function.role.node.find_child("DefaultPolicy").node.default_child)
    region = _shown(stack, stack.region, "AWS::Region")
    account = _shown(stack, stack.account, "AWS::AccountId")
    parameters = restore_record.PARAMETER_PATH.strip("/")
    return [
        Acknowledgment(policy, f"{IAM5}[Resource::*]",
                       "Only sagemaker:Search, sagemaker:ListEndpoints, cloudwatch:GetMetricData, "
                       "application-autoscaling:DescribeScalableTargets and pricing:GetProducts, which have no "
                       "resource-level permissions."),
        Acknowledgment(policy, f"{IAM5}[Resource::{_sagemaker_arn(stack)}:endpoint-config/{construct.prefix}-*]",
                       "DescribeEndpointConfig of idle endpoints' configs (their instance types, for the cost "
                       "estimate); configs are named at run time."),
        Acknowledgment(policy, f"{IAM5}[Resource::{_sagemaker_arn(stack)}:endpoint/{construct.prefix}-*]",
                       "Endpoints are created at run time; DeleteEndpoint also requires the platform's managed-by "
                       "and platform tags on the endpoint."),
        Acknowledgment(
            policy,
            f"{IAM5}[Resource::arn:{_partition(stack)}:application-autoscaling:{region}:{account}:scalable-target/*]",
            "Scalable target ARNs carry a random id and Application Auto Scaling has no condition key that ties a "
            "target to its endpoint; the reaper deregisters only targets of endpoints it deletes.",
        ),
        Acknowledgment(
            policy,
            f"{IAM5}[Resource::arn:{_partition(stack)}:scheduler:{region}:{account}:schedule/{construct.prefix}-*/"
            f"{naming.MONITORING_SCHEDULE_NAME}]",
            "Only DeleteSchedule of the one monitoring schedule in a platform endpoint's schedule group (named after "
            "the endpoint, which the reaper deletes first); endpoints of every team are named at run time.",
        ),
        Acknowledgment(
            policy,
            f"{IAM5}[Resource::arn:{_partition(stack)}:ssm:{region}:{account}:parameter/{parameters}/{construct.prefix}-*]",
            "One restore record per deleted endpoint, named after the endpoint at run time.",
        ),
    ]


def instance_quota_acknowledgments(construct) -> list[Acknowledgment]:
    if construct.function is None:
        return []
    stack = cdk.Stack.of(construct)
    here = _relative_path(stack, construct)
    policy = f"{here}/HandlerRole/DefaultPolicy/Resource"
    return [
        Acknowledgment(policy, f"{IAM5}[Resource::*]",
                       "The Service Authorization Reference lists no required resource type for any Service Quotas "
                       "action the handler calls; GetServiceQuota and RequestServiceQuotaIncrease are limited to "
                       "SageMaker by the servicequotas:service condition."),
        *_provider_invoke(stack, f"{here}/ProviderRole/DefaultPolicy/Resource", [construct.function]),
    ]


def studio_teardown_acknowledgments(construct) -> list[Acknowledgment]:
    stack = cdk.Stack.of(construct)
    here = _relative_path(stack, construct)
    sagemaker = _sagemaker_arn(stack)
    domain = _token_text(stack, construct.domain_id)
    policy = f"{here}/IsCompleteRole/DefaultPolicy/Resource"
    functions = [construct.on_event_function, construct.is_complete_function]
    waiter_policy = f"{here}/Provider/waiter-state-machine/Role/DefaultPolicy/Resource"
    entries = [
        Acknowledgment(policy, f"{IAM5}[Resource::*]",
                       "sagemaker:ListApps/ListSpaces/ListUserProfiles and ec2:DescribeSecurityGroups support no "
                       "resource-level permissions."),
        Acknowledgment(policy, f"{IAM5}[Resource::{sagemaker}:app/{domain}/{construct.resource_name_prefix}*]",
                       "Apps users start in this domain (under the covered profiles or spaces); names are made at run time."),
        Acknowledgment(policy, f"{IAM5}[Resource::{sagemaker}:space/{domain}/{construct.resource_name_prefix}*]",
                       "Spaces users create in this domain (under the covered name prefix); names are made at run time."),
        Acknowledgment(f"{here}/OnEventRole/DefaultPolicy/Resource", f"{IAM5}[Resource::*]",
                       "cloudformation:ListStacks, a dependent action of DescribeStacks in the Service Authorization "
                       "Reference, supports no resource-level permissions."),
        *_provider_invoke(stack, f"{here}/ProviderOnEventRole/DefaultPolicy/Resource", functions),
        *_provider_invoke(stack, f"{here}/ProviderWaiterRole/DefaultPolicy/Resource", functions),
        Acknowledgment(waiter_policy, f"{IAM5}[Resource::*]",
                       "CDK Provider waiter: CloudWatch Logs delivery actions support no resource-level permissions."),
        *_provider_invoke(stack, waiter_policy, [construct.provider.node.find_child("framework-isComplete"),
                                                 construct.provider.node.find_child("framework-onTimeout")]),
        Acknowledgment(f"{here}/Provider/waiter-state-machine/Resource", "AwsSolutions-SF2",
                       "CDK Provider waiter state machine (one retried task); the Provider exposes no tracing option."),
    ]
    if construct.domain_scope:
        entries.append(Acknowledgment(policy, f"{IAM5}[Resource::{sagemaker}:user-profile/{domain}/*]",
                                      "Profiles left in the domain that no stack deletes; names unknown at synth time."))
    if construct.delete_domain:
        entries.append(Acknowledgment(
            policy,
            f"{IAM5}[Resource::arn:{_partition(stack)}:ec2:{_shown(stack, stack.region, 'AWS::Region')}:"
            f"{_shown(stack, stack.account, 'AWS::AccountId')}:security-group/*]",
            "NFS security groups SageMaker creates; limited by conditions to the domain's VPC and SageMaker's "
            "ManagedByAmazonSageMakerResource tag naming this domain."))
    return entries


def mlflow_default_domain_acknowledgments(construct) -> list[Acknowledgment]:
    stack = cdk.Stack.of(construct)
    here = _relative_path(stack, construct)
    return _provider_invoke(stack, f"{here}/ProviderOnEventRole/DefaultPolicy/Resource", [construct.on_event_function])


def cost_tracking_acknowledgments(construct) -> list[Acknowledgment]:
    if construct.function is None:
        return []
    stack = cdk.Stack.of(construct)
    policy = _relative_path(stack, construct.function.role.node.find_child("DefaultPolicy").node.default_child)
    return [
        Acknowledgment(policy, f"{IAM5}[Resource::*]",
                       "ce:ListCostAllocationTags and ce:UpdateCostAllocationTagsStatus have no resource-level "
                       "permissions; cloudwatch:PutMetricData is limited to the platform's cost namespace."),
    ]


def construct_acknowledgments(construct: IConstruct) -> list[Acknowledgment]:
    """The findings a platform construct keeps, with paths relative to its stack."""
    from stacks.constructs.cost_tracking import CostTracking
    from stacks.constructs.deploy_on_approval import DeployOnApproval
    from stacks.constructs.idle_endpoint_reaper import IdleEndpointReaper
    from stacks.constructs.instance_quotas import InstanceQuotaRequests
    from stacks.constructs.mlflow_default_domain import MlflowDefaultDomain
    from stacks.constructs.studio_teardown import StudioTeardown

    builders = {
        MlflowDefaultDomain: mlflow_default_domain_acknowledgments,
        DeployOnApproval: deploy_on_approval_acknowledgments,
        IdleEndpointReaper: idle_endpoint_reaper_acknowledgments,
        InstanceQuotaRequests: instance_quota_acknowledgments,
        StudioTeardown: studio_teardown_acknowledgments,
        CostTracking: cost_tracking_acknowledgments,
    }
    for kind, builder in builders.items():
        if isinstance(construct, kind):
            return builder(construct)
    return []


def acknowledgments_for(stack: cdk.Stack) -> list[Acknowledgment]:
    """Everything acknowledged in `stack`: its kind's own entries and those of the constructs it holds.

    Any other stack (a test's, say) gets the entries of the platform constructs found in it.
    """
    from stacks.network_stack import NetworkStack
    from stacks.platform_stack import PlatformStack
    from stacks.team_stack import TeamStack

    if isinstance(stack, NetworkStack):
        return network_acknowledgments(stack)
    if isinstance(stack, PlatformStack):
        return (
            platform_acknowledgments(stack)
            + studio_teardown_acknowledgments(stack.studio_teardown)
            + instance_quota_acknowledgments(stack.instance_quotas)
            + idle_endpoint_reaper_acknowledgments(stack.idle_endpoint_reaper)
            + cost_tracking_acknowledgments(stack.cost_tracking)
        )
    if isinstance(stack, TeamStack):
        entries = team_acknowledgments(stack) + deploy_on_approval_acknowledgments(stack.deploy_on_approval)
        if stack.studio_teardown is not None:
            entries += studio_teardown_acknowledgments(stack.studio_teardown)
        if stack.mlflow_default_domain is not None:
            entries += mlflow_default_domain_acknowledgments(stack.mlflow_default_domain)
        return entries
    return [entry for construct in stack.node.find_all() for entry in construct_acknowledgments(construct)]


def _relative_path(stack: cdk.Stack, construct: IConstruct) -> str:
    return construct.node.path[len(stack.node.path) + 1 :]


def _matching_constructs(stack: cdk.Stack, pattern: str) -> list[IConstruct]:
    """Constructs below `stack` whose relative path matches `pattern` (globs per path segment)."""
    found: list[IConstruct] = [stack]
    for segment in pattern.split("/"):
        if any(ch in segment for ch in "*?["):
            found = [c for parent in found for c in parent.node.children if fnmatch.fnmatchcase(c.node.id, segment)]
        else:
            found = [child for parent in found if (child := parent.node.try_find_child(segment)) is not None]
    return found


def acknowledge_findings(stack: cdk.Stack, entries: list[Acknowledgment] | None = None) -> None:
    """Attach acknowledgments (by default all of `stack`'s) to the constructs they name."""
    entries = acknowledgments_for(stack) if entries is None else entries
    targets: dict[str, list[IConstruct]] = {}
    for entry in entries:
        if entry.path not in targets:
            targets[entry.path] = _matching_constructs(stack, entry.path)
        for construct in targets[entry.path]:
            cdk.Validations.of(construct).acknowledge(
                cdk.Acknowledgment(id=f"AwsSolutions::{entry.finding}", reason=entry.reason)
            )
