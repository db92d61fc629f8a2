"""`<prefix>-network`: a VPC with isolated subnets and the endpoints Studio needs in VPC-only mode."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import ExistingNetwork, NewNetwork
from stacks.constructs.resource_policies import allow_cloudwatch_logs

# Interface endpoints Studio, jobs and endpoints need when nothing reaches the internet.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    # SageMaker MLflow (Apps and tracking servers): `aws.sagemaker.<region>.experiments`, listed for
    # Amazon SageMaker AI in the AWS PrivateLink guide, "AWS services that integrate with AWS PrivateLink"
    # ("aws.sagemaker.region.experiments"); CDK's SAGEMAKER_EXPERIMENTS is that service name.
    "SageMakerMlflow": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS,
}


@dataclass(frozen=True)
class NetworkRefs:
    """What the platform stack needs of the network, whichever way it was provided."""

    vpc_id: str
    subnet_ids: list[str]
    security_group_ids: list[str]


def existing_network_refs(network: ExistingNetwork) -> NetworkRefs:
    return NetworkRefs(network.vpc_id, list(network.subnet_ids), list(network.security_group_ids))


class NetworkStack(Stack):
    """Isolated subnets in two zones, no internet route, private-DNS interface endpoints and an S3 gateway."""

    def __init__(self, scope: Construct, construct_id: str, *, network: NewNetwork, **kwargs) -> None:
        self._configured_zones = list(network.availability_zones or [])
        super().__init__(scope, construct_id, **kwargs)

        # The platform key lives in the platform stack, which deploys after this one and imports the VPC,
        # so the flow logs get a key of their own.
        self.flow_logs_key = kms.Key(
            self,
            "FlowLogsKey",
            description="Encrypts the VPC flow logs of the SageMaker Studio network",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        allow_cloudwatch_logs(self.flow_logs_key)
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.flow_logs_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(network.cidr),
            availability_zones=self.availability_zones,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self._log_default_security_group_cleanup()
        self.studio_security_group = ec2.SecurityGroup(
            self,
            "StudioSecurityGroup",
            vpc=self.vpc,
            description="Studio apps, jobs and endpoints: talk to each other and to the VPC endpoints",
            allow_all_outbound=False,
        )
        self.studio_security_group.add_ingress_rule(
            self.studio_security_group, ec2.Port.all_traffic(), "Studio apps talk to each other (NFS, kernels)"
        )
        self.studio_security_group.add_egress_rule(
            self.studio_security_group, ec2.Port.all_traffic(), "Studio apps talk to each other (NFS, kernels)"
        )
        endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from Studio only",
            allow_all_outbound=False,
        )
        endpoint_security_group.add_ingress_rule(
            self.studio_security_group, ec2.Port.tcp(443), "HTTPS from Studio apps and jobs"
        )
        self.studio_security_group.add_egress_rule(
            endpoint_security_group, ec2.Port.tcp(443), "HTTPS to the VPC interface endpoints"
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                subnets=isolated,
                security_groups=[endpoint_security_group],
                open=False,
            )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[isolated])
        self.studio_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "HTTPS; isolated subnets route only to the VPC endpoints and the S3 gateway",
        )

        self.refs = NetworkRefs(
            vpc_id=self.vpc.vpc_id,
            subnet_ids=[s.subnet_id for s in self.vpc.isolated_subnets],
            security_group_ids=[self.studio_security_group.security_group_id],
        )

    def _log_default_security_group_cleanup(self) -> None:
        """Send the logs of CDK's handler that empties the VPC's default security group to a KMS log group.

        With ``@aws-cdk/aws-ec2:restrictDefaultSecurityGroup`` the VPC gets a custom resource removing the
        default group's rules; its provider offers no log group option, so ``LoggingConfig`` is set on it.
        """
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is None:
            return
        log_group = logs.LogGroup(
            self,
            "DefaultSecurityGroupCleanupLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.flow_logs_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        handler = provider.node.find_child("Handler")
        handler.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
        handler.node.add_dependency(log_group)

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones, else the region's first two resolved at deploy time (never a lookup)."""
        if self._configured_zones:
            return self._configured_zones
        return [Fn.select(0, Fn.get_azs()), Fn.select(1, Fn.get_azs())]

