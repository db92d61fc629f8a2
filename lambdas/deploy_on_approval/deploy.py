"""Bring one endpoint to the newest Approved version of its model package group.

`reconcile` is the whole decision. It reads the registry and the endpoint first and writes only when
the endpoint does not already serve (or is not already moving to) the wanted config, so a duplicate,
late or out-of-order message costs three reads and no write. It never waits for the endpoint: a busy
endpoint means "try again later", which the caller turns into an SQS retry.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError
from common.autoscaling import DIMENSION, NAMESPACE, variant_resource_id
from common.tags import INTENDED_ENDPOINT_CONFIG as INTENDED_TAG

from . import endpoint_spec
from .approval import ApprovalRules, Verdict, check_approval, pipeline_starter
from .messages import APPROVED, REJECTED, ApprovalChange
from .settings import DeploySettings, UseCaseTarget

logger = logging.getLogger(__name__)

IN_SERVICE = "InService"
FAILED = "Failed"
# Statuses in which the endpoint is moving to the config it reports (pending, else current); any other
# status but InService and Failed (Deleting, OutOfService, UpdateRollbackFailed) waits for a retry.
MOVING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


class Action:
    """What `reconcile` did; the value is the ``action`` field of the structured log line."""

    CREATED = "created"
    UPDATED = "updated"
    ALREADY_SERVING = "already_serving"
    RECORDED_INTENT = "already_serving_intended_config_recorded"
    ALREADY_IN_PROGRESS = "already_in_progress"
    ENDPOINT_BUSY = "endpoint_busy_retry_later"
    REPLACING_FAILED = "deleted_failed_endpoint_retry_later"
    NO_APPROVED_VERSION = "no_approved_version_endpoint_left_as_is"


RETRY_ACTIONS = frozenset({Action.ENDPOINT_BUSY, Action.REPLACING_FAILED})


@dataclass(frozen=True)
class Outcome:
    action: str
    version: int | None = None
    endpoint_config: str | None = None
    endpoint_status: str | None = None
    released_scaling: str | None = None
    """The scalable target deregistered before an update that changes the instance type (see `release_scaling`)."""
    approved_by: str | None = None
    approval_description: str | None = None
    approval_refused: str | None = None
    """With reviewers required: the rule the event's own version's approval broke (it was not deployed)."""

    @property
    def retry(self) -> bool:
        """The message must come back later (the endpoint was busy or is being replaced)."""
        return self.action in RETRY_ACTIONS


@dataclass(frozen=True)
class PackageVersion:
    arn: str
    version: int
    verdict: Verdict | None = None


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _error_message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "")


def is_already_exists(error: ClientError) -> bool:
    """SageMaker's answer to creating a name that exists: 'Cannot create already existing ...'."""
    message = _error_message(error).lower()
    return _error_code(error) in ("ValidationException", "ResourceInUse", "ResourceInUseException") and (
        "already exist" in message
    )


def _is_missing(error: ClientError) -> bool:
    message = _error_message(error).lower()
    return _error_code(error) == "ValidationException" and ("could not find" in message or "not found" in message)


def _is_busy(error: ClientError) -> bool:
    message = _error_message(error).lower()
    return _error_code(error) == "ValidationException" and (
        "in-progress" in message or "in progress" in message or "cannot update" in message
    )


def _version_from_arn(arn: str) -> int:
    return int(arn.rsplit("/", 1)[-1])


def newest_approved_version(sagemaker: Any, group: str) -> PackageVersion | None:
    """The newest Approved version of `group` (a name, or the ARN of another account's group), by creation time,
    asked of the registry itself."""
    response = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = response.get("ModelPackageSummaryList", [])
    if not summaries:
        return None
    newest = summaries[0]
    arn = newest["ModelPackageArn"]
    return PackageVersion(arn=arn, version=int(newest.get("ModelPackageVersion") or _version_from_arn(arn)))


def judge(sagemaker: Any, arn: str, rules: ApprovalRules) -> Verdict:
    """The approval check of one version (`approval.check_approval`), with the starter of its pipeline execution."""
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    return check_approval(package, rules, pipeline_starter(sagemaker, package))


def newest_reviewed_version(sagemaker: Any, group: str, rules: ApprovalRules,
                            known: dict[str, Verdict] | None = None) -> PackageVersion | None:
    """The newest Approved version of `group` whose approval passes `rules`, walking newest first."""
    known = dict(known or {})
    paginator = sagemaker.get_paginator("list_model_packages")
    pages = paginator.paginate(ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime",
                               SortOrder="Descending")
    for page in pages:
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            verdict = known.get(arn) or judge(sagemaker, arn, rules)
            if verdict.allowed:
                version = int(summary.get("ModelPackageVersion") or _version_from_arn(arn))
                return PackageVersion(arn=arn, version=version, verdict=verdict)
            logger.info("skipped a version approved against the rules",
                        extra={"action": "skipped", "model_package_arn": arn, "approved_by": verdict.approver,
                               "rule": verdict.rule})
    return None


def describe_endpoint(sagemaker: Any, endpoint: str) -> dict | None:
    """The endpoint's description, or None when it does not exist."""
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


def _create_unless_exists(call: Any, **request: Any) -> None:
    """Run a Create* call; a name that already exists (a repeated or racing delivery) is success."""
    try:
        call(**request)
    except ClientError as error:
        if not is_already_exists(error):
            raise


def send_alert(sns: Any, topic_arn: str, subject: str, details: dict[str, Any]) -> None:
    """Publish a short subject and the details as JSON to the team's alert topic."""
    sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(details, indent=2, default=str))


def log_outcome(change: ApprovalChange, target: UseCaseTarget, outcome: Outcome) -> None:
    logger.info(
        "deploy %s", outcome.action,
        extra={
            "group": change.group,
            "event_version": change.version,
            "event_status": change.status,
            "version": outcome.version,
            "endpoint": target.endpoint,
            "endpoint_config": outcome.endpoint_config,
            "endpoint_status": outcome.endpoint_status,
            "released_scaling": outcome.released_scaling,
            "approved_by": outcome.approved_by,
            "approval_description": outcome.approval_description,
            "approval_refused": outcome.approval_refused,
            "action": outcome.action,
        },
    )


def release_scaling(sagemaker: Any, autoscaling: Any, target: UseCaseTarget, endpoint: dict) -> str | None:
    """Deregister the endpoint's scalable target when the update changes its instance type; returns its resource id.

    Application Auto Scaling refuses an UpdateEndpoint that changes the instance type of a registered variant
    (SageMaker developer guide, "Update endpoints that use auto scaling"). Only the platform's own targets (use
    cases with autoscaling) are released; the verifier registers the target again, with its policy and floors,
    when the updated endpoint is InService. Deregistering removes the target's policies with it.
    """
    if autoscaling is None or not (target.endpoint_settings.get("autoscaling") or {}).get("enabled"):
        return None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    serving = {v["VariantName"]: v.get("InstanceType") for v in config.get("ProductionVariants", [])}
    if serving.get(endpoint_spec.VARIANT_NAME) == target.endpoint_settings["instance_type"]:
        return None
    resource = variant_resource_id(target.endpoint, endpoint_spec.VARIANT_NAME)
    registered = autoscaling.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource], ScalableDimension=DIMENSION).get("ScalableTargets", [])
    if not registered:
        return None
    try:
        autoscaling.deregister_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=resource,
                                               ScalableDimension=DIMENSION)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ObjectNotFoundException":
            return None
        raise
    return resource


def reconcile(
    sagemaker: Any, sns: Any, settings: DeploySettings, target: UseCaseTarget, change: ApprovalChange,
    autoscaling: Any = None,
) -> Outcome:
    """Make `target`'s endpoint serve the newest Approved version of its group, or say why not yet.

    With reviewers required (`settings.approval_rules`), only versions whose approval passes them count, and an
    Approved event whose own version fails them alerts the team (the version itself is left as it is).
    """
    refused = None
    if settings.approval_rules is None:
        newest = newest_approved_version(sagemaker, settings.registry_group(target))
    else:
        known: dict[str, Verdict] = {}
        if change.status == APPROVED:
            verdict = known[change.arn] = judge(sagemaker, change.arn, settings.approval_rules)
            if not verdict.allowed:
                refused = verdict.rule
                alert_refused_approval(sns, settings, target, change, verdict)
        newest = newest_reviewed_version(sagemaker, settings.registry_group(target), settings.approval_rules, known)
    outcome = _reconcile_to(sagemaker, sns, settings, target, change, newest, autoscaling)
    verdict = newest.verdict if newest is not None else None
    return replace(outcome, approval_refused=refused, approved_by=verdict.approver if verdict else None,
                   approval_description=verdict.description if verdict else None)


def alert_refused_approval(sns: Any, settings: DeploySettings, target: UseCaseTarget, change: ApprovalChange,
                           verdict: Verdict) -> None:
    send_alert(
        sns,
        settings.alert_topic_arn,
        f"{target.group} v{change.version}: approval not deployed",
        {
            "team": settings.team,
            "model_package_group": target.group,
            "version": change.version,
            "model_package_arn": change.arn,
            "approved_by": verdict.approver,
            "rule_broken": verdict.rule,
            "endpoint": target.endpoint,
            "what_to_do": "A reviewer of the team who did not build this version approves it with a description; "
                          "the version was left as it is and the endpoint keeps its validly approved version.",
        },
    )


def _reconcile_to(
    sagemaker: Any, sns: Any, settings: DeploySettings, target: UseCaseTarget, change: ApprovalChange,
    newest: PackageVersion | None, autoscaling: Any = None,
) -> Outcome:
    endpoint = describe_endpoint(sagemaker, target.endpoint)
    status = endpoint["EndpointStatus"] if endpoint else None

    if newest is None:
        if change.status == REJECTED:
            send_alert(
                sns,
                settings.alert_topic_arn,
                f"{target.endpoint}: no Approved version left, endpoint left as is",
                {
                    "team": settings.team,
                    "model_package_group": target.group,
                    "rejected_version": change.version,
                    "rejected_model_package_arn": change.arn,
                    "endpoint": target.endpoint,
                    "endpoint_status": status or "absent",
                    "endpoint_config": endpoint.get("EndpointConfigName") if endpoint else None,
                    "what_to_do": "Approve a version of the group to deploy it, or delete the endpoint by hand.",
                },
            )
        return Outcome(Action.NO_APPROVED_VERSION, endpoint_status=status)

    wanted = endpoint_spec.endpoint_config_name(settings, target, newest.version)
    tags = endpoint_spec.endpoint_tags(settings, newest.arn, newest.version, wanted)
    result = _decide_from_endpoint(sagemaker, endpoint, wanted, newest.version)
    if result is not None:
        if result.action == Action.ALREADY_SERVING and _intended_config(sagemaker, endpoint) != wanted:
            # e.g. an update rolled back and the version it tried was then rejected: the endpoint serves
            # what is wanted, so record that, or the verifier would keep reporting a rollback.
            sagemaker.add_tags(ResourceArn=endpoint["EndpointArn"], Tags=tags)
            return Outcome(Action.RECORDED_INTENT, result.version, wanted, result.endpoint_status)
        return result

    _create_unless_exists(
        sagemaker.create_model, **endpoint_spec.create_model_request(settings, target, newest.arn, newest.version)
    )
    _create_unless_exists(
        sagemaker.create_endpoint_config,
        **endpoint_spec.create_endpoint_config_request(settings, target, newest.arn, newest.version),
    )
    if endpoint is None:
        _create_unless_exists(
            sagemaker.create_endpoint, EndpointName=target.endpoint, EndpointConfigName=wanted, Tags=tags
        )
        return Outcome(Action.CREATED, newest.version, wanted, "absent")

    released = release_scaling(sagemaker, autoscaling, target, endpoint)
    # The intended config is recorded before the update starts, so the verifier never sees a finished
    # update without it; if the update call then fails, the retry records the same value again.
    sagemaker.add_tags(ResourceArn=endpoint["EndpointArn"], Tags=tags)
    try:
        sagemaker.update_endpoint(**endpoint_spec.update_endpoint_request(target, wanted))
    except ClientError as error:
        if _is_busy(error):
            return Outcome(Action.ENDPOINT_BUSY, newest.version, wanted, status, released)
        raise
    return Outcome(Action.UPDATED, newest.version, wanted, status, released)


def _intended_config(sagemaker: Any, endpoint: dict) -> str | None:
    response = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])
    return {t["Key"]: t["Value"] for t in response.get("Tags", [])}.get(INTENDED_TAG)


def _decide_from_endpoint(sagemaker: Any, endpoint: dict | None, wanted: str, version: int) -> Outcome | None:
    """An outcome that needs no new config (serving, in progress, busy, failed), or None to deploy."""
    if endpoint is None:
        return None
    status = endpoint["EndpointStatus"]
    current = endpoint.get("EndpointConfigName")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")

    if status == FAILED:
        try:
            sagemaker.delete_endpoint(EndpointName=endpoint["EndpointName"])
        except ClientError as error:
            if not _is_missing(error):
                raise
        return Outcome(Action.REPLACING_FAILED, version, wanted, status)
    if status == IN_SERVICE:
        if current == wanted:
            return Outcome(Action.ALREADY_SERVING, version, wanted, status)
        return None
    if status in MOVING and wanted == (pending or current):
        return Outcome(Action.ALREADY_IN_PROGRESS, version, wanted, status)
    return Outcome(Action.ENDPOINT_BUSY, version, wanted, status)
