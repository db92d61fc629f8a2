"""The drift baseline and the monitoring job's parts: capture and ground-truth reading, the window, metrics, MLflow.

The whole job on a real pipeline run's baseline, with a clean and a shifted window, is in
tests/pipeline/test_local_pipeline.py; under the image's Python in tests/pipeline/test_offline_install.py.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_code import baseline, capture, drift, monitor
from pipeline_code.problem import FRAUD
from tools import capture_records

END = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
FEATURES = ["amount", "channel"]
KINDS = {"amount": drift.NUMERICAL, "channel": drift.CATEGORICAL}
PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/mlp-fraud-fraud-detection/7"


def _record(data: str, response: str, time: datetime, event: str = "e", encoding: str = "CSV", **metadata) -> str:
    body = base64.b64encode(data.encode()).decode() if encoding == "BASE64" else data
    return json.dumps({"captureData": {"endpointInput": {"data": body, "encoding": encoding},
                                       "endpointOutput": {"data": response, "encoding": "CSV"}},
                       "eventMetadata": {"eventId": event, "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                         **metadata}, "eventVersion": "0"})


def test_the_window_keeps_requests_by_inference_time_and_serving_start():
    start = END - timedelta(hours=2)
    records = [
        _record("1.0,web", "0.1", start - timedelta(seconds=1), "before-window"),
        _record("2.0,web", "0.2", start + timedelta(minutes=5), "before-serving"),
        _record("3.0,store", "0.3", start + timedelta(minutes=30), "kept"),
        _record("4.0,web", "0.4", END - timedelta(seconds=1), "last"),
        _record("5.0,web", "0.5", END, "at-end"),
    ]
    window = capture.read_window(records, FEATURES, KINDS, start, END, not_before=start + timedelta(minutes=10))
    assert window.features["amount"].tolist() == [3.0, 4.0]
    assert window.features["channel"].tolist() == ["store", "web"]
    assert window.responses == ["0.3", "0.4"] and window.event_ids == [("kept", 0), ("last", 0)]
    assert window.requests == 2 and window.skipped == {}


def test_several_rows_base64_bodies_and_unusable_records_are_handled_and_counted():
    time = END - timedelta(minutes=1)
    records = [
        _record("1.5,web\n2.5,mail", "0.1\n0.9", time, "batch"),
        _record("7.25,phone", "0.4", time, "encoded", encoding="BASE64"),
        _record('8.0,"web, mobile"', "0.5", time, "quoted"),
        _record("1.0,web,extra", "0.3", time, "too-wide"),
        _record("1.0,web\n2.0,web", "0.3", time, "one-response"),
        _record("x-not-a-number,web", "0.3", time, "unparsable", inferenceId="my-id"),
        "not json",
        json.dumps({"eventMetadata": {}}),
    ]
    window = capture.read_window(records, FEATURES, KINDS, END - timedelta(hours=1), END)
    assert window.features["amount"].tolist()[:4] == [1.5, 2.5, 7.25, 8.0]
    assert np.isnan(window.features["amount"].iloc[4])
    assert window.features["channel"].tolist() == ["web", "mail", "phone", "web, mobile", "web"]
    assert window.event_ids == [("batch", 0), ("batch", 1), ("encoded", 0), ("quoted", 0), ("my-id", 0)]
    assert window.skipped == {"wrong_field_count": 1, "response_rows_differ": 2, "not_a_capture_record": 2}
    assert window.requests == 6


def test_hour_folders_cover_the_window_and_one_hour_after_it():
    prefixes = capture.hour_prefixes("cap/", datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc),
                                     datetime(2027, 1, 1, 0, 15, tzinfo=timezone.utc), extra_hours=1)
    assert prefixes == ["cap/2026/12/31/22/", "cap/2026/12/31/23/", "cap/2027/01/01/00/", "cap/2027/01/01/01/"]
    with pytest.raises(capture.CaptureError, match="is not after its start"):
        capture.hour_prefixes("cap/", END, END)


def test_s3_and_a_local_folder_give_the_same_lines(tmp_path):
    lines = capture_records.capture_lines(["1,web", "2,store", "3,web"], ["0.1", "0.2", "0.3"],
                                          END - timedelta(hours=3), timedelta(hours=3))
    capture_records.write_hours(tmp_path / "cap", lines)
    prefixes = capture.hour_prefixes("", END - timedelta(hours=3), END)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="team-bucket")
        capture_records.upload_hours(s3, "team-bucket", "data-capture/ep/AllTraffic/", lines)
        store, prefix = capture.location("s3://team-bucket/data-capture/ep/AllTraffic/", s3)
        from_s3 = capture.object_lines(store, [prefix + p for p in prefixes])
        # A sibling prefix that starts with the same text is not read.
        s3.put_object(Bucket="team-bucket", Key="data-capture/ep/AllTraffic2/x.jsonl", Body=b"{}")
        assert capture.object_lines(store, [prefix + p for p in prefixes]) == from_s3
    store, prefix = capture.location(str(tmp_path / "cap") + "/")
    assert capture.object_lines(store, [prefix + p for p in prefixes]) == from_s3 == [line for _, line in lines]
    with pytest.raises(capture.CaptureError, match="no S3 client"):
        capture.location("s3://team-bucket/x/")


def test_ground_truth_matches_by_inference_id_or_event_id_row_by_row():
    time = END - timedelta(minutes=3)
    window = capture.read_window([_record("1,web\n2,web", "0.9\n0.1", time, "batch"),
                                  _record("3,web", "0.8", time, "e2", inferenceId="mine"),
                                  _record("4,web", "0.7", time, "unlabelled")],
                                 FEATURES, KINDS, END - timedelta(hours=1), END)
    labels = capture.ground_truth([
        json.dumps({"groundTruthData": {"data": "1\n0", "encoding": "CSV"}, "eventMetadata": {"eventId": "batch"}}),
        json.dumps({"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "e2",
                                                                                          "inferenceId": "mine"}}),
        "broken",
    ])
    assert capture.labelled(window, labels) == (["1", "0", "1"], ["0.9", "0.1", "0.8"])


def _training_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.gamma(2.0, 50.0, rows).round(2),
                         "channel": rng.choice(["web", "store", "phone"], rows, p=[0.5, 0.3, 0.2]),
                         "is_fraud": rng.choice([0, 1], rows, p=[0.9, 0.1])})


EVALUATION = {"binary_classification_metrics": {"auc": {"value": 0.91, "standard_deviation": 0.01},
                                                "accuracy": {"value": 0.95, "standard_deviation": "NaN"}}}


def _baseline(tmp_path, rows: int = 3000, oversampled: int = 0):
    train = _training_frame(rows, 1)
    if oversampled:
        copies = train[train["is_fraud"] == 1].sample(oversampled, replace=True, random_state=0)
        copies["amount"] = 99999.0  # marks the copies: none may reach the baseline
        train = pd.concat([train, copies], ignore_index=True)
    summary = {"features": FEATURES, "oversampled_rows": oversampled}
    problem = FRAUD.replace(target="is_fraud")
    document, reference = baseline.build(train, summary, EVALUATION, problem, "probability", "auc", 0.5,
                                         max_rows=2500, seed=4)
    path = baseline.write(tmp_path / "baseline", document, reference)
    return path, document, reference, train


def test_the_baseline_leaves_out_oversampled_copies_and_samples_without_replacement(tmp_path):
    _, document, reference, train = _baseline(tmp_path, rows=3000, oversampled=400)
    assert document["reference"] == {"file": "reference.csv", "rows": 2500, "training_rows": 3000, "seed": 4}
    assert len(train) == 3400 and not (reference["amount"] == 99999.0).any()
    assert document["statistics"]["amount"]["max"] < 99999.0
    numbered = pd.DataFrame({"row": range(3000)})
    drawn = baseline.reference_sample(numbered, 2500, seed=4)["row"]
    assert drawn.is_unique and drawn.is_monotonic_increasing and len(drawn) == 2500
    assert list(reference.columns) == FEATURES
    assert document["features"] == [{"name": "amount", "kind": "numerical"}, {"name": "channel", "kind": "categorical"}]
    assert document["statistics"]["amount"]["count"] == 3000
    assert document["statistics"]["channel"]["top_values"]["web"] == pytest.approx(
        (train.iloc[:3000]["channel"] == "web").mean())
    assert document["test_metrics"] == {"accuracy": 0.95, "auc": 0.91}
    again = baseline.build(train, {"features": FEATURES, "oversampled_rows": 400}, EVALUATION,
                           FRAUD.replace(target="is_fraud"), "probability", "auc", 0.5, max_rows=2500, seed=4)[1]
    pd.testing.assert_frame_equal(again, reference)


@pytest.mark.parametrize("summary, evaluation, message", [
    ({"features": []}, EVALUATION, "lists no features"),
    ({"features": ["amount", "age"]}, EVALUATION, r"lacks feature column\(s\) \['age'\]"),
    ({"features": FEATURES, "oversampled_rows": 5000}, EVALUATION, "says 5000 oversampled rows"),
    ({"features": FEATURES}, {"binary_classification_metrics": {"accuracy": {"value": 1.0}}},
     "quality metric 'auc' is not in evaluation.json"),
    ({"features": FEATURES}, {"regression_metrics": {}}, "has no 'binary_classification_metrics' section"),
])
def test_a_baseline_that_cannot_be_made_names_why(summary, evaluation, message):
    with pytest.raises(baseline.BaselineError, match=message):
        baseline.build(_training_frame(100, 0), summary, evaluation, FRAUD.replace(target="is_fraud"),
                       "probability", "auc", 0.5)


def _window_files(tmp_path, frame: pd.DataFrame, scores, labels=None, name: str = "window"):
    rows = frame[FEATURES].astype(str).agg(",".join, axis=1).tolist()
    lines = capture_records.capture_lines(rows, [f"{s:.6f}" for s in scores], END - timedelta(hours=6),
                                          timedelta(hours=5), id_prefix=name)
    capture_records.write_hours(tmp_path / name / "capture", lines)
    if labels is not None:
        capture_records.write_hours(tmp_path / name / "ground-truth",
                                    capture_records.ground_truth_lines(labels, [t for t, _ in lines], name))
    return tmp_path / name


def _run(tmp_path, folder, baseline_path, **changes) -> dict:
    arguments = dict(baseline_uri=str(baseline_path), capture_uri=str(folder / "capture"),
                     ground_truth_uri=str(folder / "ground-truth"), endpoint="mlp-fraud-fraud-detection",
                     model_package_arn=PACKAGE, serving_since="", window_end=END.isoformat(), window_hours=6)
    arguments.update(changes)
    return monitor.monitor(**arguments)


def test_a_shifted_feature_drifts_and_quality_is_measured_on_labelled_rows(tmp_path):
    path, *_ = _baseline(tmp_path)
    current = _training_frame(800, 2)
    current["amount"] = current["amount"] * 1.6
    labels = current["is_fraud"].tolist()
    scores = np.where(np.array(labels) == 1, 0.8, 0.2)
    report = _run(tmp_path, _window_files(tmp_path, current, scores, labels), path)
    assert report["status"] == monitor.OK and report["rows"] == 800 and report["requests"] == 800
    verdicts = {c["column"]: (c["test"], c["drifted"]) for c in report["drift"]["columns"]}
    assert verdicts == {"amount": ("wasserstein", True), "channel": ("jensenshannon", False)}
    assert report["drift"]["drifted_share"] == 0.5
    assert report["quality"]["rows"] == 800
    assert report["quality"]["metrics"]["auc"] == 1.0 and report["quality"]["baseline"]["auc"] == 0.91
    assert report["model_version"] == "7"


def test_a_window_with_too_few_rows_reports_insufficient_data_and_publishes_only_its_count(tmp_path):
    path, *_ = _baseline(tmp_path)
    report = _run(tmp_path, _window_files(tmp_path, _training_frame(20, 3), np.full(20, 0.3)), path)
    assert report["status"] == monitor.INSUFFICIENT and "20 captured rows, fewer than 100" in report["reason"]
    assert {d["MetricName"] for d in monitor.metric_data(report)} == {monitor.METRIC_ROWS}


def test_too_few_labels_give_no_quality(tmp_path):
    path, *_ = _baseline(tmp_path)
    current = _training_frame(300, 5)
    folder = _window_files(tmp_path, current, np.full(300, 0.3), current["is_fraud"].tolist()[:10])
    report = _run(tmp_path, folder, path)
    assert report["status"] == monitor.OK and report["quality"] is None


def test_metrics_name_the_endpoint_version_and_feature(tmp_path):
    path, *_ = _baseline(tmp_path)
    current = _training_frame(400, 6)
    report = _run(tmp_path, _window_files(tmp_path, current, np.full(400, 0.3), current["is_fraud"].tolist()), path)
    data = monitor.metric_data(report)
    endpoint = {"Name": "EndpointName", "Value": "mlp-fraud-fraud-detection"}
    version = {"Name": "ModelVersion", "Value": "7"}
    by_name = {}
    for datum in data:
        by_name.setdefault(datum["MetricName"], []).append(datum["Dimensions"])
    assert by_name[monitor.METRIC_DRIFT_SCORE] == [[endpoint, version, {"Name": "Feature", "Value": f}]
                                                   for f in FEATURES]
    for name in (monitor.METRIC_DRIFTED_SHARE, monitor.METRIC_ROWS, monitor.METRIC_LABELLED, "Quality_auc"):
        assert by_name[name] == [[endpoint, version], [endpoint]], name
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        assert monitor.publish(cloudwatch, "mlp/fraud/Monitoring", data * 120) == -(-len(data) * 120 // 1000)
        listed = cloudwatch.list_metrics(Namespace="mlp/fraud/Monitoring", MetricName="DriftedFeatureShare",
                                         Dimensions=[endpoint])["Metrics"]
        assert {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed} == {
            ("EndpointName",), ("EndpointName", "ModelVersion")}


def test_the_cli_writes_the_report_publishes_and_logs_to_mlflow(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    path, *_ = _baseline(tmp_path)
    current = _training_frame(500, 8)
    folder = _window_files(tmp_path, current, np.full(500, 0.3), current["is_fraud"].tolist())
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    monkeypatch.setenv("MLOPS_EXPERIMENT_NAME", "mlp-fraud-fraud-detection-monitoring")
    monkeypatch.setenv("MLOPS_PIPELINE_EXECUTION_ARN", "arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/abc")
    monkeypatch.setenv("MLOPS_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        code = monitor.main([
            "--baseline-uri", str(path), "--capture-uri", str(folder / "capture"),
            "--ground-truth-uri", str(folder / "ground-truth"), "--endpoint-name", "mlp-fraud-fraud-detection",
            "--model-package-arn", PACKAGE, "--window-end", END.isoformat(), "--window-hours", "6",
            "--output-dir", str(tmp_path / "out"), "--metric-namespace", "mlp/fraud/Monitoring"],
            cloudwatch=cloudwatch)
        assert code == 0
        names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="mlp/fraud/Monitoring")["Metrics"]}
    report = json.loads((tmp_path / "out" / monitor.REPORT_FILE).read_text())
    assert report["rows"] == 500 and {monitor.METRIC_DRIFT_SCORE, "Quality_auc"} <= names
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("mlp-fraud-fraud-detection-monitoring")
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["endpoint"] == "mlp-fraud-fraud-detection"
    assert run.data.metrics["drift.drifted_share"] == report["drift"]["drifted_share"]
    assert run.data.metrics["drift.amount"] == report["drift"]["columns"][0]["score"]


def test_the_cli_names_a_missing_baseline(tmp_path, capsys):
    code = monitor.main(["--baseline-uri", str(tmp_path / "none.json"), "--capture-uri", str(tmp_path),
                         "--ground-truth-uri", str(tmp_path), "--endpoint-name", "e", "--model-package-arn", PACKAGE,
                         "--window-end", END.isoformat(), "--window-hours", "1", "--output-dir", str(tmp_path / "o"),
                         "--metric-namespace", "n", "--no-metrics"])
    assert code == 2 and "none.json does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("2026-12-04T10:15:02Z", datetime(2026, 12, 4, 10, 15, 2, tzinfo=timezone.utc)),
    ("2026-12-04T10:15:02.123456789Z", datetime(2026, 12, 4, 10, 15, 2, 123456, tzinfo=timezone.utc)),
    ("2026-12-04T11:15:02.5+01:00", datetime(2026, 12, 4, 10, 15, 2, 500000, tzinfo=timezone.utc)),
    ("2026-12-04 10:15", datetime(2026, 12, 4, 10, 15, tzinfo=timezone.utc)),
    ("2026-12-04T05:15:02-0500", datetime(2026, 12, 4, 10, 15, 2, tzinfo=timezone.utc)),
])
def test_times_are_read_in_every_iso_form_as_utc(text, expected):
    assert capture.parse_time(text) == expected


def test_a_window_ending_now_ends_at_the_start_of_the_hour():
    assert capture.window_end("now", datetime(2026, 12, 4, 10, 59, 59, tzinfo=timezone.utc)) == datetime(
        2026, 12, 4, 10, tzinfo=timezone.utc)
    with pytest.raises(capture.CaptureError, match="'yesterday' is not an ISO 8601 time"):
        capture.window_end("yesterday")
