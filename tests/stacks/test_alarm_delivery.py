"""Every alarm reaches a person: its SNS topic's policy and the topic's key admit CloudWatch for that alarm.

The proof runs on the synthesized templates resolved for one account and region
(``tools.iam.template.World``): an alarm's ARN comes from its AlarmName, or from the name CloudFormation
would generate (``<stack>-<logicalId>-<12 characters>``) when it has none, and the topic policy and key
policy are evaluated as IAM would (``tools.iam.evaluate``) for principal ``cloudwatch.amazonaws.com``
with ``aws:SourceArn`` = the alarm and ``aws:SourceAccount`` = the account.
"""

from __future__ import annotations

import copy

import pytest

from stacks.app_builder import stage_environments
from stacks.config import load_config, parse_config
from stacks.constructs.deploy_on_approval import (
    DEPLOY_DEAD_LETTERS_ALARM_SUFFIX,
    ENDPOINT_ALARM_SUFFIXES,
    FAILED_EVENTS_ALARM_SUFFIX,
    alarm_names,
    team_alarm_name,
)
from stacks.constructs.idle_endpoint_reaper import RUN_FAILED_ALARM, platform_alarm_name
from tests.conftest import EDGE_CONFIGS, MULTI_ACCOUNT_CONFIG
from tools.iam.evaluate import Request, evaluate, evaluate_access
from tools.iam.template import World

CLOUDWATCH = "cloudwatch.amazonaws.com"
DEFAULT_ACCOUNT, DEFAULT_REGION = "123456789012", "us-east-1"


def world_of(templates: dict, config) -> World:
    """The templates deployed: the platform's account and region, each stage account's stacks in theirs."""
    stages = {name: env for name, env in stage_environments(config).items() if name in templates}
    return World(templates, account=config.account or DEFAULT_ACCOUNT, region=config.region or DEFAULT_REGION,
                 environments=stages)


def undelivered(world: World) -> list[str]:
    """One line per alarm action that CloudWatch could not deliver; also counts what was checked."""
    problems = []
    for alarm in world.resources("AWS::CloudWatch::Alarm"):
        alarm_arn = world.arn(alarm.stack, alarm.logical_id)
        context = {"aws:SourceArn": alarm_arn, "aws:SourceAccount": world.account_of(alarm.stack)}
        for action in world.resolve(alarm.stack, alarm.properties.get("AlarmActions", [])):
            if not str(action).startswith(f"arn:{world.partition}:sns:"):
                continue
            where = f"{alarm.stack}/{alarm.logical_id} ({alarm_arn}) -> {action}"
            publish = Request("sns:Publish", action, context=context, principal_service=CLOUDWATCH)
            topic_policy = world.resource_statements(action)
            decision = evaluate(topic_policy, publish, resource_policy=True)
            if not decision.allowed:
                problems.append(f"{where}: topic policy: {decision.explain()}")
            insecure = Request(
                "sns:Publish", action, context={**context, "aws:SecureTransport": "false"}, principal_service=CLOUDWATCH
            )
            if not evaluate(topic_policy, insecure, resource_policy=True).denies:
                problems.append(f"{where}: topic policy lost its TLS-only deny (enforce_ssl)")
            key = _topic_key(world, action)
            if key is None:
                problems.append(f"{where}: topic has no KMS key")
                continue
            key_policy = world.resource_statements(key)
            for kms_action in ("kms:Decrypt", "kms:GenerateDataKey"):
                request = Request(kms_action, key, context=context, principal_service=CLOUDWATCH)
                decision = evaluate(key_policy, request, resource_policy=True)
                if not decision.allowed:
                    problems.append(f"{where}: key {key}: {kms_action}: {decision.explain()}")
    return problems


def _topic_key(world: World, topic_arn: str) -> str | None:
    for topic in world.resources("AWS::SNS::Topic"):
        if world.arn(topic.stack, topic.logical_id) == topic_arn:
            key = topic.properties.get("KmsMasterKeyId")
            return None if key is None else world.resolve(topic.stack, key)
    raise AssertionError(f"no topic {topic_arn} in the templates")


def _alarm_actions(world: World) -> int:
    return sum(
        1
        for alarm in world.resources("AWS::CloudWatch::Alarm")
        for action in world.resolve(alarm.stack, alarm.properties.get("AlarmActions", []))
        if str(action).startswith("arn:")
    )


@pytest.fixture(scope="module")
def edge_worlds(edge) -> dict[str, World]:
    return {name: world_of(edge(name).templates, parse_config(data)) for name, data in EDGE_CONFIGS.items()}


def test_every_alarm_of_the_example_reaches_its_topic(example, example_config):
    world = world_of(example.templates, example_config)
    alarms = list(world.resources("AWS::CloudWatch::Alarm"))
    # 3 teams x (2 endpoint alarms + 2 queue alarms) + the reaper's + fraud-detection's drift, quality and
    # failed-monitoring-run alarms
    assert len(alarms) == 16
    assert _alarm_actions(world) == 16
    assert undelivered(world) == []


def test_every_alarm_of_the_multi_account_example_reaches_its_topic_in_its_own_account(multi_account):
    config = load_config(MULTI_ACCOUNT_CONFIG)
    world = world_of(multi_account.templates, config)
    stage_alarms = [a for a in world.resources("AWS::CloudWatch::Alarm") if world.account_of(a.stack) != config.account]
    # per stage its reaper's alarm; per team and stage its 2 endpoint alarms and 2 queue alarms
    assert len(stage_alarms) == 2 + 3 * 4
    assert {world.arn(a.stack, a.logical_id).split(":")[4] for a in stage_alarms} == {s.account for s in config.stages}
    assert undelivered(world) == []
    # The control: resolved as if every stack were in the development account, the stage topics (whose
    # policies name their own account) refuse the stage alarms.
    misplaced = undelivered(World(multi_account.templates, account=config.account, region=config.region))
    assert misplaced and all(line.split("/")[0] in stage_environments(config) for line in misplaced)


@pytest.mark.parametrize("name", list(EDGE_CONFIGS))
def test_every_alarm_of_the_edge_configs_reaches_its_topic(edge_worlds, name):
    world = edge_worlds[name]
    assert _alarm_actions(world) >= 1
    assert undelivered(world) == []


def test_an_alarm_without_a_name_is_caught(example, example_config):
    templates = copy.deepcopy(example.templates)
    resources = templates["mlp-team-fraud"]["Resources"]
    (logical_id,) = [
        k for k, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("AlarmName") == "mlp-fraud-deploy-dead-letters"
    ]
    del resources[logical_id]["Properties"]["AlarmName"]
    problems = undelivered(world_of(templates, example_config))
    assert len(problems) == 1
    assert problems[0].startswith(f"mlp-team-fraud/{logical_id} (arn:aws:cloudwatch:us-east-1:123456789012:alarm:mlp-team-fraud-")
    assert "topic policy" in problems[0]


def test_every_alarm_has_an_explicit_name_within_its_topics_prefix(example):
    for stack, template in example.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            name = resource["Properties"].get("AlarmName")
            assert isinstance(name, str) and len(name) <= 255, (stack, logical_id)
            expected = "mlp-platform-" if stack == "mlp-platform" else f"mlp-{stack.removeprefix('mlp-team-')}-"
            assert name.startswith(expected), (stack, logical_id, name)


# --- names never collide ------------------------------------------------------------------------------


def _all_alarm_names(prefix: str, teams: dict[str, list[str]]) -> list[str]:
    from lambdas.common import naming

    names = [platform_alarm_name(prefix, RUN_FAILED_ALARM)]
    for team, use_cases in teams.items():
        names += [team_alarm_name(prefix, team, s) for s in (DEPLOY_DEAD_LETTERS_ALARM_SUFFIX, FAILED_EVENTS_ALARM_SUFFIX)]
        for use_case in use_cases:
            names += alarm_names(naming.endpoint_name(prefix, team, use_case))
    return names


def test_no_suffix_ends_with_another():
    """The argument of deploy_on_approval's comment: names ending in different fixed suffixes differ."""
    suffixes = [*ENDPOINT_ALARM_SUFFIXES, DEPLOY_DEAD_LETTERS_ALARM_SUFFIX, FAILED_EVENTS_ALARM_SUFFIX, RUN_FAILED_ALARM]
    for a in suffixes:
        for b in suffixes:
            if a != b:
                assert not f"-{a}".endswith(f"-{b}"), (a, b)


def test_team_and_platform_alarm_names_cannot_collide_with_use_case_alarms():
    # Use cases named after the team-level suffixes, a team named "platform", and a name long enough to be
    # shortened with a hash: every alarm name stays distinct.
    tricky = [
        "deploy",
        "deploy-dead-letters",
        "dead-letters",
        "failed",
        "failed-events",
        "events",
        "reaper-run",
        "reaper-run-failed",
        "invocation-5xx-errors",
        "model-latency",
        "x" * 40,
        "deploy-dead-letters-" + "y" * 20,
    ]
    names = _all_alarm_names("mlp", {"fraud": tricky, "platform": tricky, "fraudx": tricky, "reaper": tricky})
    assert len(names) == len(set(names))
    assert all(len(n) <= 255 for n in names)
    assert "mlp-fraud-deploy-model-latency" in names and "mlp-fraud-deploy-dead-letters" in names
    assert platform_alarm_name("mlp", RUN_FAILED_ALARM) == "mlp-platform-reaper-run-failed"


# --- dead letters reach their queue or topic ----------------------------------------------------------


def _key_of(world: World, target_arn: str) -> str | None:
    for kind, key_property in (("AWS::SNS::Topic", "KmsMasterKeyId"), ("AWS::SQS::Queue", "KmsMasterKeyId")):
        for resource in world.resources(kind):
            if world.arn(resource.stack, resource.logical_id) == target_arn:
                key = resource.properties.get(key_property)
                return None if key is None else world.resolve(resource.stack, key)
    raise AssertionError(f"no topic or queue {target_arn} in the templates")


def _send_action(target_arn: str) -> str:
    return "sns:Publish" if target_arn.split(":")[2] == "sns" else "sqs:SendMessage"


def _sendable(world: World, target: str, identity: list, principal: dict, context: dict) -> list[str]:
    """What stops `principal` from sending to `target` (with its KMS key), as IAM would decide it."""
    problems = []
    checks = [(_send_action(target), target, world.resource_statements(target), False)]
    key = _key_of(world, target)
    if key is not None:
        checks += [(action, key, world.resource_statements(key), True) for action in ("kms:GenerateDataKey", "kms:Decrypt")]
    for action, resource, resource_policy, is_key in checks:
        request = Request(action, resource, context=context, **principal)
        decision = evaluate_access(identity, resource_policy, request, key_policy=is_key)
        if not decision.allowed:
            problems.append(f"{action} on {resource}: {decision.explain()}")
    return problems


def undelivered_dead_letters(world: World) -> tuple[list[str], int]:
    """Failed events of Lambda functions (DLQ, on-failure destination) and of EventBridge targets."""
    problems, checked = [], 0
    function_targets = []
    for function in world.resources("AWS::Lambda::Function"):
        target = function.properties.get("DeadLetterConfig", {}).get("TargetArn")
        if target is not None:
            function_targets.append((function.stack, function.logical_id, world.resolve(function.stack, target)))
    for config in world.resources("AWS::Lambda::EventInvokeConfig"):
        target = config.properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        function = config.properties["FunctionName"]
        if target is not None and isinstance(function, dict) and "Ref" in function:
            function_targets.append((config.stack, function["Ref"], world.resolve(config.stack, target)))
    for stack, function, target in function_targets:
        # Lambda sends an asynchronous invocation's failure with the function's own role.
        role = world.function_role(stack, function)
        principal = {"principal_arn": world.role_arn(stack, role)}
        checked += 1
        problems += [f"{stack}/{function} -> {target}: {p}" for p in
                     _sendable(world, target, world.role_statements(stack, role), principal, {})]
    for rule in world.resources("AWS::Events::Rule"):
        rule_arn = world.arn(rule.stack, rule.logical_id)
        for target in rule.properties.get("Targets", []):
            dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
            if dead_letters is None:
                continue
            checked += 1
            queue = world.resolve(rule.stack, dead_letters)
            context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": world.account_of(rule.stack)}
            problems += [f"{rule.stack}/{rule.logical_id} -> {queue}: {p}" for p in
                         _sendable(world, queue, [], {"principal_service": "events.amazonaws.com"}, context)]
    return problems, checked


def test_every_dead_letter_of_the_example_reaches_its_queue_or_topic(example, example_config):
    problems, checked = undelivered_dead_letters(world_of(example.templates, example_config))
    # the reaper's DLQ topic, each team's verifier on-failure queue, each team's rule dead-letter queues
    assert checked >= 1 + 3 + 3 * 2
    assert problems == []


def test_every_dead_letter_of_the_multi_account_example_reaches_its_queue_or_topic(multi_account):
    config = load_config(MULTI_ACCOUNT_CONFIG)
    world = world_of(multi_account.templates, config)
    problems, checked = undelivered_dead_letters(world)
    # per account its reaper's DLQ topic; per team serving in a stage its verifier queue and its rules' queues
    assert checked >= 3 + 3 * 2
    assert problems == []


def test_a_dead_letter_target_the_function_may_not_use_is_caught(example, example_config):
    templates = copy.deepcopy(example.templates)
    resources = templates["mlp-platform"]["Resources"]
    for body in resources.values():
        if body["Type"] == "AWS::IAM::Policy":
            statements = body["Properties"]["PolicyDocument"]["Statement"]
            body["Properties"]["PolicyDocument"]["Statement"] = [
                s for s in statements if s.get("Sid") != "UsePlatformKeyForTopic"
            ]
    problems, _ = undelivered_dead_letters(world_of(templates, example_config))
    assert any("IdleEndpointReaper" in p and "kms:GenerateDataKey" in p for p in problems), problems
