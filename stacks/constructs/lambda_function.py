"""The one way the platform builds a Lambda function from the code in `lambdas/`.

Every function gets the same runtime, architecture, log retention and asset (the whole `lambdas/`
folder, so handlers can share `lambdas/common`). Handlers are addressed as ``<folder>.handler.handler``.
Its log group and its environment variables are encrypted with the platform key (``kms_key``); the key
policy admits CloudWatch Logs of the account and region (see ``PlatformStack``), and the function's role
may decrypt with the key, which Lambda needs to hand the environment to the function at start-up.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import custom_resources as cr
from constructs import Construct

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ASSET_EXCLUDES = ["__pycache__", "*.pyc", "tests", ".pytest_cache"]


def lambda_code(scope: Construct) -> lambda_.Code:
    """The asset holding every handler and the shared `common` package: one per stack, shared by its functions."""
    stack = Stack.of(scope)
    code = getattr(stack, "_platform_lambda_code", None)
    if code is None:
        code = lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES)
        stack._platform_lambda_code = code
    return code


def platform_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    kms_key: kms.IKey,
    environment: dict[str, str] | None = None,
    timeout: Duration = Duration.seconds(60),
    memory_size: int = 256,
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    dead_letter_topic: sns.ITopic | None = None,
    role_name: str | None = None,
) -> lambda_.Function:
    """A Python Lambda with its own log group and a role that may write only to that group.

    The role has no AWS-managed policy; callers add exactly the permissions the handler needs.
    ``dead_letter_topic`` receives asynchronous events the function failed or never ran (CDK grants
    the publish; the caller grants the topic key). ``role_name`` fixes the role's name, for a role that
    another account's policies name.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=log_retention,
        encryption_key=kms_key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Runs the {construct_id} function: {description}"[:1000],
        role_name=role_name,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    grant_environment_decryption(role, kms_key)
    return lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        code=lambda_code(scope),
        handler=handler,
        description=description,
        environment=environment or {},
        environment_encryption=kms_key,
        timeout=timeout,
        memory_size=memory_size,
        log_group=log_group,
        role=role,
        logging_format=lambda_.LoggingFormat.JSON,
        dead_letter_topic=dead_letter_topic,
    )


def grant_environment_decryption(role: iam.IRole, kms_key: kms.IKey) -> None:
    """Lambda decrypts a function's environment with the function's own role (CDK adds no such grant)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DecryptOwnEnvironment",
            actions=["kms:Decrypt"],
            resources=[kms_key.key_arn],
        )
    )


def encrypted_provider(scope: Construct, on_event: lambda_.IFunction, kms_key: kms.IKey, *, role_id: str,
                       description: str) -> cr.Provider:
    """A CDK Provider framework for ``on_event`` whose own function logs to a KMS log group (``ProviderLogs``),
    runs as a role of its own (``role_id``) and has its environment encrypted with the platform key."""
    framework_logs = logs.LogGroup(
        scope,
        "ProviderLogs",
        retention=logs.RetentionDays.THREE_MONTHS,
        encryption_key=kms_key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    framework_role = iam.Role(scope, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                              description=description)
    framework_logs.grant_write(framework_role)
    grant_environment_decryption(framework_role, kms_key)
    return cr.Provider(
        scope,
        "Provider",
        on_event_handler=on_event,
        log_group=framework_logs,
        framework_on_event_role=framework_role,
        provider_function_env_encryption=kms_key,
    )
