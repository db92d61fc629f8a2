"""Deploy-on-approval for one team: registry events -> FIFO queue -> deploy Lambda; endpoint events -> verifier.

Per use case (model package group) of the team:
- an EventBridge rule on "SageMaker Model Package State Change" for that group, Approved or Rejected
  only, whose input transformer sends just the stable fields (source, detail-type, group, version,
  status, arn) to the team's FIFO deploy queue with the group as message group: deploys of one endpoint
  run one at a time, and SageMaker's duplicate events are dropped by content-based deduplication
  (EventBridge rules cannot derive a message group from the event, hence one rule per group);
- two CloudWatch alarms on the endpoint (5XX errors, model latency) with deterministic names: the
  deploy Lambda names them in every UpdateEndpoint's auto-rollback configuration, and they notify the
  team's alert topic.

Per team: the KMS-encrypted FIFO deploy queue and its FIFO dead-letter queue (alarmed), a standard
failed-events queue (alarmed) for events EventBridge or Lambda could not deliver, the deploy Lambda
(SQS event source with partial batch responses), one rule on "SageMaker Endpoint State Change" for the
team's endpoints feeding the verifier Lambda, and IAM that lets both touch only the team's resources.

The platform key's policy must let events.amazonaws.com and cloudwatch.amazonaws.com use the key (the
platform stack grants that account-wide); this construct never edits the key policy, so a team stack
deploys on its own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common import naming, tags
from stacks.config import PlatformConfig, Team, UseCase
from stacks.constructs.lambda_function import platform_function
from stacks.constructs.model_registry import SAME_STACK, RegistryLocation, registry_arn
from stacks.constructs.resource_policies import allow_alarms_to_publish

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
DEPLOYING_STATUSES = ["Approved", "Rejected"]
# The documented event spells statuses IN_SERVICE / FAILED; the API spells them InService / Failed.
VERIFIED_ENDPOINT_STATUSES = ["IN_SERVICE", "FAILED", "InService", "Failed"]
VARIANT_NAME = "AllTraffic"
DATA_CAPTURE_PREFIX = "data-capture"

DEPLOY_QUEUE_VISIBILITY = Duration.minutes(5)
DEPLOY_FUNCTION_TIMEOUT = Duration.seconds(60)
# Longest time an endpoint can stay busy without anyone's fault: creation sometimes takes about an hour.
ENDPOINT_CREATION_ALLOWANCE_SECONDS = 3600
RETRY_MARGIN_SECONDS = 1800
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
# Role, key, topic ARNs and the data-capture URI beside USE_CASES (tokens resolve to at most this much).
OTHER_VARIABLES_ALLOWANCE_BYTES = 1024

# The message SQS receives: only fields that are the same in SageMaker's duplicate events.
APPROVAL_INPUT_PATHS = {
    "source": "$.source",
    "detailType": "$.detail-type",
    "group": "$.detail.ModelPackageGroupName",
    "version": "$.detail.ModelPackageVersion",
    "status": "$.detail.ModelApprovalStatus",
    "arn": "$.detail.ModelPackageArn",
}
APPROVAL_INPUT_TEMPLATE = (
    '{"source": <source>, "detail-type": <detailType>, "group": <group>, '
    '"version": <version>, "status": <status>, "arn": <arn>}'
)

# SageMaker list calls that support no resource-level permissions (Service Authorization Reference).
# The one dimension lambdas/endpoint_verifier/scaling.py registers (a test keeps them equal).
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_SERVICE_LINKED_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
UNSCOPED_LIST_ACTIONS = ["sagemaker:ListEndpoints", "sagemaker:ListEndpointConfigs", "sagemaker:ListModels"]


ENDPOINT_ALARM_SUFFIXES = ("invocation-5xx-errors", "model-latency")
# Team-level alarms (one per team, not per use case). Alarm names are unique per account and region,
# and the team topic accepts alarms named `<prefix>-<team>-*` only, so these are
# `<prefix>-<team>-<suffix>`. They can never equal a use case's alarm: those end with one of
# ENDPOINT_ALARM_SUFFIXES (appended after the endpoint name, shortened or not), these with one of the
# suffixes below, and no suffix of the six (with the platform's `reaper-run-failed`) ends with
# another, so names with different suffixes differ; names with the same suffix differ in the team.
# A use case named `deploy` gives `<prefix>-<team>-deploy-model-latency`, never `...-deploy-dead-letters`.
DEPLOY_DEAD_LETTERS_ALARM_SUFFIX = "deploy-dead-letters"
FAILED_EVENTS_ALARM_SUFFIX = "failed-events"
# A staged team's registry events that could not be forwarded to a stage account (`stacks.cross_account`).
NOT_FORWARDED_ALARM_SUFFIX = "registry-events-not-forwarded"
MAX_ALARM_NAME_LENGTH = 255


def alarm_names(endpoint: str) -> tuple[str, str]:
    """Names of the endpoint's rollback alarms: 5XX errors, then model latency."""
    errors, latency = ENDPOINT_ALARM_SUFFIXES
    return f"{endpoint}-{errors}", f"{endpoint}-{latency}"


def team_alarm_name(prefix: str, team: str, suffix: str) -> str:
    """A team-level alarm, e.g. ``mlp-fraud-deploy-dead-letters``: inside the team topic's `<prefix>-<team>-*`."""
    name = f"{naming.team_resource_prefix(prefix, team)}{suffix}"
    if len(name) > MAX_ALARM_NAME_LENGTH:
        raise ValueError(f"alarm name {name!r} is longer than {MAX_ALARM_NAME_LENGTH} characters")
    return name


def use_cases_environment(prefix: str, team: Team) -> str:
    """The ``USE_CASES`` variable of both Lambdas: per use case its group, endpoint, alarms and settings."""
    entries = []
    for use_case in team.use_cases:
        endpoint = naming.endpoint_name(prefix, team.name, use_case.name)
        entries.append(
            {
                "use_case": use_case.name,
                "group": naming.model_package_group_name(prefix, team.name, use_case.name),
                "endpoint": endpoint,
                "alarms": list(alarm_names(endpoint)),
                "settings": lambda_settings(use_case),
            }
        )
    return json.dumps(entries, separators=(",", ":"))


def lambda_settings(use_case: UseCase) -> dict:
    """The endpoint settings the Lambdas read: autoscaling only when enabled, and of monitoring only its
    schedule (the stack owns the rest), so four use cases fit in one Lambda environment."""
    settings = use_case.endpoint.model_dump(mode="json")
    if not use_case.endpoint.autoscaling.enabled:
        settings.pop("autoscaling")
    monitoring = settings.pop("monitoring")
    if monitoring["enabled"]:
        settings["monitoring"] = {"enabled": True, "schedule": monitoring["schedule"]}
    return settings


@dataclass(frozen=True)
class ApprovalRules:
    """Who may send a team's versions live, for its deploy function (``APPROVAL_RULES``, read by
    ``lambdas/deploy_on_approval/approval.py``): the reviewer role's name (in the registry's account), the reviewer
    Studio users and the reviewer role ARNs."""

    reviewer_role_name: str
    users: tuple[str, ...]
    role_arns: tuple[str, ...]

    @classmethod
    def of(cls, config: PlatformConfig, team: Team) -> "ApprovalRules | None":
        """The team's rules, or None when the config does not require reviewers."""
        if not config.approval.reviewers_required:
            return None
        reviewers = config.reviewers_of(team)
        return cls(naming.reviewer_role_name(config.prefix, team.name), tuple(reviewers.users),
                   tuple(reviewers.role_arns))

    def to_json(self) -> str:
        return json.dumps({"reviewer_role": self.reviewer_role_name, "users": list(self.users),
                           "role_arns": list(self.role_arns)}, separators=(",", ":"))


def max_receive_count(use_cases: list[UseCase]) -> int:
    """Receives before a deploy message goes to the DLQ: enough retries to outlast the longest busy endpoint."""
    longest_update = max(
        u.endpoint.deployment.maximum_execution_timeout_seconds + u.endpoint.deployment.termination_wait_seconds
        for u in use_cases
    )
    busy = max(longest_update, ENDPOINT_CREATION_ALLOWANCE_SECONDS) + RETRY_MARGIN_SECONDS
    return math.ceil(busy / DEPLOY_QUEUE_VISIBILITY.to_seconds()) + 1


class DeployOnApproval(Construct):
    """Registry approvals of `team` become endpoint deployments, with no human step.

    A team without use cases gets nothing (``enabled`` is False and every attribute is None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        team: Team,
        model_execution_role: iam.IRole,
        kms_key: kms.IKey,
        alert_topic: sns.ITopic,
        data_bucket: s3.IBucket,
        registry: RegistryLocation = SAME_STACK,
        deploy_role_name: str | None = None,
        reviewer_rules: ApprovalRules | None = None,
    ) -> None:
        """`registry`: where the team's registry groups are (default: this stack's account and region). With
        another account's registry, the approval rules pass only that account's events, the deploy function
        names the groups by ARN, and `deploy_role_name` gives its role the fixed name the registry's policy
        admits. `reviewer_rules` (reviewers required) go to the deploy function, which then serves only versions
        approved, with a description, by one of the reviewers who did not build them."""
        super().__init__(scope, construct_id)
        self.registry = registry
        self.reads_another_account = registry.account is not None and registry.account != Stack.of(self).account
        self.prefix = prefix
        self.team = team
        self.resource_prefix = naming.team_resource_prefix(prefix, team.name)
        self.use_cases = list(team.use_cases)
        self.enabled = bool(self.use_cases)
        self.deploy_queue = self.deploy_dead_letter_queue = self.failed_events_queue = None
        self.deploy_function = self.verifier_function = None
        self.approval_rules: dict[str, events.CfnRule] = {}
        self.endpoint_rule = None
        self.endpoint_alarms: dict[str, tuple[cloudwatch.Alarm, cloudwatch.Alarm]] = {}
        self.monitored_groups: list[str] = []
        if not self.enabled:
            return

        self.groups = {u.name: naming.model_package_group_name(prefix, team.name, u.name) for u in self.use_cases}
        self.endpoints = {u.name: naming.endpoint_name(prefix, team.name, u.name) for u in self.use_cases}
        alert_action = cloudwatch_actions.SnsAction(alert_topic)

        for use_case in self.use_cases:
            self.endpoint_alarms[use_case.name] = self._endpoint_alarms(use_case, alert_action)
        allow_alarms_to_publish(alert_topic, f"DeployOnApprovalAlarmsOf{_pascal(team.name)}", f"{self.resource_prefix}*")

        self.deploy_dead_letter_queue = sqs.Queue(
            self,
            "DeployDeadLetterQueue",
            fifo=True,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=kms_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.deploy_queue = sqs.Queue(
            self,
            "DeployQueue",
            fifo=True,
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=kms_key,
            enforce_ssl=True,
            visibility_timeout=DEPLOY_QUEUE_VISIBILITY,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.deploy_dead_letter_queue, max_receive_count=max_receive_count(self.use_cases)
            ),
        )
        self.failed_events_queue = sqs.Queue(
            self,
            "FailedEventsQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=kms_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self._queue_alarm(
            "DeployDeadLetterAlarm",
            team_alarm_name(prefix, team.name, DEPLOY_DEAD_LETTERS_ALARM_SUFFIX),
            self.deploy_dead_letter_queue,
            f"{team.name}: a model approval could not be deployed after every retry (message in the deploy DLQ)",
            alert_action,
        )
        self._queue_alarm(
            "FailedEventsAlarm",
            team_alarm_name(prefix, team.name, FAILED_EVENTS_ALARM_SUFFIX),
            self.failed_events_queue,
            f"{team.name}: an approval or endpoint event could not be delivered or verified",
            alert_action,
        )

        use_cases_json = use_cases_environment(prefix, team)
        common_env = {
            "PLATFORM_PREFIX": prefix,
            "TEAM_NAME": team.name,
            "ALERT_TOPIC_ARN": alert_topic.topic_arn,
            "USE_CASES": use_cases_json,
        }
        deploy_env = {}
        self.reviewer_rules = reviewer_rules
        if reviewer_rules is not None:
            deploy_env["APPROVAL_RULES"] = reviewer_rules.to_json()
        self._check_environment_size(use_cases_json, deploy_env.get("APPROVAL_RULES", ""))
        if self.reads_another_account:
            deploy_env["MODEL_PACKAGE_GROUP_ARN_PREFIX"] = self._registry_arn("model-package-group/")

        self.deploy_function = platform_function(
            self,
            "DeployFunction",
            handler="deploy_on_approval.handler.handler",
            description=f"Deploys {team.name}'s newest Approved model versions to their endpoints",
            kms_key=kms_key,
            environment={
                **common_env,
                "COST_CENTER": team.cost_center,
                "MODEL_EXECUTION_ROLE_ARN": model_execution_role.role_arn,
                "KMS_KEY_ARN": kms_key.key_arn,
                "DATA_CAPTURE_S3_URI": f"s3://{data_bucket.bucket_name}/{DATA_CAPTURE_PREFIX}",
                **deploy_env,
            },
            timeout=DEPLOY_FUNCTION_TIMEOUT,
            role_name=deploy_role_name,
        )
        self.deploy_function.add_event_source(
            event_sources.SqsEventSource(self.deploy_queue, batch_size=1, report_batch_item_failures=True)
        )
        self.verifier_function = platform_function(
            self,
            "VerifierFunction",
            handler="endpoint_verifier.handler.handler",
            description=f"Verifies {team.name}'s endpoints after each state change and prunes old configs",
            kms_key=kms_key,
            environment=common_env,
        )
        # L1 so that the failure destination grant is exactly sqs:SendMessage on this queue (the L2
        # destination adds wildcard KMS actions).
        lambda_.CfnEventInvokeConfig(
            self,
            "VerifierAsyncInvoke",
            function_name=self.verifier_function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=int(Duration.hours(6).to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.failed_events_queue.queue_arn
                )
            ),
        )
        self.verifier_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="SendFailedInvocationsToFailedEventsQueue",
                actions=["sqs:SendMessage"],
                resources=[self.failed_events_queue.queue_arn],
            )
        )

        for use_case in self.use_cases:
            self.approval_rules[use_case.name] = self._approval_rule(use_case)
        self._allow_rules_to_send()

        self.endpoint_rule = events.Rule(
            self,
            "EndpointStateChanges",
            description=f"{team.name}'s endpoints reached InService or Failed: verify and prune",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[ENDPOINT_STATE_CHANGE],
                detail={
                    "EndpointName": sorted(self.endpoints.values()),
                    "EndpointStatus": VERIFIED_ENDPOINT_STATUSES,
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.verifier_function,
                    dead_letter_queue=self.failed_events_queue,
                    retry_attempts=8,
                    max_event_age=Duration.hours(6),
                )
            ],
        )

        self._grant_deploy(model_execution_role, kms_key, alert_topic)
        if any(u.endpoint.autoscaling.enabled for u in self.use_cases):
            self._grant_release_scaling()
        self._grant_verify(kms_key, alert_topic)

    # --- resources -------------------------------------------------------------------------------

    def _endpoint_alarms(
        self, use_case: UseCase, action: cloudwatch.IAlarmAction
    ) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        endpoint = self.endpoints[use_case.name]
        errors_name, latency_name = alarm_names(endpoint)
        dimensions = {"EndpointName": endpoint, "VariantName": VARIANT_NAME}
        thresholds = use_case.endpoint.alarms
        errors = cloudwatch.Alarm(
            self,
            f"Errors5xx-{use_case.name}",
            alarm_name=errors_name,
            alarm_description=f"{endpoint}: 5XX invocation errors; rolls back a running deployment",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=thresholds.invocation_5xx_errors,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            f"ModelLatency-{use_case.name}",
            alarm_name=latency_name,
            alarm_description=f"{endpoint}: average model latency above {thresholds.model_latency_ms} ms; "
            "rolls back a running deployment",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ModelLatency",
                dimensions_map=dimensions,
                statistic="Average",
                period=Duration.minutes(1),
            ),
            # ModelLatency is published in microseconds.
            threshold=thresholds.model_latency_ms * 1000,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (errors, latency):
            alarm.add_alarm_action(action)
        return errors, latency

    def _queue_alarm(
        self, construct_id: str, alarm_name: str, queue: sqs.Queue, description: str, action
    ) -> cloudwatch.Alarm:
        # An explicit name: a CloudFormation-made one (`<stack>-<logical id>-<hash>`) is outside the team
        # topic's `<prefix>-<team>-*` and its notifications would be dropped.
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=alarm_name,
            alarm_description=description,
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        return alarm

    def _approval_rule(self, use_case: UseCase) -> events.CfnRule:
        group = self.groups[use_case.name]
        return events.CfnRule(
            self,
            f"Approvals-{use_case.name}",
            description=f"Approved or Rejected versions of {group} -> deploy queue (message group {group})",
            state="ENABLED",
            event_pattern={
                "source": ["aws.sagemaker"],
                "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
                **({"account": [self.registry.account]} if self.reads_another_account else {}),
                "detail": {
                    "ModelPackageGroupName": [group],
                    "ModelApprovalStatus": list(DEPLOYING_STATUSES),
                },
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="DeployQueue",
                    arn=self.deploy_queue.queue_arn,
                    sqs_parameters=events.CfnRule.SqsParametersProperty(message_group_id=group),
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map=dict(APPROVAL_INPUT_PATHS), input_template=APPROVAL_INPUT_TEMPLATE
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                        arn=self.failed_events_queue.queue_arn
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=8, maximum_event_age_in_seconds=6 * 3600
                    ),
                )
            ],
        )

    def _allow_rules_to_send(self) -> None:
        """EventBridge may send to the deploy queue and the failed-events queue, only from these rules."""
        rule_arns = [rule.attr_arn for rule in self.approval_rules.values()]
        for queue in (self.deploy_queue, self.failed_events_queue):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="ApprovalRulesOfThisTeam",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule_arns}},
                )
            )

    # --- IAM -------------------------------------------------------------------------------------

    def _sagemaker_arn(self, resource: str) -> str:
        return Stack.of(self).format_arn(service="sagemaker", resource=resource)

    def _registry_arn(self, resource: str) -> str:
        return registry_arn(self, resource, self.registry)

    def _team_arn(self, resource_type: str) -> str:
        return self._sagemaker_arn(f"{resource_type}/{self.resource_prefix}*")

    def _endpoint_arns(self) -> list[str]:
        return [self._sagemaker_arn(f"endpoint/{e}") for e in sorted(self.endpoints.values())]

    def _alarm_arn(self, name: str) -> str:
        return Stack.of(self).format_arn(
            service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )

    def _alarm_arns(self) -> list[str]:
        return [self._alarm_arn(name) for e in sorted(self.endpoints.values()) for name in alarm_names(e)]

    def _grant_alerting(self, function: lambda_.Function, kms_key: kms.IKey, topic: sns.ITopic) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(sid="AlertTeam", actions=["sns:Publish"], resources=[topic.topic_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="UsePlatformKeyForTopicAndQueues",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[kms_key.key_arn],
            )
        )

    def _grant_deploy(self, model_execution_role: iam.IRole, kms_key: kms.IKey, topic: sns.ITopic) -> None:
        fn = self.deploy_function
        groups = sorted(self.groups.values())
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTeamRegistryGroups",
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                resources=[self._registry_arn(f"model-package-group/{g}") for g in groups]
                + [self._registry_arn(f"model-package/{g}/*") for g in groups],
            )
        )
        if self.reviewer_rules is not None and not self.reads_another_account:
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadWhoStartedTheTeamsPipelineExecutions",
                    actions=["sagemaker:DescribePipelineExecution"],
                    resources=[Stack.of(self).format_arn(
                        service="sagemaker", resource="pipeline",
                        resource_name=f"{self.resource_prefix}*/execution/*")],
                )
            )
        if self.reads_another_account:
            # The registry's account authorizes CreateModel from one of its versions on the version too (its
            # group policy grants it there), and a cross-account request needs both sides' allow.
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="CreateModelsFromTheTeamsVersionsInTheRegistryAccount",
                    actions=["sagemaker:CreateModel"],
                    resources=[self._registry_arn(f"model-package/{g}/*") for g in groups],
                )
            )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListModelPackagesHasNoResourceLevelPermissions",
                actions=["sagemaker:ListModelPackages"],
                resources=["*"],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="CreateTeamModelsConfigsEndpoints",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[self._team_arn("model"), self._team_arn("endpoint-config")] + self._endpoint_arns(),
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteOnlyManagedTeamEndpoints",
                actions=["sagemaker:DeleteEndpoint"],
                resources=self._endpoint_arns(),
                conditions={"StringEquals": {f"aws:ResourceTag/{tags.MANAGED_BY}": tags.MANAGED_BY_VALUE}},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheTeamModelExecutionRole",
                actions=["iam:PassRole"],
                resources=[model_execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=self._alarm_arns(),
            )
        )
        # CreateEndpointConfig with a KmsKeyId checks the key with the caller's credentials (DescribeKey,
        # which carries no grant context) and lets SageMaker create grants for the endpoint's volumes.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ValidateEndpointVolumeKey",
                actions=["kms:DescribeKey"],
                resources=[kms_key.key_arn],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="EncryptEndpointVolumesWithPlatformKey",
                actions=["kms:CreateGrant"],
                resources=[kms_key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        self._grant_alerting(fn, kms_key, topic)

    def _grant_verify(self, kms_key: kms.IKey, topic: sns.ITopic) -> None:
        fn = self.verifier_function
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="InspectTeamEndpointsConfigsModels",
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
                resources=[self._team_arn("endpoint"), self._team_arn("endpoint-config"), self._team_arn("model")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PruneOnlyManagedTeamConfigsAndModels",
                actions=["sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
                resources=[self._team_arn("endpoint-config"), self._team_arn("model")],
                conditions={
                    "StringEquals": {
                        f"aws:ResourceTag/{tags.MANAGED_BY}": tags.MANAGED_BY_VALUE,
                        f"aws:ResourceTag/{tags.TEAM}": self.team.name,
                    }
                },
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListCallsHaveNoResourceLevelPermissions",
                actions=list(UNSCOPED_LIST_ACTIONS),
                resources=["*"],
            )
        )
        if any(u.endpoint.autoscaling.enabled for u in self.use_cases):
            self._grant_scaling(fn)
        self._grant_alerting(fn, kms_key, topic)

    def enable_monitoring(self, scheduler_role: iam.IRole, schedule_groups: list[str], groups: list[str]) -> None:
        """Let the verifier keep the monitoring schedules in ``schedule_groups`` (one per monitored endpoint)
        pointed at the serving version of the registry ``groups``, handing them ``scheduler_role``."""
        fn = self.verifier_function
        stack = Stack.of(self)
        self.monitored_groups = sorted(groups)
        fn.add_environment("MONITORING_SCHEDULER_ROLE_ARN", scheduler_role.role_arn)
        fn.add_environment("PIPELINE_ARN_PREFIX", stack.format_arn(service="sagemaker", resource="pipeline",
                                                                   resource_name=""))
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="KeepTheMonitoringSchedulesOfTheTeamsEndpoints",
                actions=["scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                         "scheduler:DeleteSchedule"],
                resources=[
                    stack.format_arn(service="scheduler", resource="schedule",
                                     resource_name=f"{group}/{naming.MONITORING_SCHEDULE_NAME}")
                    for group in sorted(schedule_groups)
                ],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassTheMonitoringSchedulerRole",
                actions=["iam:PassRole"],
                resources=[scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTheBaselinesOfServedVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[self._registry_arn(f"model-package/{group}/*") for group in sorted(groups)],
            )
        )

    def _grant_release_scaling(self) -> None:
        """The deploy function deregisters the team's own scalable target before an update that changes the
        endpoint's instance type (``deploy.release_scaling``); it reads the serving config's instance type."""
        stack = Stack.of(self)
        fn = self.deploy_function
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTheServingConfigsInstanceType",
                actions=["sagemaker:DescribeEndpointConfig"],
                resources=[self._team_arn("endpoint-config")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="FindScalableTargetsHasNoResourceLevelPermissions",
                actions=["application-autoscaling:DescribeScalableTargets"],
                resources=["*"],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReleaseTheTeamsTargetsBeforeAnInstanceTypeChange",
                actions=["application-autoscaling:DeregisterScalableTarget"],
                resources=[stack.format_arn(service="application-autoscaling", resource="scalable-target",
                                            resource_name="*")],
                conditions={
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "sagemaker",
                        "application-autoscaling:scalable-dimension": SCALABLE_DIMENSION,
                        f"aws:ResourceTag/{tags.TEAM}": self.team.name,
                    }
                },
            )
        )

    def _grant_scaling(self, fn: lambda_.Function) -> None:
        """Register and tune the autoscaling of the team's own endpoints (targets tagged with the team)."""
        stack = Stack.of(self)
        target_arn = stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")
        endpoint_scaling = {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": SCALABLE_DIMENSION,
        }
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadAutoscalingNoResourceLevelPermissions",
                actions=[
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                    "application-autoscaling:DescribeScheduledActions",
                ],
                resources=["*"],
            )
        )
        # A registration with Tags is also authorized as TagResource on the target (the reference lists it as
        # a dependent action), and the reference lists only the tag keys for TagResource: the namespace and
        # dimension keys are absent there, so they condition RegisterScalableTarget alone. aws:ResourceTag
        # (listed for the ScalableTarget resource type) is present when the target exists: an existing target
        # of another team is refused; a new one has no tags yet, hence IfExists.
        own_or_new = {f"aws:ResourceTag/{tags.TEAM}": self.team.name}
        tagged_for_the_team = {
            f"aws:RequestTag/{tags.TEAM}": self.team.name,
            f"aws:RequestTag/{tags.MANAGED_BY}": tags.MANAGED_BY_VALUE,
        }
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="RegisterTargetsTaggedForTheTeam",
                actions=["application-autoscaling:RegisterScalableTarget"],
                resources=[target_arn],
                conditions={
                    "StringEquals": {**endpoint_scaling, **tagged_for_the_team},
                    "StringEqualsIfExists": own_or_new,
                },
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="TagTargetsForTheTeam",
                actions=["application-autoscaling:TagResource"],
                resources=[target_arn],
                conditions={"StringEquals": tagged_for_the_team, "StringEqualsIfExists": own_or_new},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="TunePoliciesOfTheTeamsTargets",
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:PutScheduledAction",
                    "application-autoscaling:DeleteScheduledAction",
                ],
                resources=[target_arn],
                conditions={"StringEquals": {**endpoint_scaling, f"aws:ResourceTag/{tags.TEAM}": self.team.name}},
            )
        )
        # What Application Auto Scaling checks of the caller besides its own actions (its user guide,
        # "Permissions required for API actions on target services and CloudWatch"): the target's own
        # Describe/Update calls, the target-tracking alarms it creates in the caller's name, and the
        # service-linked role it creates on first registration.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="RecordTheScalingLimitsOnTheTeamsEndpoints",
                actions=["sagemaker:AddTags"],
                resources=[self._team_arn("endpoint")],
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [tags.SCALING_LIMITS]},
                            "Null": {"aws:TagKeys": "false"}},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="ScaleOnlyTheTeamsEndpoints",
                actions=["sagemaker:UpdateEndpointWeightsAndCapacities"],
                resources=[self._team_arn("endpoint")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="TargetTrackingAlarmsOfTheTeamsEndpoints",
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
                resources=[self._alarm_arn(f"TargetTracking-endpoint/{self.resource_prefix}*")],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="CreateTheEndpointAutoscalingServiceLinkedRole",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[stack.format_arn(
                    service="iam", region="", resource="role",
                    resource_name=f"aws-service-role/{SCALING_SERVICE}/{SCALING_SERVICE_LINKED_ROLE}",
                )],
                conditions={"StringEquals": {"iam:AWSServiceName": SCALING_SERVICE}},
            )
        )

    def _check_environment_size(self, use_cases_json: str, approval_json: str = "") -> None:
        """Fail at synth, naming the team, when its use cases cannot fit in one Lambda environment."""
        size = len(use_cases_json.encode("utf-8"))
        reviewers = len(approval_json.encode("utf-8"))
        if size + reviewers + OTHER_VARIABLES_ALLOWANCE_BYTES > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
            with_reviewers = f" (and its reviewers {reviewers})" if reviewers else ""
            raise ValueError(
                f"team {self.team.name!r}: the settings of its {len(self.use_cases)} use cases take {size} bytes"
                f"{with_reviewers}, "
                f"more than fit in a Lambda environment ({LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes in all, about "
                f"{OTHER_VARIABLES_ALLOWANCE_BYTES} of them for the other variables); split the use cases across teams"
            )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def _is_token(value: str) -> bool:
    from aws_cdk import Token

    return Token.is_unresolved(value)
