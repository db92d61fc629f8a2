"""onEvent and isComplete handlers of the ``Custom::StudioTeardown`` resource (CDK Provider framework).

Event: the CloudFormation custom-resource request, with ``ResourceProperties``:
``{"DomainId": "d-...", "Scope": "domain" | "user-profiles", "UserProfileNames": [...],
"HomeEfsOnDelete": "retain" | "delete", "VpcId": "vpc-..."}`` (``UserProfileNames`` only for the
user-profile scope, ``VpcId`` only when the home EFS volume is deleted).

`on_event`: Create and Update do nothing and return a stable physical id. Delete decides whether to
tear down: only while CloudFormation deletes the stack (``DELETE_IN_PROGRESS``) or rolls back its
creation (``ROLLBACK_IN_PROGRESS``). When the resource merely leaves the template in an update,
the domain and profiles stay, so their apps and spaces are left alone. The decision and the start
time go to isComplete in ``Data``.

`is_complete`: one teardown pass per call (`logic.teardown_step`); complete when nothing remains.
Past ``TEARDOWN_DEADLINE_SECONDS`` after the start it fails with a message naming what is still
there (before the Provider framework's own total timeout, whose message says only "timed out").
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from common.clients import cached_client

from . import logic

logger = logging.getLogger()
logger.setLevel(logging.INFO)

DEADLINE_ENV = "TEARDOWN_DEADLINE_SECONDS"
DEFAULT_DEADLINE_SECONDS = 40 * 60
RUN = "run"
SKIP = "skip"
TEARDOWN_STACK_STATUSES = frozenset({"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})
# The failure reason goes into CloudFormation's 4 KB response: name at most this many leftovers.
MAX_LISTED = 10
DOMAIN_SCOPE = "domain"
PROFILE_SCOPE = "user-profiles"


class TeardownTimedOut(Exception):
    """Apps, spaces, profiles, the domain or its security groups are still there at the deadline."""


def _client(service: str) -> Any:
    """A boto3 client with standard retries, built on first use and reused across invocations."""
    return cached_client(service, logic.client_config())


def target_from_properties(properties: dict[str, Any]) -> logic.TeardownTarget:
    """The teardown target the resource properties describe; ValueError names a bad property."""
    domain_id = properties.get("DomainId")
    if not domain_id:
        raise ValueError("resource property DomainId is required")
    scope = properties.get("Scope")
    if scope == DOMAIN_SCOPE:
        return logic.TeardownTarget(
            domain_id=domain_id,
            user_profiles=None,
            delete_home_efs=properties.get("HomeEfsOnDelete", "retain") == "delete",
            vpc_id=properties.get("VpcId") or None,
        )
    if scope == PROFILE_SCOPE:
        return logic.TeardownTarget(domain_id=domain_id, user_profiles=tuple(properties.get("UserProfileNames") or ()))
    raise ValueError(f"resource property Scope must be {DOMAIN_SCOPE!r} or {PROFILE_SCOPE!r}, got {scope!r}")


def physical_resource_id(event: dict[str, Any]) -> str:
    """Stable id: the same for every Create retry of the same resource."""
    domain_id = event.get("ResourceProperties", {}).get("DomainId", "unknown-domain")
    return f"studio-teardown/{domain_id}/{event['LogicalResourceId']}"


def stack_status(cloudformation: Any, stack_id: str) -> str:
    return cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]


def decide(
    event: dict[str, Any],
    cloudformation_factory: Callable[[], Any] = lambda: _client("cloudformation"),
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The onEvent step: nothing on Create/Update; on Delete, whether to tear down and since when."""
    request_type = event["RequestType"]
    target_from_properties(event.get("ResourceProperties", {}))
    if request_type == "Create":
        return {"PhysicalResourceId": physical_resource_id(event)}
    if request_type == "Update":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request_type != "Delete":
        raise ValueError(f"unknown RequestType {request_type!r}")
    status = stack_status(cloudformation_factory(), event["StackId"])
    teardown = RUN if status in TEARDOWN_STACK_STATUSES else SKIP
    logger.info("teardown decision", extra={"teardown": teardown, "stack_status": status})
    return {
        "PhysicalResourceId": event["PhysicalResourceId"],
        "Data": {"Teardown": teardown, "StackStatus": status, "StartedAt": str(int(now()))},
    }


def deadline_seconds() -> int:
    return int(os.environ.get(DEADLINE_ENV, DEFAULT_DEADLINE_SECONDS))


def check(
    event: dict[str, Any],
    sagemaker_factory: Callable[[], Any] = lambda: _client("sagemaker"),
    ec2_factory: Callable[[], Any] = lambda: _client("ec2"),
    now: Callable[[], float] = time.time,
    deadline: int | None = None,
) -> dict[str, Any]:
    """The isComplete step: one teardown pass; ``IsComplete`` only when nothing is left."""
    data = event.get("Data") or {}
    if event["RequestType"] != "Delete" or data.get("Teardown") != RUN:
        return {"IsComplete": True}
    target = target_from_properties(event["ResourceProperties"])
    ec2 = ec2_factory() if target.delete_home_efs else None
    result = logic.teardown_step(sagemaker_factory(), ec2, target)
    logger.info(
        "teardown pass",
        extra={"target": target.describe(), "actions": result.actions, "remaining": result.remaining},
    )
    if result.done:
        return {"IsComplete": True}
    elapsed = now() - float(data.get("StartedAt", now()))
    limit = deadline if deadline is not None else deadline_seconds()
    if elapsed >= limit:
        shown = result.remaining[:MAX_LISTED]
        more = len(result.remaining) - len(shown)
        raise TeardownTimedOut(
            f"teardown of {target.describe()} did not finish within {limit // 60} minutes; still there: "
            + "; ".join(shown)
            + (f"; and {more} more (see the function's log)" if more else "")
            + ". Delete these in the SageMaker console (or wait until they are gone), then delete the stack again."
        )
    return {"IsComplete": False}


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return decide(event)


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return check(event)
