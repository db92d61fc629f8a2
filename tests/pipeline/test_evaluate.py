"""The evaluation step: metric values, the model-quality format, prediction formats, errors, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    fbeta_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pipeline_code import evaluate
from pipeline_code.columns import LABEL


def scored(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.1).astype(int)
    labels[:2] = [0, 1]
    scores = np.clip(0.35 * labels + rng.random(rows) * 0.7, 0, 1)
    return labels, scores


def test_metrics_match_scikit_learn():
    labels, scores = scored(1000)
    report = evaluate.model_quality_report(labels, scores, threshold=0.5)["binary_classification_metrics"]
    predicted = (scores >= 0.5).astype(int)
    assert report["auc"]["value"] == pytest.approx(roc_auc_score(labels, scores))
    assert report["f1"]["value"] == pytest.approx(f1_score(labels, predicted))
    assert report["f2"]["value"] == pytest.approx(fbeta_score(labels, predicted, beta=2))
    assert report["f0_5"]["value"] == pytest.approx(fbeta_score(labels, predicted, beta=0.5))
    assert report["precision"]["value"] == pytest.approx(precision_score(labels, predicted))
    assert report["recall"]["value"] == pytest.approx(recall_score(labels, predicted))
    assert report["accuracy"]["value"] == pytest.approx(accuracy_score(labels, predicted))


def test_confusion_matrix_is_keyed_actual_then_predicted():
    labels = np.array([0, 0, 0, 1])
    scores = np.array([0.1, 0.9, 0.8, 0.7])
    report = evaluate.model_quality_report(labels, scores)["binary_classification_metrics"]
    assert report["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    assert report["recall"]["value"] == 1.0
    assert report["precision"]["value"] == pytest.approx(1 / 3)
    assert report["accuracy"]["value"] == 0.5


def test_standard_deviation_needs_200_rows():
    small = evaluate.model_quality_report(*scored(199))["binary_classification_metrics"]
    large = evaluate.model_quality_report(*scored(400))["binary_classification_metrics"]
    assert small["auc"]["standard_deviation"] == "NaN"
    assert isinstance(large["auc"]["standard_deviation"], float) and large["auc"]["standard_deviation"] > 0


def test_report_parses_with_the_sagemaker_sdk_model_card_parser():
    from sagemaker.model_card.evaluation_metric_parsers import ClassificationParser

    report = evaluate.model_quality_report(*scored(500))
    json.dumps(report, allow_nan=False)
    groups = ClassificationParser().run(report)["metric_groups"]
    names = {metric["name"] for metric in groups[0]["metric_data"]}
    assert {"auc", "f1", "precision", "recall", "confusion_matrix"} <= names
    assert "receiver_operating_characteristic_curve" in names


def test_label_and_probability_lines_become_positive_scores():
    lines = ["1,0.9", "0,0.8", "1.0,0.6", '"0",0.55']
    scores = evaluate.positive_scores(lines, "label_and_probability")
    assert scores == pytest.approx([0.9, 0.2, 0.6, 0.45])
    assert evaluate.positive_scores(["0.25", "0.75"], "probability") == pytest.approx([0.25, 0.75])


@pytest.mark.parametrize(
    ("lines", "prediction_format", "message"),
    [
        (["0.1,0.2"], "probability", "expected 1 field"),
        (["0.1"], "label_and_probability", "expected 2 fields"),
        (["abc"], "probability", "prediction line 1"),
        (["1.5"], "probability", "must lie in [0, 1]"),
        (["0.5"], "json", "unknown prediction format"),
    ],
)
def test_malformed_predictions_are_rejected(lines, prediction_format, message):
    with pytest.raises(evaluate.EvaluationError) as error:
        evaluate.positive_scores(lines, prediction_format)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1], [0.5], "2 labels but 1 predictions"),
        ([0, 0], [0.1, 0.2], "needs both label values"),
        ([0, 2], [0.1, 0.2], "labels must be 0 or 1"),
    ],
)
def test_unscorable_inputs_are_rejected(labels, scores, message):
    with pytest.raises(evaluate.EvaluationError, match=message):
        evaluate.model_quality_report(labels, scores)


def write_case(tmp_path, labels, lines):
    (tmp_path / "test").mkdir()
    pd.DataFrame({LABEL: labels, "amount": range(len(labels))}).to_csv(tmp_path / "test" / "test.csv", index=False)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "test_features.csv.out").write_text("\n".join(lines) + "\n")


def test_cli_writes_evaluation_json(tmp_path):
    labels, scores = scored(300, seed=3)
    write_case(tmp_path, labels, [f"{s:.6f}" for s in scores])
    code = evaluate.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                          "--output-dir", str(tmp_path / "out"), "--prediction-format", "probability"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-5)
    assert report["dataset"]["item_count"] == 300


def test_cli_reports_row_count_mismatch(tmp_path, capsys):
    write_case(tmp_path, [0, 1, 0], ["0.1", "0.9"])
    code = evaluate.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                          "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "3 labels but 2 predictions" in capsys.readouterr().err
