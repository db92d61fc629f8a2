"""SageMaker EventBridge events in the shapes of the examples in the SageMaker developer guide."""

from __future__ import annotations

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"


def model_package_state_change(
    group: str, version: int, status: str, *, region: str, account: str, event_id: str | None = None
) -> dict:
    """A version of `group` whose approval status changed to `status`."""
    arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"
    return {
        "version": "0",
        "id": event_id or f"844e2571-85d4-695f-b930-0153b71dc{version:03d}",
        "detail-type": MODEL_PACKAGE_STATE_CHANGE,
        "source": "aws.sagemaker",
        "account": account,
        "time": "2021-02-24T17:00:14Z",
        "region": region,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "CreationTime": "2021-02-24T17:00:14Z",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": "257758044811.dkr.ecr.us-east-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3",
                        "ModelDataUrl": f"s3://bucket/models/{version}/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": False,
            "ModelApprovalStatus": status,
            "LastModifiedTime": "2021-02-24T17:00:14Z",
        },
    }


def endpoint_state_change(endpoint: str, status: str, *, region: str, account: str, **detail) -> dict:
    """`endpoint` reached `status`; `detail` adds or overrides fields of the event's detail."""
    arn = f"arn:aws:sagemaker:{region}:{account}:endpoint/{endpoint}"
    return {
        "version": "0",
        "id": "d2921b5a-b0ad-cace-a8e3-0f159d018e06",
        "detail-type": ENDPOINT_STATE_CHANGE,
        "source": "aws.sagemaker",
        "account": account,
        "time": "1583831889050",
        "region": region,
        "resources": [arn],
        "detail": {
            "EndpointName": endpoint,
            "EndpointArn": arn,
            "EndpointConfigName": "MyEndpointConfig",
            "ProductionVariants": [{"DesiredWeight": 1.0, "DesiredInstanceCount": 1.0}],
            "EndpointStatus": status,
            "CreationTime": 1592411992203.0,
            "LastModifiedTime": 1592411994287.0,
            "Tags": {},
            **detail,
        },
    }
