"""Synthesized templates as one account would see them once deployed: intrinsics resolved to concrete values.

``World(templates, account=..., region=..., environments={stack: (account, region)})`` resolves ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::ImportValue`` (across the given templates), ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``,
``Fn::GetAZs``, ``Fn::If`` and the pseudo parameters, each stack in its own environment (account and
region: `environments`, by default the world's `account` and `region` for every stack). Names CloudFormation generates (a resource without
an explicit name property) become ``<stack>-<logicalId>-<12 characters>`` as CloudFormation makes them,
``<LogicalId>`` with ``generated_names="placeholder"`` (for documents), or ``*`` with
``generated_names="wildcard"``: then a policy that names such a resource matches any
resource of that type in the account and region, which is what a proof needs when the other side (a
handler test) uses a name of its own.

It also answers which policies apply to a principal: the identity policies of a role (inline,
``AWS::IAM::Policy`` and customer-managed ``AWS::IAM::ManagedPolicy`` attached to it), the role of a
function, and the resource policies (topic, queue, bucket, key) that cover an ARN.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Templates = dict[str, dict[str, Any]]
GeneratedNames = Literal["concrete", "wildcard", "placeholder"]

# Resource type -> (name property, how Ref resolves, {attribute: how it resolves}). Formats see
# {p} partition, {r} region, {a} account, {n} the physical name, {u} the URL suffix.
_TYPES: dict[str, tuple[str | None, str, dict[str, str]]] = {
    "AWS::IAM::Role": ("RoleName", "{n}", {"Arn": "arn:{p}:iam::{a}:role/{n}", "RoleId": "AROA{n}"}),
    "AWS::IAM::Policy": ("PolicyName", "{n}", {}),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", "arn:{p}:iam::{a}:policy/{n}", {}),
    "AWS::Lambda::Function": ("FunctionName", "{n}", {"Arn": "arn:{p}:lambda:{r}:{a}:function:{n}"}),
    "AWS::Lambda::LayerVersion": (None, "arn:{p}:lambda:{r}:{a}:layer:{n}:1", {}),
    "AWS::Logs::LogGroup": ("LogGroupName", "{n}", {"Arn": "arn:{p}:logs:{r}:{a}:log-group:{n}:*"}),
    "AWS::SNS::Topic": (
        "TopicName",
        "arn:{p}:sns:{r}:{a}:{n}",
        {"TopicArn": "arn:{p}:sns:{r}:{a}:{n}", "TopicName": "{n}"},
    ),
    "AWS::SQS::Queue": (
        "QueueName",
        "https://sqs.{r}.{u}/{a}/{n}",
        {"Arn": "arn:{p}:sqs:{r}:{a}:{n}", "QueueName": "{n}", "QueueUrl": "https://sqs.{r}.{u}/{a}/{n}"},
    ),
    "AWS::KMS::Key": (None, "{n}", {"Arn": "arn:{p}:kms:{r}:{a}:key/{n}", "KeyId": "{n}"}),
    "AWS::KMS::Alias": ("AliasName", "{n}", {}),
    "AWS::S3::Bucket": (
        "BucketName",
        "{n}",
        {
            "Arn": "arn:{p}:s3:::{n}",
            "DomainName": "{n}.s3.{u}",
            "RegionalDomainName": "{n}.s3.{r}.{u}",
        },
    ),
    "AWS::CloudWatch::Alarm": ("AlarmName", "{n}", {"Arn": "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}"}),
    "AWS::Events::Rule": ("Name", "{n}", {"Arn": "arn:{p}:events:{r}:{a}:rule/{n}"}),
    "AWS::SageMaker::ModelPackageGroup": (
        "ModelPackageGroupName",
        "arn:{p}:sagemaker:{r}:{a}:model-package-group/{n}",
        {"ModelPackageGroupArn": "arn:{p}:sagemaker:{r}:{a}:model-package-group/{n}"},
    ),
    "AWS::SageMaker::Pipeline": ("PipelineName", "{n}", {}),
    # Ref and Arn are the App's ARN, which ends in a generated App id (not its Name).
    "AWS::SageMaker::MlflowApp": (
        None,
        "arn:{p}:sagemaker:{r}:{a}:mlflow-app/app-{n}",
        {"Arn": "arn:{p}:sagemaker:{r}:{a}:mlflow-app/app-{n}", "MlflowAppId": "app-{n}"},
    ),
    "AWS::SageMaker::Domain": (
        None,
        "arn:{p}:sagemaker:{r}:{a}:domain/d-{n}",
        {"DomainId": "d-{n}", "DomainArn": "arn:{p}:sagemaker:{r}:{a}:domain/d-{n}"},
    ),
    "AWS::StepFunctions::StateMachine": (
        "StateMachineName",
        "arn:{p}:states:{r}:{a}:stateMachine:{n}",
        {"Arn": "arn:{p}:states:{r}:{a}:stateMachine:{n}", "Name": "{n}"},
    ),
    "AWS::EC2::VPC": (None, "vpc-{n}", {}),
    "AWS::EC2::Subnet": (None, "subnet-{n}", {}),
    "AWS::EC2::SecurityGroup": (None, "sg-{n}", {"GroupId": "sg-{n}"}),
}
PSEUDO_URL_SUFFIX = "amazonaws.com"


class ResolveError(ValueError):
    """An intrinsic the world cannot resolve (names the stack and the expression)."""


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    type: str
    properties: dict[str, Any]


class World:
    """The deployed picture of a set of stacks: each in its stack environment, by default one account and region.

    `account` and `region` are the environment of every stack that `environments` (stack name ->
    (account, region)) does not name; ``AWS::AccountId``, ``AWS::Region``, ``AWS::StackId``,
    ``Fn::GetAZs`` and the ARNs, queue URLs and stack ids of a stack's resources use its environment.
    """

    def __init__(
        self,
        templates: Templates,
        *,
        account: str = "123456789012",
        region: str = "us-east-1",
        partition: str = "aws",
        generated_names: GeneratedNames = "concrete",
        environments: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.templates = templates
        self.account = account
        self.region = region
        self.environments = dict(environments or {})
        unknown = sorted(set(self.environments) - set(templates))
        if unknown:
            raise ResolveError(f"environments name stacks that are not among the templates: {', '.join(unknown)}")
        self.partition = partition
        self.generated_names = generated_names
        self._exports: dict[str, tuple[str, Any]] = {}
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export")
                if export:
                    self._exports[self.resolve(stack, export["Name"])] = (stack, output["Value"])

    # --- environments ----------------------------------------------------------------------------

    def environment(self, stack: str) -> tuple[str, str]:
        """(account, region) `stack` is deployed to."""
        return self.environments.get(stack, (self.account, self.region))

    def account_of(self, stack: str) -> str:
        return self.environment(stack)[0]

    def region_of(self, stack: str) -> str:
        return self.environment(stack)[1]

    def bucket_account(self, arn: str) -> str | None:
        """The account of the stack whose bucket `arn` (a bucket or object ARN, which carry no account)
        names; None when no bucket of the world has that name. A generated name that is ``*`` in the
        wildcard world matches any bucket name."""
        match = re.fullmatch(r"arn:[^:]+:s3:::([^/]+)(?:/.*)?", arn, re.DOTALL)
        if not match:
            return None
        accounts = {
            self.account_of(res.stack)
            for res in self.resources("AWS::S3::Bucket")
            if _name_matches(self.physical_name(res.stack, res.logical_id), match.group(1))
        }
        return accounts.pop() if len(accounts) == 1 else None

    # --- resources -------------------------------------------------------------------------------

    def resources(self, resource_type: str | None = None) -> Iterator[Resource]:
        for stack, template in self.templates.items():
            for logical_id, body in template.get("Resources", {}).items():
                if resource_type is None or body.get("Type") == resource_type:
                    yield Resource(stack, logical_id, body["Type"], body.get("Properties", {}))

    def resource(self, stack: str, logical_id: str) -> Resource:
        try:
            body = self.templates[stack]["Resources"][logical_id]
        except KeyError as error:
            raise ResolveError(f"{stack}: no resource {logical_id!r}") from error
        return Resource(stack, logical_id, body["Type"], body.get("Properties", {}))

    def physical_name(self, stack: str, logical_id: str) -> str:
        """The resource's name: its name property, or what CloudFormation would generate."""
        res = self.resource(stack, logical_id)
        name_property = _TYPES.get(res.type, (None,))[0]
        if name_property and name_property in res.properties:
            return str(self.resolve(stack, res.properties[name_property]))
        if self.generated_names == "wildcard":
            return "*"
        if self.generated_names == "placeholder":
            return "<" + re.sub(r"[0-9A-F]{8}$", "", logical_id) + ">"
        suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12].upper()
        if res.type == "AWS::S3::Bucket":
            return f"{stack}-{logical_id}-{suffix}".lower()[:63]
        if res.type in ("AWS::KMS::Key", "AWS::SageMaker::Domain") or res.type.startswith("AWS::EC2::"):
            return suffix.lower()
        name = f"{stack}-{logical_id}"[:64 - 13] + f"-{suffix}"
        if res.type == "AWS::SQS::Queue" and res.properties.get("FifoQueue"):
            name += ".fifo"
        return name

    def ref(self, stack: str, logical_id: str) -> str:
        res = self.resource(stack, logical_id)
        form = _TYPES.get(res.type, (None, "{n}", {}))[1]
        return self._format(stack, form, self.physical_name(stack, logical_id))

    def get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        res = self.resource(stack, logical_id)
        forms = _TYPES.get(res.type, (None, "{n}", {}))[2]
        if attribute in forms:
            return self._format(stack, forms[attribute], self.physical_name(stack, logical_id))
        return f"<{logical_id}.{attribute}>"

    def arn(self, stack: str, logical_id: str) -> str:
        """The ARN of a resource (its ``Arn``-like attribute, or Ref where Ref is the ARN)."""
        res = self.resource(stack, logical_id)
        forms = _TYPES.get(res.type, (None, "{n}", {}))
        for attribute in ("Arn", "TopicArn", "ModelPackageGroupArn", "DomainArn"):
            if attribute in forms[2]:
                return self.get_att(stack, logical_id, attribute)
        if forms[1].startswith("arn:"):
            return self.ref(stack, logical_id)
        raise ResolveError(f"{stack}/{logical_id} ({res.type}) has no ARN form here")

    def _format(self, stack: str, form: str, name: str) -> str:
        account, region = self.environment(stack)
        return form.format(p=self.partition, r=region, a=account, n=name, u=PSEUDO_URL_SUFFIX)

    # --- intrinsics ------------------------------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        """`value` with every intrinsic function resolved (lists and dicts recursively)."""
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value if not _is_no_value(v)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(stack, arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(stack, logical_id, self.resolve(stack, attribute))
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(stack, parts))
            if key == "Fn::Sub":
                return self._sub(stack, arg)
            if key == "Fn::ImportValue":
                name = self.resolve(stack, arg)
                if name not in self._exports:
                    raise ResolveError(f"{stack}: import {name!r} is exported by none of the templates")
                source, exported = self._exports[name]
                return self.resolve(source, exported)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(stack, items)[int(self.resolve(stack, index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(stack, text)).split(separator)
            if key == "Fn::FindInMap":
                mapping, first, second = (self.resolve(stack, a) for a in arg)
                return self.templates[stack]["Mappings"][mapping][first][second]
            if key == "Fn::GetAZs":
                return [f"{self.region_of(stack)}{zone}" for zone in "abc"]
            if key == "Fn::If":
                condition, when_true, when_false = arg
                chosen = when_true if self.condition(stack, condition) else when_false
                return None if _is_no_value(chosen) else self.resolve(stack, chosen)
            if key == "Fn::Base64":
                return self.resolve(stack, arg)
        return {k: self.resolve(stack, v) for k, v in value.items() if not _is_no_value(v)}

    def condition(self, stack: str, name_or_expression: Any) -> bool:
        expression = name_or_expression
        if isinstance(name_or_expression, str):
            expression = self.templates[stack].get("Conditions", {})[name_or_expression]
        (key, arg), = expression.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(stack, a) for a in arg)
            return left == right
        if key == "Fn::Or":
            return any(self.condition(stack, a) for a in arg)
        if key == "Fn::And":
            return all(self.condition(stack, a) for a in arg)
        if key == "Fn::Not":
            return not self.condition(stack, arg[0])
        if key == "Condition":
            return self.condition(stack, arg)
        raise ResolveError(f"{stack}: unknown condition function {key}")

    def _ref(self, stack: str, name: str) -> Any:
        account, region = self.environment(stack)
        pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": PSEUDO_URL_SUFFIX,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{region}:{account}:stack/{stack}/id",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.templates[stack].get("Parameters", {}):
            return self.templates[stack]["Parameters"][name].get("Default", f"<{name}>")
        return self.ref(stack, name)

    def _sub(self, stack: str, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        values = {k: self.resolve(stack, v) for k, v in variables.items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(stack, logical_id, attribute)
            return str(self._ref(stack, name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # --- principals and policies -----------------------------------------------------------------

    def function_role(self, stack: str, function_logical_id: str) -> str:
        """Logical id of the role a Lambda function runs as."""
        role = self.resource(stack, function_logical_id).properties["Role"]
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            return role["Fn::GetAtt"][0]
        raise ResolveError(f"{stack}/{function_logical_id}: role is not a role of the same stack: {role}")

    def role_statements(self, stack: str, role_logical_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement of a role, resolved, each tagged with ``_Policy`` (its source)."""
        role = self.resource(stack, role_logical_id)
        if role.type != "AWS::IAM::Role":
            raise ResolveError(f"{stack}/{role_logical_id} is a {role.type}, not a role")
        statements: list[dict[str, Any]] = []
        for policy in role.properties.get("Policies", []):
            statements += self._statements(stack, policy["PolicyDocument"], f"{role_logical_id}/{policy['PolicyName']}")
        ref = {"Ref": role_logical_id}
        for res in self.resources():
            if res.stack != stack or res.type not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            if ref in res.properties.get("Roles", []):
                statements += self._statements(stack, res.properties["PolicyDocument"], res.logical_id)
        managed = [self.resolve(stack, arn) for arn in role.properties.get("ManagedPolicyArns", [])]
        for arn in managed:
            for res in self.resources("AWS::IAM::ManagedPolicy"):
                if self.ref(res.stack, res.logical_id) == arn:
                    statements += self._statements(res.stack, res.properties["PolicyDocument"], res.logical_id)
        return statements

    def aws_managed_policies(self, stack: str, role_logical_id: str) -> list[str]:
        """ARNs of AWS-managed policies attached to a role (their text is not in the templates)."""
        role = self.resource(stack, role_logical_id)
        arns = [self.resolve(stack, arn) for arn in role.properties.get("ManagedPolicyArns", [])]
        return [arn for arn in arns if ":iam::aws:policy/" in arn]

    def resource_statements(self, arn: str) -> list[dict[str, Any]]:
        """Statements of every topic, queue, bucket, key, model package group or event bus policy in the world that
        covers `arn` (in the wildcard world a generated name, ``*``, covers any name)."""
        statements: list[dict[str, Any]] = []
        for res in self.resources():
            covered: list[str] = []
            document = None
            if res.type == "AWS::SNS::TopicPolicy":
                covered = self.resolve(res.stack, res.properties.get("Topics", []))
                document = res.properties["PolicyDocument"]
            elif res.type == "AWS::SQS::QueuePolicy":
                urls = self.resolve(res.stack, res.properties.get("Queues", []))
                covered = [_queue_arn_of_url(url, self.partition) for url in urls]
                document = res.properties["PolicyDocument"]
            elif res.type == "AWS::S3::BucketPolicy":
                bucket = self.resolve(res.stack, res.properties["Bucket"])
                covered = [f"arn:{self.partition}:s3:::{bucket}"]
                document = res.properties["PolicyDocument"]
                if arn.startswith(covered[0] + "/"):
                    covered.append(arn)
            elif res.type == "AWS::KMS::Key":
                covered = [self.arn(res.stack, res.logical_id)]
                document = res.properties.get("KeyPolicy")
            elif res.type == "AWS::SageMaker::ModelPackageGroup":
                # A group's policy governs the group and its versions, model-package/<group>/<version>.
                group = self.arn(res.stack, res.logical_id)
                covered = [group]
                document = res.properties.get("ModelPackageGroupPolicy")
                versions = group.replace(":model-package-group/", ":model-package/", 1) + "/"
                if arn.startswith(versions):
                    covered.append(arn)
            elif res.type == "AWS::Events::EventBusPolicy":
                account, region = self.environment(res.stack)
                name = self.resolve(res.stack, res.properties.get("EventBusName", "default"))
                covered = [f"arn:{self.partition}:events:{region}:{account}:event-bus/{name}"]
                statement = res.properties.get("Statement")
                document = {"Statement": [statement]} if statement else res.properties.get("Policy")
            if document is not None and any(self._covers(c, arn) for c in covered):
                statements += self._statements(res.stack, document, res.logical_id)
        return statements

    def _covers(self, covered: str, arn: str) -> bool:
        if covered == arn:
            return True
        return self.generated_names == "wildcard" and "*" in covered and _name_matches(covered, arn)

    def _statements(self, stack: str, document: dict[str, Any], source: str) -> list[dict[str, Any]]:
        raw = document.get("Statement", [])
        raw = raw if isinstance(raw, list) else [raw]
        return [{**self.resolve(stack, s), "_Policy": f"{stack}/{source}"} for s in raw]

    def role_arn(self, stack: str, role_logical_id: str) -> str:
        return self.get_att(stack, role_logical_id, "Arn")


def _name_matches(pattern: str, name: str) -> bool:
    """A physical name (``*`` wildcards of the wildcard world) against a concrete name."""
    return re.fullmatch("".join(".*" if c == "*" else re.escape(c) for c in pattern), name) is not None


def _is_no_value(value: Any) -> bool:
    return value == {"Ref": "AWS::NoValue"}


def _queue_arn_of_url(url: str, partition: str) -> str:
    match = re.fullmatch(r"https://sqs\.([^.]+)\.[^/]+/(\d+)/(.+)", url)
    if not match:
        return url
    region, account, name = match.groups()
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def describe(statement: dict[str, Any]) -> str:
    """One line naming a statement: its policy and Sid."""
    sid = statement.get("Sid", "(no Sid)")
    return f"{statement.get('_Policy', '?')}#{sid}"


def dumps(statement: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in statement.items() if not k.startswith("_")}, sort_keys=True)
