"""Record a pipeline execution in the team's MLflow App: one MLflow run per execution.

``python3 -m pipeline_code.record_run run --split-dir D --evaluation-dir D --analysis-dir D --output-dir D
--training-path AutoML|XGBoost --job-name NAME [--training-job-name NAME] [--bias-facets F]`` logs to the run of this
execution (created on first use; a retried step finds it by its ``mlops.pipeline_execution_arn`` tag, so
retries add nothing twice):

- tags: the execution ARN, the code commit (``mlops.code_commit`` and ``mlflow.source.git.commit``), the
  training path, and ``mlops.bias_skipped`` (why) when the analysis has no bias metrics (``--bias-facets`` empty,
  or ``bias_skipped`` in ``analysis.json``); params: split mode, seed, fractions, problem type, target, features,
  job names, the chosen candidate and the execution's facets;
- metrics: rows per split, every evaluation metric (``<section>.<metric>``), every bias metric
  (``bias.<pre|post>.<facet>.<value>.<metric>``), the global SHAP values (``shap.<output>.<feature>``), and each
  candidate's objective value (``candidate.objective`` with ``step`` = its rank);
- artifacts: ``split_summary.json``, ``evaluation.json``, ``analysis.json``, ``summary.json``,
  ``candidates.json`` and the plots under ``plots/``: the ROC curve (binary) or the confusion matrix
  (multiclass) of the test split, and the global SHAP values of each explained output.

Candidates come from SageMaker (``ListCandidatesForAutoMLJob``, or ``ListTrainingJobsForHyperParameterTuningJob``);
with ``MLOPS_LOCAL_JOBS_FILE`` set (the local pipeline runner) they are read from that JSON file instead, which
holds the same response shapes. For the XGBoost path the retrain's training history goes to the run too: the
``train:<metric>`` and ``validation:<metric>`` series the built-in algorithm publishes to CloudWatch (namespace
``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``, one-minute points), logged with ``step`` = the
point's index (not in local runs, which have no CloudWatch). The run ends ``FINISHED``; ``run.json`` (run id, experiment id) goes to
``--output-dir``.

``python3 -m pipeline_code.record_run registration --run-dir D --model-package-arn ARN`` tags that run with the
version the execution registered.

Environment: ``MLFLOW_TRACKING_URI`` (the MLflow App's ARN, which the sagemaker-mlflow plugin resolves; locally a
``sqlite:///`` store), ``MLOPS_EXPERIMENT_NAME``, ``MLOPS_PIPELINE_EXECUTION_ARN``, ``MLOPS_CODE_COMMIT``,
optional ``MLOPS_ARTIFACT_LOCATION`` for a new experiment. Without ``MLFLOW_TRACKING_URI`` nothing is logged.
Runs in the scikit-learn image (Python 3.9) after ``pipeline_code.offline_install``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from pipeline_code.problem import NO_FACETS_REASON

EXECUTION_TAG = "mlops.pipeline_execution_arn"
BIAS_SKIPPED_TAG = "mlops.bias_skipped"
RUN_FILE = "run.json"
KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM_LENGTH = 6000


class RecordError(ValueError):
    """Raised when an input the run needs is missing or malformed."""


def metric_key(*parts) -> str:
    """An MLflow metric key from ``parts`` (characters MLflow refuses become ``_``)."""
    return KEY_CHARACTERS.sub("_", ".".join(str(p) for p in parts if p != ""))


def read_json(folder: Path, name: str, required: bool = True):
    path = folder / name
    if not path.is_file():
        if required:
            raise RecordError(f"{path} does not exist")
        return None
    return json.loads(path.read_text())


def split_values(summary: dict) -> tuple:
    """(params, metrics) of the split summary."""
    params = {key: summary[key] for key in ("mode", "seed", "problem_type", "target", "oversample_ratio")
              if key in summary}
    params["fractions"] = ",".join(str(f) for f in summary.get("fractions", []))
    params["features"] = ",".join(summary.get("features", []))
    metrics = {metric_key("rows", name): count for name, count in summary.get("rows", {}).items()}
    for split_name, counts in summary.get("positives", {}).items():
        metrics[metric_key("positives", split_name)] = counts
    return params, metrics


def evaluation_metrics(evaluation: dict) -> dict:
    """``<section>.<metric>`` -> value for every metric with a numeric ``value``."""
    found = {}
    for section, metrics in evaluation.items():
        if not isinstance(metrics, dict):
            continue
        for name, entry in metrics.items():
            if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)) and not isinstance(
                    entry.get("value"), bool):
                found[metric_key(section, name)] = float(entry["value"])
    return found


def analysis_metrics(analysis: dict) -> dict:
    """Bias metrics and global SHAP values of a Clarify-layout ``analysis.json``."""
    found = {}
    for stage, section in (("pre", "pre_training_bias_metrics"), ("post", "post_training_bias_metrics")):
        for facet, entries in (analysis.get(section) or {}).get("facets", {}).items():
            for entry in entries:
                for metric in entry.get("metrics", []):
                    if isinstance(metric.get("value"), (int, float)) and not isinstance(metric.get("value"), bool):
                        found[metric_key("bias", stage, facet, entry.get("value_or_threshold"), metric["name"])] = \
                            float(metric["value"])
    for output, values in ((analysis.get("explanations") or {}).get("kernel_shap") or {}).items():
        for feature, value in (values.get("global_shap_values") or {}).items():
            found[metric_key("shap", output, feature)] = float(value)
    return found


def bias_skipped(analysis: dict, bias_facets: str | None = None) -> str | None:
    """Why the analysis has no bias metrics, or None when it has them: the analysis's own ``bias_skipped``,
    else ``NO_FACETS_REASON`` when the execution's facets (``bias_facets``) are empty."""
    if any(analysis.get(section) for section in ("pre_training_bias_metrics", "post_training_bias_metrics")):
        return None
    if analysis.get("bias_skipped"):
        return str(analysis["bias_skipped"])
    if bias_facets is not None and not bias_facets.strip():
        return NO_FACETS_REASON
    return "bias skipped: the analysis has no bias metrics"


def automl_candidates(sagemaker, job_name: str) -> list:
    """Every candidate of the AutoML job: name, status, objective metric (best first)."""
    found = []
    for page in sagemaker.get_paginator("list_candidates_for_auto_ml_job").paginate(
            AutoMLJobName=job_name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending"):
        for candidate in page["Candidates"]:
            objective = candidate.get("FinalAutoMLJobObjectiveMetric", {})
            found.append({"name": candidate["CandidateName"], "status": candidate.get("CandidateStatus"),
                          "metric": objective.get("MetricName"), "value": objective.get("Value")})
    return found


def tuning_candidates(sagemaker, job_name: str) -> list:
    """Every training job of the tuning job: name, status, objective value, tuned hyperparameters."""
    found = []
    for page in sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=job_name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending"):
        for job in page["TrainingJobSummaries"]:
            objective = job.get("FinalHyperParameterTuningJobObjectiveMetric", {})
            found.append({"name": job["TrainingJobName"], "status": job.get("TrainingJobStatus"),
                          "metric": objective.get("MetricName"), "value": objective.get("Value"),
                          "hyperparameters": job.get("TunedHyperParameters", {})})
    return found


def candidates(training_path: str, job_name: str, sagemaker=None, local_jobs: Path | None = None) -> list:
    """The candidates of ``job_name``: from SageMaker, or from the local runner's jobs file."""
    if local_jobs is not None:
        jobs = json.loads(Path(local_jobs).read_text())
        if job_name not in jobs:
            raise RecordError(f"the local jobs file {local_jobs} has no job {job_name!r}")
        return jobs[job_name]
    if training_path == "AutoML":
        return automl_candidates(sagemaker, job_name)
    if training_path == "XGBoost":
        return tuning_candidates(sagemaker, job_name)
    raise RecordError(f"training path {training_path!r} is not AutoML or XGBoost")


def draw_plots(evaluation: dict, analysis: dict, folder: Path) -> list:
    """The PNG plots of the evaluation and the explanations, written to ``folder``; returns their paths."""
    from pipeline_code import plots

    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    if "receiver_operating_characteristic_curve" in evaluation.get("binary_classification_metrics", {}):
        plots.plot_roc(evaluation, folder / "roc_curve.png")
        drawn.append(folder / "roc_curve.png")
    if "confusion_matrix" in evaluation.get("multiclass_classification_metrics", {}):
        plots.plot_confusion(evaluation, folder / "confusion_matrix.png")
        drawn.append(folder / "confusion_matrix.png")
    for output, values in ((analysis.get("explanations") or {}).get("kernel_shap") or {}).items():
        shap_values = values.get("global_shap_values") or {}
        if shap_values:
            path = folder / f"shap_{metric_key(output)}.png"
            plots.plot_importance(shap_values, f"Global SHAP values ({output})", path)
            drawn.append(path)
    return drawn


TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def training_history(sagemaker, cloudwatch, job_name: str) -> dict:
    """``<metric>`` -> values in time order, for every metric the training job reported (DescribeTrainingJob's
    ``FinalMetricDataList`` names them; GetMetricData gives their series over the job's training time)."""
    job = sagemaker.describe_training_job(TrainingJobName=job_name)
    names = [m["MetricName"] for m in job.get("FinalMetricDataList", [])]
    start, end = job.get("TrainingStartTime"), job.get("TrainingEndTime")
    if not names or start is None or end is None:
        return {}
    queries = [{"Id": f"m{index}", "Label": name, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": TRAINING_NAMESPACE, "MetricName": name,
                   "Dimensions": [{"Name": "TrainingJobName", "Value": job_name}]},
        "Period": 60, "Stat": "Average"}} for index, name in enumerate(names)]
    series: dict = {name: [] for name in names}
    token = None
    while True:
        request = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
        if token:
            request["NextToken"] = token
        answer = cloudwatch.get_metric_data(**request)
        for result in answer["MetricDataResults"]:
            series[result["Label"]] += list(result.get("Values", []))
        token = answer.get("NextToken")
        if not token:
            return series


def tracking_client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def run_of_execution(client, experiment_name: str, execution_arn: str, artifact_location: str | None = None) -> tuple:
    """(experiment id, run id) of this execution's run, created when there is none."""
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        experiment_name, artifact_location=artifact_location)
    escaped = execution_arn.replace("'", "\\'")
    existing = client.search_runs([experiment_id], filter_string=f"tags.`{EXECUTION_TAG}` = '{escaped}'",
                                  max_results=1)
    if existing:
        return experiment_id, existing[0].info.run_id
    run = client.create_run(experiment_id, run_name=execution_arn.rsplit("/", 1)[-1],
                            tags={EXECUTION_TAG: execution_arn})
    return experiment_id, run.info.run_id


def log_values(client, run_id: str, params: dict, metrics: dict, tags: dict, step: int = 0,
               series: list | None = None) -> None:
    """Log ``params``, ``metrics`` (at ``step``), ``tags`` and ``series`` ((key, value, step) each) in as few
    ``log_batch`` requests as MLflow allows."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    params = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in sorted(params.items())]
    metrics = [Metric(key, value, now, step) for key, value in sorted(metrics.items())]
    metrics += [Metric(key, value, now, point) for key, value, point in series or []]
    tags = [RunTag(key, str(value)) for key, value in sorted(tags.items())]
    for start in range(0, max(len(params), len(metrics), len(tags)), 100):
        client.log_batch(run_id, metrics=metrics[start:start + 100], params=params[start:start + 100],
                         tags=tags[start:start + 100])


def record_run(args: argparse.Namespace, environment: dict, sagemaker=None, cloudwatch=None) -> dict | None:
    """Log the execution (see module docstring); returns what ``run.json`` holds, or None without a store."""
    tracking_uri = environment.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri:
        print("record_run: MLFLOW_TRACKING_URI is not set; nothing is logged")
        return None
    execution_arn = environment.get("MLOPS_PIPELINE_EXECUTION_ARN") or "unknown-execution"
    commit = environment.get("MLOPS_CODE_COMMIT", "")
    summary = read_json(args.split_dir, "split_summary.json")
    evaluation = read_json(args.evaluation_dir, "evaluation.json")
    analysis = read_json(args.analysis_dir, "analysis.json")
    local_jobs = environment.get("MLOPS_LOCAL_JOBS_FILE")
    found = candidates(args.training_path, args.job_name, sagemaker, Path(local_jobs) if local_jobs else None)
    client = tracking_client(tracking_uri)
    experiment_id, run_id = run_of_execution(client, environment.get("MLOPS_EXPERIMENT_NAME") or "pipeline",
                                             execution_arn, environment.get("MLOPS_ARTIFACT_LOCATION"))
    params, metrics = split_values(summary)
    params = {metric_key("split", k): v for k, v in params.items()}
    params.update({"training_path": args.training_path, "job_name": args.job_name})
    if args.training_job_name:
        params["training_job_name"] = args.training_job_name
    if found:
        params["chosen_candidate"] = found[0]["name"]
    metrics.update(evaluation_metrics(evaluation))
    metrics.update(analysis_metrics(analysis))
    tags = {"mlops.code_commit": commit, "mlflow.source.git.commit": commit.split("-")[0],
            "mlops.training_path": args.training_path}
    bias_facets = getattr(args, "bias_facets", None)
    if bias_facets:
        params["bias_facets"] = bias_facets
    skipped = bias_skipped(analysis, bias_facets)
    if skipped:
        tags[BIAS_SKIPPED_TAG] = skipped
    series = [("candidate.objective", float(c["value"]), rank) for rank, c in enumerate(found)
              if isinstance(c.get("value"), (int, float))]
    if args.training_job_name and sagemaker is not None and cloudwatch is not None:
        series += [(metric_key("training", name), float(value), point)
                   for name, values in training_history(sagemaker, cloudwatch, args.training_job_name).items()
                   for point, value in enumerate(values)]
    log_values(client, run_id, params, metrics, tags, series=series)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "candidates.json").write_text(json.dumps(found, indent=2, sort_keys=True, default=str))
    for folder, name in ((args.split_dir, "split_summary.json"), (args.evaluation_dir, "evaluation.json"),
                         (args.analysis_dir, "analysis.json"), (args.analysis_dir, "summary.json"),
                         (args.output_dir, "candidates.json")):
        if (folder / name).is_file():
            client.log_artifact(run_id, str(folder / name))
    for path in draw_plots(evaluation, analysis, args.output_dir / "plots"):
        client.log_artifact(run_id, str(path), artifact_path="plots")
    client.set_terminated(run_id, "FINISHED")
    record = {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": tracking_uri}
    (args.output_dir / RUN_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    print(f"record_run: run {run_id} of experiment {experiment_id}: {len(params)} params, {len(metrics)} metrics, "
          f"{len(found)} candidates")
    return record


def record_registration(args: argparse.Namespace, environment: dict) -> str | None:
    """Tag the execution's run with the registered model package; returns the run id."""
    record = read_json(args.run_dir, RUN_FILE)
    tracking_uri = environment.get("MLFLOW_TRACKING_URI") or record.get("tracking_uri", "")
    if not tracking_uri:
        print("record_run: MLFLOW_TRACKING_URI is not set; nothing is logged")
        return None
    client = tracking_client(tracking_uri)
    log_values(client, record["run_id"], {"model_package_arn": args.model_package_arn}, {},
               {"mlops.model_package_arn": args.model_package_arn})
    print(f"record_run: run {record['run_id']} registered as {args.model_package_arn}")
    return record["run_id"]


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.record_run", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="log the execution's split, candidates, metrics and reports")
    run.add_argument("--split-dir", type=Path, required=True)
    run.add_argument("--evaluation-dir", type=Path, required=True)
    run.add_argument("--analysis-dir", type=Path, required=True)
    run.add_argument("--output-dir", type=Path, required=True)
    run.add_argument("--training-path", required=True, choices=["AutoML", "XGBoost"])
    run.add_argument("--job-name", required=True, help="the AutoML or tuning job")
    run.add_argument("--training-job-name", default="", help="the XGBoost retrain")
    run.add_argument("--bias-facets", default=None, help="the execution's BiasFacets (empty: no bias analysis)")
    registration = commands.add_parser("registration", help="tag the run with the registered version")
    registration.add_argument("--run-dir", type=Path, required=True)
    registration.add_argument("--model-package-arn", required=True)
    return parser.parse_args(argv)


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    environment = dict(os.environ)
    try:
        if args.command == "registration":
            record_registration(args, environment)
            return 0
        sagemaker = cloudwatch = None
        if not environment.get("MLOPS_LOCAL_JOBS_FILE") and environment.get("MLFLOW_TRACKING_URI"):
            import boto3

            sagemaker = boto3.client("sagemaker")
            cloudwatch = boto3.client("cloudwatch")
        record_run(args, environment, sagemaker, cloudwatch)
    except (RecordError, json.JSONDecodeError) as error:
        print(f"record_run: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
