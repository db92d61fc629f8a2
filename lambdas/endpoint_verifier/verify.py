"""React to a "SageMaker Endpoint State Change" event of one of the team's endpoints.

- FAILED: alert the team.
- IN_SERVICE: bring the endpoint's autoscaling to its use case's config (`scaling`) and its monitoring
  schedule to the serving version (`monitoring`), then compare the
  config the endpoint serves with the one the deploy Lambda intended (its
  ``mlops:intended-endpoint-config`` tag). A difference means SageMaker rolled the update back: alert,
  and prune nothing. When they match, delete the endpoint's older configs and models beyond the newest
  K, but never one that any of the team's endpoints references (current or pending config, and the
  models in those), never one newer than the config being served (it may belong to a deploy in
  flight), and only ones tagged as managed by this platform for this team and this group.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from common import naming, tags

from .monitoring import ensure_schedule
from .scaling import ensure_scaling
from .settings import EndpointTarget, VerifierSettings

logger = logging.getLogger(__name__)

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Endpoint State Change"
IN_SERVICE = "INSERVICE"
FAILED = "FAILED"


class UnusableEvent(ValueError):
    """Malformed, or not an endpoint state change."""


@dataclass(frozen=True)
class EndpointStateChange:
    endpoint: str
    status: str
    failure_reason: str | None = None


@dataclass
class Report:
    """What the verifier did, logged as one structured line and returned by the handler."""

    action: str
    endpoint: str | None = None
    serving_config: str | None = None
    intended_config: str | None = None
    deleted_configs: list[str] = field(default_factory=list)
    deleted_models: list[str] = field(default_factory=list)
    scaling_changes: list[str] = field(default_factory=list)
    monitoring_changes: list[str] = field(default_factory=list)


def normalize_status(status: str) -> str:
    """'IN_SERVICE', 'InService' and 'in service' all become 'INSERVICE'."""
    return re.sub(r"[^A-Z]", "", status.upper())


def parse_event(event: Any) -> EndpointStateChange:
    if not isinstance(event, dict):
        raise UnusableEvent(f"event must be an object, got {type(event).__name__}")
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise UnusableEvent(
            f"not an endpoint state change (source {event.get('source')!r}, detail-type {event.get('detail-type')!r})"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise UnusableEvent("field 'detail' is missing or not an object")
    name, status = detail.get("EndpointName"), detail.get("EndpointStatus")
    if not isinstance(name, str) or not name or not isinstance(status, str) or not status:
        raise UnusableEvent("detail.EndpointName and detail.EndpointStatus must be non-empty strings")
    reason = detail.get("FailureReason")
    return EndpointStateChange(name, normalize_status(status), reason if isinstance(reason, str) else None)


def _is_missing(error: ClientError) -> bool:
    message = error.response.get("Error", {}).get("Message", "").lower()
    return error.response.get("Error", {}).get("Code") == "ValidationException" and (
        "could not find" in message or "not found" in message
    )


def _pages(call: Callable[..., dict], key: str, **request: Any) -> Iterator[dict]:
    while True:
        response = call(**request)
        yield from response.get(key, [])
        token = response.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def describe_endpoint(sagemaker: Any, name: str) -> dict | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


def tag_map(sagemaker: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in _pages(sagemaker.list_tags, "Tags", ResourceArn=arn)}


def is_owned(resource_tags: dict[str, str], config: VerifierSettings) -> bool:
    """Created by this platform's automation for this team."""
    return (
        resource_tags.get(tags.MANAGED_BY) == tags.MANAGED_BY_VALUE
        and resource_tags.get(tags.TEAM) == config.team
        and resource_tags.get(tags.PLATFORM) == config.prefix
    )


def group_of_package(package_arn: str) -> str:
    """``arn:...:model-package/<group>/<version>`` -> ``<group>`` (lower case, as SageMaker writes ARNs)."""
    resource = package_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1].lower() if len(parts) >= 3 else ""


def send_alert(sns: Any, topic_arn: str, subject: str, details: dict[str, Any]) -> None:
    sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(details, indent=2, default=str))


@dataclass(frozen=True)
class Candidate:
    name: str
    created: datetime


def managed_candidates(
    sagemaker: Any,
    config: VerifierSettings,
    target: EndpointTarget,
    *,
    list_call: Callable[..., dict],
    list_key: str,
    name_key: str,
    arn_key: str,
) -> list[Candidate]:
    """The endpoint's own configs or models (by name prefix, then by tags), newest first."""
    name_prefix = f"{target.endpoint}-v"
    found = []
    for item in _pages(list_call, list_key, NameContains=name_prefix):
        name = item[name_key]
        if not name.startswith(name_prefix):
            continue
        resource_tags = tag_map(sagemaker, item[arn_key])
        if not is_owned(resource_tags, config):
            continue
        if group_of_package(resource_tags.get(tags.MODEL_PACKAGE_ARN, "")) != target.group.lower():
            continue
        found.append(Candidate(name, item["CreationTime"]))
    return sorted(found, key=lambda c: c.created, reverse=True)


def referenced_configs(sagemaker: Any, config: VerifierSettings) -> set[str]:
    """Current and pending configs of every endpoint of the team."""
    team_prefix = naming.team_resource_prefix(config.prefix, config.team)
    names: set[str] = set()
    for summary in _pages(sagemaker.list_endpoints, "Endpoints", NameContains=team_prefix):
        if not summary["EndpointName"].startswith(team_prefix):
            continue
        endpoint = describe_endpoint(sagemaker, summary["EndpointName"])
        if endpoint is None:
            continue
        names.add(endpoint["EndpointConfigName"])
        pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if pending:
            names.add(pending)
    return names


def models_of_configs(sagemaker: Any, config_names: set[str]) -> set[str]:
    models: set[str] = set()
    for name in config_names:
        try:
            described = sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except ClientError as error:
            if _is_missing(error):
                continue
            raise
        models.update(v["ModelName"] for v in described.get("ProductionVariants", []))
    return models


def prune(sagemaker: Any, config: VerifierSettings, target: EndpointTarget, serving_config: str) -> Report:
    """Delete the endpoint's configs and models that are old, unreferenced and beyond the newest K."""
    report = Report("verified", target.endpoint, serving_config, serving_config)
    configs = managed_candidates(
        sagemaker, config, target,
        list_call=sagemaker.list_endpoint_configs, list_key="EndpointConfigs",
        name_key="EndpointConfigName", arn_key="EndpointConfigArn",
    )
    serving = next((c for c in configs if c.name == serving_config), None)
    if serving is None:
        logger.warning("serving config is not one of ours, nothing pruned", extra={"endpoint": target.endpoint})
        return report

    referenced = referenced_configs(sagemaker, config) | {serving_config}
    older = [c for c in configs if c.name not in referenced and c.created < serving.created]
    kept = older[: target.keep_previous_configs]
    for candidate in older[target.keep_previous_configs :]:
        _delete(sagemaker.delete_endpoint_config, EndpointConfigName=candidate.name)
        report.deleted_configs.append(candidate.name)

    surviving = referenced | {c.name for c in kept} | {c.name for c in configs if c.created >= serving.created}
    used_models = models_of_configs(sagemaker, surviving)
    models = managed_candidates(
        sagemaker, config, target,
        list_call=sagemaker.list_models, list_key="Models", name_key="ModelName", arn_key="ModelArn",
    )
    for candidate in models:
        if candidate.name not in used_models and candidate.created < serving.created:
            _delete(sagemaker.delete_model, ModelName=candidate.name)
            report.deleted_models.append(candidate.name)
    return report


def _delete(call: Callable[..., Any], **request: Any) -> None:
    try:
        call(**request)
    except ClientError as error:
        if not _is_missing(error):
            raise


def handle_state_change(
    sagemaker: Any, sns: Any, config: VerifierSettings, event: Any, autoscaling: Any = None, scheduler: Any = None
) -> Report:
    try:
        change = parse_event(event)
    except UnusableEvent as exc:
        logger.warning("ignored unusable event", extra={"action": "ignored", "reason": str(exc)})
        return Report("ignored")
    target = config.for_endpoint(change.endpoint)
    if target is None:
        return Report("ignored_foreign_endpoint", change.endpoint)

    if change.status == FAILED:
        endpoint = describe_endpoint(sagemaker, target.endpoint)
        reason = (endpoint or {}).get("FailureReason") or change.failure_reason
        send_alert(
            sns, config.alert_topic_arn, f"{target.endpoint}: endpoint FAILED",
            {
                "team": config.team,
                "endpoint": target.endpoint,
                "model_package_group": target.group,
                "endpoint_config": (endpoint or {}).get("EndpointConfigName"),
                "failure_reason": reason,
                "what_happens_next": "The next approval or rejection in the group deletes and recreates the endpoint.",
            },
        )
        return Report("alerted_failed", target.endpoint, (endpoint or {}).get("EndpointConfigName"))

    if change.status != IN_SERVICE:
        return Report("ignored_status", target.endpoint)

    endpoint = describe_endpoint(sagemaker, target.endpoint)
    if endpoint is None or endpoint["EndpointStatus"] != "InService":
        return Report("skipped_not_in_service_any_more", target.endpoint)
    serving = endpoint["EndpointConfigName"]
    endpoint_tags = tag_map(sagemaker, endpoint["EndpointArn"])
    if not is_owned(endpoint_tags, config):
        return Report("ignored_unmanaged_endpoint", target.endpoint, serving)
    scaling_changes = ensure_scaling(
        autoscaling, target.endpoint, target.scaling, team=config.team, prefix=config.prefix,
        recorded_limits=endpoint_tags.get(tags.SCALING_LIMITS),
        record_limits=lambda limits: record_scaling_limits(sagemaker, endpoint["EndpointArn"], limits),
    )
    monitoring_changes = []
    if target.monitoring is not None:
        monitoring_changes = ensure_schedule(scheduler, sagemaker, endpoint, serving_package(sagemaker, serving),
                                             target.monitoring)
    report = _verify_intended(sagemaker, sns, config, target, serving, endpoint_tags)
    report.scaling_changes = scaling_changes
    report.monitoring_changes = monitoring_changes
    return report


def record_scaling_limits(sagemaker: Any, endpoint_arn: str, limits: str) -> None:
    """Record on the endpoint the config's scaling limits its target was brought to (`scaling.limits_record`)."""
    sagemaker.add_tags(ResourceArn=endpoint_arn, Tags=[{"Key": tags.SCALING_LIMITS, "Value": limits}])


def serving_package(sagemaker: Any, config_name: str) -> str | None:
    """The model package ARN of the config the endpoint serves (its ownership tag; a rolled-back update
    leaves the endpoint's own tags naming the version that did not go live)."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    return tag_map(sagemaker, config["EndpointConfigArn"]).get(tags.MODEL_PACKAGE_ARN)


def _verify_intended(
    sagemaker: Any, sns: Any, config: VerifierSettings, target: EndpointTarget, serving: str,
    endpoint_tags: dict[str, str],
) -> Report:
    """Alert on a rolled-back update, else prune."""
    intended = endpoint_tags.get(tags.INTENDED_ENDPOINT_CONFIG)
    if intended is None:
        logger.warning("endpoint records no intended config, nothing pruned", extra={"endpoint": target.endpoint})
        return Report("skipped_no_intended_config", target.endpoint, serving)
    if intended != serving:
        send_alert(
            sns, config.alert_topic_arn, f"{target.endpoint}: update rolled back",
            {
                "team": config.team,
                "endpoint": target.endpoint,
                "model_package_group": target.group,
                "serving_config": serving,
                "intended_config": intended,
                "intended_model_package_arn": endpoint_tags.get(tags.MODEL_PACKAGE_ARN),
                "meaning": "SageMaker rolled the update back (an alarm fired or the new fleet failed); "
                "the endpoint serves the previous config.",
            },
        )
        return Report("alerted_rolled_back", target.endpoint, serving, intended)
    return prune(sagemaker, config, target, serving)
