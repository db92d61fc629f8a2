"""Grants that a team's execution role and its model execution role share."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def grant_key_use(role: iam.Role, key: kms.IKey) -> None:
    """The platform key, for the role's reads and writes of encrypted data (and the grants jobs make)."""
    role.add_to_policy(
        iam.PolicyStatement(
            sid="UsePlatformKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
            resources=[key.key_arn],
        )
    )


def grant_image_pull_and_logs(role: iam.Role, *, log_group_prefix: str) -> None:
    """What every SageMaker job or endpoint container needs, in a policy of its own (a fixed path for findings)."""
    policy = iam.Policy(role, "ImagesAndLogsPolicy", roles=[role])
    policy.add_statements(
        iam.PolicyStatement(
            sid="EcrAuthorizationHasNoResourceLevelPermissions",
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],
        )
    )
    policy.add_statements(
        iam.PolicyStatement(
            sid="PullSageMakerImages",
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:*:repository/*"],
        )
    )
    policy.add_statements(
        iam.PolicyStatement(
            sid="WriteSageMakerLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_prefix}*"],
        )
    )
    policy.add_statements(
        iam.PolicyStatement(
            sid="PublishSageMakerMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        )
    )
