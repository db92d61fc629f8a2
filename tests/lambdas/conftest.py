"""Permission sufficiency of the handlers, offline: every AWS request handler code makes in any test of
this folder must be allowed by the identity policies of the role of the function that runs that code,
joined with the resource policy (bucket, key, topic or queue policy) the templates give its resource.

How: an autouse fixture wraps ``botocore.client.BaseClient._make_api_call`` for the test, so every API
call of every client is seen, however the client was made (by the test, by moto, under a botocore
Stubber, cached by ``lambdas/common/clients.py`` in an earlier test). A call is ATTRIBUTED to a handler
when the innermost frame of this repository on the Python stack (library frames, this file and
``lambdas/common`` skipped) is in ``lambdas/<folder>/``; a call made by test code, even one a test hook
makes while a handler call is under way, is not, nor is one made under ``tools/restore_endpoint.py`` or
``tools/quota_report.py`` (operators run those with their own credentials). Every call, attributed or
not, teaches `tools.iam.requests.Observations` what the test showed of its resources (tags of creates
with Tags, AddTags, ListTags and Search results; scalable target ARNs; security-group VPCs), which gives
``aws:ResourceTag/*`` as it stood at the time of each handler call. After the test body has passed,
each attributed call is mapped to its IAM requests (`tools.iam.requests.iam_requests`, plus the KMS
requests of publishing to a topic whose key the templates name) and evaluated against the role(s) in
`FUNCTIONS` with `tools.iam.evaluate.evaluate_access`: the role's identity policies and, where the world
knows one for the resource (`World.resource_statements`), the resource's policy, as IAM joins them (same
account: an allow of either side, a key policy that admits the caller or delegates to its account; another
account: both sides; an explicit deny of either side wins). A request no role is allowed fails the test
with one message that names each call, action, resource and role.

The world is ``tests/lambdas/iam_world.yaml`` (the names the tests use, account 123456789012,
us-east-1), synthesized once per test run (xdist workers share it) and resolved by `tools.iam.template.World`
with ``generated_names="wildcard"``: a resource without an explicit name (the team's alert topic, the
platform key, the model execution role, the queues) becomes ``*`` in its ARN, because the tests use
ARNs of their own for them (``mlp-fraud-alerts``, ``key/1234abcd-...``, ``role/mlp-fraud-model-execution``).

What a passing test proves: each request the handler made in that test, as mapped, is allowed by its
function's synthesized identity policies and the synthesized policy of its resource (explicit Denies of
both included) for the resource names the test used, with every generated name standing for any resource
of its type in the account and region (so the policies of every such resource apply to the test's one).

What it cannot prove:
- that the test's ARN for a generated-name resource is the one the function is configured with: a
  policy on "the team's topic" accepts any topic of the account here (the function's environment, not
  its policy, is what points it at the right one);
- anything an SCP, RCP, permission boundary, session policy, VPC endpoint policy or KMS grant decides,
  and the policy of a resource the templates do not make (its identity policies alone decide then);
- code paths no test runs, and requests AWS makes that `tools.iam.requests` does not model (it models
  the call's own action, iam:PassRole, tag-on-create, the KMS grant of encrypted endpoint configs and
  the KMS use of encrypted topics, tagging of new SSM parameters);
- condition keys the mapping does not set (aws:SourceIp, kms:ViaService, ...) are absent from every
  request, so a statement conditioned on them is judged as IAM would judge a request without them;
- resource tags beyond what the test showed (`ASSUMED_TAGS` and `NFS_SECURITY_GROUP` give the few that
  stubbed tests imply without showing them).

Two adjustments make the wildcard world match the tests, both confined to this file:
- ``AWS::StackId`` ends in an id CloudFormation generates, so in the wildcard world it ends in ``*``;
  and a generated name inside a ``StringEquals`` condition (e.g. the domain ARN that SageMaker's tag on
  its NFS security groups must equal) would compare the literal ``*``: those values compare as
  ``StringLike``, the meaning the wildcard has in a Resource;
- the tests' CloudFormation StackId names account 111122223333 (`FIXTURE_ACCOUNTS`); a custom-resource
  event always names a stack of the function's own account, so CloudFormation stack ARNs of those
  accounts (and no other ARN) are read in the world's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

try:
    import fcntl
except ImportError:  # not POSIX: each xdist worker synthesizes its own world
    fcntl = None

from tools.iam.evaluate import Decision, Request, evaluate, evaluate_access, resource_matches, statement_applies
from tools.iam.requests import (
    IamRequest,
    MappingError,
    Observations,
    iam_requests,
    topic_key_requests,
)
from tools.iam.template import World, describe

ROOT = Path(__file__).resolve().parents[2]
WORLD_CONFIG = Path(__file__).with_name("iam_world.yaml")

# Handler folder -> part of its code -> construct paths of the functions that may run it. A call passes
# when one of those functions' roles allows every request of the call.
FUNCTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "deploy_on_approval": {"handler": ("mlp-team-fraud/DeployOnApproval/DeployFunction",)},
    "endpoint_verifier": {"handler": ("mlp-team-fraud/DeployOnApproval/VerifierFunction",)},
    "idle_endpoint_reaper": {"handler": ("mlp-platform/IdleEndpointReaper/Function",)},
    "instance_quotas": {"handler": ("mlp-platform/InstanceQuotas/Handler",)},
    "cost_tracking": {"handler": ("mlp-platform/CostTracking/Function",)},
    "mlflow_default_domain": {"handler": ("mlp-team-fraud/MlflowDefaultDomain/OnEvent",)},
    # The same code serves the team scope (team stack) and the domain scope (platform stack); which one
    # a test plays is not known here, so a call passes when either scope's function may make it.
    "studio_teardown": {
        "on_event": ("mlp-team-fraud/StudioTeardown/OnEvent", "mlp-platform/StudioTeardown/OnEvent"),
        "is_complete": ("mlp-team-fraud/StudioTeardown/IsComplete", "mlp-platform/StudioTeardown/IsComplete"),
    },
}
# Code of lambdas/studio_teardown/handler.py that runs in the onEvent function (on_event and what it calls);
# everything else of the folder runs in the isComplete function.
STUDIO_ON_EVENT_CODE = frozenset({"on_event", "decide", "stack_status"})
# Operator tools: calls under them run with an operator's credentials, never a function's role.
OPERATOR_TOOLS = (ROOT / "tools" / "restore_endpoint.py", ROOT / "tools" / "quota_report.py")
# Accounts the test fixtures write into ARNs that the function's own account would carry in AWS.
FIXTURE_ACCOUNTS = frozenset({"111122223333"})

# Tags of resources a stubbed test acts on without ever showing their tags, where who made the resource
# makes them certain. Used only for a resource whose tags the test never showed (see TestObservations).
# - The endpoints of team fraud's use cases are made only by the team's deploy function, always with the
#   ownership tags of `deploy_on_approval.endpoint_spec.endpoint_tags` (test_deploy_on_approval.py
#   deletes a stubbed Failed one).
# - The scalable target of fraud-detection's endpoint (test_endpoint_scaling.py's TARGET_ARN) is registered only
#   by the team's verifier, always with the same ownership tags (`endpoint_verifier.scaling.target_request`);
#   the stubbed instance-type change deregisters it.
ASSUMED_TAGS: tuple[tuple[str, dict[str, str]], ...] = tuple(
    (
        f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlp-fraud-{use_case}",
        {"mlops:managed-by": "sagemaker-mlops-platform", "mlops:platform": "mlp", "mlops:team": "fraud"},
    )
    for use_case in ("fraud-detection", "churn")
) + (
    (
        "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/056ff2f5d8ba4a2e90b1f5e3c4ac7c4e",
        {"mlops:managed-by": "sagemaker-mlops-platform", "mlops:platform": "mlp", "mlops:team": "fraud"},
    ),
)
# - SageMaker makes a domain's two NFS security groups (`security-group-for-{inbound,outbound}-nfs-<domain
#   id>`, found by name by the domain teardown) and tags them ManagedByAmazonSageMakerResource=<domain
#   ARN>; test_studio_teardown.py stubs DescribeSecurityGroups without their tags.
NFS_SECURITY_GROUP = re.compile(r"security-group-for-(inbound|outbound)-nfs-(d-[a-z0-9]+)")
SAGEMAKER_TAG = "ManagedByAmazonSageMakerResource"

_LAMBDAS = str(ROOT / "lambdas") + os.sep
_COMMON = str(ROOT / "lambdas" / "common") + os.sep
_VENV = str(ROOT / ".venv") + os.sep
_ROOT = str(ROOT) + os.sep
_THIS = str(Path(__file__).resolve())
_STUDIO_HANDLER = str(ROOT / "lambdas" / "studio_teardown" / "handler.py")
_OPERATOR_TOOLS = frozenset(str(p) for p in OPERATOR_TOOLS)


# --- the world ----------------------------------------------------------------------------------------


class HandlerWorld(World):
    """The wildcard world with the stack id's generated suffix as ``*`` too (see the module docstring)."""

    def _ref(self, stack: str, name: str) -> Any:
        if name == "AWS::StackId" and self.generated_names == "wildcard":
            account, region = self.environment(stack)
            return f"arn:{self.partition}:cloudformation:{region}:{account}:stack/{stack}/*"
        return super()._ref(stack, name)


def synthesize_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """`iam_world.yaml` synthesized with construct paths in the metadata (as the CDK CLI writes them)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_platform
    from stacks.config import load_config
    from tests.conftest import cdk_context

    config = load_config(WORLD_CONFIG)
    app = cdk.App(outdir=str(outdir), context={**cdk_context(), "aws:cdk:enable-path-metadata": True})
    platform = build_platform(config, app, policy_gates=False)
    assembly = app.synth()
    return {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in platform.stacks}


def world_of(templates: dict[str, dict[str, Any]]) -> HandlerWorld:
    account, region = world_account()
    return HandlerWorld(templates, account=account, region=region, generated_names="wildcard")


_WORLDS: dict[str, HandlerWorld] = {}


def session_world(tmp_path_factory: pytest.TempPathFactory) -> HandlerWorld:
    """The world of this test run, synthesized on first use: once per run when the xdist workers can share
    the run's temporary folder (the first one synthesizes under a lock, the others read its templates),
    else once per process."""
    if "world" not in _WORLDS:
        outdir = tmp_path_factory.mktemp("iam-world-cdk-out")
        if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
            shared = tmp_path_factory.getbasetemp().parent
            cache = shared / "iam-world-templates.json"
            with open(shared / "iam-world.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if cache.exists():
                    templates = json.loads(cache.read_text())
                else:
                    templates = synthesize_templates(outdir)
                    partial = cache.with_suffix(".partial")
                    partial.write_text(json.dumps(templates))
                    partial.replace(cache)
        else:
            templates = synthesize_templates(outdir)
        _WORLDS["world"] = world_of(templates)
    return _WORLDS["world"]


@lru_cache(maxsize=1)
def world_account() -> tuple[str, str]:
    from stacks.config import load_config

    config = load_config(WORLD_CONFIG)
    return config.account, config.region


# --- recording ----------------------------------------------------------------------------------------


@dataclass
class Call:
    """One API call handler code made, with the IAM requests it needs (or why they are unknown)."""

    folder: str
    code: str
    service: str
    operation: str
    params: dict[str, Any]
    region: str
    requests: list[IamRequest] | MappingError

    def describe(self) -> str:
        text = json.dumps(self.params, default=str, sort_keys=True)
        if len(text) > 240:
            text = text[:237] + "..."
        return f"{self.folder} made {self.service}.{self.operation}({text})"


# Under `make mutation` (mutmut) a function's body runs as ``x_<name>__mutmut_orig`` or as one of its mutants,
# ``x_<name>__mutmut_<n>``, called by a trampoline that carries the original name.
_MUTMUT_BODY = re.compile(r"x_(?P<name>\w+?)__mutmut_(?:orig|\d+)")


def function_name(code: Any) -> str:
    """The name of the function whose code `code` is, as written in its file."""
    body = _MUTMUT_BODY.fullmatch(code.co_name)
    return body.group("name") if body else code.co_name


def attribute(frame: Any) -> tuple[str, str] | None:
    """(handler folder, part of its code) of the call being made under `frame`; None for test code."""
    folder = code = None
    decided = False
    while frame is not None:
        path = frame.f_code.co_filename
        if path in _OPERATOR_TOOLS:
            return None
        if not decided and path.startswith(_ROOT) and not path.startswith(_VENV) and path != _THIS:
            if path.startswith(_LAMBDAS) and not path.startswith(_COMMON):
                folder = path[len(_LAMBDAS):].split(os.sep, 1)[0]
                decided = True
            elif not path.startswith(_COMMON):
                return None
        if folder == "studio_teardown" and path == _STUDIO_HANDLER and function_name(frame.f_code) in STUDIO_ON_EVENT_CODE:
            code = "on_event"
        frame = frame.f_back
    if folder is None:
        return None
    if folder == "studio_teardown":
        return folder, code or "is_complete"
    return folder, "handler"


def rebase(value: Any, account: str) -> Any:
    """`value` with CloudFormation stack ARNs of `FIXTURE_ACCOUNTS` read in `account`; every other ARN as is."""
    if isinstance(value, str) and value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) == 6 and parts[2] == "cloudformation" and parts[5].startswith("stack/") and parts[4] in FIXTURE_ACCOUNTS:
            return ":".join(parts[:4] + [account, parts[5]])
        return value
    if isinstance(value, list):
        return [rebase(v, account) for v in value]
    if isinstance(value, dict):
        return {k: rebase(v, account) for k, v in value.items()}
    return value


class TestObservations(Observations):
    """Observations with the tags `ASSUMED_TAGS` and `NFS_SECURITY_GROUP` give, for resources the test
    never showed the tags of."""

    def __init__(self) -> None:
        super().__init__()
        self.security_group_names: dict[str, str] = {}

    def learn(self, service_model_or_name, operation_name, params, response, *, region, account, partition="aws"):
        super().learn(service_model_or_name, operation_name, params, response, region=region, account=account, partition=partition)
        if operation_name == "DescribeSecurityGroups":
            for group in response.get("SecurityGroups", []):
                arn = f"arn:{partition}:ec2:{region}:{account}:security-group/{group.get('GroupId')}"
                self.security_group_names[arn] = group.get("GroupName", "")

    def tags_of(self, arn: str) -> dict[str, str] | None:
        seen = super().tags_of(arn)
        if seen is not None:
            return seen
        for pattern, tags in ASSUMED_TAGS:
            if resource_matches(pattern, arn):
                return dict(tags)
        nfs = NFS_SECURITY_GROUP.fullmatch(self.security_group_names.get(arn, ""))
        if nfs:
            region, account = arn.split(":")[3:5]
            return {SAGEMAKER_TAG: f"arn:aws:sagemaker:{region}:{account}:domain/{nfs.group(2)}"}
        return None


@dataclass
class Recorder:
    """The calls of one test: every call teaches `observed`, attributed ones are kept in `calls`."""

    account: str
    observed: Observations = field(default_factory=TestObservations)
    calls: list[Call] = field(default_factory=list)

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            return recorder.call(original, client, operation_name, api_params)

        return _make_api_call

    def call(self, original: Callable[..., Any], client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        from botocore.exceptions import ParamValidationError

        where = attribute(sys._getframe(1))
        model = client.meta.service_model
        region = client.meta.region_name
        params = rebase(dict(api_params), self.account)
        record = None
        if where is not None:
            try:
                requests: list[IamRequest] | MappingError = iam_requests(
                    model, operation_name, params, region=region, account=self.account, observed=self.observed
                )
            except MappingError as error:
                requests = error
            record = Call(where[0], where[1], model.service_name, operation_name, dict(api_params), region, requests)
            self.calls.append(record)
        try:
            response = original(client, operation_name, api_params)
        except ParamValidationError:
            if record is not None:
                self.calls.remove(record)  # rejected by botocore: never sent, never authorized
            raise
        self.observed.learn(model, operation_name, params, response, region=region, account=self.account)
        return response


# --- checking -----------------------------------------------------------------------------------------


@dataclass
class RoleView:
    """A function's role: who it is, and its identity-policy statements as the checker evaluates them."""

    label: str
    statements: list[dict[str, Any]]
    policies: tuple[str, ...]
    aws_managed: tuple[str, ...]
    arn: str
    account: str

    def asking(self, request: Request) -> Request:
        """`request` made by this role (its ARN and account as the principal)."""
        return replace(request, principal_arn=self.arn, principal_account=self.account)

    def explain(self, request: Request) -> str:
        """Why the role's identity policies do not allow `request`."""
        decision = evaluate(self.statements, request)
        if decision.denies:
            return f"explicitly denied in {self.label} by {', '.join(describe(s) for s in decision.denies)}"
        policies = ", ".join(self.policies) or "none"
        text = f"no statement of {self.label} (policies: {policies}) allows it (implicit deny)"
        if self.aws_managed:
            text += f"; its AWS-managed policies {', '.join(self.aws_managed)} are not modelled"
        if request.resource != "*" and not any(k.lower().startswith("aws:resourcetag/") for k in request.context):
            tagged = [s for s in self.statements if s.get("Effect") == "Allow" and _only_tags_missing(s, request)]
            if tagged:
                text += (
                    f"; {', '.join(describe(s) for s in tagged)} would allow it on a resource with the tags it "
                    "conditions on, but this test never shows the tags of this resource"
                )
        return text


def _only_tags_missing(statement: dict[str, Any], request: Request) -> bool:
    conditions = statement.get("Condition", {})
    if not any(k.lower().startswith("aws:resourcetag/") for keys in conditions.values() for k in keys):
        return False
    return statement_applies({**statement, "Condition": {}}, request)


def _is_s3(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2:3] == ["s3"]


def _is_key(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "kms" and parts[5].startswith("key/")


def _wildcards_as_like(statement: dict[str, Any]) -> dict[str, Any]:
    """``StringEquals`` on a value with ``*`` (a generated name of the wildcard world) as ``StringLike``."""
    conditions = statement.get("Condition")
    if not conditions:
        return statement
    rewritten: dict[str, Any] = {}
    for operator, keys in conditions.items():
        base = operator.split(":")[-1]
        if base in ("StringEquals", "StringEqualsIfExists"):
            plain, like = {}, {}
            for key, values in keys.items():
                values_list = values if isinstance(values, list) else [values]
                (like if any("*" in str(v) for v in values_list) else plain)[key] = values
            if like:
                rewritten.setdefault(operator.replace("StringEquals", "StringLike"), {}).update(like)
            if plain:
                rewritten.setdefault(operator, {}).update(plain)
        else:
            rewritten.setdefault(operator, {}).update(keys)
    return {**statement, "Condition": rewritten}


def topic_keys(world: World) -> dict[str, str]:
    """ARN (pattern) of every KMS-encrypted topic of the world -> the ARN of its key."""
    keys = {}
    for res in world.resources("AWS::SNS::Topic"):
        key = res.properties.get("KmsMasterKeyId")
        if key is None:
            continue
        key = str(world.resolve(res.stack, key))
        if not key.startswith("arn:"):
            account, region = world.environment(res.stack)
            key = f"arn:{world.partition}:kms:{region}:{account}:key/{key}"
        keys[world.arn(res.stack, res.logical_id)] = key
    return keys


class Sufficiency:
    """Evaluates recorded calls against the roles of the functions that run their code, in one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.topic_keys = topic_keys(world)
        self._roles: dict[str, RoleView] = {}
        self._resource_policies: dict[str, list[dict[str, Any]]] = {}

    def function(self, construct_path: str) -> tuple[str, str]:
        """(stack, logical id) of the Lambda function at `construct_path`."""
        wanted = f"{construct_path}/Resource"
        for stack, template in self.world.templates.items():
            for logical_id, body in template.get("Resources", {}).items():
                if body.get("Type") == "AWS::Lambda::Function" and body.get("Metadata", {}).get("aws:cdk:path") == wanted:
                    return stack, logical_id
        raise LookupError(
            f"no Lambda function at construct path {wanted} in the synthesized {WORLD_CONFIG.name}: "
            "update FUNCTIONS in tests/lambdas/conftest.py if the construct moved"
        )

    def role(self, construct_path: str) -> RoleView:
        if construct_path not in self._roles:
            stack, function = self.function(construct_path)
            role_id = self.world.function_role(stack, function)
            body = self.world.templates[stack]["Resources"][role_id]
            path = body.get("Metadata", {}).get("aws:cdk:path", f"{stack}/{role_id}").removesuffix("/Resource")
            statements = [_wildcards_as_like(s) for s in self.world.role_statements(stack, role_id)]
            policies = tuple(dict.fromkeys(s["_Policy"] for s in statements))
            self._roles[construct_path] = RoleView(
                f"role {path} ({stack}/{role_id})",
                statements,
                policies,
                tuple(self.world.aws_managed_policies(stack, role_id)),
                self.world.role_arn(stack, role_id),
                self.world.account_of(stack),
            )
        return self._roles[construct_path]

    def resource_policy(self, resource: str) -> list[dict[str, Any]]:
        """Statements of the policies the world gives `resource` (empty for ``*`` and for none)."""
        if resource == "*":
            return []
        if resource not in self._resource_policies:
            self._resource_policies[resource] = [_wildcards_as_like(s) for s in self.world.resource_statements(resource)]
        return self._resource_policies[resource]

    def decide(self, role: RoleView, request: Request) -> Decision:
        """IAM's decision on `request` made by `role`: its identity policies joined with the resource's policy."""
        asked = role.asking(request)
        policy = self.resource_policy(asked.resource)
        if not policy:
            return evaluate(role.statements, asked)
        owner = None
        if _is_s3(asked.resource):  # S3 ARNs carry no account: the bucket's stack's, else the role's own
            owner = self.world.bucket_account(asked.resource) or role.account
        return evaluate_access(role.statements, policy, asked, key_policy=_is_key(asked.resource), resource_account=owner)

    def explain(self, role: RoleView, request: Request, decision: Decision) -> str:
        """Why `decision` (of `decide`) does not allow `request`, naming the side(s) that stop it."""
        asked = role.asking(request)
        policy = self.resource_policy(asked.resource)
        if not policy:
            return role.explain(asked)
        resource_denies = [s for s in decision.denies if s in policy]
        if resource_denies:
            return f"explicitly denied by the policy of {asked.resource}: {', '.join(describe(s) for s in resource_denies)}"
        sources = ", ".join(dict.fromkeys(s["_Policy"] for s in policy))
        if evaluate(role.statements, asked).allowed:
            return f"{role.label} allows it, but the resource's policy ({sources}) does not admit it"
        return f"{role.explain(asked)}; nor does the resource's policy ({sources}) allow it"

    def roles_of(self, folder: str, code: str) -> list[RoleView]:
        paths = FUNCTIONS.get(folder, {}).get(code)
        if not paths:
            raise LookupError(f"handler folder lambdas/{folder} ({code}) runs in no function of FUNCTIONS")
        return [self.role(p) for p in paths]

    def requests_of(self, call: Call) -> list[IamRequest]:
        if isinstance(call.requests, MappingError):
            raise call.requests
        requests = list(call.requests)
        if call.service == "sns" and call.operation == "Publish":
            topic = call.params.get("TopicArn") or call.params.get("TargetArn")
            if topic:
                requests += topic_key_requests(rebase(topic, self.world.account), self.topic_keys)
        return requests

    def failures(self, calls: Iterable[Call]) -> list[str]:
        """One line per unmet request (identical lines once, with a count)."""
        lines: dict[str, int] = {}
        for call in calls:
            for line in self._call_failures(call):
                lines[line] = lines.get(line, 0) + 1
        return [line if n == 1 else f"{line} [x{n}]" for line, n in lines.items()]

    def _call_failures(self, call: Call) -> list[str]:
        try:
            roles = self.roles_of(call.folder, call.code)
            requests = self.requests_of(call)
        except (LookupError, MappingError) as error:
            return [f"{call.describe()}: cannot be checked: {error}"]
        decisions = {id(role): [self.decide(role, r) for r in requests] for role in roles}
        allowed = {id(role): [d.allowed for d in decisions[id(role)]] for role in roles}
        if any(all(flags) for flags in allowed.values()):
            return []
        lines = []
        for index, request in enumerate(requests):
            denying = [role for role in roles if not allowed[id(role)][index]]
            if not denying:
                continue
            why = f" ({request.reason})" if request.reason else ""
            head = f"{call.describe()} needing {request.action} on {request.resource}{why}"
            if len(denying) < len(roles):
                others = ", ".join(r.label for r in roles if r not in denying)
                head += f" [allowed by {others}, which lacks another request of this call]"
            lines.append(f"{head}: " + "; nor: ".join(
                self.explain(role, request, decisions[id(role)][index]) for role in denying
            ))
        return lines


def failure_message(failures: list[str]) -> str:
    return (
        f"{len(failures)} AWS request(s) that handler code made in this test are not allowed by the role of the "
        f"function that runs it (world: tests/lambdas/{WORLD_CONFIG.name}, generated names as wildcards):\n"
        + "\n".join(f"  - {line}" for line in failures)
    )


# --- pytest wiring ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def iam_recorder(request, monkeypatch, tmp_path_factory) -> Recorder:
    """Records every AWS call of the test; the IAM check runs after the test body (pytest_runtest_call)."""
    from botocore.client import BaseClient

    account, _region = world_account()
    recorder = Recorder(account=account)
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder.wrap(BaseClient._make_api_call))
    request.node._iam_check = lambda: _check(recorder, tmp_path_factory)
    return recorder


_CHECKERS: dict[int, Sufficiency] = {}


def _check(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not recorder.calls:
        return
    world = session_world(tmp_path_factory)
    if id(world) not in _CHECKERS:
        _CHECKERS[id(world)] = Sufficiency(world)
    failures = _CHECKERS[id(world)].failures(recorder.calls)
    if failures:
        pytest.fail(failure_message(failures), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After a passing test body: fail the test if a handler call of it is not allowed (see the docstring)."""
    result = yield
    check = getattr(item, "_iam_check", None)
    if check is not None:
        check()
    return result
