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

from pipeline_code import evaluate
from pipeline_code.plots import plot_confusion, plot_residuals, plot_roc
from pipeline_code.problem import METRICS_SECTION, from_namespace

__all__ = ["collect", "draw", "plot_confusion", "plot_residuals", "plot_roc"]

PLOT_NAMES = {"binary": "roc_curve.png", "multiclass": "confusion_matrix.png", "regression": "residuals.png"}
REGISTRY_REPORTS = {"ModelQuality": "model_quality.json", "Bias": "bias.json", "Explainability": "explainability.json"}


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
    for package in result.registered:
        statistics = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics")
        if statistics:
            folder = reports / "drift-baseline"
            folder.mkdir(parents=True, exist_ok=True)
            base = statistics["S3Uri"].rsplit("/", 1)[0]
            for name in (statistics["S3Uri"].rsplit("/", 1)[1], "reference.csv"):
                (folder / name).write_text(s3.read_text(f"{base}/{name}"))
            result.reports["Drift baseline"] = folder / statistics["S3Uri"].rsplit("/", 1)[1]
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
