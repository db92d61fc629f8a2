"""Deleting one idle endpoint so that it can be brought back with one command.

Per endpoint, in this order: write the restore record (SSM), deregister the autoscaling target of
each variant, delete the endpoint, delete its monitoring schedule (``drift-monitor`` in the schedule group
named after the endpoint; the endpoint verifier creates it again when the restored endpoint is InService).
The model and the endpoint config are left alone and nothing is untagged. A failure stops that endpoint's teardown at the failed step and is reported; it never
raises, so the other endpoints go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from common import autoscaling as autoscaling_target
from common import tags
from common.naming import MONITORING_SCHEDULE_NAME
from idle_endpoint_reaper.inventory import ManagedEndpoint
from idle_endpoint_reaper.restore_record import (
    RestoreRecord,
    ScalableTargetRecord,
    parameter_name,
)

AUTOSCALING_NAMESPACE = autoscaling_target.NAMESPACE
VARIANT_DIMENSION = autoscaling_target.DIMENSION
variant_resource_id = autoscaling_target.variant_resource_id
MAX_RESOURCE_IDS_PER_DESCRIBE = 50
OWNERSHIP_TAGS = (tags.MANAGED_BY, tags.PLATFORM, tags.TEAM)


@dataclass(frozen=True)
class TeardownResult:
    """What happened to one endpoint; ``error`` is ``None`` when it was deleted."""

    endpoint_name: str
    deregistered: tuple[str, ...]
    error: str | None
    schedule_deleted: bool = False
    schedule_error: str | None = None


def find_scalable_targets(
    autoscaling: Any, endpoints: Sequence[ManagedEndpoint]
) -> tuple[dict[str, list[ScalableTargetRecord]], dict[str, str]]:
    """Registered targets per endpoint name, and an error per endpoint whose targets could not be read.

    One DescribeScalableTargets call (paginated) per 50 variant resource ids.
    """
    owner = {variant_resource_id(e.name, v): e.name for e in endpoints for v in e.all_variants}
    targets: dict[str, list[ScalableTargetRecord]] = {e.name: [] for e in endpoints}
    errors: dict[str, str] = {}
    resource_ids = sorted(owner)
    for start in range(0, len(resource_ids), MAX_RESOURCE_IDS_PER_DESCRIBE):
        chunk = resource_ids[start : start + MAX_RESOURCE_IDS_PER_DESCRIBE]
        try:
            paginator = autoscaling.get_paginator("describe_scalable_targets")
            for page in paginator.paginate(
                ServiceNamespace=AUTOSCALING_NAMESPACE, ResourceIds=chunk, ScalableDimension=VARIANT_DIMENSION
            ):
                for target in page.get("ScalableTargets", []):
                    name = owner.get(target["ResourceId"])
                    if name is not None:
                        targets[name].append(
                            ScalableTargetRecord(
                                resource_id=target["ResourceId"],
                                min_capacity=int(target.get("MinCapacity", 0)),
                                max_capacity=int(target.get("MaxCapacity", 0)),
                            )
                        )
        except (BotoCoreError, ClientError) as exc:
            for resource_id in chunk:
                errors[owner[resource_id]] = f"DescribeScalableTargets failed: {exc}"
    return targets, errors


def write_restore_record(
    ssm: Any, endpoint: ManagedEndpoint, targets: Sequence[ScalableTargetRecord], now: datetime
) -> str:
    """Store the endpoint's restore record; returns the parameter name.

    A new record is created with the endpoint's ownership tags; a record left from an earlier teardown
    of the same name is overwritten (SSM does not accept tags together with an overwrite).
    """
    record = RestoreRecord(
        endpoint_name=endpoint.name,
        endpoint_config_name=endpoint.config_name,
        deleted_at=now.isoformat(),
        team=endpoint.team,
        tags=dict(endpoint.tags),
        scalable_targets=tuple(targets),
    )
    name = parameter_name(endpoint.name)
    value = record.to_json()
    description = f"How to restore SageMaker endpoint {endpoint.name} (deleted while idle)"
    ownership = [{"Key": k, "Value": endpoint.tags[k]} for k in OWNERSHIP_TAGS if endpoint.tags.get(k)]
    try:
        ssm.put_parameter(Name=name, Value=value, Type="String", Description=description, Tags=ownership)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ParameterAlreadyExists":
            raise
        ssm.put_parameter(Name=name, Value=value, Type="String", Description=description, Overwrite=True)
    return name


def tear_down(
    endpoint: ManagedEndpoint,
    targets: Sequence[ScalableTargetRecord],
    *,
    sagemaker: Any,
    autoscaling: Any,
    ssm: Any,
    now: datetime,
    scheduler: Any = None,
) -> TeardownResult:
    """Record, deregister, delete, unschedule. Never raises for an AWS error: it is returned in ``error`` (or in
    ``schedule_error`` when only the schedule outlived the endpoint)."""
    try:
        write_restore_record(ssm, endpoint, targets, now)
    except (BotoCoreError, ClientError, ValueError) as exc:
        return TeardownResult(endpoint.name, (), f"restore record not written, endpoint left alone: {exc}")
    deregistered: list[str] = []
    for target in targets:
        try:
            autoscaling.deregister_scalable_target(
                ServiceNamespace=AUTOSCALING_NAMESPACE,
                ResourceId=target.resource_id,
                ScalableDimension=VARIANT_DIMENSION,
            )
        except (BotoCoreError, ClientError) as exc:
            done = f" (already deregistered: {', '.join(deregistered)})" if deregistered else ""
            return TeardownResult(
                endpoint.name,
                tuple(deregistered),
                f"deregistering {target.resource_id} failed, endpoint not deleted{done}: {exc}",
            )
        deregistered.append(target.resource_id)
    try:
        sagemaker.delete_endpoint(EndpointName=endpoint.name)
    except (BotoCoreError, ClientError) as exc:
        lost = (
            f"; its autoscaling targets were already deregistered ({', '.join(deregistered)}): register them again"
            if deregistered
            else ""
        )
        return TeardownResult(endpoint.name, tuple(deregistered), f"DeleteEndpoint failed{lost}: {exc}")
    deleted, schedule_error = delete_monitoring_schedule(scheduler, endpoint.name)
    return TeardownResult(endpoint.name, tuple(deregistered), None, deleted, schedule_error)


def delete_monitoring_schedule(scheduler: Any, endpoint_name: str) -> tuple[bool, str | None]:
    """(deleted, error): an endpoint without monitoring has no schedule, which is no error."""
    if scheduler is None:
        return False, None
    try:
        scheduler.delete_schedule(Name=MONITORING_SCHEDULE_NAME, GroupName=endpoint_name)
        return True, None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False, None
        return False, f"its monitoring schedule {endpoint_name}/{MONITORING_SCHEDULE_NAME} was not deleted: {exc}"
    except BotoCoreError as exc:
        return False, f"its monitoring schedule {endpoint_name}/{MONITORING_SCHEDULE_NAME} was not deleted: {exc}"
