"""The stacks of a stage account (`stages:` in the config), where the teams' versions serve.

- `<prefix>-<stage>-platform` (`StagePlatformStack`): the account's platform key (the same service statements
  as the development account's), its access-log bucket, its alert topic, and the idle-endpoint reaper with the
  stage's settings for the teams that serve there, with its dashboard. No Studio domain, quotas or budgets.
- `<prefix>-<stage>-team-<name>` (`StageTeamStack`), per team that serves in the stage: its model execution
  role, its data-capture bucket (retained), its alert topic, and the serving side of `stacks.team_serving`
  (deploy automation, verifier, alarms, dashboard) pointed at the registry of the development account.

Nothing here needs a lookup: every stack has an explicit account and region. What connects the accounts
(`stacks.cross_account`): the stage platform stack's default bus admits the development account's forwarded
registry events; the stage team stack's deploy and model execution roles have the fixed names that the
development account's group, bucket and key policies admit, and the model execution role may read the
registered models there.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from lambdas.common import naming
from stacks import cross_account
from stacks.config import PlatformConfig, Stage, Team
from stacks.constructs.dashboards import PlatformDashboard
from stacks.constructs.deploy_on_approval import ApprovalRules
from stacks.constructs.idle_endpoint_reaper import IdleEndpointReaper
from stacks.constructs.model_registry import RegistryLocation
from stacks.platform_stack import add_access_log_bucket, add_alert_topic, add_platform_key
from stacks.team_buckets import add_team_bucket, deny_data_to_all_but
from stacks.team_serving import add_model_execution_role, add_team_serving


def registry_location(config: PlatformConfig) -> RegistryLocation:
    """The development account's registry, which every stage serves from."""
    return RegistryLocation(account=config.account, region=config.region)


class StagePlatformStack(Stack):
    """A stage account's shared resources; its resource count does not grow with the number of teams."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, stage: Stage, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config, self.stage = config, stage
        prefix = config.prefix
        self.key = add_platform_key(
            self, alias=f"alias/{prefix}-{stage.name}-platform",
            description=f"Encrypts the {prefix} platform's {stage.name} data capture, queues, topics and logs",
        )
        self.access_log_bucket = add_access_log_bucket(self)
        self.alert_topic = add_alert_topic(self, prefix=prefix, emails=config.alert_emails, key=self.key)
        self.idle_endpoint_reaper = IdleEndpointReaper(
            self,
            "IdleEndpointReaper",
            prefix=prefix,
            settings=stage.reaper or config.reaper,
            teams=config.teams_in(stage),
            kms_key=self.key,
            alert_topic=self.alert_topic,
        )
        self.dashboard = PlatformDashboard(
            self, "Dashboard", prefix=prefix, reaper_function=self.idle_endpoint_reaper.function,
            reaper_alarm=self.idle_endpoint_reaper.failure_alarm, quota_function=None,
        )
        self.registry_events_policy = cross_account.admit_registry_events(self, config, stage)
        CfnOutput(self, "PlatformKeyArn", value=self.key.key_arn)
        CfnOutput(self, "AlertTopicArn", value=self.alert_topic.topic_arn)


class StageTeamStack(Stack):
    """Where one team's versions serve in one stage account; deploying or deleting it touches no other team."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        stage: Stage,
        team: Team,
        key: kms.IKey,
        access_log_bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config, self.stage, self.team = config, stage, team
        self.prefix = config.prefix
        self.resource_prefix = naming.team_resource_prefix(config.prefix, team.name)

        self.capture_bucket = add_team_bucket(self, "CaptureBucket", key=key, access_log_bucket=access_log_bucket,
                                              log_file_prefix=f"{construct_id}/")
        self.alert_topic = sns.Topic(
            self, "Alerts", display_name=f"{self.prefix} {stage.name} {team.name} alerts", master_key=key,
            enforce_ssl=True,
        )
        for address in team.alert_emails:
            self.alert_topic.add_subscription(subscriptions.EmailSubscription(address))

        self.model_execution_role = add_model_execution_role(
            self, prefix=self.prefix, team=team, data_bucket=self.capture_bucket, key=key,
            artifacts_in_data_bucket=False,
            role_name=cross_account.role_name(self.prefix, stage.name, team.name, cross_account.MODEL_EXECUTION_ROLE),
        )
        cross_account.grant_artifact_reads(self.model_execution_role, config)
        self.serving = add_team_serving(
            self,
            prefix=self.prefix,
            team=team,
            key=key,
            data_bucket=self.capture_bucket,
            alert_topic=self.alert_topic,
            model_execution_role=self.model_execution_role,
            registry=registry_location(config),
            deploy_role_name=cross_account.role_name(self.prefix, stage.name, team.name, cross_account.DEPLOY_ROLE),
            approval_rules=ApprovalRules.of(config, team),
        )
        self.deploy_on_approval = self.serving.deploy_on_approval
        self.dashboard = self.serving.dashboard
        self._restrict_capture_to_endpoints(config.break_glass_role_arns)

        CfnOutput(self, "CaptureBucketName", value=self.capture_bucket.bucket_name)
        CfnOutput(self, "ModelExecutionRoleArn", value=self.model_execution_role.role_arn)

    def _restrict_capture_to_endpoints(self, break_glass_role_arns: list[str]) -> None:
        """Deny the captured requests to every principal but the endpoints' role and the break-glass roles."""
        allowed = [self.model_execution_role.role_arn, *break_glass_role_arns]
        deny_data_to_all_but(self.capture_bucket, sid="CaptureOnlyForTheTeamsEndpoints", allowed_role_arns=allowed)
