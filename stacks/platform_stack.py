"""`<prefix>-platform`: the platform key, the access-log bucket, the alert topic and the Studio domain."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from lambdas.common import tags
from stacks.config import PlatformConfig
from stacks.cross_account import allow_artifact_decryption
from stacks.constructs.budgets import CostBudget, platform_budget_name
from stacks.constructs.cost_tracking import CostTracking
from stacks.constructs.dashboards import PlatformDashboard
from stacks.constructs.idle_endpoint_reaper import (
    IdleEndpointReaper,
    platform_alarm_name,
)
from stacks.constructs.instance_quotas import InstanceQuotaRequests
from stacks.constructs.resource_policies import (
    allow_alarms_to_publish,
    allow_cloudwatch_logs,
)
from stacks.constructs.studio_teardown import StudioTeardown
from stacks.network_stack import NetworkRefs

# Services that publish to or read from the platform's encrypted topics and queues.
KEY_USER_SERVICES = ("budgets.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com")


def domain_id_export_name(prefix: str) -> str:
    """Team stacks import the domain id under this fixed name (readable in IAM policies and findings)."""
    return f"{prefix}-studio-domain-id"


def add_platform_key(stack: Stack, *, alias: str, description: str) -> kms.Key:
    """The account's platform key (id ``PlatformKey``, retained), usable by the services that publish to or read
    from its encrypted topics and queues in this account, and by CloudWatch Logs for its log groups."""
    key = kms.Key(
        stack,
        "PlatformKey",
        alias=alias,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowAwsServicesOfThisAccount",
            principals=[iam.ServicePrincipal(s) for s in KEY_USER_SERVICES],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
    # Every log group of the account's platform stacks is encrypted with this key.
    allow_cloudwatch_logs(key)
    return key


def add_access_log_bucket(stack: Stack) -> s3.Bucket:
    """The bucket the account's other buckets write their server access logs to (id ``AccessLogs``, retained)."""
    bucket = s3.Bucket(
        stack,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))],
        removal_policy=RemovalPolicy.RETAIN,
    )
    # Team buckets (in their own stacks) log here; granting by account keeps this stack team-independent.
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="S3ServerAccessLogsFromThisAccount",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
    return bucket


def add_alert_topic(stack: Stack, *, prefix: str, emails: list[str], key: kms.IKey) -> sns.Topic:
    """The account's platform alert topic (id ``PlatformAlerts``), which admits only alarms named
    ``<prefix>-platform-*`` (see platform_alarm_name)."""
    topic = sns.Topic(
        stack,
        "PlatformAlerts",
        display_name=f"{prefix} platform alerts",
        master_key=key,
        enforce_ssl=True,
    )
    for address in emails:
        topic.add_subscription(subscriptions.EmailSubscription(address))
    allow_alarms_to_publish(topic, "PlatformAlarms", platform_alarm_name(prefix, "*"))
    return topic


class PlatformStack(Stack):
    """Shared by every team; its resource count does not grow with the number of teams."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, network: NetworkRefs, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config

        self.key = add_platform_key(
            self, alias=f"alias/{config.prefix}-platform",
            description=f"Encrypts the {config.prefix} platform's data, Studio volumes, queues and topics",
        )
        allow_artifact_decryption(self.key, config)
        self.access_log_bucket = add_access_log_bucket(self)
        self.alert_topic = add_alert_topic(self, prefix=config.prefix, emails=config.alert_emails, key=self.key)

        self.domain_default_role = iam.Role(
            self,
            "DomainDefaultRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Default execution role of the Studio domain; grants nothing (every profile sets its team's role)",
        )

        idle = sagemaker.CfnDomain.AppLifecycleManagementProperty(
            idle_settings=sagemaker.CfnDomain.IdleSettingsProperty(
                lifecycle_management="ENABLED",
                idle_timeout_in_minutes=config.studio.idle_timeout_minutes,
                min_idle_timeout_in_minutes=60,
                max_idle_timeout_in_minutes=config.studio.max_idle_timeout_minutes,
            )
        )
        self.domain = sagemaker.CfnDomain(
            self,
            "StudioDomain",
            domain_name=f"{config.prefix}-studio",
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=network.vpc_id,
            subnet_ids=network.subnet_ids,
            kms_key_id=self.key.key_arn,
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.domain_default_role.role_arn,
                security_groups=network.security_group_ids,
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                jupyter_lab_app_settings=sagemaker.CfnDomain.JupyterLabAppSettingsProperty(app_lifecycle_management=idle),
                code_editor_app_settings=sagemaker.CfnDomain.CodeEditorAppSettingsProperty(app_lifecycle_management=idle),
            ),
            domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                security_group_ids=network.security_group_ids,
                docker_settings=sagemaker.CfnDomain.DockerSettingsProperty(enable_docker_access="DISABLED"),
            ),
            # Tags on a Domain force its replacement, so only values fixed for its lifetime go here.
            tags=[
                {"key": tags.PLATFORM, "value": config.prefix},
                {"key": tags.MANAGED_BY, "value": tags.MANAGED_BY_VALUE},
            ],
        )
        self.domain.apply_removal_policy(RemovalPolicy.DESTROY)
        self.studio_teardown = StudioTeardown(
            self,
            "StudioTeardown",
            domain=self.domain,
            kms_key=self.key,
            home_efs_on_delete=config.studio.home_efs_on_delete,
        )
        self.instance_quotas = InstanceQuotaRequests(
            self, "InstanceQuotas", quotas=config.quotas, kms_key=self.key
        )
        self.idle_endpoint_reaper = IdleEndpointReaper(
            self,
            "IdleEndpointReaper",
            prefix=config.prefix,
            settings=config.reaper,
            teams=config.teams,
            kms_key=self.key,
            alert_topic=self.alert_topic,
        )

        self.budget = CostBudget(self, "Budget", name=platform_budget_name(config.prefix), tag_key=tags.PLATFORM,
                                 tag_value=config.prefix, settings=config.budget, alert_topic=self.alert_topic)
        self.cost_tracking = CostTracking(self, "CostTracking", config=config, kms_key=self.key,
                                          alert_topic=self.alert_topic)
        self.dashboard = PlatformDashboard(
            self, "Dashboard", prefix=config.prefix, reaper_function=self.idle_endpoint_reaper.function,
            reaper_alarm=self.idle_endpoint_reaper.failure_alarm, quota_function=self.instance_quotas.function,
            cost_tracking=self.cost_tracking,
        )

        CfnOutput(
            self, "StudioDomainId", value=self.domain.attr_domain_id, export_name=domain_id_export_name(config.prefix)
        )
        CfnOutput(self, "PlatformKeyArn", value=self.key.key_arn)
        CfnOutput(self, "AlertTopicArn", value=self.alert_topic.topic_arn)
