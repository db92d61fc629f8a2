"""What a local run leaves for a person to read: the registered reports, the metrics, one plot.

``collect(result, s3, out)`` downloads the reports the run registered (``ModelMetrics``: model quality,
bias, explainability) into ``out/reports/`` — or, when the quality gate stopped the run, the evaluation it
wrote — and draws the plot of the problem type from what the evaluation step read and wrote:

- binary: the ROC curve of ``receiver_operating_characteristic_curve``;
- multiclass: the confusion matrix of ``multiclass_classification_metrics``;
- regression: predicted against actual and the residuals, from the step's own test file and predictions,
  read with ``pipeline_code.evaluate``'s readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline_code import evaluate
from pipeline_code.problem import METRICS_SECTION, from_namespace

PLOT_NAMES = {"binary": "roc_curve.png", "multiclass": "confusion_matrix.png", "regression": "residuals.png"}
REGISTRY_REPORTS = {"ModelQuality": "model_quality.json", "Bias": "bias.json", "Explainability": "explainability.json"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(evaluation: dict, path: Path) -> None:
    metrics = evaluation["binary_classification_metrics"]
    curve = metrics["receiver_operating_characteristic_curve"]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(curve["false_positive_rates"], curve["true_positive_rates"],
              label=f"test AUC {metrics['auc']['value']:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve, test split")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(evaluation: dict, path: Path) -> None:
    metrics = evaluation["multiclass_classification_metrics"]
    matrix = metrics["confusion_matrix"]
    classes = sorted(matrix)
    counts = np.array([[matrix[actual].get(predicted, 0) for predicted in classes] for actual in classes])
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set(xticks=range(len(classes)), xticklabels=classes, yticks=range(len(classes)), yticklabels=classes,
             xlabel="predicted", ylabel="actual",
             title=f"Confusion matrix, weighted F1 {metrics['weighted_f1']['value']:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, r2: float, path: Path) -> None:
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.scatter(actual, predicted, s=6, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], linestyle="--", color="grey")
    left.set(xlabel="actual", ylabel="predicted", title=f"Test split, R\u00b2 {r2:.3f}")
    right.hist(predicted - actual, bins=40)
    right.set(xlabel="predicted - actual", ylabel="rows", title="Residuals")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluation_step(result):
    """The record of the evaluation step that ran (``python3 -m pipeline_code.evaluate``), or None."""
    return next((r for r in result.steps if r.module == "pipeline_code.evaluate" and r.status == "Succeeded"), None)


def draw(record, path_dir: Path) -> tuple:
    """(problem type, plot path) drawn from the evaluation step's own arguments and files."""
    args = evaluate.parse_args(record.arguments)
    problem = from_namespace(args)
    evaluation = json.loads((args.output_dir / evaluate.EVALUATION_FILE).read_text())
    path = path_dir / PLOT_NAMES[problem.problem_type]
    if problem.problem_type == "binary":
        plot_roc(evaluation, path)
    elif problem.problem_type == "multiclass":
        plot_confusion(evaluation, path)
    else:
        actual = evaluate.read_test_labels(args.test_dir, problem.target).astype(float)
        predicted = evaluate.predicted_values(evaluate.read_prediction_lines(args.predictions_dir),
                                              args.prediction_format)
        plot_residuals(actual, predicted, evaluation[METRICS_SECTION["regression"]]["r2"]["value"], path)
    return problem, evaluation, path


def collect(result, s3, out: Path) -> None:
    """Fill ``result.reports`` (name -> local path) and ``result.metrics`` from the run's outputs."""
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    for package in result.registered:
        for kind, metric in package.get("ModelMetrics", {}).items():
            for part in metric.values():
                target = reports / REGISTRY_REPORTS.get(kind, f"{kind}.json")
                target.write_text(s3.read_text(part["S3Uri"]))
                result.reports[f"{kind} report"] = target
    record = evaluation_step(result)
    if record is None:
        return
    problem, evaluation, plot = draw(record, reports)
    result.reports["plot"] = plot
    if "ModelQuality report" not in result.reports:
        target = reports / "evaluation.json"
        target.write_text(json.dumps(evaluation, indent=2, sort_keys=True))
        result.reports["evaluation"] = target
    section = evaluation[METRICS_SECTION[problem.problem_type]]
    result.metrics = {name: value["value"] for name, value in sorted(section.items())
                      if isinstance(value, dict) and isinstance(value.get("value"), (int, float))
                      and not name.endswith("_best_constant_classifier")}
