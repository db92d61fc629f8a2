"""Monitor one endpoint over one window: feature drift against its version's baseline, and model quality
where ground truth was uploaded; runs in the scikit-learn processing container (the monitoring pipeline).

The window is the ``--window-hours`` before ``--window-end`` (``now``: the start of the current UTC hour),
and never earlier than ``--serving-since`` (when the version went live on the endpoint), so every compared
request was served by the version whose baseline it is compared with. ``pipeline_code.capture`` documents the S3 layouts.

Results:
- ``report.json`` in ``--output-dir`` (the pipeline uploads it under ``monitoring/reports/<endpoint>/``):
  the window, counts, skipped rows by reason, each feature's test, score, threshold and verdict, the
  drifted share, and the quality metrics with the baseline's test values beside them;
- CloudWatch metrics in ``--metric-namespace`` (see ``metric_data``), with ``--no-metrics`` skipped;
- with ``MLFLOW_TRACKING_URI`` set, one MLflow run per execution in the experiment ``MLOPS_EXPERIMENT_NAME``
  (params: endpoint, version, window; metrics: drift scores, drifted share, quality).

A window with fewer than ``--min-rows`` captured rows gets status ``insufficient_data``: only its row count
is published, so the drift alarm neither fires nor clears on a handful of requests.

Locations are S3 URIs or local paths (``pipeline_code.capture``).

CLI: ``python -m pipeline_code.monitor --baseline-uri URI --capture-uri URI --ground-truth-uri URI
--endpoint-name NAME --model-package-arn ARN --serving-since TIME --window-end TIME --window-hours H
--output-dir DIR --metric-namespace NS``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from pipeline_code import capture, drift
from pipeline_code import problem as problem_module
from pipeline_code.evaluate import EvaluationError, quality_report
from pipeline_code.monitoring_definition import (
    METRIC_DRIFT_SCORE,
    METRIC_DRIFTED_SHARE,
    METRIC_FEATURE_DRIFTED,
    METRIC_LABELLED,
    METRIC_ROWS,
    QUALITY_METRIC_PREFIX,
)
from pipeline_code.problem import METRICS_SECTION

REPORT_FILE = "report.json"
MIN_ROWS = 100
MIN_LABELLED_ROWS = 30
OK, INSUFFICIENT = "ok", "insufficient_data"


class MonitorError(ValueError):
    """Raised when the baseline or the window cannot be read."""


def load_baseline(uri: str, s3=None) -> tuple:
    """(baseline document, reference frame typed by kind) from the baseline's URI (S3 or a local file)."""
    document = json.loads(capture.read_text(uri, s3))
    if document.get("format_version") != 1:
        raise MonitorError(f"{uri}: baseline format {document.get('format_version')!r} is not 1")
    reference_uri = f"{uri.rsplit('/', 1)[0]}/{document['reference']['file']}"
    kinds = kinds_of(document)
    reference = pd.read_csv(io.StringIO(capture.read_text(reference_uri, s3)), dtype=str)
    return document, capture.typed(reference, kinds)


def kinds_of(document: dict) -> dict:
    return {feature["name"]: feature["kind"] for feature in document["features"]}


def version_of(model_package_arn: str) -> str:
    """``.../model-package/<group>/<version>`` -> ``<version>``."""
    return model_package_arn.rstrip("/").rsplit("/", 1)[-1]


def window_quality(document: dict, window: capture.Window, labels: dict) -> dict | None:
    """The quality report of the window's labelled rows, or None with fewer than ``MIN_LABELLED_ROWS``."""
    found, responses = capture.labelled(window, labels)
    if len(found) < MIN_LABELLED_ROWS:
        return None
    parser = argparse.ArgumentParser()
    problem_module.add_arguments(parser)
    problem = problem_module.from_namespace(parser.parse_args(document["problem"]["arguments"]))
    report = quality_report(np.array(found, dtype=object), responses, document["prediction_format"],
                            float(document.get("threshold", 0.5)), problem)
    section = report[METRICS_SECTION[problem.problem_type]]
    metrics = {name: float(entry["value"]) for name, entry in sorted(section.items())
               if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float))
               and not name.endswith("_best_constant_classifier")}
    return {"rows": len(found), "metrics": metrics,
            "baseline": {name: document["test_metrics"].get(name) for name in metrics}}


def monitor(s3=None, *, baseline_uri: str, capture_uri: str, ground_truth_uri: str, endpoint: str,
            model_package_arn: str, serving_since: str, window_end: str, window_hours: float,
            min_rows: int = MIN_ROWS) -> dict:
    """The report of one window (see module docstring)."""
    if window_hours <= 0:
        raise MonitorError(f"window hours must be positive, got {window_hours}")
    document, reference = load_baseline(baseline_uri, s3)
    kinds = kinds_of(document)
    end = capture.window_end(window_end)
    start = end - timedelta(hours=window_hours)
    since = capture.parse_time(serving_since) if serving_since else None
    store, prefix = capture.location(capture.folder_of(capture_uri), s3)
    records = capture.object_lines(store, capture.hour_prefixes(prefix, start, end, extra_hours=1))
    window = capture.read_window(records, list(kinds), kinds, start, end, since)
    report = {
        "endpoint": endpoint,
        "model_package_arn": model_package_arn,
        "model_version": version_of(model_package_arn),
        "baseline_uri": baseline_uri,
        "window": {"start": start.isoformat(), "end": end.isoformat(),
                   "compared_from": max(start, since).isoformat() if since else start.isoformat()},
        "requests": window.requests,
        "rows": len(window.features),
        "skipped_rows": window.skipped,
        "unparsable_values": {name: int(window.features[name].isna().sum()) for name in kinds},
        "reference_rows": len(reference),
    }
    if len(window.features) < min_rows:
        report.update(status=INSUFFICIENT, reason=f"{len(window.features)} captured rows, fewer than {min_rows}")
        return report
    report["status"] = OK
    report["drift"] = drift.dataset_drift(reference, window.features, kinds)
    store, prefix = capture.location(capture.folder_of(ground_truth_uri), s3)
    labels = capture.ground_truth(capture.object_lines(store, capture.hour_prefixes(prefix, start, end)))
    try:
        report["quality"] = window_quality(document, window, labels)
    except EvaluationError as error:
        report["quality"] = {"error": str(error)}
    return report


def metric_data(report: dict) -> list:
    """CloudWatch datums of a report.

    Per feature (dimensions ``EndpointName``, ``ModelVersion``, ``Feature``): ``FeatureDriftScore`` (the test's
    score: a p-value or a distance, see ``pipeline_code.drift``) and ``FeatureDrifted`` (1 or 0). Per endpoint and
    version, and per endpoint alone (what the alarms watch): ``DriftedFeatureShare``, ``CapturedRows``,
    ``LabelledRows`` and ``Quality_<metric>`` for each quality metric of the window. The values are the report's;
    ``publish`` makes them values CloudWatch accepts (``metric_value``).
    """
    endpoint = {"Name": "EndpointName", "Value": report["endpoint"]}
    version = {"Name": "ModelVersion", "Value": report["model_version"]}
    both = ([endpoint, version], [endpoint])
    data = [{"MetricName": METRIC_ROWS, "Dimensions": d, "Value": float(report["rows"]), "Unit": "Count"}
            for d in both]
    if report.get("status") != OK:
        return data
    for column in report["drift"]["columns"]:
        feature = [endpoint, version, {"Name": "Feature", "Value": column["column"]}]
        data.append({"MetricName": METRIC_DRIFT_SCORE, "Dimensions": feature, "Value": column["score"],
                     "Unit": "None"})
        data.append({"MetricName": METRIC_FEATURE_DRIFTED, "Dimensions": feature,
                     "Value": 1.0 if column["drifted"] else 0.0, "Unit": "None"})
    data += [{"MetricName": METRIC_DRIFTED_SHARE, "Dimensions": d, "Value": report["drift"]["drifted_share"],
              "Unit": "None"} for d in both]
    quality = report.get("quality") or {}
    if "metrics" in quality:
        data += [{"MetricName": METRIC_LABELLED, "Dimensions": d, "Value": float(quality["rows"]), "Unit": "Count"}
                 for d in both]
        data += [{"MetricName": f"{QUALITY_METRIC_PREFIX}{name}", "Dimensions": d, "Value": value, "Unit": "None"}
                 for name, value in quality["metrics"].items() if np.isfinite(value) for d in both]
    return data


# What PutMetricData accepts (CloudWatch API reference): MetricDatum
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html (a value is 0 or of
# magnitude 2^-360 to 2^360, never NaN or infinite; metric name 1-255 characters; at most 30 dimensions),
# Dimension https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html (name 1-255
# characters, value 1-1,024 of printable ASCII; 255 here, the most a CloudFormation alarm dimension takes) and
# PutMetricData https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html (at most
# 1,000 metrics and 1 MB per request). One datum out of bounds fails the whole request. The same rules, for the
# Lambda functions, are in lambdas/common/metric_datums.py (this container has no lambdas/);
# tests/pipeline/test_metric_ranges.py checks that both give the same datums.
SMALLEST_VALUE = 2.0 ** -360
LARGEST_VALUE = 2.0 ** 360
MAX_DIMENSIONS = 30
MAX_NAME = 255
MAX_DIMENSION_VALUE = 255
MAX_DATUMS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 900_000
HASH_CHARACTERS = 16


def metric_value(value) -> float | None:
    """``value`` as CloudWatch accepts it, or None for NaN and infinities (which have no faithful stand-in).

    A nonzero magnitude below 2^-360 becomes 2^-360 with its sign, one above 2^360 becomes 2^360 with its sign,
    and -0.0 becomes 0.0: a KS p-value of 1e-232 stays a positive score far below every drift threshold, where 0
    would claim an impossible certainty and leaving it out would hide the most drifted feature.
    """
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0.0:
        return 0.0
    return math.copysign(min(max(abs(number), SMALLEST_VALUE), LARGEST_VALUE), number)


def dimension_value(value: str) -> str:
    """``value`` when CloudWatch accepts it as it is; otherwise a stable stand-in it accepts.

    A value longer than 255 characters, or with characters other than printable ASCII (a feature's name), keeps
    its first characters (others replaced by ``?``) and ends in ``~`` and 16 hex digits of the SHA-256 of the
    whole value: every window publishes the feature under the same value, so its dashboard series stays one
    series, and two names sharing a long prefix stay two series.
    """
    text = str(value)
    if len(text) <= MAX_DIMENSION_VALUE and all(32 <= ord(c) < 127 for c in text) and text.strip():
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARACTERS]
    kept = "".join(c if 32 <= ord(c) < 127 else "?" for c in text[:MAX_DIMENSION_VALUE - HASH_CHARACTERS - 1])
    return f"{kept}~{digest}"


def valid_datum(datum: dict) -> tuple:
    """(a copy of ``datum`` CloudWatch accepts, None), or (None, why it cannot be sent).

    ``Value`` follows ``metric_value`` and dimension values ``dimension_value``. The datum is left out when its
    value is NaN or infinite, or when its metric name or a dimension name is not 1-255 characters, it has more
    than 30 dimensions or an empty dimension value (names are what the alarms and dashboards refer to).
    """
    dimensions = datum.get("Dimensions") or []
    label = "{}[{}]".format(datum.get("MetricName"), ",".join(f"{d['Name']}={d['Value']}" for d in dimensions))[:300]
    name = str(datum.get("MetricName", ""))
    if not 1 <= len(name) <= MAX_NAME:
        return None, f"{label}: metric name of {len(name)} characters, not 1-{MAX_NAME}"
    if len(dimensions) > MAX_DIMENSIONS:
        return None, f"{label}: {len(dimensions)} dimensions, more than {MAX_DIMENSIONS}"
    for dimension in dimensions:
        if not 1 <= len(str(dimension["Name"])) <= MAX_NAME:
            return None, f"{label}: dimension name of {len(str(dimension['Name']))} characters, not 1-{MAX_NAME}"
        if not str(dimension["Value"]):
            return None, f"{label}: empty value of dimension {dimension['Name']!r}"
    value = metric_value(datum["Value"])
    if value is None:
        return None, f"{label}: value {datum['Value']!r} is not finite"
    result = dict(datum, Value=value)
    if "Dimensions" in datum:
        result["Dimensions"] = [{"Name": str(d["Name"]), "Value": dimension_value(d["Value"])} for d in dimensions]
    return result, None


def _leaves(value) -> list:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _size(datum: dict) -> int:
    """An upper estimate of the bytes ``datum`` takes in a request: in the query protocol, the most verbose of
    CloudWatch's, each field is ``MetricData.member.<n>.<path>=<URL-encoded value>&`` (at most 64 bytes and the
    value)."""
    return sum(64 + len(quote(str(leaf), safe="-_.~")) for leaf in _leaves(datum))


def publish(cloudwatch, namespace: str, data: list) -> int:
    """PutMetricData of ``data`` made valid by ``valid_datum``, in requests of at most 1,000 datums and about
    900 KB; a datum that cannot be sent is left out and named on stderr. Returns the requests made."""
    batches: list = []
    size = 0
    for datum in data:
        valid, reason = valid_datum(datum)
        if valid is None:
            print(f"monitor: metric datum not published: {reason}", file=sys.stderr)
            continue
        datum_size = _size(valid)
        if not batches or len(batches[-1]) >= MAX_DATUMS_PER_REQUEST or size + datum_size > MAX_REQUEST_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(valid)
        size += datum_size
    for batch in batches:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
    return len(batches)


def record_in_mlflow(report: dict, environment: dict) -> str | None:
    """Log the report to this execution's MLflow run; returns the run id, or None without a tracking URI."""
    tracking_uri = environment.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri:
        return None
    from pipeline_code import record_run

    client = record_run.tracking_client(tracking_uri)
    execution = environment.get("MLOPS_PIPELINE_EXECUTION_ARN") or f"{report['endpoint']}-{report['window']['end']}"
    _, run_id = record_run.run_of_execution(client, environment.get("MLOPS_EXPERIMENT_NAME") or "monitoring",
                                            execution, environment.get("MLOPS_ARTIFACT_LOCATION"))
    params = {"endpoint": report["endpoint"], "model_package_arn": report["model_package_arn"],
              "window_start": report["window"]["start"], "window_end": report["window"]["end"],
              "status": report["status"]}
    metrics = {"rows": float(report["rows"])}
    if report["status"] == OK:
        metrics["drift.drifted_share"] = report["drift"]["drifted_share"]
        metrics.update({record_run.metric_key("drift", c["column"]): c["score"] for c in report["drift"]["columns"]})
        for name, value in ((report.get("quality") or {}).get("metrics") or {}).items():
            if np.isfinite(value):
                metrics[record_run.metric_key("quality", name)] = value
    record_run.log_values(client, run_id, params, metrics, {"mlops.model_package_arn": report["model_package_arn"]})
    client.set_terminated(run_id, "FINISHED")
    return run_id


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.monitor",
                                     description="Drift and quality of one endpoint over one window.")
    parser.add_argument("--baseline-uri", required=True)
    parser.add_argument("--capture-uri", required=True, help="s3://bucket/data-capture/<endpoint>/<variant>/")
    parser.add_argument("--ground-truth-uri", required=True, help="s3://bucket/monitoring/ground-truth/<endpoint>/")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument("--serving-since", default="", help="ISO time the version went live (may be empty)")
    parser.add_argument("--window-end", default="now", help="ISO time the window ends, or now (the current hour)")
    parser.add_argument("--window-hours", type=float, required=True)
    parser.add_argument("--min-rows", type=int, default=MIN_ROWS)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--metric-namespace", required=True)
    parser.add_argument("--no-metrics", action="store_true", help="publish nothing to CloudWatch")
    return parser.parse_args(argv)


def main(argv: list | None = None, s3=None, cloudwatch=None) -> int:
    args = parse_args(argv)
    remote = any(uri.startswith("s3://") for uri in (args.baseline_uri, args.capture_uri, args.ground_truth_uri))
    if s3 is None and remote:
        import boto3

        s3 = boto3.client("s3")
    if cloudwatch is None and not args.no_metrics:
        import boto3

        cloudwatch = boto3.client("cloudwatch")
    try:
        report = monitor(s3, baseline_uri=args.baseline_uri, capture_uri=args.capture_uri,
                         ground_truth_uri=args.ground_truth_uri, endpoint=args.endpoint_name,
                         model_package_arn=args.model_package_arn, serving_since=args.serving_since,
                         window_end=args.window_end, window_hours=args.window_hours, min_rows=args.min_rows)
    except (MonitorError, capture.CaptureError, drift.DriftError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    if not args.no_metrics:
        publish(cloudwatch, args.metric_namespace, metric_data(report))
    record_in_mlflow(report, dict(os.environ))
    drifted = report.get("drift", {}).get("drifted_columns", 0)
    print(f"monitor: {report['endpoint']} v{report['model_version']}: {report['status']}, {report['rows']} rows, "
          f"{drifted} drifted feature(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
