"""Clean teardown of Studio: a custom resource deleted before the user profiles or the domain it covers.

CloudFormation cannot delete a user profile or a domain while users' apps and spaces exist, and it
leaves the domain's home EFS volume and NFS security groups behind. ``Custom::StudioTeardown``
depends on the profiles (team stack) or the domain (platform stack), so CloudFormation deletes it
first; its Delete removes the apps and spaces and waits for them through the Provider framework's
isComplete polling (every 30 s, up to 45 minutes; app deletion can take about 20). At domain scope
with ``home_efs_on_delete="delete"`` it then deletes the domain itself with its home EFS volume and
the NFS security groups; CloudFormation's own delete of the domain then finds it gone, which the
``AWS::SageMaker::Domain`` handler reports as NotFound and CloudFormation counts as deleted.
"""

from __future__ import annotations

from typing import Literal, Sequence

from aws_cdk import Aws, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.constructs.lambda_function import (
    grant_environment_decryption,
    platform_function,
)

RESOURCE_TYPE = "Custom::StudioTeardown"
ON_EVENT_HANDLER = "studio_teardown.handler.on_event"
IS_COMPLETE_HANDLER = "studio_teardown.handler.is_complete"
QUERY_INTERVAL = Duration.seconds(30)
TOTAL_TIMEOUT = Duration.minutes(45)
# isComplete fails with its own message (naming what is left) before the framework's bare timeout.
TEARDOWN_DEADLINE = Duration.seconds(TOTAL_TIMEOUT.to_seconds() - 2 * QUERY_INTERVAL.to_seconds())
SAGEMAKER_TAG = "ManagedByAmazonSageMakerResource"

HomeEfsOnDelete = Literal["retain", "delete"]


def _vpc_id_of(domain: sagemaker.CfnDomain) -> str | None:
    vpc = domain.vpc_id
    if vpc is None or isinstance(vpc, str):
        return vpc
    return vpc.vpc_ref.vpc_id


class StudioTeardown(Construct):
    """Delete the Studio apps and spaces that block deleting user profiles or a domain.

    - Platform stack: ``StudioTeardown(self, "StudioTeardown", domain=cfn_domain, kms_key=key,
      home_efs_on_delete=config.studio.home_efs_on_delete)`` covers the whole domain (apps, spaces,
      profiles no stack deletes, and with "delete" the domain, its home EFS volume and NFS groups).
    - Team stack: ``StudioTeardown(self, "StudioTeardown", domain=domain_id_token, kms_key=key,
      user_profiles=team_profiles)`` covers those profiles' apps and the spaces they own.

    ``domain`` is the ``CfnDomain`` (same stack) or the domain id (another stack); the domain scope
    needs the ``CfnDomain``. The custom resource (``resource``) depends on the domain and profiles
    it covers, so CloudFormation deletes it before them. Add further dependencies (for example on
    ``CfnSpace`` resources of the same stack) with ``teardown.resource.node.add_dependency(...)``.
    ``kms_key`` (the platform key) encrypts every log group and Lambda environment of the teardown,
    the Provider framework's included.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain: sagemaker.CfnDomain | str,
        kms_key: kms.IKey,
        user_profiles: Sequence[sagemaker.CfnUserProfile] | None = None,
        home_efs_on_delete: HomeEfsOnDelete = "retain",
        resource_name_prefix: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        if home_efs_on_delete not in ("retain", "delete"):
            raise ValueError(f"home_efs_on_delete must be 'retain' or 'delete', got {home_efs_on_delete!r}")
        domain_scope = user_profiles is None
        if domain_scope and not isinstance(domain, sagemaker.CfnDomain):
            raise ValueError(
                "the domain-wide teardown (user_profiles=None) must be built in the stack that owns the domain: "
                "pass the CfnDomain, not its id"
            )
        if not domain_scope and home_efs_on_delete == "delete":
            raise ValueError(
                "home_efs_on_delete='delete' applies to the domain-wide teardown only (user_profiles=None)"
            )
        domain_id = domain.attr_domain_id if isinstance(domain, sagemaker.CfnDomain) else domain
        vpc_id = _vpc_id_of(domain) if isinstance(domain, sagemaker.CfnDomain) else None
        delete_domain = domain_scope and home_efs_on_delete == "delete"
        if delete_domain and not vpc_id:
            raise ValueError("home_efs_on_delete='delete' needs the domain's VpcId (to find its NFS security groups)")

        stack = Stack.of(self)
        self.domain_id = domain_id
        self.domain_scope = domain_scope
        # Apps and spaces this teardown may delete: those whose owner or space name starts with this prefix.
        self.resource_name_prefix = resource_name_prefix
        self.delete_domain = delete_domain
        self.domain_arn = stack.format_arn(service="sagemaker", resource="domain", resource_name=domain_id)

        self.on_event_function = platform_function(
            self,
            "OnEvent",
            handler=ON_EVENT_HANDLER,
            description="Studio teardown: decides on stack deletion whether to empty the domain or profiles",
            kms_key=kms_key,
            timeout=Duration.seconds(30),
        )
        self.on_event_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadOwnStackStatus", actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]
            )
        )
        # The Service Authorization Reference lists cloudformation:ListStacks as a dependent action of
        # DescribeStacks; it takes no resource-level permissions and reveals stack names and states only.
        self.on_event_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DescribeStacksNeedsListStacks", actions=["cloudformation:ListStacks"], resources=["*"]
            )
        )
        self.is_complete_function = platform_function(
            self,
            "IsComplete",
            handler=IS_COMPLETE_HANDLER,
            description="Studio teardown: deletes apps and spaces (and the domain if configured), reports what is left",
            kms_key=kms_key,
            timeout=Duration.minutes(2),
            environment={"TEARDOWN_DEADLINE_SECONDS": str(int(TEARDOWN_DEADLINE.to_seconds()))},
        )
        self._grant_teardown(stack, domain_id, domain_scope=domain_scope, delete_domain=delete_domain, vpc_id=vpc_id)

        framework_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=kms_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        waiter_logs = logs.LogGroup(
            self,
            "WaiterLogs",
            log_group_name=f"/aws/vendedlogs/states/studio-teardown-{self.node.addr}",
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=kms_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        on_event_role = iam.Role(
            self,
            "ProviderOnEventRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Provider framework onEvent function of the Studio teardown",
        )
        waiter_role = iam.Role(
            self,
            "ProviderWaiterRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Provider framework isComplete and timeout functions of the Studio teardown",
        )
        framework_logs.grant_write(on_event_role)
        framework_logs.grant_write(waiter_role)
        grant_environment_decryption(on_event_role, kms_key)
        grant_environment_decryption(waiter_role, kms_key)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.on_event_function,
            is_complete_handler=self.is_complete_function,
            query_interval=QUERY_INTERVAL,
            total_timeout=TOTAL_TIMEOUT,
            log_group=framework_logs,
            framework_on_event_role=on_event_role,
            framework_complete_and_timeout_role=waiter_role,
            provider_function_env_encryption=kms_key,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=waiter_logs, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )

        properties: dict[str, object] = {
            "DomainId": domain_id,
            "Scope": "domain" if domain_scope else "user-profiles",
            "HomeEfsOnDelete": home_efs_on_delete,
        }
        if domain_scope:
            if delete_domain:
                properties["VpcId"] = vpc_id
        else:
            properties["UserProfileNames"] = [profile.user_profile_name for profile in user_profiles]
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            service_timeout=Duration.minutes(60),
        )
        # Deleted before what it covers: each profile gets an explicit DependsOn; the domain of the same
        # stack is already a dependency through the DomainId property (Fn::GetAtt), which orders
        # creation and deletion alike (a DependsOn on top would be redundant, cfn-lint W3005).
        for profile in user_profiles or ():
            self.resource.node.add_dependency(profile)

    def _grant_teardown(
        self, stack: Stack, domain_id: str, *, domain_scope: bool, delete_domain: bool, vpc_id: str | None
    ) -> None:
        function = self.is_complete_function
        resource_name_prefix = self.resource_name_prefix
        list_actions = ["sagemaker:ListApps", "sagemaker:ListSpaces"]
        if domain_scope:
            list_actions.append("sagemaker:ListUserProfiles")
        function.add_to_role_policy(
            iam.PolicyStatement(sid="ListStudioResources", actions=list_actions, resources=["*"])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteDomainApps",
                actions=["sagemaker:DeleteApp"],
                resources=[stack.format_arn(service="sagemaker", resource="app", resource_name=f"{domain_id}/{resource_name_prefix}*")],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteDomainSpaces",
                actions=["sagemaker:DeleteSpace"],
                resources=[stack.format_arn(service="sagemaker", resource="space", resource_name=f"{domain_id}/{resource_name_prefix}*")],
            )
        )
        if domain_scope:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="DeleteLeftoverProfiles",
                    actions=["sagemaker:DeleteUserProfile"],
                    resources=[
                        stack.format_arn(service="sagemaker", resource="user-profile", resource_name=f"{domain_id}/*")
                    ],
                )
            )
        if not delete_domain:
            return
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteDomainWithHomeVolume",
                actions=["sagemaker:DescribeDomain", "sagemaker:DeleteDomain"],
                resources=[self.domain_arn],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(sid="FindNfsSecurityGroups", actions=["ec2:DescribeSecurityGroups"], resources=["*"])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DeleteDomainNfsSecurityGroups",
                actions=[
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:DeleteSecurityGroup",
                ],
                resources=[stack.format_arn(service="ec2", resource="security-group", resource_name="*")],
                conditions={
                    "ArnEquals": {"ec2:Vpc": stack.format_arn(service="ec2", resource="vpc", resource_name=vpc_id)},
                    "StringEquals": {f"aws:ResourceTag/{SAGEMAKER_TAG}": self.domain_arn},
                },
            )
        )
