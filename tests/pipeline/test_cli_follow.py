"""``cli follow`` progress: steps done of the execution's path, running jobs' metrics, plain and rich output.

botocore Stubber with the real response shapes (validated against the service models)."""

from __future__ import annotations

import datetime
import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from pipeline_code import cli, progress
from pipeline_code.definition import build_definition

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/fraud/execution/abc"
T0 = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.timezone.utc)
NOW = T0 + datetime.timedelta(minutes=10)
ESCAPE = "\x1b"


def clock():
    return NOW


def client(service: str):
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


def job_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def step(name, status, start_minute=0, end_minute=None, **extra) -> dict:
    summary = {"StepName": name, "StepStatus": status, "StartTime": T0 + datetime.timedelta(minutes=start_minute)}
    if end_minute is not None:
        summary["EndTime"] = T0 + datetime.timedelta(minutes=end_minute)
    summary.update(extra)
    return summary


def condition(name, status, outcome=None, minute=0) -> dict:
    return step(name, status, minute, minute if status != "Executing" else None,
                **({"Metadata": {"Condition": {"Outcome": outcome}}} if outcome else {}))


def expect_definition(stubber, steps: list) -> None:
    stubber.add_response("describe_pipeline_definition_for_execution",
                         {"PipelineDefinition": json.dumps({"Version": "2020-12-01", "Steps": steps}),
                          "CreationTime": T0},
                         {"PipelineExecutionArn": ARN})


def expect_poll(stubber, status: str, steps: list) -> None:
    stubber.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": status},
                         {"PipelineExecutionArn": ARN})
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": list(steps)},
                         {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"})


def plain(step_name: str, kind: str = "Processing") -> dict:
    return {"Name": step_name, "Type": kind, "Arguments": {}}


def follow_plain(sagemaker, cloudwatch=None) -> tuple:
    out = io.StringIO()
    final = cli.follow(sagemaker, ARN, out=out, poll_seconds=0, sleep=lambda _: None, cloudwatch=cloudwatch, now=clock)
    return final, out.getvalue()


def training_job(name: str, final_metrics: list, secondary: str = "Training") -> dict:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": job_arn("training-job", name),
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": secondary,
        "HyperParameters": {"eval_metric": "auc", "objective": "binary:logistic", "early_stopping_rounds": "20"},
        "AlgorithmSpecification": {"TrainingImage": "xgb", "TrainingInputMode": "File"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": T0,
        "TrainingStartTime": T0 + datetime.timedelta(minutes=1),
        "FinalMetricDataList": [{"MetricName": n, "Value": v, "Timestamp": NOW} for n, v in final_metrics],
    }


def metric_request(name: str) -> dict:
    return {
        "MetricDataQueries": [{
            "Id": "metric",
            "MetricStat": {
                "Metric": {"Namespace": "/aws/sagemaker/TrainingJobs", "MetricName": "validation:auc",
                           "Dimensions": [{"Name": "TrainingJobName", "Value": name}]},
                "Period": 60,
                "Stat": "Average",
            },
            "ReturnData": True,
        }],
        "StartTime": T0 + datetime.timedelta(minutes=1),
        "EndTime": NOW + datetime.timedelta(minutes=1),
        "ScanBy": "TimestampAscending",
    }


def test_a_running_automl_step_shows_its_secondary_status_and_best_objective():
    sagemaker = client("sagemaker")
    automl = job_arn("automl-job", "pipelines-abc-AutoMLTrain")
    with Stubber(sagemaker) as stubber:
        expect_definition(stubber, [plain("SplitData"), plain("AutoMLTrain", "AutoML")])
        running = step("AutoMLTrain", "Executing", 2, Metadata={"AutoMLJob": {"Arn": automl}})
        expect_poll(stubber, "Executing", [step("SplitData", "Succeeded", 0, 2), running])
        stubber.add_response("describe_auto_ml_job_v2", {
            "AutoMLJobName": "pipelines-abc-AutoMLTrain", "AutoMLJobArn": automl,
            "AutoMLJobInputDataConfig": [{"ChannelType": "training"}],
            "OutputDataConfig": {"S3OutputPath": "s3://b/automl"}, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/team",
            "CreationTime": T0, "LastModifiedTime": NOW, "AutoMLJobStatus": "InProgress",
            "AutoMLJobSecondaryStatus": "TrainingModels",
            "BestCandidate": {"CandidateName": "c1", "ObjectiveStatus": "Succeeded", "CandidateSteps": [],
                              "CandidateStatus": "Completed", "CreationTime": T0, "LastModifiedTime": NOW,
                              "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 0.8712}},
        }, {"AutoMLJobName": "pipelines-abc-AutoMLTrain"})
        expect_poll(stubber, "Succeeded", [step("SplitData", "Succeeded", 0, 2),
                                           step("AutoMLTrain", "Succeeded", 2, 9)])
        final, text = follow_plain(sagemaker)
        stubber.assert_no_pending_responses()
    lines = text.splitlines()
    assert final == "Succeeded"
    assert any(line.split()[:3] == ["AutoMLTrain", "Executing", "8m00s"]
               and line.endswith("- TrainingModels best F1=0.8712") for line in lines), text
    assert lines[-1] == "[Succeeded] 2/2 steps finished"


def test_a_running_tuning_step_shows_completed_jobs_and_the_best_objective():
    sagemaker = client("sagemaker")
    tuning = job_arn("hyper-parameter-tuning-job", "pipelines-abc-xgboosttune")
    with Stubber(sagemaker) as stubber:
        expect_definition(stubber, [plain("SplitData"), plain("XGBoostTune", "Tuning"),
                                    plain("XGBoostTrain", "Training")])
        running = step("XGBoostTune", "Executing", 2, Metadata={"TuningJob": {"Arn": tuning}})
        expect_poll(stubber, "Executing", [step("SplitData", "Succeeded", 0, 2), running])
        stubber.add_response("describe_hyper_parameter_tuning_job", {
            "HyperParameterTuningJobName": "pipelines-abc-xgboosttune", "HyperParameterTuningJobArn": tuning,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian", "TrainingJobEarlyStoppingType": "Auto",
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2}},
            "HyperParameterTuningJobStatus": "InProgress", "CreationTime": T0,
            "TrainingJobStatusCounters": {"Completed": 7, "InProgress": 2, "Stopped": 3, "RetryableError": 0,
                                          "NonRetryableError": 0},
            "ObjectiveStatusCounters": {"Succeeded": 10, "Pending": 2, "Failed": 0},
            "BestTrainingJob": {
                "TrainingJobName": "pipelines-abc-xgboosttune-004", "TrainingJobArn": job_arn("training-job", "t4"),
                "CreationTime": T0, "TrainingJobStatus": "Completed", "TunedHyperParameters": {"eta": "0.1"},
                "FinalHyperParameterTuningJobObjectiveMetric": {"Type": "Maximize", "MetricName": "validation:auc",
                                                                "Value": 0.9134}},
        }, {"HyperParameterTuningJobName": "pipelines-abc-xgboosttune"})
        expect_poll(stubber, "Stopped", [step("SplitData", "Succeeded", 0, 2), step("XGBoostTune", "Stopped", 2, 9)])
        final, text = follow_plain(sagemaker)
        stubber.assert_no_pending_responses()
    assert final == "Stopped"
    assert "XGBoostTune" in text and "- 7/20 jobs done, 2 running, 3 stopped, best validation:auc=0.9134" in text
    assert text.splitlines()[-1] == "[Stopped] 2/3 steps finished"


def test_a_training_step_shows_the_latest_and_best_of_its_per_round_metric_series():
    sagemaker, cloudwatch = client("sagemaker"), client("cloudwatch")
    name = "pipelines-abc-XGBoostTrain"
    with Stubber(sagemaker) as stubber, Stubber(cloudwatch) as metrics:
        expect_definition(stubber, [plain("XGBoostTrain", "Training")])
        expect_poll(stubber, "Executing", [step("XGBoostTrain", "Executing", 0,
                                                Metadata={"TrainingJob": {"Arn": job_arn("training-job", name)}})])
        stubber.add_response("describe_training_job",
                             training_job(name, [("train:auc", 0.95), ("validation:auc", 0.85)]),
                             {"TrainingJobName": name})
        metrics.add_response("get_metric_data", {"MetricDataResults": [{
            "Id": "metric", "Label": "validation:auc", "StatusCode": "Complete",
            "Timestamps": [T0 + datetime.timedelta(minutes=m) for m in (2, 3, 4)], "Values": [0.80, 0.8641, 0.8502],
        }]}, metric_request(name))
        expect_poll(stubber, "Succeeded", [step("XGBoostTrain", "Succeeded", 0, 9)])
        final, text = follow_plain(sagemaker, cloudwatch)
        stubber.assert_no_pending_responses()
        metrics.assert_no_pending_responses()
    assert final == "Succeeded"
    assert "XGBoostTrain" in text and "- Training validation:auc=0.8502 best=0.8641" in text


@pytest.mark.parametrize("cloudwatch_answer", ["refused", "absent"])
def test_without_cloudwatch_the_training_step_shows_the_final_metric_list(cloudwatch_answer):
    sagemaker, cloudwatch = client("sagemaker"), client("cloudwatch")
    name = "pipelines-abc-XGBoostTrain"
    with Stubber(sagemaker) as stubber, Stubber(cloudwatch) as metrics:
        expect_definition(stubber, [plain("XGBoostTrain", "Training")])
        expect_poll(stubber, "Executing", [step("XGBoostTrain", "Executing", 0,
                                                Metadata={"TrainingJob": {"Arn": job_arn("training-job", name)}})])
        stubber.add_response("describe_training_job",
                             training_job(name, [("train:auc", 0.95), ("validation:auc", 0.8512)]),
                             {"TrainingJobName": name})
        if cloudwatch_answer == "refused":
            metrics.add_client_error("get_metric_data", "AccessDenied", "not authorized", 403,
                                     expected_params=metric_request(name))
        expect_poll(stubber, "Failed", [step("XGBoostTrain", "Failed", 0, 9, FailureReason="AlgorithmError")])
        final, text = follow_plain(sagemaker, cloudwatch if cloudwatch_answer == "refused" else None)
        metrics.assert_no_pending_responses()
    assert final == "Failed"
    assert "- Training validation:auc=0.8512" in text and "best=" not in text
    assert "XGBoostTrain                 Failed        9m00s - AlgorithmError" in text


def test_a_decided_condition_counts_only_the_branch_it_took():
    definition = [plain("A"), {"Name": "Check", "Type": "Condition", "Arguments": {
        "IfSteps": [plain("B"), plain("C"), plain("D")], "ElseSteps": [plain("Fail", "Fail")]}}]
    started = {"A": step("A", "Succeeded", 0, 1)}
    assert progress.path_total(definition, started) == 5, "undecided: the longer branch"
    started["Check"] = condition("Check", "Succeeded", "False")
    assert progress.path_total(definition, started) == 3
    started["Check"] = condition("Check", "Succeeded", "True")
    assert progress.path_total(definition, started) == 5
    started["Check"] = condition("Check", "Failed")
    assert progress.path_total(definition, started) == 2, "a failed condition runs no branch"


def test_the_chosen_training_path_and_quality_gate_reduce_the_total_of_the_real_definition():
    definition = build_definition()
    select = definition["Steps"][1]
    automl_branch = select["Arguments"]["IfSteps"]
    xgboost_branch = select["Arguments"]["ElseSteps"][0]["Arguments"]["IfSteps"]
    gate = next(s for s in automl_branch if s["Type"] == "Condition")
    register, fail = len(gate["Arguments"]["IfSteps"]), len(gate["Arguments"]["ElseSteps"])
    automl_path = 2 + len(automl_branch) + register  # SplitData, SelectTrainingPath, the branch, the longer gate
    xgboost_path = 2 + 1 + len(xgboost_branch) + register  # ... and CheckXGBoostPath
    done_before_gate = [step(s["Name"], "Succeeded", 2, 3) for s in automl_branch if s is not gate]
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stubber:
        expect_definition(stubber, definition["Steps"])
        expect_poll(stubber, "Executing", [step("SplitData", "Executing", 0)])
        chosen = [step("SplitData", "Succeeded", 0, 2), condition("SelectTrainingPath", "Succeeded", "True", 2)]
        expect_poll(stubber, "Executing", chosen)
        expect_poll(stubber, "Failed", chosen + done_before_gate + [
            condition(gate["Name"], "Succeeded", "False", 3),
            step("AutoMLQualityTooLow", "Failed", 3, 3, FailureReason="Test auc 0.4 is not at least 0.5")])
        final, text = follow_plain(sagemaker)
        stubber.assert_no_pending_responses()
    summaries = [line for line in text.splitlines() if line.startswith("[")]
    assert automl_path < xgboost_path and register > fail
    assert summaries == [
        f"[Executing] 0/{xgboost_path} steps finished",  # undecided: the longer path
        f"[Executing] 2/{automl_path} steps finished",
        f"[Failed] {automl_path - register + fail}/{automl_path - register + fail} steps finished",
    ]
    assert final == "Failed"


def scripted_execution(stubber, final_status: str = "Failed") -> None:
    expect_definition(stubber, [plain("SplitData"), plain("AutoMLTrain", "AutoML")])
    expect_poll(stubber, "Executing", [step("SplitData", "Executing", 0)])
    expect_poll(stubber, "Executing", [step("SplitData", "Executing", 0)])
    expect_poll(stubber, final_status, [step("SplitData", "Succeeded", 0, 2),
                                        step("AutoMLTrain", "Failed" if final_status == "Failed" else "Succeeded", 2, 5,
                                             **({"FailureReason": "quota"} if final_status == "Failed" else {}))])


def test_plain_output_is_one_line_per_change_without_escape_codes():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stubber:
        scripted_execution(stubber)
        final, text = follow_plain(sagemaker)
    assert ESCAPE not in text and "\r" not in text
    assert text.splitlines() == [
        "SplitData                    Executing    10m00s",
        "[Executing] 0/2 steps finished",
        "SplitData                    Succeeded     2m00s",
        "AutoMLTrain                  Failed        3m00s - quota",
        "[Failed] 2/2 steps finished",
    ], "an unchanged poll writes nothing"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_live_rich_table_and_ends_with_the_status_line():
    sagemaker = client("sagemaker")
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with Stubber(sagemaker) as stubber:
        scripted_execution(stubber)
        final = cli.follow(sagemaker, ARN, poll_seconds=0, sleep=lambda _: None, console=console, now=clock)
    text = console.file.getvalue()
    assert final == "Failed"
    assert ESCAPE in text and "━" in text, "a rich Live table with a progress bar"
    assert "AutoMLTrain" in text and "quota" in text
    assert text.rstrip().endswith("[Failed] 2/2 steps finished")


def test_the_rich_display_is_chosen_when_out_is_a_terminal():
    sagemaker, out = client("sagemaker"), Terminal()
    with Stubber(sagemaker) as stubber:
        scripted_execution(stubber)
        cli.follow(sagemaker, ARN, out=out, poll_seconds=0, sleep=lambda _: None, now=clock)
    assert ESCAPE in out.getvalue()


@pytest.mark.parametrize(("final_status", "code"), [("Failed", 1), ("Succeeded", 0)])
def test_the_exit_code_follows_the_execution(monkeypatch, final_status, code):
    sagemaker, cloudwatch = client("sagemaker"), client("cloudwatch")
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    monkeypatch.setattr(session, "client", {"sagemaker": sagemaker, "cloudwatch": cloudwatch}.__getitem__)
    with Stubber(sagemaker) as stubber:
        scripted_execution(stubber, final_status)
        assert cli.main(["follow", "--execution", ARN, "--poll-seconds", "0"], session=session) == code
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(("hyperparameters", "final", "expected"), [
    ({"_tuning_objective_metric": '"validation:rmse"', "eval_metric": "mae"}, [], "validation:rmse"),
    ({"eval_metric": "logloss,merror"}, [], "validation:merror"),
    ({}, [("train:rmse", 1.0), ("validation:rmse", 2.0)], "validation:rmse"),
    ({}, [("train:rmse", 1.0)], None),
])
def test_the_judged_metric_is_the_tuning_objective_else_the_last_eval_metric(hyperparameters, final, expected):
    job = {"HyperParameters": hyperparameters, "FinalMetricDataList": [{"MetricName": n, "Value": v} for n, v in final]}
    assert progress.training_metric_name(job) == expected


def test_the_best_of_a_minimized_metric_is_its_lowest_value():
    sagemaker, cloudwatch = client("sagemaker"), client("cloudwatch")
    name = "pipelines-abc-XGBoostTrain"
    job = training_job(name, [], secondary="Training")
    job["HyperParameters"] = {"eval_metric": "rmse"}
    request = metric_request(name)
    request["MetricDataQueries"][0]["MetricStat"]["Metric"]["MetricName"] = "validation:rmse"
    with Stubber(sagemaker) as stubber, Stubber(cloudwatch) as metrics:
        stubber.add_response("describe_training_job", job, {"TrainingJobName": name})
        metrics.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "metric", "StatusCode": "Complete", "Values": [3.0, 2.25, 2.5]}]}, request)
        detail = progress.training_detail(sagemaker, cloudwatch, job_arn("training-job", name), NOW)
    assert detail == "Training validation:rmse=2.5 best=2.25"
