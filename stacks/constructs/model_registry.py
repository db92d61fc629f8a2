"""Where a team's model registry lives, and the ARNs of its groups and versions there.

The serving side (deploy automation, the verifier's baseline reads) names the registry through
`registry_arn` only. Without a location it is the stack's own account and region, rendered as the stack's
tokens, exactly as ``Stack.format_arn`` renders them; a stage account serving from another account's
registry gives that account (and region).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from constructs import Construct


@dataclass(frozen=True)
class RegistryLocation:
    """The account and region of the model registry; None: the stack's own."""

    account: str | None = None
    region: str | None = None


SAME_STACK = RegistryLocation()


def registry_arn(scope: Construct, resource: str, location: RegistryLocation = SAME_STACK) -> str:
    """ARN of the registry resource ``model-package-group/<group>`` or ``model-package/<group>/<version>``."""
    if not resource.startswith(("model-package-group/", "model-package/")):
        raise ValueError(f"{resource!r} is not a model registry resource (model-package-group/... or model-package/...)")
    return Stack.of(scope).format_arn(service="sagemaker", resource=resource, account=location.account,
                                      region=location.region)
