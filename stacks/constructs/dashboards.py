"""CloudWatch dashboards: one per team (``<prefix>-<team>``) and one for the platform (``<prefix>-platform``).

docs/dashboards.md says what each widget shows and where its numbers come from. Every metric widget reads
metrics AWS or the platform already publishes (nothing is emitted for the dashboards alone); the log widgets
query the JSON lines the platform's functions write (``lambdas/*``: one line per decision).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from lambdas.common import naming
from stacks.config import Team, UseCase
from stacks.constructs.cost_tracking import CostTracking
from stacks.constructs.deploy_on_approval import VARIANT_NAME, DeployOnApproval
from stacks.constructs.endpoint_monitoring import PIPELINES, EndpointMonitoring

SAGEMAKER = "AWS/SageMaker"
SQS = "AWS/SQS"
WIDTH, HEIGHT = 6, 6
FIVE_MINUTES = Duration.minutes(5)
DAY = Duration.days(1)
DEPLOY_QUERY = ("fields @timestamp, endpoint, action, version, endpoint_status | filter ispresent(action) "
                "| sort @timestamp desc | limit 20")
REAPER_DECISIONS_QUERY = "filter ispresent(reaper.action) | stats count(*) as endpoints by reaper.action, reaper.team"
REAPER_COST_QUERY = ("filter reaper.action = 'deleted' or reaper.action = 'would_delete' "
                     "| stats sum(reaper.hourly_cost_usd) as usd_per_hour, count(*) as endpoints "
                     "by reaper.team, reaper.action")
REAPER_DELETIONS_QUERY = ("fields @timestamp, reaper.endpoint, reaper.team, reaper.reason "
                          "| filter reaper.action = 'deleted' or reaper.action = 'would_delete' "
                          "| sort @timestamp desc | limit 50")
QUOTA_QUERY = ("fields @timestamp, QuotaName, DesiredValue, AppliedValue, RequestStatus, Status "
               "| filter ispresent(QuotaName) | sort @timestamp desc | limit 50")


def team_dashboard_name(prefix: str, team: str) -> str:
    return f"{prefix}-{team}"


def platform_dashboard_name(prefix: str) -> str:
    return f"{prefix}-platform"


def _endpoint_metric(endpoint: str, name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=SAGEMAKER, metric_name=name, statistic=statistic, period=FIVE_MINUTES,
                             dimensions_map={"EndpointName": endpoint, "VariantName": VARIANT_NAME}, label=label)


def endpoint_widgets(prefix: str, team: str, use_case: UseCase, namespace: str) -> list:
    """One row per endpoint: traffic, latency, errors, instances (and drift and quality when monitored)."""
    endpoint = naming.endpoint_name(prefix, team, use_case.name)
    settings = use_case.endpoint
    latency_ms = cloudwatch.MathExpression(
        expression="latency / 1000", label="model latency p90 (ms)", period=FIVE_MINUTES,
        using_metrics={"latency": _endpoint_metric(endpoint, "ModelLatency", "p90")})
    average_ms = cloudwatch.MathExpression(
        expression="average / 1000", label="model latency average (ms)", period=FIVE_MINUTES,
        using_metrics={"average": _endpoint_metric(endpoint, "ModelLatency", "Average")})
    instances = cloudwatch.MathExpression(
        expression="IF(perinstance > 0, invocations / perinstance)", label="instances (invocations / per instance)",
        period=FIVE_MINUTES,
        using_metrics={"invocations": _endpoint_metric(endpoint, "Invocations", "Sum"),
                       "perinstance": _endpoint_metric(endpoint, "InvocationsPerInstance", "Sum")})
    if settings.autoscaling.enabled:
        limits = [cloudwatch.HorizontalAnnotation(value=settings.autoscaling.min_instances, label="scaling minimum"),
                  cloudwatch.HorizontalAnnotation(value=settings.autoscaling.max_instances, label="scaling maximum")]
    else:
        limits = [cloudwatch.HorizontalAnnotation(value=settings.initial_instance_count, label="instance count")]
    widgets = [
        cloudwatch.GraphWidget(title=f"{endpoint}: invocations", width=WIDTH, height=HEIGHT,
                               left=[_endpoint_metric(endpoint, "Invocations", "Sum", "invocations")]),
        cloudwatch.GraphWidget(title=f"{endpoint}: model latency", width=WIDTH, height=HEIGHT,
                               left=[average_ms, latency_ms],
                               left_annotations=[cloudwatch.HorizontalAnnotation(
                                   value=settings.alarms.model_latency_ms, label="rollback alarm")]),
        cloudwatch.GraphWidget(title=f"{endpoint}: 4xx and 5xx", width=WIDTH, height=HEIGHT,
                               left=[_endpoint_metric(endpoint, "Invocation4XXErrors", "Sum", "4xx"),
                                     _endpoint_metric(endpoint, "Invocation5XXErrors", "Sum", "5xx")]),
        cloudwatch.GraphWidget(title=f"{endpoint}: instances", width=WIDTH, height=HEIGHT, left=[instances],
                               left_annotations=limits),
    ]
    if settings.monitoring.enabled:
        monitoring = settings.monitoring
        gate = use_case.problem.quality_gate
        quality_threshold = monitoring.alarms.quality_threshold
        quality_threshold = float(gate.threshold) if quality_threshold is None else quality_threshold
        dimensions = {"EndpointName": endpoint}
        scores = cloudwatch.MathExpression(
            expression=(f"SEARCH('{{{namespace},EndpointName,Feature,ModelVersion}} MetricName=\"FeatureDriftScore\" "
                        f"EndpointName=\"{endpoint}\"', 'Maximum', 86400)"),
            label="", period=DAY, using_metrics={})
        widgets += [
            cloudwatch.GraphWidget(
                title=f"{endpoint}: drifted feature share", width=WIDTH, height=HEIGHT,
                left=[cloudwatch.Metric(namespace=namespace, metric_name="DriftedFeatureShare", statistic="Maximum",
                                        period=DAY, dimensions_map=dimensions, label="drifted share")],
                left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=monitoring.alarms.drifted_feature_share, label="drift alarm")]),
            cloudwatch.GraphWidget(title=f"{endpoint}: drift score per feature", width=WIDTH, height=HEIGHT,
                                   left=[scores]),
            cloudwatch.GraphWidget(
                title=f"{endpoint}: {gate.metric} on labelled requests", width=WIDTH, height=HEIGHT,
                left=[cloudwatch.Metric(namespace=namespace, metric_name=f"Quality_{gate.metric}", statistic="Minimum",
                                        period=DAY, dimensions_map=dimensions, label=gate.metric)],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=quality_threshold, label="quality alarm")]),
            cloudwatch.GraphWidget(
                title=f"{endpoint}: compared rows", width=WIDTH, height=HEIGHT,
                left=[cloudwatch.Metric(namespace=namespace, metric_name=name, statistic="Maximum", period=DAY,
                                        dimensions_map=dimensions, label=label)
                      for name, label in (("CapturedRows", "captured"), ("LabelledRows", "labelled"))]),
        ]
    return widgets


def _queue_metric(queue, label: str) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=FIVE_MINUTES, label=label)


class TeamDashboard(Construct):
    """``<prefix>-<team>``: per endpoint its traffic, latency, errors, instances, drift and quality; the deploy
    queue, its dead letters and the latest deploy outcomes; the executions of the team's pipelines.

    Without `deploy_on_approval` and `monitoring` (the development stack of a team that serves in stages,
    whose endpoints are in the stage accounts), it shows the pipeline executions only."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, team: Team,
                 deploy_on_approval: DeployOnApproval | None, monitoring: EndpointMonitoring | None,
                 pipeline_names: list) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=team_dashboard_name(prefix, team.name),
                                              default_interval=Duration.days(7))
        for use_case in team.use_cases if monitoring is not None else ():
            self.dashboard.add_widgets(*endpoint_widgets(prefix, team.name, use_case, monitoring.namespace))
        if deploy_on_approval is not None and deploy_on_approval.enabled:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="deploy queue", width=WIDTH, height=HEIGHT,
                    left=[_queue_metric(deploy_on_approval.deploy_queue, "waiting approvals"),
                          _queue_metric(deploy_on_approval.deploy_dead_letter_queue, "dead letters"),
                          _queue_metric(deploy_on_approval.failed_events_queue, "failed events")]),
                cloudwatch.LogQueryWidget(
                    title="latest deploy outcomes", width=3 * WIDTH, height=HEIGHT,
                    log_group_names=[deploy_on_approval.deploy_function.log_group.log_group_name],
                    query_string=DEPLOY_QUERY, view=cloudwatch.LogQueryVisualizationType.TABLE),
            )
        executions = [
            cloudwatch.Metric(namespace=PIPELINES, metric_name=name, statistic="Sum", period=DAY,
                              dimensions_map={"PipelineName": pipeline}, label=f"{pipeline} {label}")
            for pipeline in pipeline_names
            for name, label in (("ExecutionStarted", "started"), ("ExecutionSucceeded", "succeeded"),
                                ("ExecutionFailed", "failed"))
        ]
        if executions:
            self.dashboard.add_widgets(cloudwatch.GraphWidget(
                title="pipeline executions per day", width=4 * WIDTH, height=HEIGHT, left=executions,
                view=cloudwatch.GraphWidgetView.BAR))


class PlatformDashboard(Construct):
    """``<prefix>-platform``: the reaper's decisions, deletions and failed runs; each team's cost this month
    against its budget; the instance quota requests."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, reaper_function: lambda_.Function,
                 reaper_alarm: cloudwatch.IAlarm, quota_function: lambda_.Function | None,
                 cost_tracking: CostTracking | None = None) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=platform_dashboard_name(prefix),
                                              default_interval=Duration.days(7))
        reaper_logs = [reaper_function.log_group.log_group_name]
        self.dashboard.add_widgets(
            cloudwatch.LogQueryWidget(title="reaper decisions (endpoints per action and team)", width=2 * WIDTH,
                                      height=HEIGHT, log_group_names=reaper_logs, query_string=REAPER_DECISIONS_QUERY,
                                      view=cloudwatch.LogQueryVisualizationType.TABLE),
            cloudwatch.LogQueryWidget(title="endpoints the reaper deleted (or would delete in a dry run)",
                                      width=2 * WIDTH, height=HEIGHT, log_group_names=reaper_logs,
                                      query_string=REAPER_DELETIONS_QUERY,
                                      view=cloudwatch.LogQueryVisualizationType.TABLE),
        )
        self.dashboard.add_widgets(
            cloudwatch.LogQueryWidget(title="estimated hourly cost (USD) of the idle endpoints the reaper found",
                                      width=2 * WIDTH, height=HEIGHT, log_group_names=reaper_logs,
                                      query_string=REAPER_COST_QUERY,
                                      view=cloudwatch.LogQueryVisualizationType.TABLE),
            cloudwatch.AlarmWidget(title="reaper runs that failed", width=WIDTH, height=HEIGHT, alarm=reaper_alarm),
            cloudwatch.GraphWidget(title="reaper invocations and errors", width=WIDTH, height=HEIGHT,
                                   left=[reaper_function.metric_invocations(statistic="Sum", period=DAY),
                                         reaper_function.metric_errors(statistic="Sum", period=DAY)]),
        )
        if cost_tracking is not None and cost_tracking.budgets:
            self.dashboard.add_widgets(*[
                cloudwatch.GraphWidget(
                    title=f"{team}: cost this month (USD)", width=WIDTH, height=HEIGHT,
                    left=[cloudwatch.Metric(namespace=cost_tracking.namespace, metric_name=name, statistic="Maximum",
                                            period=Duration.hours(6), dimensions_map={"Team": team}, label=label)
                          for name, label in (("MonthToDateCost", "month to date"), ("ForecastedCost", "forecast"))],
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=cost_tracking.limits[team],
                                                                      label="monthly budget")])
                for team in sorted(cost_tracking.budgets)
            ])
        if quota_function is not None:
            self.dashboard.add_widgets(cloudwatch.LogQueryWidget(
                title="instance quota requests and their status", width=4 * WIDTH, height=HEIGHT,
                log_group_names=[quota_function.log_group.log_group_name], query_string=QUOTA_QUERY,
                view=cloudwatch.LogQueryVisualizationType.TABLE))
