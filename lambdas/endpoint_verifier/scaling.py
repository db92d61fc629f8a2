"""Keep an InService endpoint's autoscaling as its use case's config says.

One scalable target per endpoint (its single variant, whose name stays the same through blue/green
updates), one target-tracking policy on ``SageMakerVariantInvocationsPerInstance`` and one scheduled
action per configured floor. Every write is preceded by a read and made only when what is registered
differs, so the verifier can call `ensure_scaling` on every InService event: after a deploy, after a
rollback, and after the restore command recreated an endpoint the reaper deleted (the reaper
deregisters the target, which removes its policy and scheduled actions with it).

The limits of a target that exists are not the verifier's: a scheduled floor raises MinCapacity when its
schedule runs and holds it until another floor's schedule sets a new one, and an operator may change
MinCapacity, MaxCapacity or SuspendedState. A new target (first registration, or after the reaper or the
deploy Lambda deregistered it) gets the config's limits. An existing one is re-registered only when the
config's limits changed since the verifier last brought the target to them, which it records on the
endpoint (tag ``mlops:scaling-limits``, ``<min>-<max>``), and then only with the limit that changed
(RegisterScalableTarget leaves unspecified parameters as they are): a floor in effect, an operator's
change and the suspended state are never overwritten by a registration that the config did not ask for.
Without a record (a target registered before the record existed) the verifier records the config's limits
and writes nothing to the target.

A use case without autoscaling is left alone: whatever someone registered by hand stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common import tags
from common.autoscaling import DIMENSION, NAMESPACE, variant_resource_id
from deploy_on_approval.endpoint_spec import VARIANT_NAME

METRIC = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint: str) -> str:
    """The id of the endpoint's one variant (the platform's endpoints have no other)."""
    return variant_resource_id(endpoint, VARIANT_NAME)


def policy_name(endpoint: str) -> str:
    """The target-tracking policy the platform owns on the endpoint's target."""
    return f"{endpoint}-invocations-per-instance"


def floor_action_name(endpoint: str, floor: str) -> str:
    return f"{endpoint}-floor-{floor}"


@dataclass(frozen=True)
class Floor:
    name: str
    schedule: str
    min_instances: int


@dataclass(frozen=True)
class ScalingSettings:
    """A use case's ``endpoint.autoscaling`` section, as the construct writes it into ``USE_CASES``."""

    min_instances: int
    max_instances: int
    target_invocations_per_instance: int
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int
    floors: tuple[Floor, ...] = ()

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ScalingSettings | None:
        """None when the section is absent or not enabled."""
        if not section or not section.get("enabled"):
            return None
        return cls(
            min_instances=int(section["min_instances"]),
            max_instances=int(section["max_instances"]),
            target_invocations_per_instance=int(section["target_invocations_per_instance"]),
            scale_in_cooldown_seconds=int(section["scale_in_cooldown_seconds"]),
            scale_out_cooldown_seconds=int(section["scale_out_cooldown_seconds"]),
            floors=tuple(
                Floor(str(f["name"]), str(f["schedule"]), int(f["min_instances"]))
                for f in section.get("scheduled_floors", [])
            ),
        )


def target_request(endpoint: str, settings: ScalingSettings, team: str, prefix: str) -> dict[str, Any]:
    """The RegisterScalableTarget request of a new target: the config's limits, tagged with its team (which
    scopes the team's permissions to its own targets)."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": DIMENSION,
        "MinCapacity": settings.min_instances,
        "MaxCapacity": settings.max_instances,
        "Tags": {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.TEAM: team, tags.PLATFORM: prefix},
    }


def policy_request(endpoint: str, settings: ScalingSettings) -> dict[str, Any]:
    return {
        "PolicyName": policy_name(endpoint),
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(settings.target_invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": settings.scale_in_cooldown_seconds,
            "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
        },
    }


def floor_requests(endpoint: str, settings: ScalingSettings) -> list[dict[str, Any]]:
    return [
        {
            "ServiceNamespace": NAMESPACE,
            "ScheduledActionName": floor_action_name(endpoint, floor.name),
            "ResourceId": resource_id(endpoint),
            "ScalableDimension": DIMENSION,
            "Schedule": floor.schedule,
            "Timezone": "UTC",
            "ScalableTargetAction": {"MinCapacity": floor.min_instances, "MaxCapacity": settings.max_instances},
        }
        for floor in settings.floors
    ]


def _registered_target(autoscaling: Any, endpoint: str) -> dict | None:
    response = autoscaling.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(endpoint)], ScalableDimension=DIMENSION
    )
    found = response.get("ScalableTargets", [])
    return found[0] if found else None


def _registered_policy(autoscaling: Any, endpoint: str) -> dict | None:
    response = autoscaling.describe_scaling_policies(
        ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint), ScalableDimension=DIMENSION,
        PolicyNames=[policy_name(endpoint)],
    )
    found = response.get("ScalingPolicies", [])
    return found[0] if found else None


def _registered_floors(autoscaling: Any, endpoint: str) -> dict[str, dict]:
    """The endpoint's scheduled actions the platform owns (by name), paginated."""
    request: dict[str, Any] = {
        "ServiceNamespace": NAMESPACE, "ResourceId": resource_id(endpoint), "ScalableDimension": DIMENSION,
    }
    own = floor_action_name(endpoint, "")
    found: dict[str, dict] = {}
    while True:
        response = autoscaling.describe_scheduled_actions(**request)
        for action in response.get("ScheduledActions", []):
            if action["ScheduledActionName"].startswith(own):
                found[action["ScheduledActionName"]] = action
        if not response.get("NextToken"):
            return found
        request["NextToken"] = response["NextToken"]


def _policy_matches(registered: dict | None, wanted: dict) -> bool:
    if registered is None or registered.get("PolicyType") != wanted["PolicyType"]:
        return False
    have = registered.get("TargetTrackingScalingPolicyConfiguration", {})
    want = wanted["TargetTrackingScalingPolicyConfiguration"]
    return (
        float(have.get("TargetValue", -1)) == want["TargetValue"]
        and have.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType") == METRIC
        and have.get("ScaleInCooldown") == want["ScaleInCooldown"]
        and have.get("ScaleOutCooldown") == want["ScaleOutCooldown"]
    )


def _floor_matches(registered: dict | None, wanted: dict) -> bool:
    if registered is None:
        return False
    action = registered.get("ScalableTargetAction", {})
    return (
        registered.get("Schedule") == wanted["Schedule"]
        and (registered.get("Timezone") or "UTC") == wanted["Timezone"]
        and action.get("MinCapacity") == wanted["ScalableTargetAction"]["MinCapacity"]
        and action.get("MaxCapacity") == wanted["ScalableTargetAction"]["MaxCapacity"]
    )


def limits_record(settings: ScalingSettings) -> str:
    """The record of the config's limits, e.g. ``2-6``."""
    return f"{settings.min_instances}-{settings.max_instances}"


def _recorded(text: str | None) -> tuple[int, int] | None:
    low, _, high = (text or "").partition("-")
    return (int(low), int(high)) if low.isdigit() and high.isdigit() else None


def limit_update(endpoint: str, settings: ScalingSettings, target: dict, recorded: tuple[int, int]) -> dict | None:
    """The RegisterScalableTarget request that brings an existing target to the config's changed limits: only
    the limit that differs from the `recorded` one (the other stays as a floor or an operator set it, unless
    the new limit would cross it); None when neither changed."""
    request: dict[str, Any] = {}
    if settings.min_instances != recorded[0]:
        request["MinCapacity"] = settings.min_instances
    if settings.max_instances != recorded[1]:
        request["MaxCapacity"] = settings.max_instances
    if not request:
        return None
    if "MinCapacity" not in request and settings.max_instances < int(target.get("MinCapacity", 0)):
        request["MinCapacity"] = settings.min_instances
    if "MaxCapacity" not in request and settings.min_instances > int(target.get("MaxCapacity", settings.max_instances)):
        request["MaxCapacity"] = settings.max_instances
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(endpoint), "ScalableDimension": DIMENSION,
            **request}


def ensure_scaling(
    autoscaling: Any,
    endpoint: str,
    settings: ScalingSettings | None,
    *,
    team: str,
    prefix: str,
    recorded_limits: str | None = None,
    record_limits: Callable[[str], None] | None = None,
) -> list[str]:
    """Register the endpoint's target when it has none, bring an existing one to limits the config changed
    since `recorded_limits` (see the module docstring), and its policy and floors to `settings`; calls
    `record_limits` with the new record when it differs from `recorded_limits`. Returns what was written to
    the target (empty: nothing)."""
    if settings is None:
        return []
    changed: list[str] = []
    target = _registered_target(autoscaling, endpoint)
    if target is None:
        autoscaling.register_scalable_target(**target_request(endpoint, settings, team, prefix))
        changed.append(f"target {settings.min_instances}-{settings.max_instances}")
    else:
        recorded = _recorded(recorded_limits)
        update = limit_update(endpoint, settings, target, recorded) if recorded else None
        if update is not None:
            autoscaling.register_scalable_target(**update)
            changed.append("target " + ", ".join(f"{k} {v}" for k, v in update.items() if k.endswith("Capacity")))
    if record_limits is not None and recorded_limits != limits_record(settings):
        record_limits(limits_record(settings))
    wanted_policy = policy_request(endpoint, settings)
    if not _policy_matches(_registered_policy(autoscaling, endpoint), wanted_policy):
        autoscaling.put_scaling_policy(**wanted_policy)
        changed.append(f"policy {wanted_policy['PolicyName']}")
    registered = _registered_floors(autoscaling, endpoint)
    wanted_floors = {r["ScheduledActionName"]: r for r in floor_requests(endpoint, settings)}
    for name, request in wanted_floors.items():
        if not _floor_matches(registered.get(name), request):
            autoscaling.put_scheduled_action(**request)
            changed.append(f"floor {name}")
    for name in sorted(set(registered) - set(wanted_floors)):
        autoscaling.delete_scheduled_action(
            ServiceNamespace=NAMESPACE, ScheduledActionName=name, ResourceId=resource_id(endpoint),
            ScalableDimension=DIMENSION,
        )
        changed.append(f"removed floor {name}")
    return changed
