"""IdleEndpointReaper in a minimal test stack: schedule, function settings, least privilege, alerting, nag, cfn-lint.

One app with two stacks is synthesized once for the module: ``Reaper`` (the example's settings, an
exempt team and a team override) and ``Disabled`` (reaper switched off, cron schedule, no exempt team).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from stacks.config import ReaperOverride, ReaperSettings, Team
from stacks.constructs.idle_endpoint_reaper import IdleEndpointReaper
from stacks.nag_acknowledgments import construct_acknowledgments
from stacks.regions import SUPPORTED_REGIONS
from tests.conftest import ROOT, cdk_context

PREFIX = "mlp"
TEAMS = [
    Team(name="fraud", cost_center="CC-1"),
    Team(name="pricing", cost_center="CC-2", reaper=ReaperOverride(grace_period_hours=72, dry_run=False)),
    Team(name="legal", cost_center="CC-3", reaper=ReaperOverride(exempt=True)),
]
SETTINGS = ReaperSettings(
    schedule="rate(1 hour)", idle_window_hours=24, grace_period_hours=24, dry_run=True, max_deletions_per_run=10
)
DISABLED = ReaperSettings(enabled=False, schedule="cron(0 3 * * ? *)", dry_run=False, max_deletions_per_run=3)
READ_ONLY_ACTIONS = {
    "sagemaker:Search",
    "sagemaker:ListEndpoints",
    "cloudwatch:GetMetricData",
    "application-autoscaling:DescribeScalableTargets",
    "pricing:GetProducts",
    "sagemaker:DescribeEndpointConfig",
}
ALLOWED_ACTIONS = READ_ONLY_ACTIONS | {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sagemaker:DeleteEndpoint",
    "application-autoscaling:DeregisterScalableTarget",
    "scheduler:DeleteSchedule",
    "ssm:PutParameter",
    "ssm:AddTagsToResource",
    "sns:Publish",
    "kms:GenerateDataKey",
    "kms:Decrypt",
}


def _reaper_stack(
    app: cdk.App, name: str, settings: ReaperSettings, teams: list[Team]
) -> tuple[cdk.Stack, IdleEndpointReaper]:
    stack = cdk.Stack(app, name)
    key = kms.Key(stack, "PlatformKey", enable_key_rotation=True)
    topic = sns.Topic(stack, "AlertTopic", master_key=key, enforce_ssl=True)
    reaper = IdleEndpointReaper(
        stack, "Reaper", prefix=PREFIX, settings=settings, teams=teams, kms_key=key, alert_topic=topic
    )
    acknowledgments = construct_acknowledgments(reaper)
    for construct in stack.node.find_all():
        relative = construct.node.path[len(stack.node.path) + 1 :]
        for path, finding, reason in acknowledgments:
            if relative and fnmatch.fnmatchcase(relative, path):
                cdk.Validations.of(construct).acknowledge(
                    cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason)
                )
    return stack, reaper


class Synthesized:
    def __init__(self, outdir: Path) -> None:
        app = cdk.App(outdir=str(outdir), context=cdk_context())
        cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
        self.stack, self.reaper = _reaper_stack(app, "Reaper", SETTINGS, TEAMS)
        self.disabled_stack, _ = _reaper_stack(app, "Disabled", DISABLED, TEAMS[:2])
        assembly = app.synth()
        self.outdir = outdir
        self.template_json = assembly.get_stack_by_name("Reaper").template
        self.template = Template.from_json(self.template_json)
        self.disabled = Template.from_json(assembly.get_stack_by_name("Disabled").template)
        self.template_files = [outdir / s.template_file for s in assembly.stacks]

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def statements(self) -> list[dict[str, Any]]:
        policies = self.template.find_resources("AWS::IAM::Policy")
        return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Synthesized:
    return Synthesized(tmp_path_factory.mktemp("reaper-cdk-out"))


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _arn_text(value: Any) -> str:
    """A Fn::Join ARN as text, pseudo parameters written as ${...}."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)


# --- schedule and function -------------------------------------------------------------------------


def test_the_schedule_comes_from_the_config_and_invokes_the_function(synthesized):
    function_id = synthesized.logical_id(synthesized.reaper.function)
    synthesized.template.resource_count_is("AWS::Events::Rule", 1)
    synthesized.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 hour)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function_id, "Arn"]}})],
        },
    )
    synthesized.disabled.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "cron(0 3 * * ? *)", "State": "DISABLED"}
    )


def test_the_function_carries_the_settings_and_team_overrides(synthesized):
    topic_id = synthesized.stack.get_logical_id(synthesized.stack.node.find_child("AlertTopic").node.default_child)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "idle_endpoint_reaper.handler.handler",
            "Timeout": 300,
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "Environment": {
                "Variables": {
                    "PLATFORM_PREFIX": PREFIX,
                    "IDLE_WINDOW_HOURS": "24",
                    "GRACE_PERIOD_HOURS": "24",
                    "DRY_RUN": "true",
                    "MAX_DELETIONS_PER_RUN": "10",
                    "TEAM_OVERRIDES": json.dumps(
                        {"legal": {"exempt": True}, "pricing": {"dry_run": False, "grace_period_hours": 72}},
                        separators=(",", ":"),
                        sort_keys=True,
                    ),
                    "ALERT_TOPIC_ARN": {"Ref": topic_id},
                }
            },
        },
    )
    synthesized.disabled.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DRY_RUN": "false",
                        "MAX_DELETIONS_PER_RUN": "3",
                        "TEAM_OVERRIDES": json.dumps(
                            {"pricing": {"dry_run": False, "grace_period_hours": 72}}, separators=(",", ":")
                        ),
                    }
                )
            }
        },
    )


def test_a_failed_run_is_not_retried_and_raises_an_alarm_on_the_alert_topic(synthesized):
    topic_id = synthesized.stack.get_logical_id(synthesized.stack.node.find_child("AlertTopic").node.default_child)
    synthesized.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 0})
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [
                {"Name": "FunctionName", "Value": {"Ref": synthesized.logical_id(synthesized.reaper.function)}}
            ],
            "Threshold": 1,
            "AlarmActions": [{"Ref": topic_id}],
        },
    )


def test_the_summary_goes_to_the_kms_encrypted_alert_topic(synthesized):
    key_id = synthesized.stack.get_logical_id(synthesized.stack.node.find_child("PlatformKey").node.default_child)
    synthesized.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    statements = synthesized.statements()
    topic = {"Ref": synthesized.stack.get_logical_id(synthesized.stack.node.find_child("AlertTopic").node.default_child)}
    publishes = [s for s in statements if "sns:Publish" in _actions(s)]
    assert publishes, "the reaper sends its summary and its dead letters to the alert topic"
    assert all(s["Resource"] == topic for s in publishes)
    synthesized.template.has_resource_properties("AWS::Lambda::Function", {"DeadLetterConfig": {"TargetArn": topic}})
    (key_use,) = [s for s in statements if "kms:GenerateDataKey" in _actions(s)]
    assert key_use["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}


# --- least privilege ---------------------------------------------------------------------------------


def test_delete_endpoint_is_allowed_only_on_prefixed_endpoints_carrying_the_managed_tags(synthesized):
    allowed = [
        s for s in synthesized.statements() if s["Effect"] == "Allow" and "sagemaker:DeleteEndpoint" in _actions(s)
    ]
    assert len(allowed) == 1
    (statement,) = allowed
    assert _actions(statement) == ["sagemaker:DeleteEndpoint"]
    assert (
        _arn_text(statement["Resource"])
        == "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/mlp-*"
    )
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:ResourceTag/mlops:managed-by": "sagemaker-mlops-platform",
            "aws:ResourceTag/mlops:platform": PREFIX,
        }
    }


def test_keep_alive_and_exempt_teams_are_denied_by_iam_itself(synthesized):
    denies = {s["Sid"]: s for s in synthesized.statements() if s["Effect"] == "Deny"}
    assert set(denies) == {"NeverDeleteKeepAliveEndpoints", "NeverDeleteExemptTeamsEndpoints"}
    assert denies["NeverDeleteKeepAliveEndpoints"]["Condition"] == {
        "StringEqualsIgnoreCase": {"aws:ResourceTag/mlops:keep-alive": "true"}
    }
    assert denies["NeverDeleteExemptTeamsEndpoints"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/mlops:team": ["legal"]}
    }
    assert all(_actions(s) == ["sagemaker:DeleteEndpoint"] for s in denies.values())


def test_the_role_has_no_managed_policy_and_only_the_needed_actions(synthesized):
    roles = synthesized.template.find_resources("AWS::IAM::Role")
    assert [r["Properties"].get("ManagedPolicyArns", []) for r in roles.values()] == [[]]
    statements = synthesized.statements()
    actions = {a for s in statements if s["Effect"] == "Allow" for a in _actions(s)}
    assert actions == ALLOWED_ACTIONS
    assert not any("*" in a for a in actions)
    star = [s for s in statements if s["Resource"] == "*"]
    assert all(s["Effect"] == "Allow" and set(_actions(s)) <= READ_ONLY_ACTIONS for s in star)


def test_writes_are_scoped_to_restore_records_and_scalable_targets(synthesized):
    by_action = {a: s for s in synthesized.statements() if s["Effect"] == "Allow" for a in _actions(s)}
    assert _arn_text(by_action["ssm:PutParameter"]["Resource"]).endswith(":parameter/mlops/reaped-endpoints/mlp-*")
    assert _arn_text(by_action["application-autoscaling:DeregisterScalableTarget"]["Resource"]) == (
        "arn:${AWS::Partition}:application-autoscaling:${AWS::Region}:${AWS::AccountId}:scalable-target/*"
    )
    assert _arn_text(by_action["scheduler:DeleteSchedule"]["Resource"]) == (
        "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/mlp-*/drift-monitor"
    )


# --- gates ---------------------------------------------------------------------------------------


def test_cdk_nag_has_no_open_finding_and_every_acknowledgment_is_used(synthesized):
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    open_findings = [
        f"{c['constructPath']}: {v['ruleName']}"
        for p in report["pluginReports"]
        for v in p["violations"]
        for c in v["violatingConstructs"]
    ]
    assert open_findings == []
    used = {
        (c["constructPath"], v["acknowledgedId"])
        for p in report["pluginReports"]
        for v in p["suppressedViolations"]
        for c in v["violatingConstructs"]
    }
    for path, finding, _ in construct_acknowledgments(synthesized.reaper):
        assert (f"Reaper/{path}", f"AwsSolutions::{finding}") in used, finding


def test_cfn_lint_is_clean_in_every_supported_region(synthesized):
    import yaml
    from cfnlint.api import ManualArgs, lint

    ignored = yaml.safe_load((ROOT / ".cfnlintrc.yaml").read_text()).get("ignore_checks") or []
    config = ManualArgs(regions=list(SUPPORTED_REGIONS), ignore_checks=ignored)
    problems = []
    for path in synthesized.template_files:
        matches = lint(path.read_text(), config=config)
        problems += [f"{path.name}: {m.rule.id} {m.message}" for m in matches]
    assert problems == []


def test_too_many_team_overrides_for_the_lambda_environment_are_rejected():
    app = cdk.App()
    stack = cdk.Stack(app, "TooMany")
    key = kms.Key(stack, "Key")
    topic = sns.Topic(stack, "Topic", master_key=key)
    teams = [
        Team(
            name=f"team{i:02d}xxxxxxxxxxxxx",
            cost_center="CC",
            reaper=ReaperOverride(idle_window_hours=100, grace_period_hours=100, dry_run=False),
        )
        for i in range(60)
    ]
    with pytest.raises(ValueError, match="more than fit in a Lambda environment"):
        IdleEndpointReaper(
            stack, "Reaper", prefix=PREFIX, settings=SETTINGS, teams=teams, kms_key=key, alert_topic=topic
        )
