"""Score batch-transform predictions against the test labels; runs in the scikit-learn processing container.

Output: ``evaluation.json`` in the SageMaker model-quality format the model registry shows for a version,
one section per problem type:
- ``binary_classification_metrics``: confusion matrix keyed actual -> predicted (1 = the positive label),
  scalar metrics, ROC and precision-recall curves;
- ``multiclass_classification_metrics``: confusion matrix keyed by class label, accuracy, balanced
  accuracy and weighted precision, recall and F-scores;
- ``regression_metrics``: mae, mse, rmse and r2.
Each scalar is ``{"value": v, "standard_deviation": s}``; the deviation follows Model Monitor: five random
80 % samples when there are at least 200 rows, otherwise the string ``"NaN"``.

Prediction formats (``--prediction-format``), one line per test row:
- ``probability``: the positive class's probability (built-in XGBoost, ``binary:logistic``);
- ``label_and_probability``: ``predicted_label,probability`` where the probability belongs to the
  *predicted* label (Autopilot ensemble models);
- ``automl_classification``: ``predicted_label,probability,probabilities,labels`` (Autopilot with
  ``SAGEMAKER_INFERENCE_OUTPUT`` set to those keys): ``probabilities`` lists every class's probability in
  the order of ``labels``, so the positive class's score is read by its label, never assumed;
- ``class_index``: the predicted class's index into the problem's classes (XGBoost ``multi:softmax``);
- ``value``: the predicted number (regression, either path).

CLI: ``python -m pipeline_code.evaluate --test-dir DIR --predictions-dir DIR --output-dir DIR
--prediction-format F --problem-type T --target C [problem options]``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    fbeta_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from pipeline_code import problem as problem_module
from pipeline_code.columns import LABEL
from pipeline_code.problem import METRICS_SECTION, Problem, ProblemError

PREDICTION_FORMATS = ("probability", "label_and_probability", "automl_classification", "class_index", "value")
SCORE_FORMATS = ("probability", "label_and_probability", "automl_classification")
"""Formats that carry a positive-class score (binary problems)."""
EVALUATION_FILE = "evaluation.json"
MIN_ROWS_FOR_DEVIATION = 200
DEVIATION_SAMPLES = 5
DEVIATION_SHARE = 0.8
MAX_CURVE_POINTS = 200


class EvaluationError(ValueError):
    """Raised when predictions and labels cannot be matched or scored."""


def prediction_fields(line: str) -> list:
    """The CSV fields of one prediction line (quoted lists stay one field)."""
    return [field.strip() for field in next(csv.reader([line]))]


def parse_list_field(text: str, name: str) -> list:
    try:
        values = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"{name} {text!r} is not a list")
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} {text!r} is not a list")
    return list(values)


def positive_scores(lines: list[str], prediction_format: str, positive_label: str = "1") -> np.ndarray:
    """Probability of the positive class for each prediction line."""
    if prediction_format not in SCORE_FORMATS:
        raise EvaluationError(f"prediction format {prediction_format!r} carries no positive-class score; "
                              f"expected one of {SCORE_FORMATS}")
    scores = np.empty(len(lines), dtype=float)
    for index, line in enumerate(lines):
        fields = prediction_fields(line)
        try:
            if prediction_format == "probability":
                if len(fields) != 1:
                    raise ValueError(f"expected 1 field, got {len(fields)}")
                scores[index] = float(fields[0])
            elif prediction_format == "label_and_probability":
                if len(fields) != 2:
                    raise ValueError(f"expected 2 fields, got {len(fields)}")
                label, probability = fields[0], float(fields[1])
                scores[index] = probability if _same_label(label, positive_label) else 1.0 - probability
            else:
                if len(fields) != 4:
                    raise ValueError(f"expected 4 fields (predicted_label,probability,probabilities,labels), "
                                     f"got {len(fields)}")
                probabilities = [float(p) for p in parse_list_field(fields[2], "probabilities")]
                labels = [str(label) for label in parse_list_field(fields[3], "labels")]
                matches = [i for i, label in enumerate(labels) if _same_label(label, positive_label)]
                if len(probabilities) != len(labels) or len(matches) != 1:
                    raise ValueError(f"labels {labels} must list the positive label {positive_label!r} once, "
                                     f"one probability each")
                scores[index] = probabilities[matches[0]]
        except ValueError as error:
            raise EvaluationError(f"prediction line {index + 1} {line!r}: {error}")
    if np.any((scores < 0.0) | (scores > 1.0)):
        raise EvaluationError("prediction probabilities must lie in [0, 1]")
    return scores


def predicted_classes(lines: list[str], prediction_format: str, classes: tuple) -> np.ndarray:
    """Predicted class label (as text) per line, for a multiclass problem."""
    predicted = []
    for index, line in enumerate(lines):
        fields = prediction_fields(line)
        try:
            if prediction_format == "class_index":
                position = float(fields[0])
                if len(fields) != 1 or not position.is_integer() or not 0 <= position < len(classes):
                    raise ValueError(f"expected one class index in [0, {len(classes)})")
                predicted.append(classes[int(position)])
            elif prediction_format in ("automl_classification", "label_and_probability"):
                predicted.append(str(fields[0]))
            else:
                raise EvaluationError(f"prediction format {prediction_format!r} gives no class; use class_index or "
                                      "automl_classification")
        except ValueError as error:
            raise EvaluationError(f"prediction line {index + 1} {line!r}: {error}")
    unknown = sorted(set(predicted) - set(classes))
    if unknown:
        raise EvaluationError(f"predicted label(s) {unknown[:5]} are not among the classes {list(classes)}")
    return np.array(predicted, dtype=object)


def predicted_values(lines: list[str], prediction_format: str) -> np.ndarray:
    """Predicted number per line, for a regression problem."""
    if prediction_format != "value":
        raise EvaluationError(f"a regression problem needs prediction format 'value', got {prediction_format!r}")
    values = np.empty(len(lines), dtype=float)
    for index, line in enumerate(lines):
        fields = prediction_fields(line)
        try:
            if len(fields) != 1:
                raise ValueError(f"expected 1 field, got {len(fields)}")
            values[index] = float(fields[0])
        except ValueError as error:
            raise EvaluationError(f"prediction line {index + 1} {line!r}: {error}")
    if not np.all(np.isfinite(values)):
        raise EvaluationError("predictions must be finite numbers")
    return values


def _same_label(label: str, positive_label: str) -> bool:
    try:
        return float(label) == float(positive_label)
    except ValueError:
        return label == positive_label


def _rates(labels: np.ndarray, predicted: np.ndarray) -> dict:
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0

    def f_beta(beta: float) -> float:
        denominator = beta * beta * precision + recall
        return (1 + beta * beta) * precision * recall / denominator if denominator else 0.0

    return {
        "recall": recall,
        "precision": precision,
        "accuracy": (tp + tn) / len(labels),
        "true_positive_rate": recall,
        "true_negative_rate": tn / (tn + fp) if tn + fp else 0.0,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "false_negative_rate": fn / (fn + tp) if fn + tp else 0.0,
        "f0_5": f_beta(0.5),
        "f1": f_beta(1.0),
        "f2": f_beta(2.0),
    }


def _scalar_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    predicted = (scores >= threshold).astype(int)
    metrics = _rates(labels, predicted)
    metrics["auc"] = float(roc_auc_score(labels, scores))
    constant = _rates(labels, np.ones_like(labels))
    for name in ("recall", "precision", "f0_5", "f1", "f2"):
        metrics[f"{name}_best_constant_classifier"] = constant[name]
    metrics["accuracy_best_constant_classifier"] = max(labels.mean(), 1.0 - labels.mean())
    return {name: float(value) for name, value in metrics.items()}


def _thin(values: np.ndarray) -> list:
    if len(values) <= MAX_CURVE_POINTS:
        return [float(v) for v in values]
    keep = np.unique(np.linspace(0, len(values) - 1, MAX_CURVE_POINTS).round().astype(int))
    return [float(v) for v in values[keep]]


def model_quality_report(labels, scores, threshold: float = 0.5, seed: int = 0) -> dict:
    """The model-quality document for binary labels (0/1) and positive-class scores."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape:
        raise EvaluationError(f"{len(labels)} labels but {len(scores)} predictions")
    if not set(np.unique(labels)) <= {0, 1}:
        raise EvaluationError(f"labels must be 0 or 1, got {sorted(set(np.unique(labels)))}")
    if len(np.unique(labels)) < 2:
        raise EvaluationError("the test split needs both label values to compute AUC")
    if not 0.0 < threshold < 1.0:
        raise EvaluationError(f"threshold must be in (0, 1), got {threshold}")

    values = _scalar_metrics(labels, scores, threshold)
    deviations = {name: "NaN" for name in values}
    if len(labels) >= MIN_ROWS_FOR_DEVIATION:
        rng = np.random.default_rng(seed)
        size = int(DEVIATION_SHARE * len(labels))
        samples = []
        for _ in range(DEVIATION_SAMPLES):
            chosen = rng.choice(len(labels), size=size, replace=False)
            if len(np.unique(labels[chosen])) == 2:
                samples.append(_scalar_metrics(labels[chosen], scores[chosen], threshold))
        if len(samples) == DEVIATION_SAMPLES:
            deviations = {name: float(np.std([s[name] for s in samples])) for name in values}

    predicted = (scores >= threshold).astype(int)
    matrix = confusion_matrix(labels, predicted, labels=[0, 1])
    fpr, tpr, _ = roc_curve(labels, scores)
    precisions, recalls, _ = precision_recall_curve(labels, scores)
    metrics = {
        "confusion_matrix": {
            str(actual): {str(guess): int(matrix[actual][guess]) for guess in (0, 1)} for actual in (0, 1)
        }
    }
    for name in sorted(values):
        metrics[name] = {"value": values[name], "standard_deviation": deviations[name]}
    metrics["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": _thin(fpr),
        "true_positive_rates": _thin(tpr),
    }
    metrics["precision_recall_curve"] = {"precisions": _thin(precisions), "recalls": _thin(recalls)}
    return {
        "version": 0.0,
        "dataset": {"item_count": int(len(labels)), "positive_count": int(labels.sum()), "threshold": threshold},
        "binary_classification_metrics": metrics,
    }


def _with_deviation(compute, rows: int, seed: int, usable=lambda chosen: True) -> dict:
    """``{name: {"value", "standard_deviation"}}`` of ``compute(indices)`` over all rows and five 80 % samples."""
    values = compute(np.arange(rows))
    deviations = {name: "NaN" for name in values}
    if rows >= MIN_ROWS_FOR_DEVIATION:
        rng = np.random.default_rng(seed)
        size = int(DEVIATION_SHARE * rows)
        samples = []
        for _ in range(DEVIATION_SAMPLES):
            chosen = rng.choice(rows, size=size, replace=False)
            if usable(chosen):
                samples.append(compute(chosen))
        if len(samples) == DEVIATION_SAMPLES:
            deviations = {name: float(np.std([s[name] for s in samples])) for name in values}
    return {name: {"value": float(values[name]), "standard_deviation": deviations[name]} for name in sorted(values)}


def multiclass_report(labels, predicted, classes: tuple, seed: int = 0) -> dict:
    """The model-quality document for class labels (text) and predicted labels."""
    labels = np.asarray([str(v) for v in labels], dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    if labels.shape != predicted.shape:
        raise EvaluationError(f"{len(labels)} labels but {len(predicted)} predictions")
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise EvaluationError(f"test label(s) {unknown[:5]} are not among the classes {list(classes)}")
    classes = list(classes)

    def compute(index):
        y, p = labels[index], predicted[index]
        weighted = {"labels": classes, "average": "weighted", "zero_division": 0}
        most_common = max(classes, key=lambda c: int(np.sum(y == c)))
        return {
            "accuracy": accuracy_score(y, p),
            "balanced_accuracy": balanced_accuracy_score(y, p),
            "weighted_precision": precision_score(y, p, **weighted),
            "weighted_recall": recall_score(y, p, **weighted),
            "weighted_f0_5": fbeta_score(y, p, beta=0.5, **weighted),
            "weighted_f1": fbeta_score(y, p, beta=1.0, **weighted),
            "weighted_f2": fbeta_score(y, p, beta=2.0, **weighted),
            "accuracy_best_constant_classifier": float(np.mean(y == most_common)),
        }

    metrics = {"confusion_matrix": {
        actual: {guess: int(np.sum((labels == actual) & (predicted == guess))) for guess in classes}
        for actual in classes
    }}
    metrics.update(_with_deviation(compute, len(labels), seed))
    return {
        "version": 0.0,
        "dataset": {"item_count": int(len(labels)), "classes": classes},
        "multiclass_classification_metrics": metrics,
    }


def regression_report(labels, predicted, seed: int = 0) -> dict:
    """The model-quality document for numeric labels and predictions."""
    labels = np.asarray(labels, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if labels.shape != predicted.shape:
        raise EvaluationError(f"{len(labels)} labels but {len(predicted)} predictions")
    if len(labels) < 2:
        raise EvaluationError("the test split needs at least 2 rows to compute r2")

    def compute(index):
        y, p = labels[index], predicted[index]
        mse = mean_squared_error(y, p)
        return {"mae": mean_absolute_error(y, p), "mse": mse, "rmse": float(np.sqrt(mse)), "r2": r2_score(y, p)}

    return {
        "version": 0.0,
        "dataset": {"item_count": int(len(labels)), "label_mean": float(labels.mean())},
        "regression_metrics": _with_deviation(compute, len(labels), seed),
    }


def quality_value(report: dict, problem: Problem, metric: str) -> float:
    """The value of ``metric`` in ``report`` (the number the pipeline's quality gate reads)."""
    return float(report[METRICS_SECTION[problem.problem_type]][metric]["value"])


def read_prediction_lines(predictions_dir: Path) -> list[str]:
    """Lines of every file under ``predictions_dir`` (batch transform writes ``<input>.out``), in name order."""
    files = sorted(p for p in predictions_dir.rglob("*") if p.is_file())
    if not files:
        raise EvaluationError(f"no prediction files under {predictions_dir}")
    lines = []
    for path in files:
        lines.extend(line for line in path.read_text().splitlines() if line.strip())
    return lines


def read_test_labels(test_dir: Path, label_column: str = LABEL) -> np.ndarray:
    """Labels of ``test.csv`` (the split step's test file), in file order."""
    path = test_dir / "test.csv"
    if not path.is_file():
        raise EvaluationError(f"test file {path} not found")
    frame = pd.read_csv(path, dtype={label_column: str})
    if label_column not in frame.columns:
        raise EvaluationError(f"test file has no label column {label_column!r}")
    return frame[label_column].to_numpy()


def run(test_dir: Path, predictions_dir: Path, output_dir: Path, prediction_format: str,
        threshold: float = 0.5, problem: Problem | None = None) -> dict:
    """Write ``evaluation.json`` for the predictions in ``predictions_dir``; returns the report."""
    problem = problem or problem_module.FRAUD
    labels = read_test_labels(test_dir, problem.target)
    lines = read_prediction_lines(predictions_dir)
    if len(lines) != len(labels):
        raise EvaluationError(f"{len(labels)} test rows but {len(lines)} prediction lines")
    report = quality_report(labels, lines, prediction_format, threshold, problem)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    return report


def quality_report(labels: np.ndarray, lines: list[str], prediction_format: str, threshold: float,
                   problem: Problem) -> dict:
    """The model-quality report of prediction ``lines`` against ``labels`` (text, one per line)."""
    if problem.problem_type == "binary":
        scores = positive_scores(lines, prediction_format, problem.positive_label)
        positive = np.array([_same_label(str(v), problem.positive_label) for v in labels], dtype=int)
        report = model_quality_report(positive, scores, threshold)
    elif problem.problem_type == "multiclass":
        report = multiclass_report(labels, predicted_classes(lines, prediction_format, problem.classes), problem.classes)
    else:
        try:
            numeric = labels.astype(float)
        except ValueError:
            raise EvaluationError(f"target column {problem.target!r} of a regression problem must be numeric")
        report = regression_report(numeric, predicted_values(lines, prediction_format))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.evaluate",
        description="Write evaluation.json (model-quality format) from test labels and batch predictions.",
    )
    parser.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv from the split step")
    parser.add_argument("--predictions-dir", type=Path, required=True, help="batch transform output folder")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for evaluation.json")
    parser.add_argument("--prediction-format", required=True, choices=PREDICTION_FORMATS)
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="score at or above which a row counts as positive (binary only; default 0.5)")
    parser.add_argument("--quality-metric", default=None, help="metric to print (default: the first of the section)")
    problem_module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        problem = problem_module.from_namespace(args)
        report = run(args.test_dir, args.predictions_dir, args.output_dir, args.prediction_format,
                     args.threshold, problem)
        metric = args.quality_metric or next(iter(problem_module.QUALITY_METRICS[problem.problem_type]))
        value = quality_value(report, problem, metric)
    except (EvaluationError, ProblemError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output_dir / EVALUATION_FILE}: {metric} {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
