"""Endpoint monitoring as synthesized for the example platform: fraud-detection monitors its endpoint, the other
use cases do not. Templates are read as deployed, and the roles are evaluated the way IAM would
(``tools.iam.template.World``, ``tools.iam.evaluate``)."""

from __future__ import annotations

import json

import pytest

from lambdas.common import naming
from pipeline_code import monitoring_definition
from stacks.constructs.endpoint_monitoring import (
    PIPELINES,
    capture_uri,
    failed_run_alarm_name,
    monitoring_alarm_names,
)
from tests.pipeline.definition_rules import argument_problems, graph_problems, reference_problems
from tools.iam.evaluate import Request, evaluate_access
from tools.iam.template import World

ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX, TEAM, USE_CASE = "mlp", "fraud", "fraud-detection"
ENDPOINT = naming.endpoint_name(PREFIX, TEAM, USE_CASE)
PIPELINE = naming.monitoring_pipeline_name(PREFIX, TEAM, USE_CASE)
STACK = f"{PREFIX}-team-{TEAM}"


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates, account=ACCOUNT, region=REGION)


def of_type(world: World, stack: str, kind: str) -> list:
    return [r for r in world.resources(kind) if r.stack == stack]


def test_only_the_monitored_use_case_gets_a_pipeline_a_schedule_group_and_alarms(world):
    monitoring = {stack: [] for stack in ("mlp-team-fraud", "mlp-team-churn", "mlp-team-pricing")}
    for r in world.resources("AWS::SageMaker::Pipeline"):
        if r.properties["PipelineName"].endswith(naming.MONITORING_PIPELINE_SUFFIX):
            monitoring[r.stack].append(r.properties["PipelineName"])
    assert monitoring == {STACK: [PIPELINE], "mlp-team-churn": [], "mlp-team-pricing": []}
    groups = {r.stack: r.properties["Name"] for r in world.resources("AWS::Scheduler::ScheduleGroup")}
    assert groups == {STACK: ENDPOINT}
    assert not list(world.resources("AWS::Scheduler::Schedule")), "schedules belong to the verifier, not the stack"


def test_the_pipeline_runs_the_monitor_on_the_endpoints_capture_as_the_teams_role(world):
    (pipeline,) = [r for r in of_type(world, STACK, "AWS::SageMaker::Pipeline")
                   if r.properties["PipelineName"] == PIPELINE]
    definition = json.loads(world.resolve(STACK, pipeline.properties["PipelineDefinition"]["PipelineDefinitionBody"]))
    assert argument_problems(definition) + reference_problems(definition) + graph_problems(definition) == []
    (step,) = definition["Steps"]
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    options = dict(zip(arguments[3::2], arguments[4::2]))
    bucket = next(world.resolve(STACK, {"Ref": r.logical_id}) for r in of_type(world, STACK, "AWS::S3::Bucket"))
    assert options["--capture-uri"] == capture_uri(bucket, ENDPOINT)
    assert options["--ground-truth-uri"] == f"s3://{bucket}/monitoring/ground-truth/{ENDPOINT}/"
    assert options["--metric-namespace"] == naming.monitoring_namespace(PREFIX, TEAM)
    assert options["--endpoint-name"] == ENDPOINT
    role = world.resolve(STACK, pipeline.properties["RoleArn"])
    assert step["Arguments"]["RoleArn"] == role and f"/{STACK}-ExecutionRole" in role
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["WindowHours"] == 24 and defaults["MinRows"] == 100 and defaults["WindowEnd"] == "now"
    assert set(monitoring_definition.SCHEDULE_PARAMETERS) <= set(defaults)
    environment = step["Arguments"]["Environment"]
    (app,) = [r for r in of_type(world, STACK, "AWS::SageMaker::MlflowApp")]
    assert environment["MLFLOW_TRACKING_URI"] == world.arn(STACK, app.logical_id)
    assert environment["MLOPS_EXPERIMENT_NAME"] == PIPELINE, "one MLflow experiment per monitoring pipeline"


def test_alarms_watch_the_endpoints_drift_and_quality_and_notify_the_team(world, example_config):
    use_case = example_config.teams[0].use_cases[0]
    alarms = {r.properties["AlarmName"]: r for r in of_type(world, STACK, "AWS::CloudWatch::Alarm")}
    drift_name, quality_name = monitoring_alarm_names(ENDPOINT)
    topic = world.resolve(STACK, {"Ref": next(r.logical_id for r in of_type(world, STACK, "AWS::SNS::Topic"))})
    drift, quality = alarms[drift_name].properties, alarms[quality_name].properties
    for alarm in (drift, quality):
        assert world.resolve(STACK, alarm["AlarmActions"]) == [topic]
        assert alarm["Namespace"] == naming.monitoring_namespace(PREFIX, TEAM)
        assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
        assert alarm["Period"] == 86_400 and alarm["TreatMissingData"] == "notBreaching"
    assert (drift["MetricName"], drift["Threshold"], drift["ComparisonOperator"]) == (
        "DriftedFeatureShare", use_case.endpoint.monitoring.alarms.drifted_feature_share,
        "GreaterThanOrEqualToThreshold")
    assert (quality["MetricName"], quality["Threshold"], quality["ComparisonOperator"], quality["Statistic"]) == (
        "Quality_auc", use_case.problem.quality_gate.threshold, "LessThanThreshold", "Minimum")
    failed = alarms[failed_run_alarm_name(ENDPOINT)].properties
    assert world.resolve(STACK, failed["AlarmActions"]) == [topic]
    assert (failed["Namespace"], failed["MetricName"], failed["Dimensions"], failed["Threshold"]) == (
        PIPELINES, "ExecutionFailed", [{"Name": "PipelineName", "Value": PIPELINE}], 1)


def _role(world: World, name_part: str) -> tuple[str, list]:
    (role,) = [r.logical_id for r in of_type(world, STACK, "AWS::IAM::Role") if name_part in r.logical_id]
    return world.role_arn(STACK, role), world.role_statements(STACK, role)


def test_the_scheduler_role_starts_the_monitoring_pipeline_and_nothing_else(world):
    arn, identity = _role(world, "SchedulerRole")
    (role,) = [r for r in of_type(world, STACK, "AWS::IAM::Role") if "SchedulerRole" in r.logical_id]
    trust = role.properties["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert world.resolve(STACK, trust[0]["Condition"]) == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    own = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
    experiment = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{naming.model_package_group_name(PREFIX, TEAM, USE_CASE)}"
    assert evaluate_access(identity, [], Request("sagemaker:StartPipelineExecution", own, {})).allowed
    assert not evaluate_access(identity, [], Request("sagemaker:StartPipelineExecution", experiment, {})).allowed
    assert {a for s in identity for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
        "sagemaker:StartPipelineExecution"}


def test_the_verifier_keeps_only_its_endpoints_schedule_and_passes_only_the_scheduler_role(world):
    _, identity = _role(world, "VerifierFunctionRole")
    scheduler_role, _ = _role(world, "SchedulerRole")
    schedule = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{ENDPOINT}/{naming.MONITORING_SCHEDULE_NAME}"
    other = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/mlp-churn-churn-propensity/{naming.MONITORING_SCHEDULE_NAME}"
    for action in ("scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:GetSchedule",
                   "scheduler:DeleteSchedule"):
        assert evaluate_access(identity, [], Request(action, schedule, {})).allowed, action
        assert not evaluate_access(identity, [], Request(action, other, {})).allowed, action
    passed = {"iam:PassedToService": "scheduler.amazonaws.com"}
    assert evaluate_access(identity, [], Request("iam:PassRole", scheduler_role, passed)).allowed
    assert not evaluate_access(identity, [], Request("iam:PassRole", scheduler_role,
                                                     {"iam:PassedToService": "lambda.amazonaws.com"})).allowed
    (function,) = [r for r in of_type(world, STACK, "AWS::Lambda::Function") if "VerifierFunction" in r.logical_id]
    environment = world.resolve(STACK, function.properties["Environment"]["Variables"])
    assert environment["MONITORING_SCHEDULER_ROLE_ARN"] == scheduler_role
    assert environment["PIPELINE_ARN_PREFIX"] + PIPELINE.lower() == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}")
    settings = {entry["use_case"]: entry["settings"] for entry in json.loads(environment["USE_CASES"])}
    assert settings[USE_CASE]["monitoring"] == {"enabled": True, "schedule": "cron(15 0 * * ? *)"}


def test_teams_without_monitoring_get_no_scheduler_grants(world):
    for team in ("churn", "pricing"):
        stack = f"{PREFIX}-team-{team}"
        (role,) = [r.logical_id for r in of_type(world, stack, "AWS::IAM::Role") if "VerifierFunctionRole" in r.logical_id]
        actions = {a for s in world.role_statements(stack, role)
                   for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert not {a for a in actions if a.startswith("scheduler:")}, team
        assert not [r for r in of_type(world, stack, "AWS::IAM::Role") if "SchedulerRole" in r.logical_id]


def _verifier(world: World, stack: str) -> tuple:
    (role,) = [r.logical_id for r in of_type(world, stack, "AWS::IAM::Role") if "VerifierFunctionRole" in r.logical_id]
    (function,) = [r for r in of_type(world, stack, "AWS::Lambda::Function") if "VerifierFunction" in r.logical_id]
    actions = {a for s in world.role_statements(stack, role)
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    return actions, world.resolve(stack, function.properties["Environment"]["Variables"])


def test_only_a_team_that_autoscales_gets_the_autoscaling_grants_and_settings(world, example_config):
    for team in example_config.teams:
        stack = f"{PREFIX}-team-{team.name}"
        actions, environment = _verifier(world, stack)
        settings = {e["use_case"]: e["settings"] for e in json.loads(environment["USE_CASES"])}
        scaled = [u for u in team.use_cases if u.endpoint.autoscaling.enabled]
        granted = {a for a in actions if a.startswith("application-autoscaling:")}
        assert bool(granted) == bool(scaled), team.name
        for use_case in team.use_cases:
            if use_case.endpoint.autoscaling.enabled:
                assert settings[use_case.name]["autoscaling"] == use_case.endpoint.autoscaling.model_dump(mode="json")
            else:
                assert "autoscaling" not in settings[use_case.name], "a disabled section stays out of USE_CASES"
