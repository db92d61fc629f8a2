"""`<prefix>-team-<name>`: one data-science team's bucket, roles, Studio profiles and model registry.

A team that serves in the development account (no `stages`) also gets its serving side here
(`stacks.team_serving`); a team that serves in stages gets it in each stage's `<prefix>-<stage>-team-<name>`
(`stacks.stage_stacks`), and this stack then holds no endpoint resources.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from lambdas.common import naming, tags
from stacks import cross_account
from stacks.config import PlatformConfig, Team
from stacks.constructs.budgets import CostBudget, team_budget_name
from stacks.constructs.dashboards import TeamDashboard
from stacks.constructs.deploy_on_approval import ApprovalRules
from stacks.constructs.experiment_pipeline import ExperimentPipeline
from stacks.constructs.mlflow_default_domain import MlflowDefaultDomain
from stacks.constructs.studio_teardown import StudioTeardown
from stacks.role_grants import grant_image_pull_and_logs, grant_key_use
from stacks.team_buckets import add_team_bucket, deny_data_to_all_but
from stacks.team_review import STUDIO_ACTIONS, TeamReviewers, separate_duties
from stacks.team_serving import add_model_execution_role, add_team_serving

# SageMaker resource types a team creates by name; the team role may act only on its own prefix of each.
TEAM_NAMED_RESOURCE_TYPES = (
    "training-job",
    "processing-job",
    "transform-job",
    "automl-job",
    "hyper-parameter-tuning-job",
    "model",
    "endpoint-config",
    "endpoint",
    "pipeline",
    "experiment",
    "experiment-trial",
    "experiment-trial-component",
    "model-package-group",
)

# Registry writes that decide a version's approval: with reviewers required, `separate_duties` grants them narrowed.
APPROVAL_ACTIONS = ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage")
# What a team's users and jobs may do to their own named SageMaker resources.
TEAM_SAGEMAKER_ACTIONS = (
    "sagemaker:AddTags",
    "sagemaker:CreateAutoMLJob",
    "sagemaker:CreateAutoMLJobV2",
    "sagemaker:CreateEndpoint",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateExperiment",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateModel",
    "sagemaker:CreateModelPackage",
    "sagemaker:CreatePipeline",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateTransformJob",
    "sagemaker:CreateTrial",
    "sagemaker:CreateTrialComponent",
    "sagemaker:AssociateTrialComponent",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
    "sagemaker:DescribeAutoMLJob",
    "sagemaker:DescribeAutoMLJobV2",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeExperiment",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:DescribeModel",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribePipeline",
    "sagemaker:DescribePipelineDefinitionForExecution",
    "sagemaker:DescribePipelineExecution",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:DescribeTrial",
    "sagemaker:DescribeTrialComponent",
    "sagemaker:InvokeEndpoint",
    "sagemaker:ListPipelineExecutionSteps",
    "sagemaker:ListPipelineExecutions",
    "sagemaker:ListPipelineParametersForExecution",
    "sagemaker:ListTags",
    "sagemaker:RetryPipelineExecution",
    "sagemaker:SendPipelineExecutionStepFailure",
    "sagemaker:SendPipelineExecutionStepSuccess",
    "sagemaker:StartPipelineExecution",
    "sagemaker:StopAutoMLJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:StopPipelineExecution",
    "sagemaker:StopProcessingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:StopTransformJob",
    "sagemaker:UpdateModelPackage",
    "sagemaker:UpdatePipeline",
    "sagemaker:UpdatePipelineExecution",
)

# Pipeline steps get names from SageMaker Pipelines (`pipelines-...`), which carry no team. Every step
# of the team's pipeline is created with the team tag (``pipeline_code.definition.STEP_TAGS``), so the
# team role may create such jobs only with its own team tag, and may watch, stop or tag only the ones
# that carry it. Clarify's shadow endpoints are named with the team's prefix
# (``clarify_config --endpoint-name-prefix``), so the team's named-resource grants cover them.
PIPELINE_JOB_RESOURCES = (
    "training-job/pipelines-*",
    "processing-job/pipelines-*",
    "transform-job/pipelines-*",
    "automl-job/pipelines-*",
    "hyper-parameter-tuning-job/pipelines-*",
    "model/pipelines-*",
)
# The AutoML step's Arguments have the CreateAutoMLJob (V1) shape; both versions are granted.
PIPELINE_JOB_CREATE_ACTIONS = (
    "sagemaker:CreateAutoMLJob",
    "sagemaker:CreateAutoMLJobV2",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateModel",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateTransformJob",
)
PIPELINE_JOB_MANAGE_ACTIONS = (
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:DescribeAutoMLJob",
    "sagemaker:DescribeAutoMLJobV2",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:DescribeModel",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:StopAutoMLJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:StopTransformJob",
)
# The team's MLflow App keeps its artifacts under this prefix of the team bucket.
MLFLOW_PREFIX = "mlflow/"
# What the team's pipeline steps and Studio users do with their own MLflow App (data plane and describe).
MLFLOW_APP_USE_ACTIONS = ("sagemaker:CallMlflowAppApi", "sagemaker:DescribeMlflowApp")


def mlflow_app_name(prefix: str, team: str) -> str:
    """Name of a team's MLflow App, e.g. ``mlp-fraud-mlflow`` (at most 63 characters; the API allows 256)."""
    return naming.sagemaker_name(prefix, team, "mlflow")


def sagemaker_arn(resource: str) -> str:
    """ARN of a SageMaker resource (``<type>/<name>``) in this stack's account and region."""
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


class TeamStack(Stack):
    """Everything one team owns; deploying or deleting it touches no other team."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        team: Team,
        key: kms.IKey,
        domain_id: str,
        access_log_bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.team = team
        self.domain_id = domain_id
        self.prefix = config.prefix
        self.resource_prefix = naming.team_resource_prefix(config.prefix, team.name)
        self.serves_here = config.serves_in_development(team)
        self.reviewers_required = config.approval.reviewers_required

        self.data_bucket = add_team_bucket(self, "DataBucket", key=key, access_log_bucket=access_log_bucket,
                                           log_file_prefix=f"{self.prefix}-team-{team.name}/")

        self.alert_topic = sns.Topic(
            self, "Alerts", display_name=f"{self.prefix} {team.name} alerts", master_key=key, enforce_ssl=True
        )
        for address in team.alert_emails:
            self.alert_topic.add_subscription(subscriptions.EmailSubscription(address))

        self.model_execution_role = None
        if self.serves_here:
            self.model_execution_role = add_model_execution_role(
                self, prefix=self.prefix, team=team, data_bucket=self.data_bucket, key=key
            )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Studio users and jobs of team {team.name}: only the team's bucket, registry and resources",
        )
        self.mlflow_app = self._mlflow_app(key)
        self.mlflow_app_arn = self.mlflow_app.attr_arn
        self._grant_team_execution(self.execution_role, key)
        self._grant_studio_use(self.execution_role, domain_id)
        if self.reviewers_required:
            separate_duties(self.execution_role, prefix=self.prefix, team=team.name, domain_id=domain_id)
        reviewers = config.reviewers_of(team)
        self.reviewers = None
        if team.use_cases and (reviewers.users or reviewers.role_arns):
            self.reviewers = TeamReviewers(self, prefix=self.prefix, team=team, reviewers=reviewers,
                                           data_bucket=self.data_bucket, key=key, domain_id=domain_id)
        self.mlflow_default_domain = None
        if config.studio.default_mlflow_team == team.name:
            self.mlflow_default_domain = MlflowDefaultDomain(
                self, "MlflowDefaultDomain", app=self.mlflow_app, domain_id=domain_id, kms_key=key
            )

        self.user_profiles = [
            sagemaker.CfnUserProfile(
                self,
                f"Profile-{user}",
                domain_id=domain_id,
                user_profile_name=naming.user_profile_name(team.name, user),
                user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                    execution_role=self.execution_role.role_arn
                ),
                # Tags on a UserProfile force its replacement: only values fixed for its lifetime.
                tags=[
                    {"key": tags.PLATFORM, "value": self.prefix},
                    {"key": tags.TEAM, "value": team.name},
                    {"key": tags.MANAGED_BY, "value": tags.MANAGED_BY_VALUE},
                ],
            )
            for user in team.users
        ]

        self.model_package_groups = {}
        for use_case in team.use_cases:
            group = sagemaker.CfnModelPackageGroup(
                self,
                f"Registry-{use_case.name}",
                model_package_group_name=naming.model_package_group_name(self.prefix, team.name, use_case.name),
                model_package_group_description=use_case.description or None,
            )
            group.apply_removal_policy(RemovalPolicy.RETAIN)
            self.model_package_groups[use_case.name] = group

        self.studio_teardown = None
        reviewer_profiles = self.reviewers.profiles if self.reviewers is not None else []
        if self.user_profiles or reviewer_profiles:
            self.studio_teardown = StudioTeardown(
                self,
                "StudioTeardown",
                domain=domain_id,
                kms_key=key,
                user_profiles=self.user_profiles + reviewer_profiles,
                resource_name_prefix=f"{team.name}-",
            )
        self.pipelines = {
            use_case.name: ExperimentPipeline(
                self,
                f"Pipeline-{use_case.name}",
                bucket=self.data_bucket,
                execution_role=self.execution_role,
                model_package_group_name=group.model_package_group_name,
                pipeline_name=group.model_package_group_name,
                kms_key=key,
                team_name=team.name,
                platform_prefix=self.prefix,
                spec=use_case.pipeline_spec(explainability=config.explainability),
                mlflow_app_arn=self.mlflow_app_arn,
            )
            for use_case in team.use_cases
            for group in [self.model_package_groups[use_case.name]]
        }
        for pipeline in self.pipelines.values():
            pipeline.node.add_dependency(*self.model_package_groups.values())
        self.serving = self.deploy_on_approval = self.monitoring = self.dashboard = None
        if self.serves_here:
            self.serving = add_team_serving(
                self,
                prefix=self.prefix,
                team=team,
                key=key,
                data_bucket=self.data_bucket,
                alert_topic=self.alert_topic,
                execution_role=self.execution_role,
                mlflow_app_arn=self.mlflow_app_arn,
                registry_groups={name: group.model_package_group_name
                                 for name, group in self.model_package_groups.items()},
                building_pipelines=list(self.pipelines.values()),
                model_execution_role=self.model_execution_role,
                approval_rules=ApprovalRules.of(config, team),
            )
            self.deploy_on_approval = self.serving.deploy_on_approval
            self.monitoring = self.serving.monitoring
        self.budget = CostBudget(self, "Budget", name=team_budget_name(self.prefix, team.name), tag_key=tags.TEAM,
                                 tag_value=team.name, settings=team.budget, alert_topic=self.alert_topic)
        if self.serving is not None:
            self.dashboard = self.serving.dashboard
        elif self.pipelines:
            self.dashboard = TeamDashboard(
                self, "Dashboard", prefix=self.prefix, team=team, deploy_on_approval=None, monitoring=None,
                pipeline_names=sorted(p.pipeline.pipeline_name for p in self.pipelines.values()),
            )
        self.forwarding = None
        self.stage_model_role_arns: list[str] = []
        if config.stages_of(team) and self.model_package_groups:
            self._share_with_stages(config, key)
        self._restrict_bucket_data_to_team(config.break_glass_role_arns)

        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        CfnOutput(self, "ExecutionRoleArn", value=self.execution_role.role_arn)
        if self.model_execution_role is not None:
            CfnOutput(self, "ModelExecutionRoleArn", value=self.model_execution_role.role_arn)
        CfnOutput(self, "MlflowAppArn", value=self.mlflow_app_arn)
        if self.reviewers is not None:
            CfnOutput(self, "ReviewerRoleArn", value=self.reviewers.role.role_arn)

    def _share_with_stages(self, config: PlatformConfig, key: kms.IKey) -> None:
        """The team's stage accounts may read its registry and registered models; its registry events go there."""
        cross_account.share_groups(self.model_package_groups, config, self.team)
        self.stage_model_role_arns = cross_account.allow_artifact_reads(self.data_bucket, config, self.team)
        self.forwarding = cross_account.forward_registry_events(
            self, config=config, team=self.team,
            groups={name: group.model_package_group_name for name, group in self.model_package_groups.items()},
            kms_key=key, alert_topic=self.alert_topic,
        )

    def _restrict_bucket_data_to_team(self, break_glass_role_arns: list[str]) -> None:
        """Deny the bucket's data to every principal but the team's roles, its code upload, its stage model
        execution roles (which the bucket's policy admits to the registered models only) and break-glass roles."""
        serving = [self.model_execution_role.role_arn] if self.model_execution_role is not None else []
        serving += self.stage_model_role_arns
        allowed = [self.execution_role.role_arn, *serving, self.mlflow_role.role_arn]
        if self.reviewers is not None:
            allowed.append(self.reviewers.role.role_arn)
        allowed += [pipeline.code_deployment.handler_role.role_arn for pipeline in self.pipelines.values()]
        allowed += list(break_glass_role_arns)
        deny_data_to_all_but(self.data_bucket, sid="DataOnlyForTheTeamsRoles", allowed_role_arns=allowed)

    def _mlflow_app(self, key: kms.IKey) -> sagemaker.CfnMlflowApp:
        """The team's serverless MLflow App, its experiment history: retained when the stack is deleted.

        Its artifacts live under ``mlflow/`` of the team bucket, written by a role of its own that may touch
        nothing else. The role's trust names no aws:SourceAccount/aws:SourceArn: SageMaker's confused-deputy
        guide lists the features that send them, and MLflow Apps are not among them (a condition the service
        does not send would deny the App its role). The pipeline registers models itself, so MLflow's
        automatic registration stays off. Name and role are create-only: changing either replaces the App.
        """
        self.mlflow_role = iam.Role(
            self,
            "MlflowAppRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"MLflow App of team {self.team.name}: reads and writes only mlflow/ of the team's bucket",
        )
        self.mlflow_role.add_to_policy(
            iam.PolicyStatement(
                sid="MlflowArtifacts",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self.data_bucket.arn_for_objects(f"{MLFLOW_PREFIX}*")],
            )
        )
        self.mlflow_role.add_to_policy(
            iam.PolicyStatement(
                sid="ListMlflowArtifacts",
                actions=["s3:ListBucket"],
                resources=[self.data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [MLFLOW_PREFIX, f"{MLFLOW_PREFIX}*"]}},
            )
        )
        self.mlflow_role.add_to_policy(
            iam.PolicyStatement(
                sid="LocateTeamBucket", actions=["s3:GetBucketLocation"], resources=[self.data_bucket.bucket_arn]
            )
        )
        self.mlflow_role.add_to_policy(
            iam.PolicyStatement(
                sid="UsePlatformKeyThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            )
        )
        app = sagemaker.CfnMlflowApp(
            self,
            "MlflowApp",
            name=mlflow_app_name(self.prefix, self.team.name),
            artifact_store_uri=f"s3://{self.data_bucket.bucket_name}/{MLFLOW_PREFIX}",
            role_arn=self.mlflow_role.role_arn,
            model_registration_mode="AutoModelRegistrationDisabled",
        )
        app.apply_removal_policy(RemovalPolicy.RETAIN)
        # The App checks its artifact store with the role when it is created: the role's policy comes first.
        app.node.add_dependency(self.mlflow_role)
        return app

    def _team_arns(self, *resource_types: str) -> list[str]:
        return [sagemaker_arn(f"{t}/{self.resource_prefix}*") for t in resource_types]

    def _grant_studio_use(self, role: iam.Role, domain_id: str) -> None:
        """Studio users open apps and spaces in the shared domain, only under their team's profile names."""
        team = self.team.name
        # A policy of its own, so that its findings have a fixed path (the role's default policy
        # overflows into policies CDK creates only at synthesis).
        policy = iam.Policy(role, "StudioPolicy", roles=[role])
        policy.add_statements(
            iam.PolicyStatement(
                sid="StudioAppsAndSpacesOfTheTeam",
                actions=list(STUDIO_ACTIONS),
                resources=[
                    sagemaker_arn(f"user-profile/{domain_id}/{team}-*"),
                    sagemaker_arn(f"space/{domain_id}/{team}-*"),
                    sagemaker_arn(f"app/{domain_id}/{team}-*/*"),
                ],
            )
        )
        policy.add_statements(
            iam.PolicyStatement(
                sid="OpenTheTeamsMlflowApp",
                actions=["sagemaker:CreatePresignedMlflowAppUrl"],
                resources=[self.mlflow_app_arn],
            )
        )
        policy.add_statements(
            iam.PolicyStatement(
                sid="StudioReadsTheDomain",
                actions=["sagemaker:DescribeDomain"],
                resources=[sagemaker_arn(f"domain/{domain_id}")],
            )
        )

    def _grant_team_execution(self, role: iam.Role, key: kms.IKey) -> None:
        """Users and jobs: their bucket, their key use, their named SageMaker resources, their registry."""
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TeamBucketObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self.data_bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListTeamBucket",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self.data_bucket.bucket_arn],
            )
        )
        grant_key_use(role, key)
        actions = [a for a in TEAM_SAGEMAKER_ACTIONS if not (self.reviewers_required and a in APPROVAL_ACTIONS)]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TeamNamedSageMakerResources",
                actions=actions,
                resources=self._team_arns(*TEAM_NAMED_RESOURCE_TYPES)
                + [
                    sagemaker_arn(f"model-package/{self.resource_prefix}*/*"),
                    sagemaker_arn(f"pipeline/{self.resource_prefix}*/execution/*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="UseTheTeamsMlflowApp",
                actions=list(MLFLOW_APP_USE_ACTIONS),
                resources=[self.mlflow_app_arn],
            )
        )
        pipeline_jobs = [sagemaker_arn(resource) for resource in PIPELINE_JOB_RESOURCES]
        team_tag = f"aws:ResourceTag/{tags.TEAM}"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CreatePipelineNamedJobsTaggedForTheTeam",
                actions=list(PIPELINE_JOB_CREATE_ACTIONS),
                resources=pipeline_jobs,
                conditions={"StringEquals": {f"aws:RequestTag/{tags.TEAM}": self.team.name}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ManagePipelineNamedJobsOfTheTeam",
                actions=list(PIPELINE_JOB_MANAGE_ACTIONS),
                resources=pipeline_jobs,
                conditions={"StringEquals": {team_tag: self.team.name}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TagPipelineNamedJobsOfTheTeam",
                actions=["sagemaker:AddTags"],
                resources=pipeline_jobs,
                conditions={
                    "StringEquals": {f"aws:RequestTag/{tags.TEAM}": self.team.name},
                    "StringEqualsIfExists": {team_tag: self.team.name},
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListAndSearchHaveNoResourceLevelPermissions",
                actions=[
                    "sagemaker:ListModelPackageGroups",
                    "sagemaker:ListModelPackages",
                    "sagemaker:ListCandidatesForAutoMLJob",
                    "sagemaker:ListPipelines",
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListModels",
                    "sagemaker:ListTrainingJobs",
                    "sagemaker:ListProcessingJobs",
                    "sagemaker:ListAutoMLJobs",
                    "sagemaker:Search",
                    "sagemaker:ListApps",
                    "sagemaker:ListSpaces",
                    "sagemaker:ListUserProfiles",
                    "sagemaker:ListMlflowApps",
                    "cloudwatch:GetMetricData",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheTeamsRolesToSageMaker",
                actions=["iam:PassRole"],
                resources=[role.role_arn] + ([self.model_execution_role.role_arn]
                                             if self.model_execution_role is not None else []),
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        grant_image_pull_and_logs(role, log_group_prefix="/aws/sagemaker/")
