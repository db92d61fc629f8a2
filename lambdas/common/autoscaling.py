"""The one kind of Application Auto Scaling target the platform touches: a SageMaker endpoint variant's
instance count. Standard library only (the reaper, the verifier and tools/restore_endpoint.py use it)."""

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def variant_resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's id for one endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"
