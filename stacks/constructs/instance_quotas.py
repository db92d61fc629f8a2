"""SageMaker instance-quota increase requests as custom resources (CloudFormation has no Service Quotas type).

One ``Custom::SageMakerInstanceQuota`` per configured quota, all served by one Lambda
(`lambdas/instance_quotas`) through the CDK Provider framework. Each resource exposes the quota's
code, applied value, request id and status as attributes and as one stack output. Deploying again
never opens a second request; deleting the stack leaves quotas as they are.
"""

from __future__ import annotations

import re
from typing import Sequence

from aws_cdk import Aws, CfnOutput, CustomResource, Duration, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import QuotaRequest
from stacks.constructs.lambda_function import encrypted_provider, platform_function

RESOURCE_TYPE = "Custom::SageMakerInstanceQuota"
HANDLER = "instance_quotas.handler.handler"
# Service Quotas actions the handler calls. The Service Authorization Reference lists no required
# resource type for any of them, so IAM authorizes them on `*`. Only RequestServiceQuotaIncrease is
# limited to SageMaker: the reference lists the `servicequotas:service` condition key for it, and for
# none of the reads (a condition on a key the action does not carry never matches, so the read would
# be denied); the reads reveal quota values only.
UNSCOPED_READ_ACTIONS = [
    "servicequotas:ListAWSDefaultServiceQuotas",
    "servicequotas:ListServiceQuotas",
    "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
    "servicequotas:GetAWSDefaultServiceQuota",
    "servicequotas:GetServiceQuota",
]
QUOTA_ACTIONS = ["servicequotas:RequestServiceQuotaIncrease"]
QUOTA_SERVICE_CODE = "sagemaker"
SERVICE_QUOTAS_PRINCIPAL = "servicequotas.amazonaws.com"


def quota_construct_id(quota: QuotaRequest) -> str:
    """CamelCase id from instance type and usage, e.g. ``MlM54xlargeProcessing`` (unique per config)."""
    words = re.split(r"[^A-Za-z0-9]+", f"{quota.instance_type} {quota.usage.value}")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


class InstanceQuotaRequests(Construct):
    """Raise each configured SageMaker instance quota to its desired value (requests, never lowers).

    ``requests`` maps ``(instance_type, usage)`` to its custom resource; ``outputs`` to its CfnOutput.
    Resources are created one after another so that their Lambdas do not throttle each other.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, quotas: Sequence[QuotaRequest], kms_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.requests: dict[tuple[str, str], CustomResource] = {}
        self.outputs: dict[tuple[str, str], CfnOutput] = {}
        self.function = None
        self.provider = None
        if not quotas:
            return

        self.function = platform_function(
            self,
            "Handler",
            handler=HANDLER,
            description="Requests SageMaker instance quota increases (custom resource; never lowers a quota)",
            kms_key=kms_key,
            timeout=Duration.minutes(5),
        )
        self._grant_service_quotas(self.function)

        self.provider = encrypted_provider(self, self.function, kms_key, role_id="ProviderRole",
                                           description="Provider framework of the instance-quota custom resources")

        previous: CustomResource | None = None
        for quota in quotas:
            key = (quota.instance_type, quota.usage.value)
            resource_id = quota_construct_id(quota)
            resource = CustomResource(
                self,
                resource_id,
                service_token=self.provider.service_token,
                resource_type=RESOURCE_TYPE,
                properties={
                    "InstanceType": quota.instance_type,
                    "Usage": quota.usage.value,
                    "DesiredValue": str(quota.desired),
                },
            )
            if previous is not None:
                resource.node.add_dependency(previous)
            previous = resource
            self.requests[key] = resource
            self.outputs[key] = CfnOutput(
                self,
                f"{resource_id}Quota",
                description=f"SageMaker quota {quota.instance_type} for {quota.usage.value}: code, applied value, "
                "desired value, status and increase request",
                value=Fn.join(
                    "",
                    [
                        resource.get_att_string("QuotaCode"),
                        " applied=",
                        resource.get_att_string("AppliedValue"),
                        " desired=",
                        resource.get_att_string("DesiredValue"),
                        " status=",
                        resource.get_att_string("Status"),
                        " request=",
                        resource.get_att_string("RequestId"),
                        " (",
                        resource.get_att_string("RequestStatus"),
                        ")",
                    ],
                ),
            )

    def _grant_service_quotas(self, function) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadSageMakerQuotas",
                actions=UNSCOPED_READ_ACTIONS,
                resources=["*"],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RaiseSageMakerQuotas",
                actions=QUOTA_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"servicequotas:service": QUOTA_SERVICE_CODE}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="CreateServiceQuotasLinkedRole",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/{SERVICE_QUOTAS_PRINCIPAL}/"
                    "AWSServiceRoleForServiceQuotas"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": SERVICE_QUOTAS_PRINCIPAL}},
            )
        )
