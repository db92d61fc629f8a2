"""A team's buckets: encrypted with the account's platform key, versioned, private, logged, retained, and
their data denied to every principal but the roles named."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

# Data-plane S3 actions a team bucket's policy denies to every principal but the allowed roles.
BUCKET_DATA_ACTIONS = (
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:RestoreObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:ReplicateObject",
)


def add_team_bucket(stack: Stack, construct_id: str, *, key: kms.IKey, access_log_bucket: s3.IBucket,
                    log_file_prefix: str) -> s3.Bucket:
    """A KMS-encrypted (`key`, bucket keys on), versioned, TLS-only, private and retained bucket that writes its
    server access logs to `access_log_bucket` under `log_file_prefix`."""
    bucket = s3.Bucket(
        stack,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
    )
    # Logging is set on the L1 so that the account's log bucket needs no per-team policy (no stack cycle).
    cfn_bucket: s3.CfnBucket = bucket.node.default_child
    cfn_bucket.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=access_log_bucket.bucket_name,
        log_file_prefix=log_file_prefix,
    )
    return bucket


def deny_data_to_all_but(bucket: s3.Bucket, *, sid: str, allowed_role_arns: list[str]) -> None:
    """Deny the bucket's data to every principal whose ARN is not in `allowed_role_arns`.

    Bucket configuration (policy, encryption, tags) is not data, so CloudFormation and administrators
    keep managing the bucket; AWS services acting as themselves (no principal ARN) are not denied.
    """
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(BUCKET_DATA_ACTIONS),
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            conditions={
                "ArnNotEquals": {"aws:PrincipalArn": list(dict.fromkeys(allowed_role_arns))},
                "Bool": {"aws:PrincipalIsAWSService": "false"},
            },
        )
    )
