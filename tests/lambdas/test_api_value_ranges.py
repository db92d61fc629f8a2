"""Every tag and resource name the handlers send at run time is in the range the API accepts.

The API contract is the botocore service model: `violations` walks a request against an operation's input
shape and reports every string outside its ``min``/``max`` length or not fully matching its ``pattern``,
every list or map outside its ``min``/``max`` size and every number outside its ``min``/``max`` value
(botocore's own validation checks ``min`` only). The inputs are the extremes the config accepts: the
longest prefix, team, use case, floor name and cost center its fields allow (read from the pydantic
model's patterns and limits, unicode where a pattern has ``\\w``), the largest model package version the
API's integer holds and the ARN of the longest supported region. Each extreme config is validated by
`PlatformConfig` itself, so every input here is one a deploy could carry.
"""

from __future__ import annotations

import copy
import json
import re
import re._constants as sre_constants
import re._parser as sre_parser
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import regex
import yaml
from botocore.stub import Stubber
from common import naming, tags
from deploy_on_approval import endpoint_spec, handler
from deploy_on_approval.settings import DeploySettings
from endpoint_verifier import monitoring, scaling
from endpoint_verifier.settings import VerifierSettings
from idle_endpoint_reaper import restore_record, teardown
from idle_endpoint_reaper.inventory import ManagedEndpoint

from pipeline_code import definition
from stacks import config as platform_config
from stacks.config import PlatformConfig, Team
from stacks.constructs.budgets import platform_budget_name, team_budget_name
from stacks.constructs.deploy_on_approval import use_cases_environment
from stacks.regions import SUPPORTED_REGIONS

ACCOUNT = "123456789012"
HANDLER_REGION = "us-east-1"
LONGEST_REGION = max(SUPPORTED_REGIONS, key=len)
WORLD = Path(__file__).with_name("iam_world.yaml")
SESSION = botocore.session.get_session()
SMITHY_INTEGER_MAX = 2**31 - 1
"""The largest value of a shape of type ``integer`` (a 32-bit signed integer in Smithy)."""


# --- the checker: a request against the service model --------------------------------------------------


def violations(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Every value of ``params`` outside the range its member shape of ``operation``'s input declares."""
    shape = SESSION.get_service_model(service).operation_model(operation).input_shape
    found: list[str] = []
    _walk(shape, params, f"{service}.{operation}", found)
    return found


def _walk(shape: Any, value: Any, path: str, found: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            found.append(f"{path}: {value!r} is not a structure")
            return
        for name in meta.get("required", []):
            if name not in value:
                found.append(f"{path}.{name}: required member missing")
        for name, member in value.items():
            if name not in shape.members:
                found.append(f"{path}.{name}: not a member of {shape.name}")
            else:
                _walk(shape.members[name], member, f"{path}.{name}", found)
    elif kind == "list":
        _size(meta, len(value), path, found)
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", found)
    elif kind == "map":
        _size(meta, len(value), path, found)
        for key, item in value.items():
            _walk(shape.key, key, f"{path} key {key!r}", found)
            _walk(shape.value, item, f"{path}[{key!r}]", found)
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: {value!r} is not a string")
            return
        _size(meta, len(value), path, found)
        pattern = meta.get("pattern")
        if pattern is not None and _compiled(pattern).fullmatch(value) is None:
            found.append(f"{path}: {value!r} does not match {pattern!r}")
        if shape.enum and value not in shape.enum:
            found.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            found.append(f"{path}: {value!r} outside [{meta.get('min')}, {meta.get('max')}]")


_SURROGATE_PAIR = re.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", re.IGNORECASE)


def _compiled(pattern: str) -> regex.Pattern:
    """``pattern`` as the service reads it: Java syntax, where a UTF-16 surrogate pair escape is one code point."""

    def code_point(match: re.Match) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00):08X}"

    return regex.compile(_SURROGATE_PAIR.sub(code_point, pattern))


def _size(meta: Mapping[str, Any], size: int, path: str, found: list[str]) -> None:
    if size < meta.get("min", 0) or "max" in meta and size > meta["max"]:
        found.append(f"{path}: length {size} outside [{meta.get('min', 0)}, {meta.get('max')}]")


def test_the_checker_reports_what_botocore_lets_through():
    too_long = {"EndpointName": "a" * 64, "EndpointConfigName": "a_b", "Tags": [{"Key": "k", "Value": "v" * 257}]}

    assert violations("sagemaker", "CreateEndpoint", too_long) == [
        "sagemaker.CreateEndpoint.EndpointName: length 64 outside [0, 63]",
        f"sagemaker.CreateEndpoint.EndpointName: {'a' * 64!r} does not match '[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}'",
        "sagemaker.CreateEndpoint.EndpointConfigName: 'a_b' does not match '[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}'",
        "sagemaker.CreateEndpoint.Tags[0].Value: length 257 outside [0, 256]",
    ]
    assert violations("sagemaker", "AddTags", {"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:x",
                                               "Tags": [{"Key": "k", "Value": "a\u0301"}]}), \
        "a combining mark is not in the tag value pattern"
    assert violations("application-autoscaling", "DescribeScalableTargets", {
        "ServiceNamespace": "sagemaker", "ResourceIds": ["endpoint/\U0001d49c/variant/v"]}) == [], \
        "a supplementary character is in the range a surrogate pair escape denotes"


# --- the extremes the config accepts -----------------------------------------------------------------


def example(pattern: str, *, longest: bool = True, word: str = "é") -> str:
    """A string of the greatest (or least) length that fully matches ``pattern``: every repeat at its bound,
    the longest branch, ``word`` for ``\\w``, the last character of a range."""

    def of_set(items: list) -> str:
        for op, av in items:
            if op is sre_constants.CATEGORY and av is sre_constants.CATEGORY_WORD:
                return word
        for op, av in items:
            if op is sre_constants.RANGE:
                return chr(av[1])
            if op is sre_constants.LITERAL:
                return chr(av)
        raise AssertionError(f"no character chosen from {items} of {pattern!r}")

    def build(parsed: Any) -> str:
        out = []
        for op, av in parsed:
            if op is sre_constants.LITERAL:
                out.append(chr(av))
            elif op is sre_constants.IN:
                out.append(of_set(av))
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                low, high, sub = av
                assert high is not sre_constants.MAXREPEAT or not longest, f"unbounded repeat in {pattern!r}"
                out.append(build(sub) * (high if longest else low))
            elif op is sre_constants.SUBPATTERN:
                out.append(build(av[-1]))
            elif op is sre_constants.BRANCH:
                out.append((max if longest else min)((build(b) for b in av[1]), key=len))
            elif op in (sre_constants.AT, sre_constants.ASSERT_NOT, sre_constants.ASSERT):
                continue
            else:
                raise AssertionError(f"{op} of {pattern!r} not handled")
        return "".join(out)

    text = build(sre_parser.parse(pattern))
    assert re.fullmatch(pattern, text), (pattern, text)
    return text


def field_pattern(model: type, field: str) -> str:
    """The pattern of ``model.field`` as the config's JSON schema states it, without its ``^(?:...)$``."""
    pattern = model.model_json_schema()["properties"][field]["pattern"]
    return pattern.removeprefix("^(?:").removesuffix(")$")


def floor_pattern() -> str:
    return field_pattern(platform_config.ScheduledFloor, "name")


def max_floors() -> int:
    return platform_config.Autoscaling.model_json_schema()["properties"]["scheduled_floors"]["maxItems"]


def world() -> dict:
    return yaml.safe_load(WORLD.read_text())


def extreme_team(prefix: str, team: str, use_case: str, cost_center: str) -> Team:
    """A team with one use case: autoscaling with the most floors, each name at its longest, and monitoring."""
    floor = example(floor_pattern())
    floors = [
        {"name": floor[:-1] + str(i % 10) if i else floor, "schedule": "cron(0 7 ? * MON-FRI *)", "min_instances": 2}
        for i in range(max_floors())
    ]
    assert len({f["name"] for f in floors}) == len(floors)
    entry = {
        "name": team,
        "cost_center": cost_center,
        "use_cases": [{
            "name": use_case,
            "endpoint": {
                "instance_type": "ml.m5.large",
                "initial_instance_count": 2,
                "autoscaling": {"enabled": True, "min_instances": 2, "max_instances": 4, "scheduled_floors": floors},
                "data_capture": {"enabled": True, "sampling_percent": 20},
                "monitoring": {"enabled": True},
            },
        }],
    }
    data = world()
    data["prefix"] = prefix
    data["teams"] = [entry]
    data.pop("approval", None)  # the extreme team stands alone: no reviewers to name
    data["studio"]["default_mlflow_team"] = team
    validated = PlatformConfig.model_validate(data)
    return validated.teams[0]


def _fit(name: str, length: int) -> str:
    """``name`` cut to ``length`` without a trailing hyphen."""
    return name[:length].rstrip("-")


def extreme_cases() -> dict[str, tuple[str, Team]]:
    """Config-valid (prefix, team) pairs at the edges: the longest prefix and team, the longest use case, each
    with the longest unicode cost center."""
    prefix_pattern = field_pattern(PlatformConfig, "prefix")
    team_pattern = field_pattern(Team, "name")
    use_case_pattern = field_pattern(platform_config.UseCase, "name")
    cost_pattern = field_pattern(Team, "cost_center")
    budget = platform_config.MAX_GROUP_NAME_LENGTH
    cases = {}
    long_prefix, long_team = example(prefix_pattern), example(team_pattern)
    cases["longest prefix and team"] = (long_prefix, extreme_team(
        long_prefix, long_team, _fit(example(use_case_pattern), budget - len(long_prefix) - len(long_team) - 2),
        example(cost_pattern),
    ))
    short_prefix, short_team = example(prefix_pattern, longest=False), example(team_pattern, longest=False)
    cases["longest use case"] = (short_prefix, extreme_team(
        short_prefix, short_team, _fit(example(use_case_pattern), budget - len(short_prefix) - len(short_team) - 2),
        example(cost_pattern, word="\U0001d49c"),
    ))
    return cases


CASES = extreme_cases()


def largest_version() -> int:
    """The largest model package version: an ``integer`` that a CreateModel container's ModelPackageName ARN
    can carry (the pattern ends in ``/[0-9]{1,N}``)."""
    model = SESSION.get_service_model("sagemaker")
    shape = model.shape_for("ModelPackageVersion")
    assert shape.type_name == "integer"
    container = model.operation_model("CreateModel").input_shape.members["Containers"].member
    pattern = container.members["ModelPackageName"].metadata["pattern"]
    digits = int(re.search(r"\[0-9\]\{1,(\d+)\}\)\?$", pattern).group(1))
    return min(shape.metadata.get("max", SMITHY_INTEGER_MAX), SMITHY_INTEGER_MAX, 10**digits - 1)


def package_arn(group: str, version: int, region: str = LONGEST_REGION) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:model-package/{group}/{version}"


def deploy_settings(prefix: str, team: Team) -> DeploySettings:
    return DeploySettings.from_env({
        "PLATFORM_PREFIX": prefix,
        "TEAM_NAME": team.name,
        "COST_CENTER": team.cost_center,
        "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{prefix}-{team.name}-model-execution",
        "KMS_KEY_ARN": f"arn:aws:kms:{HANDLER_REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "DATA_CAPTURE_S3_URI": f"s3://{prefix}-{team.name}-data/data-capture",
        "ALERT_TOPIC_ARN": f"arn:aws:sns:{HANDLER_REGION}:{ACCOUNT}:{prefix}-{team.name}-alerts",
        "USE_CASES": use_cases_environment(prefix, team),
    })


def verifier_settings(prefix: str, team: Team) -> VerifierSettings:
    return VerifierSettings.from_env({
        "PLATFORM_PREFIX": prefix,
        "TEAM_NAME": team.name,
        "ALERT_TOPIC_ARN": f"arn:aws:sns:{HANDLER_REGION}:{ACCOUNT}:{prefix}-{team.name}-alerts",
        "USE_CASES": use_cases_environment(prefix, team),
        "MONITORING_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{prefix}-{team.name}-monitoring-scheduler",
        "PIPELINE_ARN_PREFIX": f"arn:aws:sagemaker:{LONGEST_REGION}:{ACCOUNT}:pipeline/",
    })


def test_the_extremes_are_at_the_limits_the_config_states():
    for prefix, team in CASES.values():
        [use_case] = team.use_cases
        assert len(f"{prefix}-{team.name}-{use_case.name}") == platform_config.MAX_GROUP_NAME_LENGTH
    prefix, team = CASES["longest prefix and team"]
    assert re.fullmatch(r"[^\W\d_]+", team.cost_center) and len(team.cost_center) > 1
    with pytest.raises(Exception):
        extreme_team(prefix + "a", team.name, "x", "cc")
    with pytest.raises(Exception):
        extreme_team(prefix, team.name + "a", "x", "cc")
    with pytest.raises(Exception):
        extreme_team(prefix, team.name, "x", team.cost_center + "a")
    with pytest.raises(Exception):
        extreme_team(prefix, team.name, team.use_cases[0].name + "a", "cc")


# --- what the builders make of the extremes -----------------------------------------------------------


def deploy_requests(prefix: str, team: Team) -> Iterator[tuple[str, str, dict]]:
    settings = deploy_settings(prefix, team)
    version = largest_version()
    for target in settings.use_cases.values():
        arn = package_arn(target.group, version)
        config_name = endpoint_spec.endpoint_config_name(settings, target, version)
        tags = endpoint_spec.endpoint_tags(settings, arn, version, config_name)
        endpoint_arn = f"arn:aws:sagemaker:{LONGEST_REGION}:{ACCOUNT}:endpoint/{target.endpoint}"
        yield "sagemaker", "ListModelPackages", {
            "ModelPackageGroupName": target.group, "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1,
        }
        yield "sagemaker", "DescribeEndpoint", {"EndpointName": target.endpoint}
        yield "sagemaker", "CreateModel", endpoint_spec.create_model_request(settings, target, arn, version)
        yield "sagemaker", "CreateEndpointConfig", endpoint_spec.create_endpoint_config_request(
            settings, target, arn, version)
        yield "sagemaker", "CreateEndpoint", {"EndpointName": target.endpoint, "EndpointConfigName": config_name,
                                              "Tags": tags}
        yield "sagemaker", "AddTags", {"ResourceArn": endpoint_arn, "Tags": tags}
        yield "sagemaker", "UpdateEndpoint", endpoint_spec.update_endpoint_request(target, config_name)
        yield "sagemaker", "DescribeEndpointConfig", {"EndpointConfigName": config_name}
        yield "sagemaker", "DeleteModel", {"ModelName": endpoint_spec.model_name(settings, target, version)}


def verifier_requests(prefix: str, team: Team) -> Iterator[tuple[str, str, dict]]:
    settings = verifier_settings(prefix, team)
    for target in settings.endpoints.values():
        assert target.scaling is not None and target.monitoring is not None
        yield "application-autoscaling", "RegisterScalableTarget", scaling.target_request(
            target.endpoint, target.scaling, settings.team, settings.prefix)
        yield "application-autoscaling", "PutScalingPolicy", scaling.policy_request(target.endpoint, target.scaling)
        floors = scaling.floor_requests(target.endpoint, target.scaling)
        assert len(floors) == max_floors()
        for request in floors:
            yield "application-autoscaling", "PutScheduledAction", request
            yield "application-autoscaling", "DeleteScheduledAction", {
                k: request[k] for k in ("ServiceNamespace", "ScheduledActionName", "ResourceId", "ScalableDimension")}
        yield "application-autoscaling", "DescribeScalingPolicies", {
            "ServiceNamespace": scaling.NAMESPACE, "ResourceId": scaling.resource_id(target.endpoint),
            "ScalableDimension": scaling.DIMENSION, "PolicyNames": [scaling.policy_name(target.endpoint)]}
        yield "application-autoscaling", "DescribeScheduledActions", {
            "ServiceNamespace": scaling.NAMESPACE, "ResourceId": scaling.resource_id(target.endpoint),
            "ScalableDimension": scaling.DIMENSION}
        arn = package_arn(target.group, largest_version())
        schedule = monitoring.schedule_request(target.endpoint, target.monitoring, {
            "ModelPackageArn": arn, "BaselineUri": f"s3://{prefix}-{team.name}-data/baselines/{target.group}/",
            "ServingSince": "2026-12-07T12:00:00Z"})
        yield "scheduler", "CreateSchedule", schedule
        yield "scheduler", "UpdateSchedule", schedule
        yield "scheduler", "GetSchedule", {"Name": naming.MONITORING_SCHEDULE_NAME,
                                           "GroupName": target.monitoring.schedule_group}


@pytest.mark.parametrize("case", sorted(CASES))
def test_deploy_requests_are_in_range(case):
    prefix, team = CASES[case]
    found = [v for service, op, params in deploy_requests(prefix, team) for v in violations(service, op, params)]

    assert found == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_verifier_requests_are_in_range(case):
    prefix, team = CASES[case]
    found = [v for service, op, params in verifier_requests(prefix, team) for v in violations(service, op, params)]

    assert found == []


def test_pipeline_step_tags_are_in_range_for_the_longest_team_and_prefix():
    """The step tags' placeholders become the team name and prefix when the stack writes the definition."""
    prefix, team = CASES["longest prefix and team"]
    step_tags = [{"Key": t["Key"], "Value": t["Value"].replace("${TeamName}", team.name)
                  .replace("${PlatformPrefix}", prefix)} for t in definition.step_tags()]
    assert all("${" not in t["Value"] for t in step_tags)
    request = {"ModelName": "m", "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "Tags": step_tags}

    assert violations("sagemaker", "CreateModel", request) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_cost_tracking_requests_are_in_range(case):
    """The budget names the cost tracking Lambda reads and every platform tag key it may activate."""
    prefix, team = CASES[case]
    keys = [v for k, v in vars(tags).items() if k.isupper() and v.startswith("mlops:")]
    requests = [
        ("budgets", "DescribeBudget", {"AccountId": ACCOUNT, "BudgetName": team_budget_name(prefix, team.name)}),
        ("budgets", "DescribeBudget", {"AccountId": ACCOUNT, "BudgetName": platform_budget_name(prefix)}),
        ("ce", "ListCostAllocationTags", {"TagKeys": keys, "Type": "UserDefined"}),
        ("ce", "UpdateCostAllocationTagsStatus",
         {"CostAllocationTagsStatus": [{"TagKey": k, "Status": "Active"} for k in keys]}),
        ("sagemaker", "AddTags", {"ResourceArn": f"arn:aws:sagemaker:{HANDLER_REGION}:{ACCOUNT}:endpoint/e",
                                  "Tags": [{"Key": k, "Value": ""} for k in keys]}),
    ]

    assert [v for service, op, params in requests for v in violations(service, op, params)] == []


# --- real handler code, its requests captured on the client ------------------------------------------


@contextmanager
def captured(client: Any) -> Iterator[list[tuple[str, dict]]]:
    """Every request ``client`` is asked to send, as the handler built it."""
    calls: list[tuple[str, dict]] = []

    def record(params, model, **_):
        calls.append((model.name, copy.deepcopy(dict(params))))

    client.meta.events.register("provide-client-params.*.*", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("provide-client-params.*.*", record)


def test_the_deploy_handler_sends_in_range_requests_for_the_largest_version_and_longest_cost_center():
    """The IAM world's team (its policies judge the calls) with the extremes that are not part of any name
    a policy scopes: the longest unicode cost center and the largest version."""
    data = world()
    data["teams"][0]["cost_center"] = CASES["longest use case"][1].cost_center
    team = PlatformConfig.model_validate(data).teams[0]
    settings = deploy_settings(data["prefix"], team)
    target = next(t for t in settings.use_cases.values() if t.use_case == "fraud-detection")
    version = largest_version()
    arn = package_arn(target.group, version, HANDLER_REGION)
    sagemaker = boto3.client("sagemaker", region_name=HANDLER_REGION, aws_access_key_id="x",
                             aws_secret_access_key="x")
    sns = boto3.client("sns", region_name=HANDLER_REGION, aws_access_key_id="x", aws_secret_access_key="x")
    base = f"arn:aws:sagemaker:{HANDLER_REGION}:{ACCOUNT}"
    body = json.dumps({"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
                       "group": target.group, "version": version, "status": "Approved", "arn": arn})
    with Stubber(sagemaker) as stub, captured(sagemaker) as calls:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": [{
            "ModelPackageArn": arn, "ModelPackageVersion": version, "ModelPackageGroupName": target.group,
            "CreationTime": datetime(2026, 12, 7, tzinfo=timezone.utc), "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "Approved"}]})
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint", 400)
        stub.add_response("create_model", {"ModelArn": f"{base}:model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"{base}:endpoint-config/c"})
        stub.add_response("create_endpoint", {"EndpointArn": f"{base}:endpoint/{target.endpoint}"})
        result = handler.process_batch(
            [{"messageId": "m-1", "receiptHandle": "rh", "body": body, "attributes": {}, "eventSource": "aws:sqs"}],
            sagemaker, sns, settings)
        stub.assert_no_pending_responses()

    assert result == {"batchItemFailures": []}
    assert [name for name, _ in calls] == [
        "ListModelPackages", "DescribeEndpoint", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    sent = {name: params for name, params in calls}
    assert {t["Value"] for t in sent["CreateEndpoint"]["Tags"]} >= {team.cost_center, arn, str(version)}
    assert [v for name, params in calls for v in violations("sagemaker", name, params)] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_restore_record_name_is_in_range(case):
    prefix, team = CASES[case]
    [target] = deploy_settings(prefix, team).use_cases.values()
    request = {"Name": restore_record.parameter_name(target.endpoint), "Value": "{}", "Type": "String"}

    assert violations("ssm", "PutParameter", request) == []


def test_the_reaper_restore_record_request_is_in_range():
    """The reaper's PutParameter for the IAM world's endpoint, tagged as the deploy Lambda tags it with the
    longest unicode cost center and the largest version."""
    data = world()
    data["teams"][0]["cost_center"] = CASES["longest prefix and team"][1].cost_center
    team = PlatformConfig.model_validate(data).teams[0]
    settings = deploy_settings(data["prefix"], team)
    target = next(t for t in settings.use_cases.values() if t.use_case == "fraud-detection")
    version = largest_version()
    arn = package_arn(target.group, version, HANDLER_REGION)
    config_name = endpoint_spec.endpoint_config_name(settings, target, version)
    endpoint_tags = {t["Key"]: t["Value"] for t in endpoint_spec.endpoint_tags(settings, arn, version, config_name)}
    endpoint = ManagedEndpoint(
        name=target.endpoint, tags=endpoint_tags, config_name=config_name, variants=(endpoint_spec.VARIANT_NAME,),
        shadow_variants=(), serverless=False, status="InService",
        last_modified_time=datetime(2026, 12, 1, tzinfo=timezone.utc),
    )
    ssm = boto3.client("ssm", region_name=HANDLER_REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ssm) as stub, captured(ssm) as calls:
        stub.add_response("put_parameter", {"Version": 1})
        name = teardown.write_restore_record(ssm, endpoint, (), datetime(2026, 12, 7, tzinfo=timezone.utc))

    assert name == restore_record.parameter_name(target.endpoint)
    [(operation, params)] = calls
    assert params["Tags"]
    assert violations("ssm", operation, params) == []
