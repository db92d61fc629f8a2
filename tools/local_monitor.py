"""Run a use case's deployed monitoring pipeline here, on a window of captured requests made from a local run.

1. Synthesize the platform and take the use case's monitoring pipeline (``<group>--monitor``) from its team's
   template, resolved as CloudFormation would (``tools.local_run``).
2. Make one window of data capture from a finished ``make local-run`` of the use case: its test rows as
   requests (optionally with features shifted, ``--shift amount=3`` multiplies ``amount`` by 3), its batch
   predictions as responses, spread over the window; its test labels as ground truth.
3. Start a local S3 (moto's server, which also stands in for CloudWatch), upload the step code, the run's
   drift baseline, the capture and the labels where the endpoint and the team write them, and execute the
   definition with the parameters the endpoint's schedule carries.
4. Print the report: per feature its test, score and verdict, the drifted share, the quality metrics, and
   the CloudWatch metrics the job published.

CLI: ``python -m tools.local_monitor --use-case NAME --run-dir DIR [--out DIR] [--shift column=factor ...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pandas as pd

from lambdas.common import naming
from pipeline_code.definition import WHEELHOUSE_PREFIX
from pipeline_code.monitoring_definition import GROUND_TRUTH_PREFIX, REPORTS_PREFIX
from stacks.app_builder import team_stack_name
from stacks.config import ConfigError, load_config
from stacks.constructs.endpoint_monitoring import capture_uri
from tools import capture_records
from tools.iam import pipeline_needs
from tools.iam.template import World
from tools.local_run import (
    ACCOUNT,
    CODE_DIR,
    CODE_PREFIX,
    DEFAULT_REGION,
    ROOT,
    LocalRunError,
    find_use_case,
    local_tracking,
    synthesized_templates,
)
from tools.pipeline_runtime import LocalS3, RunResult, run_pipeline

WINDOW_END = datetime(2026, 12, 4, 0, 0, tzinfo=timezone.utc)
LOCAL_BASELINE_PREFIX = "pipeline/runs/local/automl/drift-baseline/"


@dataclass
class MonitorRun:
    result: RunResult
    report: dict | None
    metrics: list
    """(metric name, dimensions as a dict, value) of every datum the job published."""


def deployed_monitoring_definition(templates: dict, config, team, use_case, region: str) -> tuple:
    """(definition text as deployed, bucket name, endpoint name) of the use case's monitoring pipeline."""
    world = World(templates, account=ACCOUNT, region=region, generated_names="concrete")
    stack = team_stack_name(config, team.name)
    name = naming.monitoring_pipeline_name(config.prefix, team.name, use_case.name)
    for pipeline in pipeline_needs.pipelines_of(world, stack, "monitoring"):
        if pipeline.name == name:
            bucket = world.resolve(stack, {"Ref": next(
                r.logical_id for r in world.resources("AWS::S3::Bucket")
                if r.stack == stack and r.logical_id.startswith("DataBucket"))})
            return json.dumps(pipeline.definition), bucket, naming.endpoint_name(config.prefix, team.name, use_case.name)
    raise LocalRunError(f"use case {use_case.name!r} does not enable endpoint.monitoring: stack {stack} has no "
                        f"pipeline named {name}")


def window_from_run(run_dir: Path, shift: dict | None = None, end: datetime = WINDOW_END, hours: int = 24) -> tuple:
    """(capture lines, ground-truth lines) from a local run's test rows, predictions and labels."""
    split = run_dir / "steps" / "SplitData" / "opt/ml/processing/output"
    summary = json.loads((split / "summary" / "split_summary.json").read_text())
    rows = (split / "transform_input" / "test_features.csv").read_text().splitlines()
    transform = next(p for p in (run_dir / "steps").glob("*BatchTransform") if (p / "output").is_dir())
    responses = next((transform / "output").glob("*.out")).read_text().splitlines()
    labels = pd.read_csv(split / "test" / "test.csv", dtype=str)[summary["target"]].tolist()
    if shift:
        frame = pd.read_csv(split / "transform_input" / "test_features.csv", header=None,
                            names=summary["features"], dtype=str)
        for column, factor in shift.items():
            if column not in frame.columns:
                raise LocalRunError(f"--shift names {column!r}, not a feature; features: {summary['features']}")
            frame[column] = (pd.to_numeric(frame[column]) * factor).map(repr)
        rows = frame.astype(str).agg(",".join, axis=1).tolist()
    start = end - timedelta(hours=hours)
    capture = capture_records.capture_lines(rows, responses, start, timedelta(hours=hours) - timedelta(minutes=1))
    truth = capture_records.ground_truth_lines(labels, [time for time, _ in capture])
    return capture, truth


def monitor_window(text: str, bucket: str, endpoint: str, baseline_dir: Path, capture: list, ground_truth: list,
                   out: Path, namespace: str, window_end: datetime = WINDOW_END) -> MonitorRun:
    """Execute the monitoring definition on one window against a fresh local S3 and CloudWatch."""
    definition = json.loads(text)
    (step,) = definition["Steps"]
    kinds = {"sklearn": step["Arguments"]["AppSpecification"]["ImageUri"]}  # the monitor's one image
    out.mkdir(parents=True, exist_ok=True)
    with LocalS3(bucket) as s3:
        s3.upload_folder(CODE_DIR, CODE_PREFIX, exclude=("__pycache__", "*.pyc"))
        s3.put_text(f"{WHEELHOUSE_PREFIX}/requirements.txt", (CODE_DIR / "container_requirements.txt").read_text())
        s3.upload_folder(baseline_dir, LOCAL_BASELINE_PREFIX)
        capture_prefix = capture_uri(bucket, endpoint).split("/", 3)[3]
        capture_records.upload_hours(s3.client, bucket, capture_prefix, capture)
        capture_records.upload_hours(s3.client, bucket, f"{GROUND_TRUTH_PREFIX}/{endpoint}/", ground_truth,
                                     name="labels.jsonl")
        parameters = {
            "ModelPackageArn": f"arn:aws:sagemaker:local:{ACCOUNT}:model-package/{endpoint}/1",
            "BaselineUri": f"s3://{bucket}/{LOCAL_BASELINE_PREFIX}baseline.json",
            "ServingSince": "",
            "WindowEnd": window_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        result = run_pipeline(text, s3=s3, images=kinds, parameters=parameters, workdir=out,
                              environment=local_tracking(out))
        report = None
        keys = s3.keys(bucket, f"{REPORTS_PREFIX}/{endpoint}/{result.execution_id}/")
        if keys:
            report = json.loads(s3.read_text(f"s3://{bucket}/{keys[0]}"))
        metrics = published_metrics(s3.aws_environment(), namespace)
    return MonitorRun(result, report, metrics)


def published_metrics(environment: dict, namespace: str) -> list:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=environment["AWS_ENDPOINT_URL"],
                              region_name=environment["AWS_DEFAULT_REGION"], aws_access_key_id="local",
                              aws_secret_access_key="local")
    found = []
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        data = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=datetime(2000, 1, 1, tzinfo=timezone.utc), EndTime=datetime(2100, 1, 1, tzinfo=timezone.utc),
            Period=86_400, Statistics=["Maximum"])["Datapoints"]
        for point in data:
            found.append((metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]},
                          point["Maximum"]))
    return sorted(found, key=lambda m: (m[0], sorted(m[1].items())))


# What a finished local run leaves that the monitoring window is made of.
RUN_OUTPUTS = (
    "steps/SplitData/opt/ml/processing/output/summary/split_summary.json",
    "steps/SplitData/opt/ml/processing/output/transform_input/test_features.csv",
    "steps/SplitData/opt/ml/processing/output/test/test.csv",
    "reports/drift-baseline",
)


def check_run_dir(run_dir: Path, use_case: str) -> None:
    """Raise, saying how to make one, unless `run_dir` holds a finished local run."""
    missing = [name for name in RUN_OUTPUTS if not (run_dir / name).exists()]
    if not (run_dir / "steps").is_dir() or not any((run_dir / "steps").glob("*BatchTransform/output/*.out")):
        missing.append("steps/*BatchTransform/output/*.out")
    if missing:
        raise LocalRunError(
            f"{run_dir} holds no finished local run of use case {use_case!r} (missing {missing[0]}): run the "
            f"pipeline first, with `make local-run USE_CASE={use_case}` (or `.venv/bin/python -m tools.local_run "
            f"--use-case {use_case} --out {run_dir}`), then monitor it")


def run(config_path: Path, use_case_name: str, run_dir: Path, out: Path, shift: dict | None = None) -> MonitorRun:
    config = load_config(config_path)
    team, use_case = find_use_case(config, use_case_name)
    check_run_dir(run_dir, use_case_name)
    templates = synthesized_templates(config)
    text, bucket, endpoint = deployed_monitoring_definition(templates, config, team, use_case,
                                                            config.region or DEFAULT_REGION)
    capture, truth = window_from_run(run_dir, shift)
    return monitor_window(text, bucket, endpoint, run_dir / "reports" / "drift-baseline", capture, truth, out,
                          naming.monitoring_namespace(config.prefix, team.name))


def summary(run: MonitorRun) -> str:
    lines = [run.result.summary()]
    report = run.report or {}
    if report.get("status") == "ok":
        for column in report["drift"]["columns"]:
            verdict = "DRIFT" if column["drifted"] else "ok"
            lines.append(f"  {column['column']:<24} {column['test']:<14} {column['score']:.4f} "
                         f"(threshold {column['threshold']}) {verdict}")
        lines.append(f"  drifted share {report['drift']['drifted_share']:.2f} of {len(report['drift']['columns'])}")
        quality = report.get("quality") or {}
        for name, value in (quality.get("metrics") or {}).items():
            baseline = quality["baseline"].get(name)
            shown = f"{baseline:.4f}" if isinstance(baseline, (int, float)) else "none"
            lines.append(f"  quality {name}: {value:.4f} (test split {shown})")
    elif report:
        lines.append(f"  {report.get('status')}: {report.get('reason')}")
    lines.append(f"  {len(run.metrics)} CloudWatch datums published")
    return "\n".join(lines)


def parse_shift(pairs: list) -> dict:
    shift = {}
    for pair in pairs:
        column, separator, factor = pair.partition("=")
        try:
            shift[column] = float(factor)
        except ValueError:
            raise LocalRunError(f"--shift {pair!r} is not column=factor (a number)") from None
        if not separator or not column:
            raise LocalRunError(f"--shift {pair!r} is not column=factor")
    return shift


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_monitor", description=__doc__.split("\n")[0])
    parser.add_argument("--use-case", required=True)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "platform.yaml")
    parser.add_argument("--run-dir", type=Path, required=True, help="output folder of a finished local run")
    parser.add_argument("--out", type=Path, default=None, help="default: out/local-monitor/<use case>")
    parser.add_argument("--shift", action="append", default=[], metavar="column=factor")
    args = parser.parse_args(argv)
    try:
        result = run(args.config, args.use_case, args.run_dir, args.out or ROOT / "out" / "local-monitor" /
                     args.use_case, parse_shift(args.shift))
    except (ConfigError, LocalRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0 if result.result.status == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
