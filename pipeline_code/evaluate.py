"""Score batch-transform predictions against the test labels; runs in the scikit-learn processing container.

Output: ``evaluation.json`` in the SageMaker model-quality format (the ``binary_classification_metrics``
document Model Monitor writes, which the model registry shows for a version): a confusion matrix keyed
actual label -> predicted label, each scalar metric as ``{"value": v, "standard_deviation": s}``,
ROC and precision-recall curves. The standard deviation follows Model Monitor: five random 80 % samples
when there are at least 200 rows, otherwise the string ``"NaN"``.

Prediction formats (``--prediction-format``):
- ``probability``: one number per line, the probability of the positive class (built-in XGBoost);
- ``label_and_probability``: ``predicted_label,probability`` per line, where the probability belongs to
  the predicted label (Autopilot ensemble containers with ``SAGEMAKER_INFERENCE_OUTPUT`` set to
  ``predicted_label,probability``).

CLI: ``python -m pipeline_code.evaluate --test-dir DIR --predictions-dir DIR --output-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline_code.columns import LABEL

PREDICTION_FORMATS = ("probability", "label_and_probability")
EVALUATION_FILE = "evaluation.json"
MIN_ROWS_FOR_DEVIATION = 200
DEVIATION_SAMPLES = 5
DEVIATION_SHARE = 0.8
MAX_CURVE_POINTS = 200


class EvaluationError(ValueError):
    """Raised when predictions and labels cannot be matched or scored."""


def positive_scores(lines: list[str], prediction_format: str, positive_label: str = "1") -> np.ndarray:
    """Probability of the positive class for each prediction line."""
    if prediction_format not in PREDICTION_FORMATS:
        raise EvaluationError(f"unknown prediction format {prediction_format!r}; expected one of {PREDICTION_FORMATS}")
    scores = np.empty(len(lines), dtype=float)
    for index, line in enumerate(lines):
        fields = [f.strip().strip('"') for f in line.split(",")]
        try:
            if prediction_format == "probability":
                if len(fields) != 1:
                    raise ValueError(f"expected 1 field, got {len(fields)}")
                scores[index] = float(fields[0])
            else:
                if len(fields) != 2:
                    raise ValueError(f"expected 2 fields, got {len(fields)}")
                label, probability = fields[0], float(fields[1])
                scores[index] = probability if _same_label(label, positive_label) else 1.0 - probability
        except ValueError as error:
            raise EvaluationError(f"prediction line {index + 1} {line!r}: {error}")
    if np.any((scores < 0.0) | (scores > 1.0)):
        raise EvaluationError("prediction probabilities must lie in [0, 1]")
    return scores


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
    frame = pd.read_csv(path)
    if label_column not in frame.columns:
        raise EvaluationError(f"test file has no label column {label_column!r}")
    return frame[label_column].to_numpy()


def run(test_dir: Path, predictions_dir: Path, output_dir: Path, prediction_format: str,
        threshold: float = 0.5, positive_label: str = "1") -> dict:
    """Write ``evaluation.json`` for the predictions in ``predictions_dir``; returns the report."""
    labels = read_test_labels(test_dir)
    scores = positive_scores(read_prediction_lines(predictions_dir), prediction_format, positive_label)
    report = model_quality_report(labels, scores, threshold)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.evaluate",
        description="Write evaluation.json (model-quality format) from test labels and batch predictions.",
    )
    parser.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv from the split step")
    parser.add_argument("--predictions-dir", type=Path, required=True, help="batch transform output folder")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for evaluation.json")
    parser.add_argument("--prediction-format", default="probability", help=" or ".join(PREDICTION_FORMATS))
    parser.add_argument("--threshold", type=float, default=0.5, help="score at or above which a row is fraud")
    parser.add_argument("--positive-label", default="1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args.test_dir, args.predictions_dir, args.output_dir, args.prediction_format,
                     args.threshold, args.positive_label)
    except EvaluationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    auc = report["binary_classification_metrics"]["auc"]["value"]
    print(f"wrote {args.output_dir / EVALUATION_FILE}: auc {auc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
