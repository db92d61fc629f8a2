"""A team's endpoint monitoring: per monitored use case a monitoring pipeline, a schedule group and alarms.

- ``AWS::SageMaker::Pipeline`` ``<group>-monitor`` (``pipeline_code.monitoring_definition``): one processing
  job that compares a window of the endpoint's data capture with the serving version's baseline; it runs as
  the team's execution role, which may publish only to the team's metric namespace.
- ``AWS::Scheduler::ScheduleGroup`` named after the endpoint. The endpoint verifier creates the one schedule
  in it (``drift-monitor``) when a version goes live, with that version's parameters; the reaper deletes the
  schedule with the endpoint. The group belongs to CloudFormation, so a use case taken out of the config
  takes its group, and with it the schedule, away.
- The scheduler's role: may start exactly the team's monitoring pipelines.
- Alarms on the team topic: the share of drifted features, the quality gate's metric on labelled requests, and
  a failed monitoring run (whose missing metrics the other two treat as not breaching).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common import naming
from pipeline_code import definition, monitoring_definition
from pipeline_code.problem import QUALITY_METRICS
from stacks.config import Team, UseCase
from stacks.constructs.deploy_on_approval import DATA_CAPTURE_PREFIX, VARIANT_NAME
from stacks.constructs.experiment_pipeline import pipeline_code_commit, resolve_definition

DRIFT_ALARM_SUFFIX = "drifted-features"
QUALITY_ALARM_SUFFIX = "model-quality"
FAILED_RUN_ALARM_SUFFIX = "monitoring-failed"
PIPELINES = "AWS/Sagemaker/ModelBuildingPipeline"
"""The namespace SageMaker Pipelines publishes execution metrics to (spelled so by AWS), dimension PipelineName."""
MAX_ALARM_PERIOD_SECONDS = 86_400


def capture_uri(bucket_name: str, endpoint: str) -> str:
    """Where SageMaker writes the endpoint's data capture (the deploy Lambda's destination + endpoint + variant)."""
    return f"s3://{bucket_name}/{DATA_CAPTURE_PREFIX}/{endpoint}/{VARIANT_NAME}/"


def monitoring_alarm_names(endpoint: str) -> tuple[str, str]:
    """Drift alarm, quality alarm: inside the team topic's ``<prefix>-<team>-*``."""
    return f"{endpoint}-{DRIFT_ALARM_SUFFIX}", f"{endpoint}-{QUALITY_ALARM_SUFFIX}"


def failed_run_alarm_name(endpoint: str) -> str:
    """A monitoring run that failed (no report, no metrics): the drift alarm alone would stay silent."""
    return f"{endpoint}-{FAILED_RUN_ALARM_SUFFIX}"


def monitored(team: Team) -> list[UseCase]:
    return [u for u in team.use_cases if u.endpoint.monitoring.enabled]


class EndpointMonitoring(Construct):
    """Monitoring of the team's endpoints whose use case enables it (``endpoint.monitoring``).

    Attributes: ``scheduler_role`` (None without a monitored use case), ``pipelines``, ``schedule_groups``,
    ``drift_alarms`` and ``quality_alarms`` by use case name, ``namespace``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        team: Team,
        bucket: s3.IBucket,
        execution_role: iam.Role,
        kms_key: kms.IKey,
        alert_topic: sns.ITopic,
        mlflow_app_arn: str,
        code_dependencies: list,
        region_images: dict | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix, self.team = prefix, team
        self.namespace = naming.monitoring_namespace(prefix, team.name)
        self.pipelines: dict[str, sagemaker.CfnPipeline] = {}
        self.schedule_groups: dict[str, scheduler.CfnScheduleGroup] = {}
        self.drift_alarms: dict[str, cloudwatch.Alarm] = {}
        self.quality_alarms: dict[str, cloudwatch.Alarm] = {}
        self.failed_run_alarms: dict[str, cloudwatch.Alarm] = {}
        self.scheduler_role = None
        use_cases = monitored(team)
        if not use_cases:
            return
        action = cloudwatch_actions.SnsAction(alert_topic)
        for use_case in use_cases:
            endpoint = naming.endpoint_name(prefix, team.name, use_case.name)
            pipeline_name = naming.monitoring_pipeline_name(prefix, team.name, use_case.name)
            settings = use_case.endpoint.monitoring
            body = definition.definition_json(
                monitoring_definition.build_monitoring_definition(settings.window_hours, settings.min_rows,
                                                                 settings.instance_type))
            variables = {
                "TeamName": team.name,
                "PlatformPrefix": prefix,
                "BucketName": bucket.bucket_name,
                "ExecutionRoleArn": execution_role.role_arn,
                "KmsKeyArn": kms_key.key_arn,
                "PipelineName": pipeline_name,
                "MlflowAppArn": mlflow_app_arn,
                "CodeCommit": pipeline_code_commit(),
                "EndpointName": endpoint,
                "CaptureUri": capture_uri(bucket.bucket_name, endpoint),
                "MetricNamespace": self.namespace,
            }
            holder = Construct(self, use_case.name)
            resolved, _ = resolve_definition(holder, body, variables, region_images)
            pipeline = sagemaker.CfnPipeline(
                holder,
                "Pipeline",
                pipeline_name=pipeline_name,
                pipeline_description=f"Drift and quality of endpoint {endpoint} against its serving version's "
                "baseline, one window per run",
                role_arn=execution_role.role_arn,
                pipeline_definition={"PipelineDefinitionBody": resolved},
            )
            for dependency in code_dependencies:
                pipeline.node.add_dependency(dependency)
            self.pipelines[use_case.name] = pipeline
            self.schedule_groups[use_case.name] = scheduler.CfnScheduleGroup(
                holder, "ScheduleGroup", name=naming.monitoring_schedule_group(prefix, team.name, use_case.name))
            drift, quality = self._alarms(use_case, endpoint, action)
            self.drift_alarms[use_case.name], self.quality_alarms[use_case.name] = drift, quality
            self.failed_run_alarms[use_case.name] = self._failed_run_alarm(use_case, endpoint, pipeline_name, action)

        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            description=f"EventBridge Scheduler starts {team.name}'s endpoint monitoring pipelines, nothing else",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                sid="StartTheTeamsMonitoringPipelines",
                actions=["sagemaker:StartPipelineExecution"],
                resources=[self.pipeline_arn(u.name) for u in use_cases],
            )
        )
        execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishTheTeamsMonitoringMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
            )
        )

    def pipeline_arn(self, use_case: str) -> str:
        """SageMaker writes pipeline ARNs with the name in lowercase."""
        name = naming.monitoring_pipeline_name(self.prefix, self.team.name, use_case).lower()
        return Stack.of(self).format_arn(service="sagemaker", resource="pipeline", resource_name=name)

    def _failed_run_alarm(self, use_case: UseCase, endpoint: str, pipeline_name: str, action) -> cloudwatch.Alarm:
        settings = use_case.endpoint.monitoring
        alarm = cloudwatch.Alarm(
            self,
            f"FailedRun-{use_case.name}",
            alarm_name=failed_run_alarm_name(endpoint),
            alarm_description=f"{endpoint}: a monitoring run ({pipeline_name}) failed; the window has no drift "
            "verdict (see the execution's MonitorEndpoint step logs)",
            metric=cloudwatch.Metric(namespace=PIPELINES, metric_name="ExecutionFailed", statistic="Sum",
                                     period=Duration.seconds(min(settings.window_hours * 3600, MAX_ALARM_PERIOD_SECONDS)),
                                     dimensions_map={"PipelineName": pipeline_name}),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        return alarm

    def _alarms(self, use_case: UseCase, endpoint: str, action) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        settings = use_case.endpoint.monitoring
        period = Duration.seconds(min(settings.window_hours * 3600, MAX_ALARM_PERIOD_SECONDS))
        drift_name, quality_name = monitoring_alarm_names(endpoint)
        dimensions = {"EndpointName": endpoint}
        drift = cloudwatch.Alarm(
            self,
            f"Drift-{use_case.name}",
            alarm_name=drift_name,
            alarm_description=f"{endpoint}: at least {settings.alarms.drifted_feature_share:.0%} of the model's "
            "features drifted from the serving version's training data in the last monitoring window",
            metric=cloudwatch.Metric(namespace=self.namespace, metric_name=monitoring_definition.METRIC_DRIFTED_SHARE,
                                     dimensions_map=dimensions, statistic="Maximum", period=period),
            threshold=settings.alarms.drifted_feature_share,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        gate = use_case.problem.quality_gate
        higher_is_better = QUALITY_METRICS[use_case.problem.problem_type][gate.metric] == "max"
        threshold = settings.alarms.quality_threshold
        threshold = float(gate.threshold) if threshold is None else threshold
        quality = cloudwatch.Alarm(
            self,
            f"Quality-{use_case.name}",
            alarm_name=quality_name,
            alarm_description=f"{endpoint}: {gate.metric} on labelled requests "
            f"{'below' if higher_is_better else 'above'} {threshold} in the last monitoring window",
            metric=cloudwatch.Metric(namespace=self.namespace,
                                     metric_name=f"{monitoring_definition.QUALITY_METRIC_PREFIX}{gate.metric}",
                                     dimensions_map=dimensions,
                                     statistic="Minimum" if higher_is_better else "Maximum", period=period),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD if higher_is_better
            else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (drift, quality):
            alarm.add_alarm_action(action)
        return drift, quality
