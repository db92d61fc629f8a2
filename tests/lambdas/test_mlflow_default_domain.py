"""The MLflow default-domain custom resource: botocore Stubber (moto has no MLflow Apps)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from mlflow_default_domain import handler, logic

ACCOUNT, REGION = "123456789012", "us-east-1"
APP = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-app/app-abc123def456"
OTHER_APP = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-app/app-0987zyx"
DOMAIN, OTHER_DOMAIN, THIRD_DOMAIN = "d-abc123def456", "d-other0domain1", "d-third0domain2"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlp-team-fraud/1a2b3c4d"


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def event(request_type: str, app: str = APP, domain: str = DOMAIN, **extra) -> dict:
    body = {
        "RequestType": request_type,
        "StackId": STACK_ID,
        "LogicalResourceId": "MlflowDefaultDomain3C9ACC3D",
        "ResourceType": "Custom::MlflowDefaultDomain",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:x", "MlflowAppArn": app, "DomainId": domain},
    }
    if request_type != "Create":
        body["PhysicalResourceId"] = "mlflow-default-domain/MlflowDefaultDomain3C9ACC3D"
    body.update(extra)
    return body


def describes(stubber: Stubber, app: str, domains: list[str] | None) -> None:
    if domains is None:
        stubber.add_client_error("describe_mlflow_app", "ResourceNotFound", expected_params={"Arn": app})
        return
    stubber.add_response("describe_mlflow_app", {"Arn": app, "DefaultDomainIdList": domains}, {"Arn": app})


def updates(stubber: Stubber, app: str, domains: list[str]) -> None:
    stubber.add_response("update_mlflow_app", {"Arn": app}, {"Arn": app, "DefaultDomainIdList": domains})


def run(client, body: dict) -> dict:
    return handler.apply(body, sagemaker_factory=lambda: client)


def test_create_adds_the_domain(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [])
    updates(stubber, APP, [DOMAIN])
    assert run(client, event("Create")) == {"PhysicalResourceId": "mlflow-default-domain/MlflowDefaultDomain3C9ACC3D"}


def test_create_keeps_the_domains_already_there(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [OTHER_DOMAIN, THIRD_DOMAIN])
    updates(stubber, APP, [OTHER_DOMAIN, THIRD_DOMAIN, DOMAIN])
    run(client, event("Create"))


def test_create_again_makes_no_update_call(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [OTHER_DOMAIN, DOMAIN])
    run(client, event("Create"))  # the Stubber fails on any call not queued: no UpdateMlflowApp


def test_create_fails_when_the_app_does_not_exist(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, None)
    with pytest.raises(Exception, match="ResourceNotFound"):
        run(client, event("Create"))


def test_update_with_another_domain_moves_it_and_keeps_the_others(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [DOMAIN, THIRD_DOMAIN])
    updates(stubber, APP, [DOMAIN, THIRD_DOMAIN, OTHER_DOMAIN])
    describes(stubber, APP, [DOMAIN, THIRD_DOMAIN, OTHER_DOMAIN])
    updates(stubber, APP, [THIRD_DOMAIN, OTHER_DOMAIN])
    old = {"MlflowAppArn": APP, "DomainId": DOMAIN}
    result = run(client, event("Update", domain=OTHER_DOMAIN, OldResourceProperties=old))
    assert result["PhysicalResourceId"] == "mlflow-default-domain/MlflowDefaultDomain3C9ACC3D"


def test_update_with_another_app_removes_the_domain_from_the_old_app(sagemaker):
    client, stubber = sagemaker
    describes(stubber, OTHER_APP, [])
    updates(stubber, OTHER_APP, [DOMAIN])
    describes(stubber, APP, [THIRD_DOMAIN, DOMAIN])
    updates(stubber, APP, [THIRD_DOMAIN])
    run(client, event("Update", app=OTHER_APP, OldResourceProperties={"MlflowAppArn": APP, "DomainId": DOMAIN}))


def test_update_with_the_same_properties_makes_no_update_call(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [DOMAIN])
    run(client, event("Update", OldResourceProperties={"MlflowAppArn": APP, "DomainId": DOMAIN}))


def test_delete_removes_only_its_domain(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [OTHER_DOMAIN, DOMAIN, THIRD_DOMAIN])
    updates(stubber, APP, [OTHER_DOMAIN, THIRD_DOMAIN])
    assert run(client, event("Delete"))["PhysicalResourceId"] == "mlflow-default-domain/MlflowDefaultDomain3C9ACC3D"


def test_delete_when_the_app_is_gone_does_nothing(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, None)
    run(client, event("Delete"))


def test_delete_when_the_domain_is_no_longer_listed_does_nothing(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [OTHER_DOMAIN])
    run(client, event("Delete"))


def test_delete_when_the_app_goes_between_describe_and_update(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [DOMAIN])
    stubber.add_client_error("update_mlflow_app", "ResourceNotFound")
    assert logic.remove_domain(client, APP, DOMAIN) is False


def test_other_errors_are_raised(sagemaker):
    client, stubber = sagemaker
    describes(stubber, APP, [])
    stubber.add_client_error("update_mlflow_app", "ConflictException")
    with pytest.raises(Exception, match="ConflictException"):
        run(client, event("Create"))


@pytest.mark.parametrize("missing", ["MlflowAppArn", "DomainId"])
def test_missing_property_is_named(missing):
    body = event("Create")
    del body["ResourceProperties"][missing]
    with pytest.raises(ValueError, match=missing):
        handler.apply(body, sagemaker_factory=lambda: pytest.fail("no client needed"))


def test_unknown_request_type_is_rejected():
    with pytest.raises(ValueError, match="Bogus"):
        handler.apply(event("Bogus"), sagemaker_factory=lambda: pytest.fail("no client needed"))
