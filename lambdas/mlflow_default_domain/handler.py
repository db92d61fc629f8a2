"""onEvent handler of the ``Custom::MlflowDefaultDomain`` resource (CDK Provider framework).

Event: the CloudFormation custom-resource request, with ``ResourceProperties``
``{"MlflowAppArn": "arn:...:mlflow-app/...", "DomainId": "d-..."}``.

- Create: the domain id goes into the App's default-domain list (`logic.add_domain`).
- Update: the new pair is added; when the App or the domain changed, the old domain id is then
  taken out of the old App's list (`logic.remove_domain`).
- Delete: only this resource's domain id is taken out; a gone App or id is no error.

The physical id is stable (``mlflow-default-domain/<logical id>``), so an Update never makes
CloudFormation send a Delete for the old properties.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from common.clients import cached_client

from . import logic

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def _client(service: str) -> Any:
    """A boto3 client with standard retries, built on first use and reused across invocations."""
    return cached_client(service, logic.client_config())


def target(properties: dict[str, Any]) -> tuple[str, str]:
    """(App ARN, domain id) of the resource properties; ValueError names a missing one."""
    values = []
    for name in ("MlflowAppArn", "DomainId"):
        value = properties.get(name)
        if not value or not isinstance(value, str):
            raise ValueError(f"resource property {name} is required (a non-empty string), got {value!r}")
        values.append(value)
    return values[0], values[1]


def physical_resource_id(event: dict[str, Any]) -> str:
    return f"mlflow-default-domain/{event['LogicalResourceId']}"


def apply(event: dict[str, Any], sagemaker_factory: Callable[[], Any] = lambda: _client("sagemaker")) -> dict[str, Any]:
    """The onEvent step: keep the App's default-domain list in line with the resource."""
    request_type = event["RequestType"]
    if request_type == "Delete":
        app_arn, domain_id = target(event.get("ResourceProperties", {}))
        logic.remove_domain(sagemaker_factory(), app_arn, domain_id)
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request_type!r}")
    app_arn, domain_id = target(event.get("ResourceProperties", {}))
    sagemaker = sagemaker_factory()
    logic.add_domain(sagemaker, app_arn, domain_id)
    if request_type == "Create":
        return {"PhysicalResourceId": physical_resource_id(event)}
    old = event.get("OldResourceProperties") or {}
    old_app, old_domain = old.get("MlflowAppArn"), old.get("DomainId")
    if old_app and old_domain and (old_app, old_domain) != (app_arn, domain_id):
        logic.remove_domain(sagemaker, old_app, old_domain)
    return {"PhysicalResourceId": event["PhysicalResourceId"]}


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return apply(event)
