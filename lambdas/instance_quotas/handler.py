"""onEvent handler of the ``Custom::SageMakerInstanceQuota`` resource (CDK Provider framework).

Event: the CloudFormation custom-resource request as the Provider framework passes it, with
``ResourceProperties`` = ``{"InstanceType": "ml.m5.large", "Usage": "endpoint", "DesiredValue": "4"}``
(``Usage`` is a `QuotaUsage` value; CloudFormation sends every property as a string).

Create and Update: request an increase when needed (see `logic`), return the quota's state as
attributes (QuotaName, QuotaCode, DesiredValue, AppliedValue, RequestId, RequestStatus, Status,
Message). Running them again never opens a second request. Delete: nothing, no AWS call.
A quota name that does not exist fails the deployment with a message naming it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from common.clients import cached_client

from . import logic

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def service_quotas_client() -> Any:
    """A Service Quotas client that retries throttled calls (`logic.RETRY_CONFIG`), reused across invocations."""
    return cached_client("service-quotas", logic.client_config())


def physical_resource_id(instance_type: str, usage: str) -> str:
    """Stable id of the resource: the quota's name."""
    return logic.quota_name(instance_type, usage)


def parse_properties(properties: dict[str, Any]) -> tuple[str, str, int]:
    """(instance type, usage, desired value) from the resource properties; ValueError names a bad one."""
    try:
        instance_type = str(properties["InstanceType"])
        usage = str(properties["Usage"])
        raw_desired = properties["DesiredValue"]
    except KeyError as missing:
        raise ValueError(f"resource property {missing.args[0]} is required") from None
    try:
        desired = int(str(raw_desired))
    except ValueError:
        raise ValueError(f"DesiredValue must be a whole number, got {raw_desired!r}") from None
    if desired <= 0:
        raise ValueError(f"DesiredValue must be greater than 0, got {desired}")
    logic.quota_name(instance_type, usage)
    return instance_type, usage, desired


def handle(event: dict[str, Any], client_factory: Callable[[], Any] = service_quotas_client) -> dict[str, Any]:
    """Process one custom-resource event; the client is built only for Create and Update."""
    request_type = event["RequestType"]
    if request_type == "Delete":
        logger.info("delete leaves quotas unchanged", extra={"physical_resource_id": event.get("PhysicalResourceId")})
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request_type!r}")
    instance_type, usage, desired = parse_properties(event.get("ResourceProperties", {}))
    outcome = logic.ensure(client_factory(), instance_type, usage, desired)
    logger.info("quota outcome", extra={"request_type": request_type, **outcome.as_attributes()})
    return {"PhysicalResourceId": physical_resource_id(instance_type, usage), "Data": outcome.as_attributes()}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event)
