"""The dashboards of the example platform, read as deployed (``World`` resolves the bodies for one account):
each widget's metrics are ones AWS or the platform publishes, with the dimensions they are published with,
its thresholds are the alarms', and its log queries read fields the functions write."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict

import pytest

from lambdas.common import naming
from pipeline_code import monitor
from stacks.constructs.dashboards import PIPELINES, platform_dashboard_name, team_dashboard_name
from stacks.constructs.endpoint_monitoring import monitoring_alarm_names
from tools.iam.template import World

ACCOUNT, REGION, PREFIX = "123456789012", "us-east-1", "mlp"


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates, account=ACCOUNT, region=REGION)


def dashboards(world: World) -> dict:
    return {r.properties["DashboardName"]: (r.stack, json.loads(world.resolve(r.stack, r.properties["DashboardBody"])))
            for r in world.resources("AWS::CloudWatch::Dashboard")}


def by_title(body: dict) -> dict:
    return {w["properties"]["title"]: w for w in body["widgets"]}


def plain_metrics(widget: dict) -> list:
    """(namespace, name, dimensions, options) of the widget's metric rows (math rows left out)."""
    found = []
    for row in widget["properties"].get("metrics", []):
        if isinstance(row[0], dict):
            continue
        options = row[-1] if isinstance(row[-1], dict) else {}
        values = row[:-1] if options else row
        namespace, name, *pairs = values
        found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2])), options))
    return found


def expressions(widget: dict) -> list:
    return [row[0]["expression"] for row in widget["properties"].get("metrics", []) if isinstance(row[0], dict)]


def annotations(widget: dict) -> dict:
    return {a["label"]: a["value"] for a in widget["properties"].get("annotations", {}).get("horizontal", [])}


def test_every_team_and_the_platform_have_their_dashboard(world, example_config):
    names = set(dashboards(world))
    assert names == {team_dashboard_name(PREFIX, t.name) for t in example_config.teams} | {
        platform_dashboard_name(PREFIX)}


@pytest.mark.parametrize("team_index", [0, 1, 2])
def test_each_endpoint_shows_traffic_latency_errors_and_instances_against_its_limits(world, example_config,
                                                                                    team_index):
    team = example_config.teams[team_index]
    _, body = dashboards(world)[team_dashboard_name(PREFIX, team.name)]
    widgets = by_title(body)
    for use_case in team.use_cases:
        endpoint = naming.endpoint_name(PREFIX, team.name, use_case.name)
        dimensions = {"EndpointName": endpoint, "VariantName": "AllTraffic"}
        assert [(m[0], m[1], m[2], m[3]["stat"]) for m in plain_metrics(widgets[f"{endpoint}: invocations"])] == [
            ("AWS/SageMaker", "Invocations", dimensions, "Sum")]
        latency = widgets[f"{endpoint}: model latency"]
        assert {(m[1], m[3].get("stat", "Average")) for m in plain_metrics(latency)} == {
            ("ModelLatency", "Average"), ("ModelLatency", "p90")}
        assert all(m[2] == dimensions for m in plain_metrics(latency))
        assert sorted(expressions(latency)) == ["average / 1000", "latency / 1000"], "microseconds shown as ms"
        assert annotations(latency) == {"rollback alarm": use_case.endpoint.alarms.model_latency_ms}
        errors = plain_metrics(widgets[f"{endpoint}: 4xx and 5xx"])
        assert [(m[1], m[2]) for m in errors] == [("Invocation4XXErrors", dimensions), ("Invocation5XXErrors", dimensions)]
        instances = widgets[f"{endpoint}: instances"]
        assert expressions(instances) == ["IF(perinstance > 0, invocations / perinstance)"]
        assert {(m[1], m[3]["id"]) for m in plain_metrics(instances)} == {
            ("Invocations", "invocations"), ("InvocationsPerInstance", "perinstance")}
        scaling = use_case.endpoint.autoscaling
        expected = ({"scaling minimum": scaling.min_instances, "scaling maximum": scaling.max_instances}
                    if scaling.enabled else {"instance count": use_case.endpoint.initial_instance_count})
        assert annotations(instances) == expected


def _published(report_rows: int = 500) -> set:
    """(metric name, dimension names) of everything the monitoring job publishes for a full report."""
    report = {"endpoint": "e", "model_version": "1", "rows": report_rows, "status": monitor.OK,
              "drift": {"columns": [{"column": "amount", "score": 0.2, "drifted": True}], "drifted_share": 1.0},
              "quality": {"rows": 40, "metrics": {"auc": 0.9}}}
    return {(d["MetricName"], tuple(sorted(x["Name"] for x in d["Dimensions"]))) for d in monitor.metric_data(report)}


def test_the_monitored_endpoint_shows_what_the_job_publishes_and_the_alarms_thresholds(world, example_config):
    team = example_config.teams[0]
    use_case = team.use_cases[0]
    endpoint = naming.endpoint_name(PREFIX, team.name, use_case.name)
    stack, body = dashboards(world)[team_dashboard_name(PREFIX, team.name)]
    widgets = by_title(body)
    namespace = naming.monitoring_namespace(PREFIX, team.name)
    shown = [m for title, w in widgets.items() if title.startswith(endpoint) for m in plain_metrics(w)
             if m[0] == namespace]
    assert {(m[1], tuple(sorted(m[2]))) for m in shown} <= _published()
    assert {m[1] for m in shown} == {"DriftedFeatureShare", "Quality_auc", "CapturedRows", "LabelledRows"}
    alarms = {r.properties["AlarmName"]: r.properties for r in world.resources("AWS::CloudWatch::Alarm")
              if r.stack == stack}
    drift_alarm, quality_alarm = (alarms[name] for name in monitoring_alarm_names(endpoint))
    assert annotations(widgets[f"{endpoint}: drifted feature share"]) == {"drift alarm": drift_alarm["Threshold"]}
    assert annotations(widgets[f"{endpoint}: auc on labelled requests"]) == {"quality alarm": quality_alarm["Threshold"]}
    (search,) = expressions(widgets[f"{endpoint}: drift score per feature"])
    schema = re.match(r"SEARCH\('\{([^,]+),([^}]+)\} MetricName=\"([^\"]+)\" EndpointName=\"([^\"]+)\"'", search)
    assert schema and schema.group(1) == namespace and schema.group(4) == endpoint
    assert (schema.group(3), tuple(sorted(schema.group(2).split(",")))) in _published()
    for other in example_config.teams[1:]:
        _, other_body = dashboards(world)[team_dashboard_name(PREFIX, other.name)]
        assert not [t for t in by_title(other_body) if "drift" in t], "no monitoring, no drift widgets"


def test_the_deploy_widgets_read_the_teams_queues_and_the_deploy_functions_log_fields(world, example_config, caplog):
    from deploy_on_approval import deploy
    from deploy_on_approval.messages import ApprovalChange
    from deploy_on_approval.settings import UseCaseTarget

    team = example_config.teams[0]
    stack, body = dashboards(world)[team_dashboard_name(PREFIX, team.name)]
    widgets = by_title(body)
    queues = {world.resolve(stack, r.properties.get("QueueName", {"Fn::GetAtt": [r.logical_id, "QueueName"]}))
              for r in world.resources("AWS::SQS::Queue") if r.stack == stack}
    shown = {m[2]["QueueName"] for m in plain_metrics(widgets["deploy queue"])}
    assert shown == queues and len(shown) == 3
    query = widgets["latest deploy outcomes"]["properties"]["query"]
    (function,) = [r for r in world.resources("AWS::Lambda::Function") if r.stack == stack
                   and r.properties.get("Handler") == "deploy_on_approval.handler.handler"]
    log_group = world.resolve(stack, function.properties["LoggingConfig"]["LogGroup"])
    assert query.startswith(f"SOURCE '{log_group}' |")
    fields = set(re.search(r"fields (.*?) \|", query).group(1).replace("@timestamp", "").replace(",", " ").split())
    target = UseCaseTarget("fraud-detection", "g", "e", (), {})
    with caplog.at_level(logging.INFO, logger=deploy.logger.name):
        deploy.log_outcome(ApprovalChange(group="g", version=3, status="Approved", arn="arn"), target,
                           deploy.Outcome("created", 3, "c", "Creating"))
    record = caplog.records[-1]
    assert fields <= set(vars(record)), "the query reads fields the deploy function logs"


def test_pipeline_executions_cover_every_pipeline_of_the_team(world, example_config):
    team = example_config.teams[0]
    stack, body = dashboards(world)[team_dashboard_name(PREFIX, team.name)]
    pipelines = {r.properties["PipelineName"] for r in world.resources("AWS::SageMaker::Pipeline") if r.stack == stack}
    metrics = plain_metrics(by_title(body)["pipeline executions per day"])
    assert {m[0] for m in metrics} == {PIPELINES}
    assert {m[2]["PipelineName"] for m in metrics} == pipelines
    assert {m[1] for m in metrics} == {"ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed"}


def test_the_platform_dashboard_reads_the_reapers_and_the_quota_functions_logs(world):
    from idle_endpoint_reaper import report

    stack, body = dashboards(world)[platform_dashboard_name(PREFIX)]
    widgets = by_title(body)
    functions = {r.properties["Handler"]: world.resolve(stack, r.properties["LoggingConfig"]["LogGroup"])
                 for r in world.resources("AWS::Lambda::Function") if r.stack == stack and "Handler" in r.properties}
    reaper_logs = functions["idle_endpoint_reaper.handler.handler"]
    outcome_fields = set(asdict(report.Outcome("e", "t", report.DELETED, "idle", False)))
    for title in ("reaper decisions (endpoints per action and team)",
                  "endpoints the reaper deleted (or would delete in a dry run)",
                  "estimated hourly cost (USD) of the idle endpoints the reaper found"):
        query = widgets[title]["properties"]["query"]
        assert query.startswith(f"SOURCE '{reaper_logs}' |")
        assert set(re.findall(r"reaper\.(\w+)", query)) <= outcome_fields
    assert f"'{report.DELETED}'" in widgets["endpoints the reaper deleted (or would delete in a dry run)"][
        "properties"]["query"]
    cost_query = widgets["estimated hourly cost (USD) of the idle endpoints the reaper found"]["properties"]["query"]
    assert "sum(reaper.hourly_cost_usd)" in cost_query and f"'{report.WOULD_DELETE}'" in cost_query
    (alarm,) = widgets["reaper runs that failed"]["properties"]["annotations"]["alarms"]
    assert alarm.endswith(":alarm:mlp-platform-reaper-run-failed")
    quota_query = widgets["instance quota requests and their status"]["properties"]["query"]
    assert quota_query.startswith(f"SOURCE '{functions['instance_quotas.handler.handler']}' |")
