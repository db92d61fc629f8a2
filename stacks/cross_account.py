"""What connects the development account to the stage accounts (`stages:` in the config).

A version approved in the development account's registry serves in a stage account through four grants,
each naming its accounts and roles:

- the team's model package groups let the stages' deploy roles describe them, list and describe their
  versions and create models from them (`registry_policy`; nothing else, no write);
- the team bucket and the development account's platform key let the stages' model execution roles read
  the model tarballs the pipeline registers (`ARTIFACT_KEY_PATTERNS`), never split data, raw data or MLflow
  artifacts (`allow_artifact_reads`, `allow_artifact_decryption`);
- a rule per staged group forwards the group's "SageMaker Model Package State Change" events to the default
  bus of each stage account the team serves in, through a role that may put events on those buses only
  (`forward_registry_events`); the stage's bus admits only those roles of the development account, for that
  source and detail type (`admit_registry_events`).

Principals exist in any deploy order: S3, KMS and EventBridge refuse a policy that names a role that does
not exist yet, so every cross-account statement names the other account and matches the role by
``aws:PrincipalArn`` (a string, checked at request time). The roles have fixed names (`role_name`) that both
sides compute from the config, so no stack refers to another account's stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common import naming
from pipeline_code.definition import RUNS_PREFIX
from stacks.config import PlatformConfig, Stage, Team
from stacks.constructs.deploy_on_approval import (
    MODEL_PACKAGE_STATE_CHANGE,
    NOT_FORWARDED_ALARM_SUFFIX,
    team_alarm_name,
)
from stacks.constructs.resource_policies import allow_alarms_to_publish

IAM_ROLE_NAME_LENGTH = 64
DEPLOY_ROLE = "deploy"
MODEL_EXECUTION_ROLE = "model-execution"
FORWARD_ROLE = "forward-registry-events"

# The S3 keys of the model tarballs a pipeline run registers, under the team bucket (`pipeline_code.definition`):
# the retrained XGBoost model (`<S3OutputPath>/<training job>/output/model.tar.gz`) and the inference containers'
# models of an AutoML job (`<S3OutputPath>/<AutoML job>/.../model.tar.gz`). Split data, raw data, reports,
# evaluation and MLflow artifacts never end in ``model.tar.gz`` under these folders (a test runs the deployed
# definition and checks every key it writes).
ARTIFACT_KEY_PATTERNS = (
    f"{RUNS_PREFIX}/*/xgboost/models/*/output/model.tar.gz",
    f"{RUNS_PREFIX}/*/automl/*/model.tar.gz",
)
# The guide grants ListModelPackages on the versions; AWS RAM's discovery example also on the group (which ARN SageMaker
# evaluates a List on is not documented), so both statements carry it.
REGISTRY_READ_ACTIONS = ("sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages")
VERSION_ACTIONS = ("sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel")


def role_name(prefix: str, stage: str, team: str, purpose: str) -> str:
    """Fixed name of a stage account's role of `team` (`DEPLOY_ROLE` or `MODEL_EXECUTION_ROLE`), e.g.
    ``mlp-staging-fraud-deploy``: at most 64 characters, shortened with a stable hash when longer."""
    return naming.sagemaker_name(prefix, stage, team, purpose, max_length=IAM_ROLE_NAME_LENGTH)


def forward_role_name(prefix: str, team: str) -> str:
    """Fixed name of the development account's role that forwards `team`'s registry events to its stages (never
    shortened: at most 10 + 20 + 25 characters)."""
    return naming.sagemaker_name(prefix, team, FORWARD_ROLE, max_length=IAM_ROLE_NAME_LENGTH)


def role_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


def account_root(partition: str, account: str) -> iam.ArnPrincipal:
    return iam.ArnPrincipal(f"arn:{partition}:iam::{account}:root")


def stage_role_arns(scope: Construct, config: PlatformConfig, team: Team, purpose: str) -> list[str]:
    """ARNs of `team`'s `purpose` role in every stage account it serves in, in stage order."""
    partition = Stack.of(scope).partition
    return [role_arn(partition, stage.account, role_name(config.prefix, stage.name, team.name, purpose))
            for stage in config.stages_of(team)]


def _principals_with_roles(scope: Construct, accounts: Iterable[str], role_arns: list[str]) -> dict:
    partition = Stack.of(scope).partition
    return {
        "principals": [account_root(partition, account) for account in dict.fromkeys(accounts)],
        "conditions": {"ArnEquals": {"aws:PrincipalArn": role_arns}},
    }


def bus_arn(partition: str, account: str, region: str) -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/default"


# --- development account ---------------------------------------------------------------------------


def registry_policy(scope: Construct, config: PlatformConfig, team: Team, group_name: str) -> dict:
    """The resource policy of `group_name`: the deploy roles of `team`'s stages may describe the group, list
    and describe its versions and create models from them; no other principal, action or group."""
    stack = Stack.of(scope)
    stages = config.stages_of(team)
    roles = stage_role_arns(scope, config, team, DEPLOY_ROLE)
    group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
    versions = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")
    principal = {"AWS": [f"arn:{stack.partition}:iam::{account}:root"
                         for account in dict.fromkeys(s.account for s in stages)]}
    condition = {"ArnEquals": {"aws:PrincipalArn": roles}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "StageDeployRolesDescribeTheGroup", "Effect": "Allow", "Principal": principal,
             "Action": list(REGISTRY_READ_ACTIONS), "Resource": group_arn, "Condition": condition},
            {"Sid": "StageDeployRolesDeployItsVersions", "Effect": "Allow", "Principal": principal,
             "Action": list(VERSION_ACTIONS), "Resource": versions, "Condition": condition},
        ],
    }


def share_groups(groups: Mapping[str, sagemaker.CfnModelPackageGroup], config: PlatformConfig, team: Team) -> None:
    """Set `registry_policy` on each group (an in-place update of the group)."""
    for group in groups.values():
        group.model_package_group_policy = registry_policy(group, config, team, group.model_package_group_name)


def allow_artifact_reads(bucket: s3.Bucket, config: PlatformConfig, team: Team) -> list[str]:
    """Let `team`'s stage model execution roles read the registered model tarballs of `bucket`; returns their ARNs
    (the bucket's deny of data to all other principals must name them too)."""
    roles = stage_role_arns(bucket, config, team, MODEL_EXECUTION_ROLE)
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="StageModelRolesReadRegisteredModels",
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(pattern) for pattern in ARTIFACT_KEY_PATTERNS],
            **_principals_with_roles(bucket, (s.account for s in config.stages_of(team)), roles),
        )
    )
    return roles


def role_name_pattern(prefix: str, stage: str, purpose: str) -> str:
    """The names of every team's `purpose` role in `stage` (names are never shortened: a prefix has at most 10
    characters, a stage 16 and a team 20, so ``<prefix>-<stage>-<team>-model-execution`` fits in 64)."""
    return f"{prefix}-{stage}-*-{purpose}"


def allow_artifact_decryption(key: kms.Key, config: PlatformConfig) -> None:
    """Let the stage model execution roles decrypt, through S3 only, what the key encrypts; the team buckets'
    policies decide which objects each role may read. One role-name pattern per stage, so the key policy's size
    does not grow with the number of teams (a key policy holds at most 32 KB)."""
    stages = [stage for stage in config.stages if config.teams_in(stage)]
    if not stages:
        return
    stack = Stack.of(key)
    patterns = [role_arn(stack.partition, stage.account, role_name_pattern(config.prefix, stage.name,
                                                                           MODEL_EXECUTION_ROLE))
                for stage in stages]
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="StageModelRolesDecryptRegisteredModelsThroughS3",
            principals=[account_root(stack.partition, stage.account) for stage in stages],
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={
                "ArnLike": {"aws:PrincipalArn": patterns},
                "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
            },
        )
    )


@dataclass(frozen=True)
class Forwarding:
    """What `forward_registry_events` added."""

    role: iam.Role
    rules: dict[str, events.Rule]
    dead_letter_queue: sqs.Queue
    alarm: cloudwatch.Alarm


def forward_registry_events(
    scope: Construct,
    *,
    config: PlatformConfig,
    team: Team,
    groups: Mapping[str, str],
    kms_key: kms.IKey,
    alert_topic: sns.ITopic,
) -> Forwarding:
    """Per use case (`groups`: use case -> group name), a rule forwarding the group's state changes to the default
    bus of each stage account `team` serves in; events EventBridge could not deliver go to a dead-letter queue whose
    alarm notifies the team."""
    stack = Stack.of(scope)
    stages = config.stages_of(team)
    role = iam.Role(
        scope,
        "ForwardRegistryEventsRole",
        role_name=forward_role_name(config.prefix, team.name),
        assumed_by=iam.ServicePrincipal("events.amazonaws.com",
                                        conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
        description=f"Forwards {team.name}'s registry events to the event buses of its stages "
                    f"({', '.join(s.name for s in stages)})",
    )
    queue = sqs.Queue(
        scope,
        "ForwardFailedEventsQueue",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=kms_key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    buses = [events.EventBus.from_event_bus_arn(scope, f"Bus-{stage.name}",
                                                bus_arn(stack.partition, stage.account, stage.region))
             for stage in stages]
    rules = {}
    for use_case, group in groups.items():
        rules[use_case] = events.Rule(
            scope,
            f"ForwardRegistryEvents-{use_case}",
            description=f"State changes of {group} -> the event buses of {', '.join(s.name for s in stages)}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                account=[stack.account],
                detail={"ModelPackageGroupName": [group]},
            ),
            targets=[
                targets.EventBus(bus, role=role, dead_letter_queue=queue) for bus in buses
            ],
        )
    alarm = cloudwatch.Alarm(
        scope,
        "ForwardFailedEventsAlarm",
        alarm_name=team_alarm_name(config.prefix, team.name, NOT_FORWARDED_ALARM_SUFFIX),
        alarm_description=f"{team.name}: a registry event could not be forwarded to a stage account "
                          "(message in the forwarding dead-letter queue)",
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(alert_topic))
    allow_alarms_to_publish(alert_topic, "RegistryEventForwardingAlarm", alarm.alarm_name)
    return Forwarding(role, rules, queue, alarm)


# --- stage accounts --------------------------------------------------------------------------------


def admit_registry_events(scope: Construct, config: PlatformConfig, stage: Stage) -> events.CfnEventBusPolicy | None:
    """The stage account's default bus admits the registry events that the teams' forwarding roles put, from the
    development account only (None when no team serves in `stage`)."""
    teams = config.teams_in(stage)
    if not teams:
        return None
    stack = Stack.of(scope)
    # Every team's forwarding role, by name pattern, so that the policy's size does not grow with the teams (a
    # bus policy holds at most 10 KB); only the rules of teams serving in `stage` target this bus.
    forwarders = role_arn(stack.partition, config.account, f"{config.prefix}-*-{FORWARD_ROLE}")
    return events.CfnEventBusPolicy(
        scope,
        "AdmitRegistryEventsFromDevelopment",
        event_bus_name="default",
        statement_id=naming.sagemaker_name(config.prefix, "registry-events-from-development"),
        statement={
            "Sid": "RegistryEventsFromTheDevelopmentAccount",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{stack.partition}:iam::{config.account}:root"},
            "Action": "events:PutEvents",
            "Resource": bus_arn(stack.partition, stack.account, stack.region),
            "Condition": {
                "StringEquals": {"events:source": "aws.sagemaker", "events:detail-type": MODEL_PACKAGE_STATE_CHANGE},
                "ArnLike": {"aws:PrincipalArn": forwarders},
            },
        },
    )


def grant_artifact_reads(role: iam.Role, config: PlatformConfig) -> None:
    """The stage model execution role's side of reading the registered models in the development account: the
    object keys of `ARTIFACT_KEY_PATTERNS` in a bucket of that account (its generated name is not known here; the
    team bucket's policy admits this role) and decryption of them through S3 with a key of that account."""
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadRegisteredModelsOfTheDevelopmentAccount",
            actions=["s3:GetObject"],
            resources=[f"arn:{stack.partition}:s3:::*/{pattern}" for pattern in ARTIFACT_KEY_PATTERNS],
            conditions={"StringEquals": {"s3:ResourceAccount": config.account}},
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="DecryptRegisteredModelsThroughS3",
            actions=["kms:Decrypt"],
            resources=[f"arn:{stack.partition}:kms:{config.region}:{config.account}:key/*"],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}},
        )
    )
