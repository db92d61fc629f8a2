"""The serving side of a team: what runs its endpoints once a version is approved.

`add_model_execution_role` adds the role the team's endpoints run as, with its grants; `add_team_serving`
adds the deploy-on-approval automation, the endpoint monitoring and the team dashboard. Both use the
construct ids the team stack has always given them, directly under the stack (never under a new parent:
logical ids come from construct paths, and a renamed id is a replaced resource). The team stack calls
them for a team that serves in the development account (the role first: the execution role may pass it);
a stage account's team stack (`stacks.stage_stacks`) calls them with the development account's registry.
The building side (bucket, execution role, Studio, registry, pipelines) stays in the team stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from lambdas.common import naming
from stacks.config import Team
from stacks.constructs.dashboards import TeamDashboard
from stacks.constructs.deploy_on_approval import ApprovalRules, DeployOnApproval, alarm_names
from stacks.constructs.endpoint_monitoring import EndpointMonitoring
from stacks.constructs.experiment_pipeline import ExperimentPipeline
from stacks.constructs.model_registry import SAME_STACK, RegistryLocation
from stacks.role_grants import grant_image_pull_and_logs, grant_key_use


@dataclass(frozen=True)
class TeamServing:
    """What `add_team_serving` added."""

    model_execution_role: iam.Role
    deploy_on_approval: DeployOnApproval
    monitoring: EndpointMonitoring
    dashboard: TeamDashboard


def add_team_serving(
    stack: Stack,
    *,
    prefix: str,
    team: Team,
    key: kms.IKey,
    data_bucket: s3.IBucket,
    alert_topic: sns.ITopic,
    model_execution_role: iam.Role,
    execution_role: iam.Role | None = None,
    mlflow_app_arn: str | None = None,
    registry_groups: dict[str, str] | None = None,
    building_pipelines: Sequence[ExperimentPipeline] = (),
    registry: RegistryLocation = SAME_STACK,
    deploy_role_name: str | None = None,
    approval_rules: ApprovalRules | None = None,
) -> TeamServing:
    """Add the team's serving constructs to `stack` (ids ``DeployOnApproval``, ``EndpointMonitoring``,
    ``Dashboard``) for endpoints that run as `model_execution_role` (`add_model_execution_role`), whose data
    capture goes to `data_bucket`.

    The building side, where the stack has one: `execution_role` and `mlflow_app_arn` run the monitoring
    pipelines, `registry_groups` maps use case to registry group name and `building_pipelines` are the team's
    experiment pipelines whose uploaded code the monitoring reuses. A stack without it (a stage account's)
    cannot monitor endpoints (the config refuses monitoring there); it serves from `registry` with a deploy role
    named `deploy_role_name`, which that registry's policy admits. `approval_rules` (reviewers required): the
    deploy function serves only versions approved by one of those reviewers who did not build them.
    """
    if execution_role is None and any(use_case.endpoint.monitoring.enabled for use_case in team.use_cases):
        raise ValueError(f"team {team.name}: endpoint monitoring needs the building side (execution role, "
                         "MLflow App, pipelines) in the same stack")
    deploy_on_approval = DeployOnApproval(
        stack,
        "DeployOnApproval",
        prefix=prefix,
        team=team,
        model_execution_role=model_execution_role,
        kms_key=key,
        alert_topic=alert_topic,
        data_bucket=data_bucket,
        registry=registry,
        deploy_role_name=deploy_role_name,
        reviewer_rules=approval_rules,
    )
    monitoring = EndpointMonitoring(
        stack,
        "EndpointMonitoring",
        prefix=prefix,
        team=team,
        bucket=data_bucket,
        execution_role=execution_role,
        kms_key=key,
        alert_topic=alert_topic,
        mlflow_app_arn=mlflow_app_arn,
        code_dependencies=[dependency for pipeline in building_pipelines
                           for dependency in (pipeline.code_deployment, pipeline.wheelhouse_deployment)],
    )
    if monitoring.scheduler_role is not None:
        deploy_on_approval.enable_monitoring(
            monitoring.scheduler_role,
            [group.name for group in monitoring.schedule_groups.values()],
            [(registry_groups or {})[name] for name in monitoring.schedule_groups],
        )
    dashboard = TeamDashboard(
        stack, "Dashboard", prefix=prefix, team=team, deploy_on_approval=deploy_on_approval, monitoring=monitoring,
        pipeline_names=sorted([p.pipeline.pipeline_name for p in building_pipelines]
                              + [p.pipeline_name for p in monitoring.pipelines.values()]),
    )
    return TeamServing(model_execution_role, deploy_on_approval, monitoring, dashboard)


def add_model_execution_role(stack: Stack, *, prefix: str, team: Team, data_bucket: s3.IBucket,
                             key: kms.IKey, artifacts_in_data_bucket: bool = True,
                             role_name: str | None = None) -> iam.Role:
    """The role the team's endpoints run as (id ``ModelExecutionRole``), with `grant_model_execution`.

    `data_bucket` receives the data capture; with `artifacts_in_data_bucket` the endpoints also read their model
    artifacts from it (the development account's team bucket). A stage account's role writes only its capture here;
    it has the fixed `role_name` that the development account's bucket and key policies admit.
    """
    role = iam.Role(
        stack,
        "ModelExecutionRole",
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=f"Runs {team.name}'s endpoints: reads the team's artifacts, writes its data capture"
        if artifacts_in_data_bucket else f"Runs {team.name}'s endpoints in this account: writes their data capture, "
        "reads the registered models of the development account",
    )
    grant_model_execution(role, data_bucket, key, prefix=prefix, team=team, reads_artifacts=artifacts_in_data_bucket)
    return role


def grant_model_execution(role: iam.Role, bucket: s3.IBucket, key: kms.IKey, *, prefix: str, team: Team,
                          reads_artifacts: bool = True) -> None:
    """Endpoints write data capture to `bucket` (and, with `reads_artifacts`, read the team's artifacts from
    it), pull images and log."""
    if reads_artifacts:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTeamArtifacts",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteDataCapture",
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("data-capture/*")],
        )
    )
    if reads_artifacts:
        role.add_to_policy(
            iam.PolicyStatement(sid="ListTeamBucket", actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
    grant_key_use(role, key)
    grant_image_pull_and_logs(role, log_group_prefix="/aws/sagemaker/Endpoints/")
    rollback_alarms = [
        f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{name}"
        for use_case in team.use_cases
        for name in alarm_names(naming.endpoint_name(prefix, team.name, use_case.name))
    ]
    if rollback_alarms:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarmsOfTheTeamsEndpoints",
                actions=["cloudwatch:DescribeAlarms"],
                resources=rollback_alarms,
            )
        )
