"""Keep an InService endpoint's monitoring schedule pointed at the version it serves.

The schedule (EventBridge Scheduler, ``drift-monitor`` in the endpoint's schedule group, which the stack owns)
starts the use case's monitoring pipeline with three parameters: the serving version's model package ARN,
its baseline (the version's ``DriftCheckBaselines``, else its ``DriftBaseline`` metadata property) and
``ServingSince``, the time that version went live (kept while the version stays, so a scaling event that
updates the endpoint does not cut the window short). As with autoscaling, every write follows a read and is
made only when the schedule differs: the verifier calls `ensure_schedule` on every InService event, after a
deploy, a rollback, or the restore command recreating an endpoint the reaper deleted (the reaper deletes the
schedule with the endpoint).

A version without a baseline (registered outside the pipeline) cannot be compared: its endpoint's schedule
is deleted, so nothing compares it with an older version's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError
from common.naming import MONITORING_SCHEDULE_NAME

SCHEDULE_PARAMETERS = ("ModelPackageArn", "BaselineUri", "ServingSince")


@dataclass(frozen=True)
class MonitoringSettings:
    """A use case's ``endpoint.monitoring`` section and where its pipeline and schedule live."""

    schedule: str
    pipeline_arn: str
    schedule_group: str
    role_arn: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, pipeline_arn: str, schedule_group: str,
                    role_arn: str) -> MonitoringSettings | None:
        """None when the section is absent or not enabled."""
        if not section or not section.get("enabled"):
            return None
        return cls(str(section["schedule"]), pipeline_arn, schedule_group, role_arn)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def baseline_uri(sagemaker: Any, package_arn: str) -> str | None:
    """Where the version's drift baseline is, or None when it has none."""
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    statistics = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {})
    return statistics.get("S3Uri") or package.get("CustomerMetadataProperties", {}).get("DriftBaseline")


def get_schedule(scheduler: Any, settings: MonitoringSettings) -> dict | None:
    try:
        return scheduler.get_schedule(Name=MONITORING_SCHEDULE_NAME, GroupName=settings.schedule_group)
    except ClientError as error:
        if _missing(error):
            return None
        raise


def schedule_parameters(schedule: Mapping[str, Any] | None) -> dict[str, str]:
    if schedule is None:
        return {}
    listed = schedule.get("Target", {}).get("SageMakerPipelineParameters", {}).get("PipelineParameterList", [])
    return {p["Name"]: p["Value"] for p in listed}


def schedule_request(endpoint: str, settings: MonitoringSettings, parameters: Mapping[str, str]) -> dict[str, Any]:
    """The CreateSchedule (and UpdateSchedule, which takes the whole schedule) request."""
    return {
        "Name": MONITORING_SCHEDULE_NAME,
        "GroupName": settings.schedule_group,
        "Description": f"Monitoring of {endpoint}: drift and quality against the serving version's baseline",
        "ScheduleExpression": settings.schedule,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": settings.pipeline_arn,
            "RoleArn": settings.role_arn,
            "SageMakerPipelineParameters": {
                "PipelineParameterList": [{"Name": name, "Value": parameters[name]} for name in SCHEDULE_PARAMETERS]
            },
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    }


def _matches(schedule: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    target, want = schedule.get("Target", {}), wanted["Target"]
    return (
        schedule.get("ScheduleExpression") == wanted["ScheduleExpression"]
        and (schedule.get("ScheduleExpressionTimezone") or "UTC") == "UTC"
        and schedule.get("State") == "ENABLED"
        and target.get("Arn") == want["Arn"]
        and target.get("RoleArn") == want["RoleArn"]
        and schedule_parameters(schedule) == {p["Name"]: p["Value"] for p in
                                              want["SageMakerPipelineParameters"]["PipelineParameterList"]}
    )


def delete_schedule(scheduler: Any, group: str) -> bool:
    """Delete the endpoint's schedule; False when there was none."""
    try:
        scheduler.delete_schedule(Name=MONITORING_SCHEDULE_NAME, GroupName=group)
        return True
    except ClientError as error:
        if _missing(error):
            return False
        raise


def ensure_schedule(scheduler: Any, sagemaker: Any, endpoint: Mapping[str, Any], package_arn: str | None,
                    settings: MonitoringSettings | None) -> list[str]:
    """Bring the schedule of ``endpoint`` (a DescribeEndpoint response) to its serving version ``package_arn``;
    returns what was written (empty: nothing)."""
    if settings is None:
        return []
    name = endpoint["EndpointName"]
    baseline = baseline_uri(sagemaker, package_arn) if package_arn else None
    existing = get_schedule(scheduler, settings)
    if baseline is None:
        if existing is not None and delete_schedule(scheduler, settings.schedule_group):
            return [f"removed schedule: {package_arn or 'the serving version'} has no drift baseline"]
        return []
    previous = schedule_parameters(existing)
    since = previous.get("ServingSince") if previous.get("ModelPackageArn") == package_arn else None
    if not since:
        live = endpoint.get("LastModifiedTime") or datetime.now(timezone.utc)
        since = live.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = schedule_request(name, settings, {"ModelPackageArn": package_arn, "BaselineUri": baseline,
                                               "ServingSince": since})
    if existing is None:
        scheduler.create_schedule(**wanted)
        return [f"schedule {settings.schedule_group}/{MONITORING_SCHEDULE_NAME} for {package_arn}"]
    if _matches(existing, wanted):
        return []
    scheduler.update_schedule(**wanted)
    return [f"schedule {settings.schedule_group}/{MONITORING_SCHEDULE_NAME} now for {package_arn}"]
