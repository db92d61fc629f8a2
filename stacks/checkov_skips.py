"""Every checkov finding the platform accepts, in one list, each naming its resource and saying why.

An entry names the construct path below its stack (``*`` matches one path segment, as in
``stacks/nag_acknowledgments.py``) of a CloudFormation resource (or of a construct whose default child is
one), the checkov check id, the reason, and the stack kinds it applies to. ``apply_checkov_skips`` writes
the entries into the resources' metadata in the shape checkov reads from CloudFormation templates::

    Metadata: {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "<reason>"}]}}

A test fails when an entry matches no resource, or when checkov would no longer report its check for a
resource it matches, so this list never hides more than it must.

Deliberately absent: CKV_AWS_158 (log groups encrypted with KMS) and CKV_AWS_173 (Lambda environments
encrypted with KMS), which every log group and function meets, and CKV_AWS_116 for the reaper, which has
a dead-letter topic.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import aws_cdk as cdk

from stacks.nag_acknowledgments import _matching_constructs

NETWORK, PLATFORM, TEAM = "network", "platform", "team"
STAGE_PLATFORM, STAGE_TEAM = "stage-platform", "stage-team"
STACK_KINDS = (NETWORK, PLATFORM, TEAM, STAGE_PLATFORM, STAGE_TEAM)

LAMBDA_IN_VPC = "CKV_AWS_117"
LAMBDA_DLQ = "CKV_AWS_116"
LAMBDA_CONCURRENCY = "CKV_AWS_115"


class CheckovSkip(NamedTuple):
    path: str
    check_id: str
    reason: str
    stacks: tuple[str, ...]


class _Function(NamedTuple):
    """What checkov's Lambda checks need to know of one function, phrased for the skip reasons."""

    path: str
    stacks: tuple[str, ...]
    what: str
    calls: str  # whom it talks to (why it needs no VPC)
    invoked: str | None  # how it is invoked and where failures go (why a DLQ adds nothing); None: check applies
    concurrency: str | None  # what bounds its concurrency (why no reserved limit); None: check applies


# The isolated subnets reach only these services (stacks/network_stack.py: interface endpoints + S3 gateway).
_VPC_REACH = "SageMaker API/Runtime, SageMaker MLflow, STS, CloudWatch Logs, ECR and S3"
_RESPONSE_URL = "CloudFormation's presigned S3 response URL"
_DEPLOY_TIME = "runs only while CloudFormation creates, updates or deletes the stack"
_CFN_ASYNC = (
    "CloudFormation waits for its response and fails the stack operation on an error or timeout, so no event is "
    "lost silently, and a dead-letter message would hold only a response URL that has expired"
)
_UNRESERVED = "a reserved limit would only take capacity from the account's unreserved pool"

_FUNCTIONS = [
    _Function(
        "Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler",
        (NETWORK,),
        "CDK handler that removes every rule of the VPC's default security group",
        f"EC2 (Revoke/AuthorizeSecurityGroupIngress/Egress on that one group) and {_RESPONSE_URL}, and EC2 has no "
        "endpoint in the isolated VPC",
        f"is invoked synchronously by CloudFormation for the Custom::VpcRestrictDefaultSG event; {_CFN_ASYNC}",
        f"{_DEPLOY_TIME}, for the VPC's single Custom::VpcRestrictDefaultSG resource; {_UNRESERVED}",
    ),
    _Function(
        "IdleEndpointReaper/Function/Resource",
        (PLATFORM,),
        "Idle-endpoint reaper",
        "SageMaker Search, ListEndpoints and DeleteEndpoint, CloudWatch GetMetricData, Application Auto Scaling, "
        "SSM PutParameter and SNS Publish, most of which have no endpoint in the isolated VPC",
        None,  # scheduled by EventBridge, i.e. invoked asynchronously: it has a DLQ (the platform topic)
        "runs once per schedule tick of reaper.schedule (default hourly) with a 5-minute timeout; a reserved "
        "limit cannot be deployed in accounts whose Lambda concurrency quota is the new-account 10 (Lambda keeps "
        "at least 10 unreserved); if two runs overlap, the later DeleteEndpoint of an endpoint already gone fails "
        "and is listed among the errors of that run's summary on the platform topic",
    ),
    _Function(
        "CostTracking/Function/Resource",
        (PLATFORM,),
        "Cost tracking",
        "Cost Explorer, AWS Budgets (global APIs in us-east-1) and CloudWatch PutMetricData, none of which has an "
        "endpoint in the isolated VPC",
        None,  # scheduled by EventBridge, i.e. invoked asynchronously: it has a DLQ (the platform topic)
        "runs every 6 hours for a few seconds; a reserved limit cannot be deployed in accounts whose Lambda "
        "concurrency quota is the new-account 10 (Lambda keeps at least 10 unreserved); two overlapping runs "
        "publish the same numbers",
    ),
    _Function(
        "InstanceQuotas/Handler/Resource",
        (PLATFORM,),
        "Instance-quota custom resource handler",
        "Service Quotas and iam:CreateServiceLinkedRole, neither of which has an endpoint in the isolated VPC",
        "is invoked synchronously (RequestResponse) by the Provider framework's onEvent function, which reports "
        "every error to CloudFormation as a FAILED response",
        f"{_DEPLOY_TIME}, once per Custom::SageMakerInstanceQuota event, and those resources are chained with "
        f"DependsOn so that one runs at a time; {_UNRESERVED}",
    ),
    _Function(
        "InstanceQuotas/Provider/framework-onEvent/Resource",
        (PLATFORM,),
        "CDK Provider framework onEvent function of the instance-quota custom resources",
        f"the Lambda API (to invoke the quota handler) and {_RESPONSE_URL}",
        f"is invoked asynchronously by CloudFormation for each Custom::SageMakerInstanceQuota event; {_CFN_ASYNC}",
        f"{_DEPLOY_TIME}, once per Custom::SageMakerInstanceQuota event and one at a time (DependsOn chain); "
        f"{_UNRESERVED}",
    ),
    _Function(
        "StudioTeardown/OnEvent/Resource",
        (PLATFORM, TEAM),
        "Studio teardown onEvent handler",
        "cloudformation:DescribeStacks on its own stack, and CloudFormation has no endpoint in the isolated VPC",
        "is invoked synchronously (RequestResponse) by the Provider framework's onEvent function, which reports "
        "every error to CloudFormation as a FAILED response",
        f"{_DEPLOY_TIME}, for the stack's single Custom::StudioTeardown resource; {_UNRESERVED}",
    ),
    _Function(
        "StudioTeardown/IsComplete/Resource",
        (PLATFORM, TEAM),
        "Studio teardown isComplete handler",
        "SageMaker List and Delete calls on apps, spaces and profiles, and at domain scope DeleteDomain and EC2 "
        "security-group calls (EC2 has no endpoint in the isolated VPC)",
        "is invoked synchronously (RequestResponse) by the Provider framework's isComplete function, which the "
        "waiter state machine calls every 30 s with retries until the 45-minute timeout",
        "is polled one call at a time by the waiter state machine while the stack's single Custom::StudioTeardown "
        f"is deleted; {_UNRESERVED}",
    ),
    _Function(
        "MlflowDefaultDomain/OnEvent/Resource",
        (TEAM,),
        "MLflow default-domain onEvent handler",
        "sagemaker:DescribeMlflowApp and UpdateMlflowApp on the team's own MLflow App (the SageMaker API, also "
        "reachable from the isolated VPC, which gains nothing for a call that touches no VPC resource)",
        "is invoked synchronously (RequestResponse) by the Provider framework's onEvent function, which reports "
        "every error to CloudFormation as a FAILED response",
        f"{_DEPLOY_TIME}, for the stack's single Custom::MlflowDefaultDomain resource; {_UNRESERVED}",
    ),
    _Function(
        "MlflowDefaultDomain/Provider/framework-onEvent/Resource",
        (TEAM,),
        "CDK Provider framework onEvent function of the MLflow default domain",
        f"the Lambda API (to invoke the handler) and {_RESPONSE_URL}",
        f"is invoked asynchronously by CloudFormation for the Custom::MlflowDefaultDomain event; {_CFN_ASYNC}",
        f"{_DEPLOY_TIME}, for the stack's single Custom::MlflowDefaultDomain resource; {_UNRESERVED}",
    ),
    _Function(
        "StudioTeardown/Provider/framework-onEvent/Resource",
        (PLATFORM, TEAM),
        "CDK Provider framework onEvent function of the Studio teardown",
        f"the Lambda API, states:StartExecution of its waiter state machine and {_RESPONSE_URL}",
        f"is invoked asynchronously by CloudFormation for the Custom::StudioTeardown event; {_CFN_ASYNC}",
        f"{_DEPLOY_TIME}, for the stack's single Custom::StudioTeardown resource, and only starts the waiter; "
        f"{_UNRESERVED}",
    ),
    _Function(
        "StudioTeardown/Provider/framework-isComplete/Resource",
        (PLATFORM, TEAM),
        "CDK Provider framework isComplete function of the Studio teardown",
        f"the Lambda API (to invoke the teardown's isComplete handler) and {_RESPONSE_URL}",
        "is invoked synchronously by a Task state of the Provider's waiter state machine, which retries it and "
        "routes a final failure to the onTimeout function",
        "is called one poll at a time, every 30 s, by the waiter state machine of the stack's single "
        f"Custom::StudioTeardown; {_UNRESERVED}",
    ),
    _Function(
        "StudioTeardown/Provider/framework-onTimeout/Resource",
        (PLATFORM, TEAM),
        "CDK Provider framework onTimeout function of the Studio teardown",
        f"{_RESPONSE_URL} only, to report FAILED",
        "is invoked synchronously by the Catch of the waiter state machine when the teardown times out, and "
        "reports FAILED to CloudFormation itself",
        "runs at most once per Custom::StudioTeardown operation, when the waiter state machine gives up; "
        f"{_UNRESERVED}",
    ),
    _Function(
        "Custom::CDKBucketDeployment*/Resource",
        (TEAM,),
        "CDK BucketDeployment function that uploads the experiment pipeline's step scripts",
        f"S3 (from the CDK asset bucket into the team's bucket) and {_RESPONSE_URL}",
        f"is invoked asynchronously by CloudFormation for each Custom::CDKBucketDeployment event; {_CFN_ASYNC}",
        f"{_DEPLOY_TIME}, once per Custom::CDKBucketDeployment event (one per experiment pipeline); {_UNRESERVED}",
    ),
    _Function(
        "DeployOnApproval/DeployFunction/Resource",
        (TEAM,),
        "Deploy-on-approval deploy function",
        "SageMaker (models, endpoint configs, endpoints) and SNS Publish, and SNS has no endpoint in the isolated "
        "VPC",
        "is invoked synchronously by the SQS event source mapping of the FIFO DeployQueue: a failed message returns "
        "to the queue and after maxReceiveCount moves to DeployDeadLetterQueue (alarmed); Lambda never uses a "
        "function DLQ for SQS-polled invocations",
        "takes one batch at a time per FIFO message group, and the group is the use case's registry group, so its "
        "concurrency never exceeds the team's number of use cases; a reserved limit would throttle the SQS pollers "
        "and count throttled receives toward maxReceiveCount",
    ),
    _Function(
        "DeployOnApproval/VerifierFunction/Resource",
        (TEAM,),
        "Deploy-on-approval endpoint verifier",
        "SageMaker (the team's endpoints, endpoint configs and models) and SNS Publish, and SNS has no endpoint in "
        "the isolated VPC",
        "is invoked asynchronously by the EndpointStateChanges EventBridge rule, whose target sends undeliverable "
        "events to FailedEventsQueue, and its EventInvokeConfig (VerifierAsyncInvoke) sends failed invocations to "
        "the same alarmed queue as its on-failure destination, which checkov does not read",
        "runs once per InService or Failed state change of the team's own endpoints (one per use case), a few "
        f"events per deployment; {_UNRESERVED}",
    ),
]


def _outside_vpc(function: _Function) -> str:
    if set(function.stacks) <= {STAGE_PLATFORM, STAGE_TEAM}:
        return f"{function.what} talks only to AWS APIs: {function.calls}. A stage account has no VPC at all."
    return (f"{function.what} talks only to AWS APIs: {function.calls}. It reaches no resource inside the VPC, "
            f"whose isolated subnets reach only {_VPC_REACH}.")


_NO_VPC_ENDPOINT = re.compile(r",? (and \w+ has|most of which have) no endpoint in the isolated VPC$")


def _in_stage_accounts(function: _Function, kind: str) -> _Function:
    """The same function in the stacks of a stage account (`kind`), which have no VPC (nor its endpoints)."""
    calls = _NO_VPC_ENDPOINT.sub("", function.calls)
    if "VPC" in calls:
        raise ValueError(f"say what {function.path} calls without the development account's VPC: {calls!r}")
    return function._replace(stacks=(kind,), what=f"{function.what} of a stage account", calls=calls)


def _function_skips(function: _Function) -> list[CheckovSkip]:
    entries = [
        CheckovSkip(
            function.path,
            LAMBDA_IN_VPC,
            _outside_vpc(function),
            function.stacks,
        )
    ]
    if function.invoked is not None:
        entries.append(CheckovSkip(function.path, LAMBDA_DLQ, f"{function.what} {function.invoked}.", function.stacks))
    if function.concurrency is not None:
        entries.append(
            CheckovSkip(function.path, LAMBDA_CONCURRENCY, f"{function.what} {function.concurrency}.", function.stacks)
        )
    return entries


# The functions of the development account's stacks that a stage account's stacks hold too.
_SERVING_FUNCTIONS = {
    STAGE_PLATFORM: ("IdleEndpointReaper/Function/Resource",),
    STAGE_TEAM: ("DeployOnApproval/DeployFunction/Resource", "DeployOnApproval/VerifierFunction/Resource"),
}

CHECKOV_SKIPS: list[CheckovSkip] = [
    CheckovSkip(
        "AccessLogs/Resource",
        "CKV_AWS_18",
        "This is the server-access-log bucket itself (team buckets log into it); logging it into itself would "
        "loop.",
        (PLATFORM,),
    ),
    CheckovSkip(
        "StudioTeardown/Provider/waiter-state-machine/Role/DefaultPolicy/Resource",
        "CKV_AWS_111",
        "Role of the CDK Provider waiter state machine: CDK attaches Step Functions' documented CloudWatch Logs "
        "delivery policy on '*' (flagged: logs:CreateLogStream, logs:PutLogEvents), exposes no option to narrow "
        "it, and Step Functions delivers the logs to the construct's WaiterLogs group.",
        (PLATFORM, TEAM),
    ),
    CheckovSkip(
        "AccessLogs/Resource",
        "CKV_AWS_18",
        "This is a stage account's server-access-log bucket itself (the teams' capture buckets of the stage log "
        "into it); logging it into itself would loop.",
        (STAGE_PLATFORM,),
    ),
    *[entry for function in _FUNCTIONS for entry in _function_skips(function)],
    *[
        entry
        for function in _FUNCTIONS
        for kind in (STAGE_PLATFORM, STAGE_TEAM)
        if function.path in _SERVING_FUNCTIONS[kind]
        for entry in _function_skips(_in_stage_accounts(function, kind))
    ],
]


def stack_kind(stack: cdk.Stack) -> str | None:
    """One of `STACK_KINDS`; None for any other stack (a test's, say)."""
    from stacks.network_stack import NetworkStack
    from stacks.platform_stack import PlatformStack
    from stacks.stage_stacks import StagePlatformStack, StageTeamStack
    from stacks.team_stack import TeamStack

    for kind, cls in ((NETWORK, NetworkStack), (PLATFORM, PlatformStack), (TEAM, TeamStack),
                      (STAGE_PLATFORM, StagePlatformStack), (STAGE_TEAM, StageTeamStack)):
        if isinstance(stack, cls):
            return kind
    return None


def skips_for(stack: cdk.Stack) -> list[CheckovSkip]:
    kind = stack_kind(stack)
    return [entry for entry in CHECKOV_SKIPS if kind in entry.stacks]


def matching_resources(stack: cdk.Stack, entry: CheckovSkip) -> list[cdk.CfnResource]:
    """The CloudFormation resources below `stack` that `entry` names (none when the config leaves them out)."""
    resources = []
    for construct in _matching_constructs(stack, entry.path):
        resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
        if not isinstance(resource, cdk.CfnResource):
            raise ValueError(
                f"checkov skip {entry.path!r} names {construct.node.path}, which is no CloudFormation resource"
            )
        resources.append(resource)
    return resources


def apply_checkov_skips(stack: cdk.Stack, entries: list[CheckovSkip] | None = None) -> None:
    """Write the skips (by default all of `stack`'s kind) into the metadata of the resources they name."""
    entries = skips_for(stack) if entries is None else entries
    for entry in entries:
        for resource in matching_resources(stack, entry):
            checkov = dict(resource.get_metadata("checkov") or {})
            skips = list(checkov.get("skip", []))
            if not any(skip["id"] == entry.check_id for skip in skips):
                skips.append({"id": entry.check_id, "comment": entry.reason})
            checkov["skip"] = skips
            resource.add_metadata("checkov", checkov)
