"""The evaluation step: metric values, the model-quality format, prediction formats, errors, CLI."""

from __future__ import annotations

import json
import re

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
from pipeline_code.problem import FRAUD, Problem


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
        (["0.5"], "json", "carries no positive-class score"),
        (['1,0.9,"[0.1, 0.9]"'], "automl_classification", "expected 4 fields"),
        (['1,0.9,"[0.1, 0.9]","[\'yes\', \'no\']"'], "automl_classification", "must list the positive label"),
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
                          "--output-dir", str(tmp_path / "out"), "--prediction-format", "probability",
                          *FRAUD.to_arguments()])
    assert code == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-5)
    assert report["dataset"]["item_count"] == 300


def test_cli_reports_row_count_mismatch(tmp_path, capsys):
    write_case(tmp_path, [0, 1, 0], ["0.1", "0.9"])
    code = evaluate.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                          "--output-dir", str(tmp_path / "out"), "--prediction-format", "probability",
                          *FRAUD.to_arguments()])
    assert code == 2
    assert "3 test rows but 2 prediction lines" in capsys.readouterr().err


def test_automl_scores_are_read_by_the_positive_labels_position():
    lines = ['1,0.9,"[0.1, 0.9]","[\'0\', \'1\']"', '0,0.7,"[0.3, 0.7]","[\'1\', \'0\']"']
    assert evaluate.positive_scores(lines, "automl_classification") == pytest.approx([0.9, 0.3])


def test_ensemble_confidence_is_not_taken_for_the_positive_score():
    """An ensemble's ``probability`` is of the predicted label: 0.8 for a predicted 0 is a 0.2 fraud score."""
    lines = ['0,0.8,"[0.8, 0.2]","[\'0\', \'1\']"']
    assert evaluate.positive_scores(lines, "automl_classification") == pytest.approx([0.2])
    assert evaluate.positive_scores(["0,0.8"], "label_and_probability") == pytest.approx([0.2])


MULTICLASS = Problem(problem_type="multiclass", target="grade", classes=("a", "b", "c"), input_layout="table")
REGRESSION = Problem(problem_type="regression", target="units", input_layout="table")


def test_multiclass_report_has_the_registry_sections():
    rng = np.random.default_rng(0)
    labels = rng.choice(["a", "b", "c"], 400)
    predicted = np.where(rng.random(400) < 0.8, labels, "a")
    report = evaluate.multiclass_report(labels, predicted, ("a", "b", "c"))
    metrics = report["multiclass_classification_metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(np.mean(labels == predicted))
    assert isinstance(metrics["weighted_f1"]["standard_deviation"], float)
    assert sum(sum(row.values()) for row in metrics["confusion_matrix"].values()) == 400
    assert metrics["confusion_matrix"]["b"]["b"] == int(np.sum((labels == "b") & (predicted == "b")))


def test_regression_report_matches_its_definitions():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 2.0, 2.0, 5.0])
    metrics = evaluate.regression_report(labels, predicted)["regression_metrics"]
    assert metrics["mae"]["value"] == pytest.approx(0.625)
    assert metrics["mse"]["value"] == pytest.approx(0.5625)
    assert metrics["rmse"]["value"] == pytest.approx(0.75)
    assert metrics["r2"]["value"] == pytest.approx(1 - 2.25 / 5.0)
    assert metrics["r2"]["standard_deviation"] == "NaN", "fewer than 200 rows"


@pytest.mark.parametrize(("problem", "column", "labels", "lines", "section", "metric"), [
    (MULTICLASS, "grade", ["a", "b", "c", "a"], ["0", "1", "2", "1"], "multiclass_classification_metrics", "accuracy"),
    (MULTICLASS, "grade", ["a", "b", "c", "a"], ['a,0.9,"[0.9, 0.05, 0.05]","[\'a\', \'b\', \'c\']"'] * 4,
     "multiclass_classification_metrics", "accuracy"),
    (REGRESSION, "units", [3, 5, 7, 9], ["3", "5", "8", "9"], "regression_metrics", "r2"),
])
def test_cli_scores_every_problem_type(tmp_path, problem, column, labels, lines, section, metric):
    (tmp_path / "test").mkdir()
    pd.DataFrame({column: labels, "x": range(len(labels))}).to_csv(tmp_path / "test" / "test.csv", index=False)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "test_features.csv.out").write_text("\n".join(lines) + "\n")
    prediction_format = "value" if problem is REGRESSION else ("class_index" if lines[0] == "0" else "automl_classification")
    code = evaluate.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                          "--output-dir", str(tmp_path / "out"), "--prediction-format", prediction_format,
                          "--quality-metric", metric, *problem.to_arguments()])
    assert code == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert set(report) == {"version", "dataset", section}
    expected = {"class_index": 0.75, "automl_classification": 0.5, "value": 1 - 1 / 20}[prediction_format]
    assert report[section][metric]["value"] == pytest.approx(expected)


@pytest.mark.parametrize(("problem", "lines", "prediction_format", "message"), [
    (MULTICLASS, ["3"], "class_index", "class index in [0, 3)"),
    (MULTICLASS, ["0.4"], "class_index", "class index"),
    (MULTICLASS, ['z,0.9,"[1.0]","[\'z\']"'], "automl_classification", "not among the classes"),
    (REGRESSION, ["nan"], "value", "finite numbers"),
    (REGRESSION, ["1"], "probability", "needs prediction format 'value'"),
])
def test_predictions_that_do_not_fit_the_problem_are_refused(problem, lines, prediction_format, message):
    with pytest.raises(evaluate.EvaluationError, match=re.escape(message)):
        if problem is MULTICLASS:
            evaluate.predicted_classes(lines, prediction_format, problem.classes)
        else:
            evaluate.predicted_values(lines, prediction_format)
