"""The idle endpoint reaper: a schedule, a Lambda that deletes idle managed endpoints, and its alarm.

One instance serves every team of the platform (it lives in the platform stack): team overrides travel
in the function's environment, so the stack's resource count does not grow with the number of teams.

The function's role may delete only endpoints named ``<prefix>-*`` that carry the platform's
managed-by and platform tags, and never one tagged ``mlops:keep-alive=true`` or belonging to an exempt
team (explicit Deny, evaluated by IAM on the endpoint's current tags at the moment of the call). Its
summary goes to the platform's alert topic, encrypted with the platform key; a failed run (an
invocation error) raises an alarm on the same topic.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common import naming, tags
from lambdas.idle_endpoint_reaper import restore_record
from lambdas.idle_endpoint_reaper import settings as reaper_settings
from stacks.config import ReaperSettings, Team
from stacks.constructs.lambda_function import platform_function

HANDLER = "idle_endpoint_reaper.handler.handler"
FUNCTION_TIMEOUT = Duration.minutes(5)
FUNCTION_MEMORY_MB = 512
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
# The topic ARN is a token at synth time; a resolved ARN takes at most this many bytes.
TOPIC_ARN_ALLOWANCE_BYTES = 300
RUN_FAILED_ALARM = "reaper-run-failed"


def platform_alarm_name(prefix: str, name: str) -> str:
    """A platform-level alarm, ``<prefix>-platform-<name>``: the platform topic accepts alarms named so.

    Team alarms end with their own fixed suffixes (see ``deploy_on_approval``), none of them
    ``reaper-run-failed``, so even a team named ``platform`` cannot produce this name.
    """
    return f"{prefix}-platform-{name}"


def team_overrides(teams: list[Team]) -> dict[str, dict[str, object]]:
    """Each team's reaper overrides as plain values (unset fields omitted by the encoder)."""
    return {team.name: team.reaper.model_dump() for team in teams}


class IdleEndpointReaper(Construct):
    """Scheduled teardown of the platform's idle SageMaker endpoints (see docs/idle-endpoint-reaper.md)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        settings: ReaperSettings,
        teams: list[Team],
        kms_key: kms.IKey,
        alert_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.exempt_teams = sorted(t.name for t in teams if t.reaper.exempt)
        environment = {
            reaper_settings.ENV_PREFIX: prefix,
            reaper_settings.ENV_IDLE_WINDOW_HOURS: str(settings.idle_window_hours),
            reaper_settings.ENV_GRACE_PERIOD_HOURS: str(settings.grace_period_hours),
            reaper_settings.ENV_DRY_RUN: "true" if settings.dry_run else "false",
            reaper_settings.ENV_MAX_DELETIONS: str(settings.max_deletions_per_run),
            reaper_settings.ENV_TEAM_OVERRIDES: reaper_settings.encode_team_overrides(team_overrides(teams)),
            reaper_settings.ENV_TOPIC_ARN: alert_topic.topic_arn,
        }
        _check_environment_size(environment)

        self.function = platform_function(
            self,
            "Function",
            handler=HANDLER,
            description=f"Deletes idle SageMaker endpoints managed by the {prefix} platform",
            kms_key=kms_key,
            environment=environment,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY_MB,
            # A scheduled event the function failed, or that expired unrun, reaches the platform topic.
            dead_letter_topic=alert_topic,
        )
        # A failed run is not retried: the next scheduled run decides again, and the alarm reports it.
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=Duration.hours(1))
        self._grant(kms_key, alert_topic)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Runs the {prefix} idle endpoint reaper",
            schedule=events.Schedule.expression(settings.schedule),
            enabled=settings.enabled,
            targets=[targets.LambdaFunction(self.function)],
        )
        self.failure_alarm = cloudwatch.Alarm(
            self,
            "RunFailedAlarm",
            # Explicit: the platform topic accepts only alarms named `<prefix>-platform-*`.
            alarm_name=platform_alarm_name(prefix, RUN_FAILED_ALARM),
            alarm_description=f"The {prefix} idle endpoint reaper failed a run (no summary was sent)",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alert_topic))

    # --- IAM -------------------------------------------------------------------------------------

    def _arn(
        self, service: str, resource: str, resource_name: str, arn_format: ArnFormat = ArnFormat.SLASH_RESOURCE_NAME
    ) -> str:
        return Stack.of(self).format_arn(
            service=service, resource=resource, resource_name=resource_name, arn_format=arn_format
        )

    @property
    def endpoint_arn_pattern(self) -> str:
        return self._arn("sagemaker", "endpoint", f"{self.prefix}-*")

    def _grant(self, kms_key: kms.IKey, alert_topic: sns.ITopic) -> None:
        fn: lambda_.Function = self.function
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListEndpointsAndReadMetrics",
                actions=[
                    "sagemaker:Search",
                    "sagemaker:ListEndpoints",
                    "cloudwatch:GetMetricData",
                    "application-autoscaling:DescribeScalableTargets",
                    "pricing:GetProducts",
                ],
                resources=["*"],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PriceIdleEndpoints",
                actions=["sagemaker:DescribeEndpointConfig"],
                resources=[self._arn("sagemaker", "endpoint-config", f"{self.prefix}-*")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteOnlyManagedEndpoints",
                actions=["sagemaker:DeleteEndpoint"],
                resources=[self.endpoint_arn_pattern],
                conditions={
                    "StringEquals": {
                        f"aws:ResourceTag/{tags.MANAGED_BY}": tags.MANAGED_BY_VALUE,
                        f"aws:ResourceTag/{tags.PLATFORM}": self.prefix,
                    }
                },
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="NeverDeleteKeepAliveEndpoints",
                effect=iam.Effect.DENY,
                actions=["sagemaker:DeleteEndpoint"],
                resources=[self.endpoint_arn_pattern],
                conditions={"StringEqualsIgnoreCase": {f"aws:ResourceTag/{tags.KEEP_ALIVE}": "true"}},
            )
        )
        if self.exempt_teams:
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="NeverDeleteExemptTeamsEndpoints",
                    effect=iam.Effect.DENY,
                    actions=["sagemaker:DeleteEndpoint"],
                    resources=[self.endpoint_arn_pattern],
                    conditions={"StringEquals": {f"aws:ResourceTag/{tags.TEAM}": self.exempt_teams}},
                )
            )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeregisterEndpointAutoscaling",
                actions=["application-autoscaling:DeregisterScalableTarget"],
                resources=[self._arn("application-autoscaling", "scalable-target", "*")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteMonitoringSchedulesOfDeletedEndpoints",
                actions=["scheduler:DeleteSchedule"],
                resources=[self._arn("scheduler", "schedule", f"{self.prefix}-*/{naming.MONITORING_SCHEDULE_NAME}")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteRestoreRecords",
                actions=["ssm:PutParameter", "ssm:AddTagsToResource"],
                resources=[
                    self._arn("ssm", "parameter", f"{restore_record.PARAMETER_PATH.strip('/')}/{self.prefix}-*")
                ],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(sid="SendRunSummary", actions=["sns:Publish"], resources=[alert_topic.topic_arn])
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="UsePlatformKeyForTopic",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[kms_key.key_arn],
            )
        )

    # --- cdk-nag ---------------------------------------------------------------------------------


def _check_environment_size(environment: dict[str, str]) -> None:
    size = sum(
        len(k) + (TOPIC_ARN_ALLOWANCE_BYTES if Token.is_unresolved(v) else len(v.encode("utf-8")))
        for k, v in environment.items()
    )
    if size > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
        raise ValueError(
            f"the reaper's team overrides take {len(environment[reaper_settings.ENV_TEAM_OVERRIDES])} bytes, more "
            f"than fit in a Lambda environment ({LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes in all); set fewer "
            "per-team reaper overrides"
        )
