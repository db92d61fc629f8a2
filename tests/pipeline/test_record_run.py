"""record_run: one MLflow run per execution with its split, candidates, metrics and reports (local sqlite store)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from mlflow.tracking import MlflowClient

from pipeline_code import record_run

EXECUTION = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlp-fraud-fraud-detection/execution/abc123def456"
SUMMARY = {"mode": "stratified", "seed": 42, "fractions": [0.7, 0.15, 0.15], "problem_type": "binary",
           "target": "is_fraud", "features": ["amount", "hour"], "rows": {"train": 700, "validation": 150, "test": 150},
           "positives": {"train": 14, "validation": 3, "test": 3}}
ROC = {"false_positive_rates": [0, 0.1, 1], "true_positive_rates": [0, 0.8, 1]}
EVALUATION = {"binary_classification_metrics": {"auc": {"value": 0.91, "standard_deviation": 0.01},
                                                "accuracy": {"value": 0.97, "standard_deviation": "NaN"},
                                                "confusion_matrix": {"0": {"0": 140, "1": 2}}}}
ANALYSIS = {
    "pre_training_bias_metrics": {"facets": {"home_state": [{"value_or_threshold": "CA", "metrics": [
        {"name": "CI", "description": "Class Imbalance (CI)", "value": 0.42}]}]}},
    "post_training_bias_metrics": {"facets": {"home_state": [{"value_or_threshold": "CA", "metrics": [
        {"name": "DPPL", "description": "...", "value": -0.01}, {"name": "DI", "description": "...", "value": None}]}]}},
    "explanations": {"kernel_shap": {"label0": {"global_shap_values": {"amount": 0.12, "hour": 0.03},
                                                "expected_value": 0.02}}},
}
CANDIDATES = {"pipelines-abc-AutoMLTrain": [{"name": "best", "status": "Completed", "metric": "validation:auc",
                                             "value": 0.93}, {"name": "second", "status": "Completed",
                                                              "metric": "validation:auc", "value": 0.9}]}


@pytest.fixture
def inputs(tmp_path):
    for folder, name, body in (("split", "split_summary.json", SUMMARY), ("evaluation", "evaluation.json", EVALUATION),
                               ("analysis", "analysis.json", ANALYSIS)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps(body))
    (tmp_path / "jobs.json").write_text(json.dumps(CANDIDATES))
    store = tmp_path / "mlflow"
    store.mkdir()
    environment = {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
                   "MLOPS_ARTIFACT_LOCATION": (store / "artifacts").as_uri(),
                   "MLOPS_EXPERIMENT_NAME": "mlp-fraud-fraud-detection", "MLOPS_PIPELINE_EXECUTION_ARN": EXECUTION,
                   "MLOPS_CODE_COMMIT": "a" * 40, "MLOPS_LOCAL_JOBS_FILE": str(tmp_path / "jobs.json")}
    args = argparse.Namespace(split_dir=tmp_path / "split", evaluation_dir=tmp_path / "evaluation",
                              analysis_dir=tmp_path / "analysis", output_dir=tmp_path / "run", training_path="AutoML",
                              job_name="pipelines-abc-AutoMLTrain", training_job_name="")
    return args, environment


def test_the_run_records_split_candidates_metrics_tags_and_reports(inputs):
    args, environment = inputs
    record = record_run.record_run(args, environment)
    client = MlflowClient(environment["MLFLOW_TRACKING_URI"])
    run = client.get_run(record["run_id"])
    assert run.info.run_name == "abc123def456"
    assert run.info.status == "FINISHED"
    assert run.data.tags[record_run.EXECUTION_TAG] == EXECUTION
    assert run.data.tags["mlflow.source.git.commit"] == "a" * 40
    assert run.data.params["split.mode"] == "stratified" and run.data.params["split.seed"] == "42"
    assert run.data.params["chosen_candidate"] == "best"
    metrics = run.data.metrics
    assert metrics["rows.test"] == 150 and metrics["positives.train"] == 14
    assert metrics["binary_classification_metrics.auc"] == 0.91
    assert "binary_classification_metrics.confusion_matrix" not in metrics
    assert metrics["bias.pre.home_state.CA.CI"] == 0.42
    assert "bias.post.home_state.CA.DI" not in metrics, "a metric without a value is not logged"
    assert metrics["shap.label0.amount"] == 0.12
    history = client.get_metric_history(record["run_id"], "candidate.objective")
    assert [(m.step, m.value) for m in history] == [(0, 0.93), (1, 0.9)]
    artifacts = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"split_summary.json", "evaluation.json", "analysis.json", "candidates.json", "plots"} <= artifacts
    assert {a.path for a in client.list_artifacts(record["run_id"], "plots")} == {"plots/shap_label0.png"}
    assert json.loads((args.output_dir / "run.json").read_text())["run_id"] == record["run_id"]


def test_a_retried_step_logs_into_the_same_run(inputs):
    args, environment = inputs
    first = record_run.record_run(args, environment)
    second = record_run.record_run(args, environment)
    assert first["run_id"] == second["run_id"]
    client = MlflowClient(environment["MLFLOW_TRACKING_URI"])
    assert len(client.search_runs([first["experiment_id"]])) == 1
    other = record_run.record_run(args, {**environment, "MLOPS_PIPELINE_EXECUTION_ARN": EXECUTION[:-3] + "999"})
    assert other["run_id"] != first["run_id"], "another execution gets its own run"


def test_registration_tags_the_run_with_the_model_package(inputs):
    args, environment = inputs
    record = record_run.record_run(args, environment)
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-fraud-fraud-detection/3"
    registration = argparse.Namespace(run_dir=args.output_dir, model_package_arn=arn)
    assert record_run.record_registration(registration, environment) == record["run_id"]
    run = MlflowClient(environment["MLFLOW_TRACKING_URI"]).get_run(record["run_id"])
    assert run.data.tags["mlops.model_package_arn"] == arn


def test_without_a_tracking_uri_nothing_is_logged(inputs, capsys):
    args, environment = inputs
    assert record_run.record_run(args, {k: v for k, v in environment.items() if k != "MLFLOW_TRACKING_URI"}) is None
    assert "nothing is logged" in capsys.readouterr().out
    assert not args.output_dir.exists()


def test_a_missing_report_fails_naming_it(inputs):
    args, environment = inputs
    (args.evaluation_dir / "evaluation.json").unlink()
    with pytest.raises(record_run.RecordError, match="evaluation.json does not exist"):
        record_run.record_run(args, environment)


def _sagemaker():
    return boto3.client("sagemaker", region_name="eu-west-1")


def test_automl_candidates_come_from_list_candidates_best_first():
    client = _sagemaker()
    with Stubber(client) as stub:
        stub.add_response("list_candidates_for_auto_ml_job", {"Candidates": [
            {"CandidateName": "c1", "CandidateStatus": "Completed", "ObjectiveStatus": "Succeeded",
             "CandidateSteps": [], "CreationTime": datetime(2026, 12, 1, tzinfo=timezone.utc),
             "LastModifiedTime": datetime(2026, 12, 1, tzinfo=timezone.utc),
             "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 0.8}}]},
            {"AutoMLJobName": "job", "SortBy": "FinalObjectiveMetricValue", "SortOrder": "Descending"})
        found = record_run.candidates("AutoML", "job", client)
    assert found == [{"name": "c1", "status": "Completed", "metric": "F1", "value": 0.8}]


def test_tuning_candidates_come_from_the_tuning_jobs_training_jobs():
    client = _sagemaker()
    with Stubber(client) as stub:
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": [
            {"TrainingJobName": "t1", "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/t1",
             "CreationTime": datetime(2026, 12, 1, tzinfo=timezone.utc), "TrainingJobStatus": "Completed",
             "TunedHyperParameters": {"eta": "0.1"},
             "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:auc", "Value": 0.9}}]},
            {"HyperParameterTuningJobName": "tune", "SortBy": "FinalObjectiveMetricValue", "SortOrder": "Descending"})
        found = record_run.candidates("XGBoost", "tune", client)
    assert found == [{"name": "t1", "status": "Completed", "metric": "validation:auc", "value": 0.9,
                      "hyperparameters": {"eta": "0.1"}}]


def test_metric_keys_keep_to_what_mlflow_accepts():
    assert record_run.metric_key("bias", "post", "age", "(60, 89]", "DI") == "bias.post.age._60_ 89_.DI"


def test_the_plots_are_the_roc_curve_and_the_shap_values(tmp_path):
    evaluation = {"binary_classification_metrics": {**EVALUATION["binary_classification_metrics"],
                                                    "receiver_operating_characteristic_curve": ROC}}
    drawn = record_run.draw_plots(evaluation, ANALYSIS, tmp_path)
    assert [p.name for p in drawn] == ["roc_curve.png", "shap_label0.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)


def _training_stubs(sagemaker, cloudwatch):
    started, ended = datetime(2026, 12, 1, 10, tzinfo=timezone.utc), datetime(2026, 12, 1, 10, 5, tzinfo=timezone.utc)
    sagemaker_stub, cloudwatch_stub = Stubber(sagemaker), Stubber(cloudwatch)
    sagemaker_stub.add_response("describe_training_job", {
        "TrainingJobName": "retrain", "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/retrain",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}, "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed", "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"VolumeSizeInGB": 30}, "StoppingCondition": {},
        "CreationTime": started, "TrainingStartTime": started, "TrainingEndTime": ended,
        "FinalMetricDataList": [{"MetricName": "train:auc", "Value": 0.95}, {"MetricName": "validation:auc",
                                                                              "Value": 0.9}]},
        {"TrainingJobName": "retrain"})
    query = {"Namespace": "/aws/sagemaker/TrainingJobs", "Dimensions": [{"Name": "TrainingJobName", "Value": "retrain"}]}
    expected = {"MetricDataQueries": [
        {"Id": f"m{i}", "Label": name, "ReturnData": True,
         "MetricStat": {"Metric": {**query, "MetricName": name}, "Period": 60, "Stat": "Average"}}
        for i, name in enumerate(["train:auc", "validation:auc"])],
        "StartTime": started, "EndTime": ended, "ScanBy": "TimestampAscending"}
    cloudwatch_stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "m0", "Label": "train:auc", "Values": [0.8, 0.9]},
        {"Id": "m1", "Label": "validation:auc", "Values": [0.7]}], "NextToken": "more"}, expected)
    cloudwatch_stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "m0", "Label": "train:auc", "Values": [0.95]},
        {"Id": "m1", "Label": "validation:auc", "Values": [0.85, 0.9]}]}, {**expected, "NextToken": "more"})
    return sagemaker_stub, cloudwatch_stub


def test_the_xgboost_retrains_history_is_logged_point_by_point(inputs):
    args, environment = inputs
    args.training_path, args.job_name, args.training_job_name = "XGBoost", "pipelines-abc-AutoMLTrain", "retrain"
    sagemaker, cloudwatch = _sagemaker(), boto3.client("cloudwatch", region_name="eu-west-1")
    sagemaker_stub, cloudwatch_stub = _training_stubs(sagemaker, cloudwatch)
    with sagemaker_stub, cloudwatch_stub:
        record = record_run.record_run(args, environment, sagemaker, cloudwatch)
        sagemaker_stub.assert_no_pending_responses()
        cloudwatch_stub.assert_no_pending_responses()
    client = MlflowClient(environment["MLFLOW_TRACKING_URI"])
    history = client.get_metric_history(record["run_id"], "training.validation_auc")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.7), (1, 0.85), (2, 0.9)]
    assert len(client.get_metric_history(record["run_id"], "training.train_auc")) == 3
