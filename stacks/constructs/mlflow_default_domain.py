"""The Studio domain's default MLflow App: ``Custom::MlflowDefaultDomain`` in the chosen team's stack.

SageMaker's ``DefaultDomainIdList`` of an MLflow App has no CloudFormation property, so this custom
resource (CDK Provider framework, handler ``lambdas/mlflow_default_domain``) adds the domain id to the
App's list with UpdateMlflowApp on Create, moves it on an Update that changes the App or the domain,
and takes out only its own id on Delete (ids already in the list are kept). Its function may only
describe and update that one App (the Service Authorization Reference lists only the ``mlflow-app``
resource type for both actions; the domain ids in the list are not authorized on the domain).
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.constructs.lambda_function import encrypted_provider, platform_function

RESOURCE_TYPE = "Custom::MlflowDefaultDomain"
ON_EVENT_HANDLER = "mlflow_default_domain.handler.on_event"
APP_ACTIONS = ("sagemaker:DescribeMlflowApp", "sagemaker:UpdateMlflowApp")


class MlflowDefaultDomain(Construct):
    """Make ``app`` the default MLflow App of the Studio domain ``domain_id``.

    ``kms_key`` (the platform key) encrypts the function's and the Provider framework's log groups and
    environments. ``resource`` is the custom resource; it depends on the App through its ARN property.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, app: sagemaker.CfnMlflowApp, domain_id: str, kms_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.app_arn = app.attr_arn
        self.domain_id = domain_id
        self.on_event_function = platform_function(
            self,
            "OnEvent",
            handler=ON_EVENT_HANDLER,
            description="MLflow default domain: keeps the Studio domain in the team's MLflow App's DefaultDomainIdList",
            kms_key=kms_key,
            timeout=Duration.seconds(60),
        )
        self.on_event_function.add_to_role_policy(
            iam.PolicyStatement(sid="DescribeAndUpdateTheApp", actions=list(APP_ACTIONS), resources=[self.app_arn])
        )
        self.provider = encrypted_provider(self, self.on_event_function, kms_key, role_id="ProviderOnEventRole",
                                           description="Provider framework onEvent function of the MLflow default domain")
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={"MlflowAppArn": self.app_arn, "DomainId": domain_id},
            service_timeout=Duration.minutes(10),
        )
