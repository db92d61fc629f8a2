"""The monitoring pipeline of one endpoint: a single processing step running ``pipeline_code.monitor``.

EventBridge Scheduler starts it (no server runs between windows) with the parameters the endpoint verifier
writes on the schedule when a version goes live: ``ModelPackageArn``, ``BaselineUri`` (the version's
``DriftCheckBaselines``) and ``ServingSince``. Everything else is fixed per endpoint at synth time through
placeholders, as in ``pipeline_code.definition``: ``EndpointName``, ``CaptureUri`` (where the endpoint's data
capture lands), ``MetricNamespace`` and the team's bucket, role, key and MLflow App.

The window ends at ``WindowEnd``: ``now`` (the default) is the start of the hour the job runs in, so
windows of ``WindowHours`` started every ``WindowHours`` tile without gaps; an ISO time re-runs a past window.
"""

from __future__ import annotations

from pipeline_code import definition
from pipeline_code.definition import OUTPUT_ROOT, VERSION, get, join, processing_step
from pipeline_code.images import SKLEARN

REPORTS_PREFIX = "monitoring/reports"
GROUND_TRUTH_PREFIX = "monitoring/ground-truth"
"""The team uploads labels under ``monitoring/ground-truth/<endpoint>/yyyy/mm/dd/hh/`` (``pipeline_code.capture``)."""
STEP_NAME = "MonitorEndpoint"
METRIC_DRIFT_SCORE = "FeatureDriftScore"
METRIC_FEATURE_DRIFTED = "FeatureDrifted"
METRIC_DRIFTED_SHARE = "DriftedFeatureShare"
METRIC_ROWS = "CapturedRows"
METRIC_LABELLED = "LabelledRows"
QUALITY_METRIC_PREFIX = "Quality_"
"""Metric names of ``pipeline_code.monitor`` (quality metrics are ``Quality_<metric>``, e.g. ``Quality_auc``)."""
PLACEHOLDERS = ("TeamName", "PlatformPrefix", "BucketName", "ExecutionRoleArn", "KmsKeyArn", "PipelineName",
                "MlflowAppArn", "CodeCommit", "EndpointName", "CaptureUri", "MetricNamespace", SKLEARN.placeholder)
SCHEDULE_PARAMETERS = ("ModelPackageArn", "BaselineUri", "ServingSince")
"""The parameters the verifier sets on the endpoint's schedule."""


def parameters(window_hours: int, min_rows: int, instance_type: str = "ml.m5.large") -> tuple:
    """(name, type, default, description) of the monitoring pipeline's parameters."""
    return (
        ("ModelPackageArn", "String", "", "the version the endpoint serves"),
        ("BaselineUri", "String", "", "S3 URI of that version's baseline.json"),
        ("ServingSince", "String", "", "ISO time the version went live; earlier requests are not compared"),
        ("WindowEnd", "String", "now", "ISO end of the window, or now (the start of the current hour)"),
        ("WindowHours", "Integer", window_hours, "hours of data capture the window covers"),
        ("MinRows", "Integer", min_rows, "captured rows a window needs for a drift verdict"),
        ("ProcessingInstanceType", "String", instance_type, "instance type of the monitoring job"),
    )


def _param(name: str, declared: tuple) -> dict:
    if name not in {entry[0] for entry in declared}:
        raise KeyError(f"undeclared monitoring parameter {name!r}")
    return get(f"Parameters.{name}")


def build_monitoring_definition(window_hours: int = 24, min_rows: int = 100,
                                instance_type: str = "ml.m5.large") -> dict:
    """The monitoring pipeline definition (placeholders unresolved)."""
    declared = parameters(window_hours, min_rows, instance_type)

    def param(name: str) -> dict:
        return _param(name, declared)

    report_uri = join(f"s3://${{BucketName}}/{REPORTS_PREFIX}", "${EndpointName}", get("Execution.PipelineExecutionId"))
    step = processing_step(
        STEP_NAME,
        f"${{{SKLEARN.placeholder}}}",
        inputs=[],
        outputs=[{"OutputName": "report", "S3Output": {"S3Uri": report_uri, "LocalPath": f"{OUTPUT_ROOT}/report",
                                                       "S3UploadMode": "EndOfJob"}}],
        module="monitor",
        wheelhouse=True,
        arguments=[
            "--baseline-uri", param("BaselineUri"),
            "--capture-uri", "${CaptureUri}",
            "--ground-truth-uri", f"s3://${{BucketName}}/{GROUND_TRUTH_PREFIX}/${{EndpointName}}/",
            "--endpoint-name", "${EndpointName}",
            "--model-package-arn", param("ModelPackageArn"),
            "--serving-since", param("ServingSince"),
            "--window-end", param("WindowEnd"),
            "--window-hours", definition.as_text(param("WindowHours")),
            "--min-rows", definition.as_text(param("MinRows")),
            "--output-dir", f"{OUTPUT_ROOT}/report",
            "--metric-namespace", "${MetricNamespace}",
        ],
        environment=definition.tracking_environment(),
    )
    return {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": [{"Name": name, "Type": kind, "DefaultValue": default} for name, kind, default, _ in declared],
        "Steps": [step],
    }

