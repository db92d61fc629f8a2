"""The IAM authorization requests one AWS API call makes, offline.

``iam_requests(service, operation, params, region=..., account=...)`` answers: which IAM actions does
this call need, on which resource ARN each, with which request context, including the requests AWS
makes with the caller's permissions on the side (``iam:PassRole`` for a role handed to a service, the
tagging action of a create with tags, the KMS calls of an encrypted resource). Every rule comes from
the Service Authorization Reference (`tools.iam.reference`) or, where the reference says nothing, from
a small commented table of documented AWS behaviour below. A call this module cannot map raises
`MappingError`, naming the call: a gap is loud, never a silent ``*``.

- Action: ``<IAM prefix>:<operation>``. The prefix is the botocore model's signingName (else its
  endpointPrefix), with the few differences in `PREFIX_DIFFERENCES`; the action name is the
  operation's unless `ACTION_NAMES` says otherwise, and an entry there must be proven by the
  reference (the action's API documentation link names the operation). The action must exist in the
  reference.
- Resource: ``*`` when the reference lists no required resource type for the action (the reference
  module explains why a proof evaluates it there), except for the few actions of
  `NAMED_RESOURCE_ACTIONS`, which services authorize on the resource the request names. Otherwise one
  request per required resource type, on the ARN built from the type's ARN format: a top-level
  parameter that already is an ARN of the type is used as is, else each ``${Variable}`` comes from the
  parameter of that name or from `VARIABLE_SOURCES`.
- Context: the keys this project's policies condition on (see `_context`).

`Observations` is what a test showed of its resources (tags by ARN, the ARNs of scalable targets, the
VPC of security groups): learned from the calls and responses of a test, read for ``aws:ResourceTag``
and for ARNs the request alone cannot give.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tools.iam.evaluate import Request, resource_matches
from tools.iam.reference import (
    ActionFacts,
    ResourceType,
    UnknownAction,
    _service,
    action_facts,
)


class MappingError(ValueError):
    """An API call that cannot be mapped to IAM requests; the message names the call and its parameters."""


@dataclass
class IamRequest(Request):
    """A `Request` that says why the call needs it (empty for the call's own action)."""

    reason: str = ""


# botocore signingName / endpointPrefix -> IAM service prefix, where they differ.
PREFIX_DIFFERENCES: dict[str, str] = {
    "monitoring": "cloudwatch",  # CloudWatch metrics and alarms: botocore "cloudwatch" signs as "monitoring"
    "tagging": "tag",  # Resource Groups Tagging API
}

# (IAM prefix, operation) -> IAM action name, where they differ. Each entry is checked against the
# reference: the action's api_documentation_link must name the operation (API_<Operation>.html).
ACTION_NAMES: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "ListBucket",  # reference: s3:ListBucket documents API_ListObjectsV2
    ("lambda", "Invoke"): "InvokeFunction",  # reference: lambda:InvokeFunction documents API_Invoke
}

# (IAM prefix, operation) -> (IAM action, words of the reference's description of that action), for services whose
# reference links no per-operation API page (AWS Budgets links only its list of operations): the description must
# contain the words, so the entry is still proven by the reference.
DESCRIBED_ACTION_NAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("budgets", "DescribeBudget"): ("ViewBudget", "view budgets and budget details"),
}

# Actions whose resource types the reference lists as optional only, but which the service authorizes
# on the resource the request names (so a policy may scope them to it): action -> how to read that
# resource's ARN from the parameters (None: the request names no resource, IAM authorizes it on *).
NAMED_RESOURCE_ACTIONS: dict[str, Callable[[dict[str, Any], "_Call"], str | None]] = {
    # SageMaker tags a resource by its ARN and evaluates AddTags/ListTags/DeleteTags on it: the tagging
    # permission of a Create* with Tags is checked on the created resource (the reference lists
    # sagemaker:AddTags as a dependent action of those creates), and policies scope tagging by ARN.
    "sagemaker:AddTags": lambda p, call: p.get("ResourceArn"),
    "sagemaker:DeleteTags": lambda p, call: p.get("ResourceArn"),
    "sagemaker:ListTags": lambda p, call: p.get("ResourceArn"),
    # Systems Manager tags a parameter by (ResourceType, ResourceId) and authorizes on its ARN.
    "ssm:AddTagsToResource": lambda p, call: (
        call.format("arn:${Partition}:ssm:${Region}:${Account}:parameter/" + str(p["ResourceId"]).lstrip("/"))
        if p.get("ResourceType") == "Parameter" and p.get("ResourceId")
        else None
    ),
    # CloudFormation API reference, DescribeStacks/StackName: with a stack named, DescribeStacks is
    # authorized on that stack (its documented Deny with NotResource stack/*/* limits callers to named
    # stacks); without one it describes every stack and needs the action on *.
    "cloudformation:DescribeStacks": lambda p, call: (
        p["StackName"] if str(p.get("StackName", "")).startswith("arn:") else None
    ),
}


def _first(*names: str) -> Callable[[dict[str, Any], "_Call"], str | None]:
    def read(params: dict[str, Any], call: "_Call") -> str | None:
        for name in names:
            if isinstance(params.get(name), str):
                return params[name]
        return None

    return read


# The id of a target a RegisterScalableTarget call creates: Application Auto Scaling makes it up, so only a
# policy on `scalable-target/*` (or `*`) can allow the request; no real id contains parentheses.
NEW_SCALABLE_TARGET_ID = "(new-target)"


def _scalable_target_id(params: dict[str, Any], call: "_Call") -> str | None:
    """The id ending a scalable target's ARN, as the calls of the test showed it (a registration of a target
    the test never showed creates one)."""
    arn = call.observed.scalable_target_arn(
        params.get("ServiceNamespace"), params.get("ResourceId"), params.get("ScalableDimension")
    ) if call.observed is not None else None
    if arn:
        return arn.rsplit("/", 1)[-1]
    return NEW_SCALABLE_TARGET_ID if call.operation == "RegisterScalableTarget" else None


_scalable_target_id.why = (  # type: ignore[attr-defined]
    "a scalable target's ARN ends in an id Application Auto Scaling generates, known only from a "
    "RegisterScalableTarget or DescribeScalableTargets response of the same target, and none was seen"
)


# (action or "<prefix>:*", ARN variable) -> how to read the variable when no parameter has its name.
VARIABLE_SOURCES: dict[tuple[str, str], Callable[[dict[str, Any], "_Call"], str | None]] = {
    # An app of a shared space carries the space's name where the ARN format says UserProfileName.
    ("sagemaker:*", "UserProfileName"): _first("UserProfileName", "SpaceName"),
    ("ec2:*", "SecurityGroupId"): _first("GroupId"),
    ("ssm:*", "ParameterNameWithoutLeadingSlash"): lambda p, call: (
        str(p["Name"]).lstrip("/") if isinstance(p.get("Name"), str) else None
    ),
    ("sns:*", "TopicName"): _first("Name"),
    ("sqs:*", "QueueName"): lambda p, call: (
        p.get("QueueName") or (str(p["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1] if p.get("QueueUrl") else None)
    ),
    ("iam:*", "RoleNameWithPath"): _first("RoleName"),
    ("application-autoscaling:*", "ResourceId"): _scalable_target_id,
    # EventBridge Scheduler names a schedule by Name within GroupName (the API's parameters).
    ("scheduler:*", "ScheduleName"): _first("Name"),
}

# Role ARNs a call passes to a service inside a structure, not as a top-level ``...RoleArn`` parameter:
# (prefix, operation) -> the path to the role. EventBridge Scheduler user guide (set up the execution role):
# whoever creates or updates a schedule needs iam:PassRole on the target's role.
NESTED_ROLE_PARAMETERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("scheduler", "CreateSchedule"): ("Target", "RoleArn"),
    ("scheduler", "UpdateSchedule"): ("Target", "RoleArn"),
}

# Operations that hand a KMS key to the service for the resources it creates for the caller:
# (prefix, operation) -> parameter naming the key. The SageMaker developer guide (endpoint storage
# volume encryption) has the caller need kms:DescribeKey on the key and kms:CreateGrant with
# kms:GrantIsForAWSResource (SageMaker makes the grant for the endpoint's instances on its behalf).
KMS_GRANT_OPERATIONS: dict[tuple[str, str], str] = {
    ("sagemaker", "CreateEndpointConfig"): "KmsKeyId",
}

# Service principal a role is passed to, by IAM prefix of the call (default: <prefix>.amazonaws.com).
PASSED_TO_SERVICE: dict[str, str] = {"sagemaker": "sagemaker.amazonaws.com"}
# Services whose role parameters are not passed to the service (assumed or managed instead).
NO_PASS_ROLE_PREFIXES = frozenset({"sts", "iam"})


# --- observations -----------------------------------------------------------------------------------


def normalize_arn(arn: str) -> str:
    """SageMaker writes the ARNs of named resources in lower case (an endpoint ``MyEndpoint`` is
    ``...:endpoint/myendpoint``) and IAM evaluates the request on that ARN; other ARNs are kept."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sagemaker":
        return ":".join(parts[:5] + [parts[5].lower()])
    return arn


def tags_of_param(value: Any) -> dict[str, str] | None:
    """``[{"Key": k, "Value": v}]`` or ``{k: v}`` as a dict; None when `value` holds no tags."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(t["Key"]): str(t.get("Value", "")) for t in value if isinstance(t, dict) and "Key" in t}
    return None


@dataclass
class Observations:
    """What a test showed of its resources, in call order: tags, scalable target ARNs, security-group VPCs."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    scalable_targets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    security_group_vpcs: dict[str, str] = field(default_factory=dict)

    def tags_of(self, arn: str) -> dict[str, str] | None:
        """The resource's tags as the test last showed them; None when it never did."""
        return self.tags.get(normalize_arn(arn))

    def scalable_target_arn(self, namespace: Any, resource_id: Any, dimension: Any) -> str | None:
        return self.scalable_targets.get((str(namespace), str(resource_id), str(dimension)))

    def vpc_of_security_group(self, arn: str) -> str | None:
        return self.security_group_vpcs.get(arn)

    def learn(
        self,
        service_model_or_name: Any,
        operation_name: str,
        params: dict[str, Any],
        response: dict[str, Any],
        *,
        region: str,
        account: str,
        partition: str = "aws",
    ) -> None:
        """Update from one successful call: creates with tags, tagging calls, tag listings, searches, ..."""
        try:
            prefix = iam_prefix(_model(service_model_or_name))
        except MappingError:
            return
        call = _Call(prefix, operation_name, params, region, account, partition, None)
        tags = tags_of_param(params.get("Tags", params.get("tags")))
        if operation_name.startswith("Create") or (prefix, operation_name) == ("ssm", "PutParameter"):
            arn = _created_resource_arn(call)
            if arn and (tags is not None or not params.get("Overwrite")):
                self.tags[normalize_arn(arn)] = dict(tags or {})
        if prefix == "sagemaker" and operation_name == "AddTags" and params.get("ResourceArn"):
            self.tags.setdefault(normalize_arn(params["ResourceArn"]), {}).update(tags or {})
        if prefix == "sagemaker" and operation_name == "DeleteTags" and params.get("ResourceArn"):
            known = self.tags.setdefault(normalize_arn(params["ResourceArn"]), {})
            for key in params.get("TagKeys", []):
                known.pop(key, None)
        if prefix == "sagemaker" and operation_name == "ListTags" and params.get("ResourceArn"):
            listed = tags_of_param(response.get("Tags", [])) or {}
            key = normalize_arn(params["ResourceArn"])
            if params.get("NextToken"):
                self.tags.setdefault(key, {}).update(listed)
            else:
                self.tags[key] = listed
        if prefix == "sagemaker" and operation_name == "Search":
            for result in response.get("Results", []):
                for record in result.values() if isinstance(result, dict) else []:
                    if not isinstance(record, dict) or "Tags" not in record:
                        continue
                    arns = [v for k, v in record.items() if k.endswith("Arn") and str(v).startswith("arn:")]
                    if len(arns) == 1:
                        self.tags[normalize_arn(arns[0])] = tags_of_param(record["Tags"]) or {}
        if prefix == "application-autoscaling":
            if operation_name == "RegisterScalableTarget" and response.get("ScalableTargetARN"):
                key = tuple(str(params.get(k)) for k in ("ServiceNamespace", "ResourceId", "ScalableDimension"))
                self.scalable_targets[key] = response["ScalableTargetARN"]
                known = self.tags.setdefault(normalize_arn(response["ScalableTargetARN"]), {})
                known.update(tags or {})
            if operation_name == "ListTagsForResource" and params.get("ResourceARN"):
                self.tags[normalize_arn(params["ResourceARN"])] = tags_of_param(response.get("Tags", {})) or {}
            for target in response.get("ScalableTargets", []) if operation_name == "DescribeScalableTargets" else []:
                if target.get("ScalableTargetARN"):
                    key = tuple(str(target.get(k)) for k in ("ServiceNamespace", "ResourceId", "ScalableDimension"))
                    self.scalable_targets[key] = target["ScalableTargetARN"]
        if prefix == "ec2" and operation_name == "DescribeSecurityGroups":
            ec2 = call.format("arn:${Partition}:ec2:${Region}:${Account}:")
            for group in response.get("SecurityGroups", []):
                arn = f"{ec2}security-group/{group['GroupId']}"
                if group.get("VpcId"):
                    self.security_group_vpcs[arn] = f"{ec2}vpc/{group['VpcId']}"
                if "Tags" in group:
                    self.tags[arn] = tags_of_param(group["Tags"]) or {}


# --- the mapping ------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _botocore_model(name: str) -> Any:
    return _session().get_service_model(name)


@lru_cache(maxsize=1)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def _model(service_model_or_name: Any) -> Any:
    return _botocore_model(service_model_or_name) if isinstance(service_model_or_name, str) else service_model_or_name


def iam_prefix(service_model: Any) -> str:
    """The IAM service prefix of a botocore service model."""
    metadata = service_model.metadata
    name = metadata.get("signingName") or metadata.get("endpointPrefix") or service_model.service_name
    prefix = PREFIX_DIFFERENCES.get(name, name)
    try:
        _service(prefix)
    except UnknownAction as error:
        raise MappingError(
            f"botocore service {service_model.service_name!r} (signing name {name!r}) maps to IAM prefix "
            f"{prefix!r}, which the Service Authorization Reference does not know: add it to PREFIX_DIFFERENCES"
        ) from error
    return prefix


def iam_action(service_model_or_name: Any, operation_name: str) -> str:
    """``<prefix>:<Action>`` of an API operation, as the reference spells it; MappingError when it has none."""
    model = _model(service_model_or_name)
    prefix = iam_prefix(model)
    described = DESCRIBED_ACTION_NAMES.get((prefix, operation_name))
    name = described[0] if described else ACTION_NAMES.get((prefix, operation_name), operation_name)
    try:
        facts = action_facts(f"{prefix}:{name}")
    except UnknownAction as error:
        raise MappingError(
            f"{model.service_name}.{operation_name}: no IAM action {prefix}:{name} in the Service Authorization "
            "Reference; if the action has another name, add it to ACTION_NAMES (proven by the reference)"
        ) from error
    privilege = _service(prefix)["privileges"][facts.action.split(":", 1)[1]]
    if described:
        if described[1] not in privilege.get("description", ""):
            raise MappingError(f"DESCRIBED_ACTION_NAMES maps {prefix} {operation_name} to {facts.action}, but the "
                               f"reference describes it as {privilege.get('description')!r}")
    elif name != operation_name:
        link = privilege.get("api_documentation_link", "")
        if not link.endswith(f"API_{operation_name}.html"):
            raise MappingError(
                f"ACTION_NAMES maps {prefix} {operation_name} to {facts.action}, but the reference documents "
                f"that action as {link or 'no API'}"
            )
    return facts.action


@dataclass(frozen=True)
class _Call:
    prefix: str
    operation: str
    params: dict[str, Any]
    region: str
    account: str
    partition: str
    observed: Observations | None

    def format(self, arn_format: str, variables: Mapping[str, str] | None = None) -> str:
        values = {"Partition": self.partition, "Region": self.region, "Account": self.account, **(variables or {})}
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], arn_format)

    def describe(self) -> str:
        return f"{self.prefix} {self.operation}({_short(self.params)})"


def _short(params: dict[str, Any], limit: int = 300) -> str:
    import json

    text = json.dumps(params, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _variables(arn_format: str) -> list[str]:
    return re.findall(r"\$\{([^}]+)\}", arn_format)


def _arn_of_type(call: _Call, action: str, rtype: ResourceType) -> str:
    """The ARN of the request's resource of type `rtype` (MappingError when the request does not give it)."""
    if not rtype.arn_format:
        raise MappingError(f"{call.describe()}: the reference gives no ARN format for {action}'s {rtype.name}")
    pattern = rtype.arn_regex()
    given = sorted({v for v in call.params.values() if isinstance(v, str) and v.startswith("arn:") and pattern.match(v)})
    if len(given) == 1:
        return normalize_arn(given[0])
    if len(given) > 1:
        raise MappingError(f"{call.describe()}: several parameters are ARNs of {rtype.name} for {action}: {given}")
    values: dict[str, str] = {}
    for variable in _variables(rtype.arn_format):
        if variable in ("Partition", "Region", "Account"):
            continue
        source = VARIABLE_SOURCES.get((action, variable)) or VARIABLE_SOURCES.get((f"{call.prefix}:*", variable))
        if source is not None:  # a rule is authoritative: a same-named parameter may mean something else
            value = source(call.params, call)
        else:
            value = call.params[variable] if isinstance(call.params.get(variable), str) else None
        if value is None:
            raise MappingError(
                f"{call.describe()}: cannot derive the {rtype.name} ARN ({rtype.arn_format}) that {action} is "
                f"authorized on: no parameter gives ${{{variable}}} ({getattr(source, 'why', 'add a rule to VARIABLE_SOURCES')})"
            )
        values[variable] = value
    return normalize_arn(call.format(rtype.arn_format, values))


def _created_type(call: _Call, facts: ActionFacts) -> ResourceType | None:
    """The resource type a Create*/Put* operation makes: the one named like the operation's noun."""
    noun = re.sub(r"^(Create|Put)", "", call.operation)
    for rtype in facts.resource_types:
        if "".join(part.capitalize() for part in re.split(r"[-_]", rtype.name)) == noun:
            return rtype
    required = facts.required_types
    return required[0] if len(required) == 1 and call.operation.startswith("Create") else None


def _created_resource_arn(call: _Call) -> str | None:
    try:
        facts = action_facts(f"{call.prefix}:{ACTION_NAMES.get((call.prefix, call.operation), call.operation)}")
        rtype = _created_type(call, facts)
        return _arn_of_type(call, facts.action, rtype) if rtype else None
    except (UnknownAction, MappingError):
        return None


def _tag_context(tags: dict[str, str] | None) -> dict[str, Any]:
    if tags is None:
        return {}
    context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = sorted(tags)
    return context


def _resource_context(call: _Call, resource: str) -> dict[str, Any]:
    """aws:ResourceTag/* of an existing resource the test showed the tags of; ec2:Vpc of a security group."""
    context: dict[str, Any] = {}
    if resource == "*" or call.observed is None:
        return context
    for key, value in (call.observed.tags_of(resource) or {}).items():
        context[f"aws:ResourceTag/{key}"] = value
    vpc = call.observed.vpc_of_security_group(resource)
    if vpc:
        context["ec2:Vpc"] = vpc
    return context


def _context(call: _Call, action: str, tags: dict[str, str] | None) -> dict[str, Any]:
    """Request context keys the action's own request carries (besides the resource's)."""
    context = _tag_context(tags)
    if call.prefix == "servicequotas" and isinstance(call.params.get("ServiceCode"), str):
        context["servicequotas:service"] = call.params["ServiceCode"]
    if call.prefix == "application-autoscaling":
        for key, param in (("service-namespace", "ServiceNamespace"), ("scalable-dimension", "ScalableDimension")):
            if isinstance(call.params.get(param), str):
                context[f"application-autoscaling:{key}"] = call.params[param]
    if action in ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage") and isinstance(
            call.params.get("ModelApprovalStatus"), str):
        context["sagemaker:ModelApprovalStatus"] = call.params["ModelApprovalStatus"]
    if action == "cloudwatch:PutMetricData" and isinstance(call.params.get("Namespace"), str):
        context["cloudwatch:namespace"] = call.params["Namespace"]
    return context


def _key_arn(call: _Call, key: str) -> str:
    if key.startswith("arn:") and ":key/" in key:
        return key
    if key.startswith("alias/") or ":alias/" in key:
        raise MappingError(f"{call.describe()}: KMS key given by alias {key!r}: which key it names is not known offline")
    return call.format("arn:${Partition}:kms:${Region}:${Account}:key/" + key)


def topic_key_requests(topic_arn: str, topic_keys: Mapping[str, str]) -> list[IamRequest]:
    """The KMS requests of a Publish to an encrypted topic (SNS developer guide, server-side encryption:
    a publisher needs kms:GenerateDataKey and kms:Decrypt on the topic's key); `topic_keys` maps topic
    ARN patterns to key ARNs."""
    keys = sorted({key for pattern, key in topic_keys.items() if resource_matches(pattern, topic_arn)})
    reason = f"SNS encrypts messages to {topic_arn} with this key using the publisher's permissions"
    return [IamRequest(action, key, reason=reason) for key in keys for action in ("kms:GenerateDataKey", "kms:Decrypt")]


# SageMaker developer guide, "Deploy a model version from a different account": a caller of another account names
# the registry's versions by ARN, and the registry account's group policy must allow ListModelPackages and CreateModel
# on the group's versions (``model-package/<group>/*``), which the reference lists as no (List) or other (CreateModel:
# model only) resource types of these actions. So a ListModelPackages naming another account's group is authorized
# there instead of on *, and a CreateModel from another account's version also on that version.
_GROUP_ARN = re.compile(r"^arn:(?P<partition>[^:]+):sagemaker:(?P<region>[^:]+):(?P<account>\d{12}):model-package-group/(?P<group>.+)$")
_VERSION_ARN = re.compile(r"^arn:[^:]+:sagemaker:[^:]+:(?P<account>\d{12}):model-package/[^/]+/\d+$")


def _cross_account_registry_requests(call: _Call, requests: list[IamRequest]) -> list[IamRequest]:
    if call.operation == "ListModelPackages":
        group = _GROUP_ARN.match(str(call.params.get("ModelPackageGroupName", "")))
        if group and group["account"] != call.account:
            versions = (f"arn:{group['partition']}:sagemaker:{group['region']}:{group['account']}:"
                        f"model-package/{group['group']}/*")
            reason = "a ListModelPackages of another account's group is authorized on the group's versions there"
            return [IamRequest(r.action, versions, r.context, reason=reason) if r.resource == "*" else r
                    for r in requests]
    if call.operation == "CreateModel":
        containers = list(call.params.get("Containers") or []) + [call.params.get("PrimaryContainer") or {}]
        for container in containers:
            version = str(container.get("ModelPackageName", "")) if isinstance(container, dict) else ""
            match = _VERSION_ARN.match(version)
            if match and match["account"] != call.account:
                requests = requests + [IamRequest("sagemaker:CreateModel", version, reason=(
                    "a model created from another account's version is authorized on that version there too"))]
    return requests


def iam_requests(
    service_model_or_name: Any,
    operation_name: str,
    params: dict[str, Any],
    *,
    region: str,
    account: str,
    partition: str = "aws",
    observed: Observations | None = None,
    topic_keys: Mapping[str, str] | None = None,
) -> list[IamRequest]:
    """Every IAM request the call ``<service>.<operation>(**params)`` needs, its own action first.

    `observed` gives the tags of existing resources (``aws:ResourceTag/*``) and the ARNs a request
    cannot give itself; `topic_keys` (topic ARN pattern -> key ARN) the keys of encrypted topics.
    """
    model = _model(service_model_or_name)
    action = iam_action(model, operation_name)
    facts = action_facts(action)
    call = _Call(iam_prefix(model), operation_name, dict(params), region, account, partition, observed)
    tags = tags_of_param(params.get("Tags", params.get("tags")))

    if action in NAMED_RESOURCE_ACTIONS:
        named = NAMED_RESOURCE_ACTIONS[action](call.params, call)
        resources = [normalize_arn(named) if named else "*"]
    elif facts.authorized_on_star:
        resources = ["*"]
    elif facts.required_types:
        resources = [_arn_of_type(call, action, rtype) for rtype in facts.required_types]
    else:
        resources = [_one_of_the_optional_types(call, action, facts)]

    own = _context(call, action, tags)
    # The resource a Create* makes has no tags yet: aws:ResourceTag/* only for the resources that exist.
    created = _created_resource_arn(call) if operation_name.startswith("Create") else None
    requests = [
        IamRequest(action, r, {**own, **({} if r == created else _resource_context(call, r))}) for r in resources
    ]
    if call.prefix == "sagemaker":
        requests = _cross_account_registry_requests(call, requests)
    requests += _pass_role_requests(call, facts)
    requests += _tagging_requests(call, facts, tags, resources)
    requests += _kms_grant_requests(call)
    if call.prefix == "sns" and operation_name == "Publish" and topic_keys is not None:
        topic = params.get("TopicArn") or params.get("TargetArn")
        if topic:
            requests += topic_key_requests(topic, topic_keys)
    if (call.prefix, operation_name) == ("ssm", "PutParameter") and tags:
        # Systems Manager user guide (tagging parameters): creating a parameter with tags also needs
        # ssm:AddTagsToResource on it.
        arn = _arn_of_type(call, action, facts.required_types[0])
        requests.append(
            IamRequest("ssm:AddTagsToResource", arn, _tag_context(tags), reason="PutParameter with Tags tags the parameter")
        )
    return requests + _dependent_requests(call, facts, requests, tags)


def _one_of_the_optional_types(call: _Call, action: str, facts: ActionFacts) -> str:
    """Several optional resource types (``s3:GetObject``: object or access point): the request names one."""
    problems = []
    for rtype in facts.resource_choices:
        try:
            return _arn_of_type(call, action, rtype)
        except MappingError as error:
            problems.append(str(error))
    raise MappingError(f"{action}: no resource of types {[t.name for t in facts.resource_choices]} "
                       f"derivable from {call.operation}({sorted(call.params)}): {problems}")


def _pass_role_requests(call: _Call, facts: ActionFacts) -> list[IamRequest]:
    """iam:PassRole on every role ARN given in a top-level ``...RoleArn`` parameter (IAM user guide: a
    service that acts with a role the caller names checks the caller's iam:PassRole on it)."""
    if call.prefix in NO_PASS_ROLE_PREFIXES:
        return []
    service = PASSED_TO_SERVICE.get(call.prefix, f"{call.prefix}.amazonaws.com")
    requests = []
    nested = NESTED_ROLE_PARAMETERS.get((call.prefix, call.operation))
    if nested is not None:
        value: Any = call.params
        for part in nested:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            requests.append(IamRequest("iam:PassRole", value, {"iam:PassedToService": service},
                                       reason=f"{call.operation} passes {'.'.join(nested)} to {service}"))
    for name, value in sorted(call.params.items()):
        if name.lower().endswith("rolearn") and isinstance(value, str) and re.match(r"arn:[^:]+:iam::\d*:role/", value):
            requests.append(
                IamRequest(
                    "iam:PassRole",
                    value,
                    {"iam:PassedToService": service},
                    reason=f"{call.operation} passes {name} to {service}",
                )
            )
    return requests


TAGGING_ACTION_NAMES = frozenset({"AddTags", "TagResource", "CreateTags", "AddTagsToResource"})


def _tagging_requests(call: _Call, facts: ActionFacts, tags: dict[str, str] | None, own: list[str]) -> list[IamRequest]:
    """The tagging action the reference lists as a dependent action of the call (``sagemaker:AddTags`` of
    the SageMaker creates, ``application-autoscaling:TagResource`` of RegisterScalableTarget, ...), when
    the call carries Tags: requested on the resource the call creates, else on the call's own resource."""
    if not tags:
        return []
    requests = []
    for dependent in facts.dependent_actions:
        if dependent.split(":", 1)[1] not in TAGGING_ACTION_NAMES:
            continue
        rtype = _created_type(call, facts) if call.operation.startswith("Create") else None
        if rtype is not None:  # the resource the call creates has no tags of its own yet
            requests.append(IamRequest(dependent, _arn_of_type(call, facts.action, rtype), _tag_context(tags),
                                       reason=f"{call.operation} with Tags tags the {rtype.name} it creates"))
            continue
        if call.operation.startswith("Create") and facts.resource_types:
            raise MappingError(f"{call.describe()}: which resource type {facts.action} creates is unknown (for its {dependent})")
        requests += [
            IamRequest(dependent, r, {**_tag_context(tags), **_resource_context(call, r)},
                       reason=f"{call.operation} with Tags tags {r}")
            for r in own
        ]
    return requests


# Dependent actions the reference lists for an action that this call does not need, with the reason; every
# other dependent action must be requested by the mapping (MappingError otherwise), so a companion request
# AWS makes on the caller's permissions is never silently left out.
DEPENDENT_ACTIONS_NOT_REQUESTED: dict[str, str] = {
    # Service Quotas lists the limit-reading actions of the services whose quotas it reads on the caller's
    # behalf (EC2 Auto Scaling, CloudFormation, DynamoDB, ELB, IAM, Kinesis, RDS, Route 53): SageMaker is
    # not among them, and the platform reads only SageMaker quotas (ServiceCode is checked below).
    **{f"servicequotas:{action}->{dependent}": "only for the quotas of that dependent's service"
       for action in ("GetServiceQuota", "ListServiceQuotas", "ListAWSDefaultServiceQuotas", "GetAWSDefaultServiceQuota")
       for dependent in ("autoscaling:DescribeAccountLimits", "cloudformation:DescribeAccountLimits",
                         "dynamodb:DescribeLimits", "elasticloadbalancing:DescribeAccountLimits",
                         "iam:GetAccountSummary", "kinesis:DescribeLimits", "rds:DescribeAccountAttributes",
                         "route53:GetAccountLimit")},
    # AWS Budgets: reading a budget's data through its billing view needs the view's permission; the
    # platform's budgets (stacks/constructs/budget.py) name no BillingViewArn, so there is no view to read.
    "budgets:DescribeBudget->billing:GetBillingViewData": "the budgets the platform reads have no billing view",
}


def _dependent_requests(call: _Call, facts: ActionFacts, requests: list[IamRequest],
                        tags: dict[str, str] | None) -> list[IamRequest]:
    """The dependent actions of the call not yet requested: one on ``*`` for each the reference authorizes
    only there (``cloudformation:ListStacks`` of DescribeStacks); MappingError for one that is neither
    requested, nor needed by this call, nor authorized on ``*``."""
    requested = {r.action.lower() for r in requests}
    extra = []
    for dependent in facts.dependent_actions:
        if dependent.lower() in requested:
            continue
        name = dependent.split(":", 1)[1]
        if name in TAGGING_ACTION_NAMES and not tags:
            continue  # a tagging dependency applies to a call with tags only
        if dependent == "iam:PassRole" and not _passes_a_role(call):
            continue
        if f"{call.prefix}:{call.operation}->{dependent}" in DEPENDENT_ACTIONS_NOT_REQUESTED:
            continue
        try:
            on_star = action_facts(dependent).authorized_on_star
        except UnknownAction:
            on_star = False
        if on_star:
            extra.append(IamRequest(dependent, "*", {}, reason=f"the reference lists it as a dependent action of {facts.action}"))
            continue
        raise MappingError(
            f"{call.describe()}: the Service Authorization Reference lists {dependent} as a dependent action of "
            f"{facts.action}, and the mapping neither requests it nor says why this call does not need it "
            "(DEPENDENT_ACTIONS_NOT_REQUESTED)"
        )
    return extra


def _passes_a_role(call: _Call) -> bool:
    return any(name.lower().endswith("rolearn") and isinstance(value, str) for name, value in call.params.items()) or (
        (call.prefix, call.operation) in NESTED_ROLE_PARAMETERS
    )


def _kms_grant_requests(call: _Call) -> list[IamRequest]:
    parameter = KMS_GRANT_OPERATIONS.get((call.prefix, call.operation))
    key = call.params.get(parameter) if parameter else None
    if not key:
        return []
    arn = _key_arn(call, str(key))
    why = f"{call.operation} encrypts with {parameter}"
    return [
        IamRequest("kms:DescribeKey", arn, {}, reason=why),
        IamRequest("kms:CreateGrant", arn, {"kms:GrantIsForAWSResource": "true"}, reason=why + " (a grant for the service)"),
    ]
