"""Resource-policy statements the platform's keys and topics share: which AWS services may use them."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


def allow_cloudwatch_logs(key: kms.Key) -> None:
    """Let CloudWatch Logs use `key` for the log groups of the key's account and region, and no others.

    The encryption context names the log group, so the grant needs no log group name: log groups of any
    stack in the account may use the key through its ARN, and the key policy names none of them.
    """
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccountAndRegion",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                    )
                }
            },
        )
    )


def allow_alarms_to_publish(topic: sns.ITopic, sid: str, alarm_name_pattern: str) -> None:
    """Let CloudWatch publish to `topic` for alarms of this account named like `alarm_name_pattern`.

    A topic with a policy of its own (``enforce_ssl``) no longer has SNS's default allow for the account,
    so its alarms need this explicitly; an alarm whose name does not match is dropped without a trace.
    """
    stack = Stack.of(topic)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=alarm_name_pattern,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                },
            },
        )
    )


def allow_budget_to_publish(topic: sns.ITopic, sid: str, budget_name: str) -> None:
    """Let AWS Budgets publish the notifications of budget `budget_name` of this account to `topic`."""
    stack = Stack.of(topic)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": budget_arn(stack, budget_name)},
            },
        )
    )


def budget_arn(stack: Stack, budget_name: str) -> str:
    """Budgets are global: their ARN has no region."""
    return f"arn:{stack.partition}:budgets::{stack.account}:budget/{budget_name}"
