"""Run the experiment end to end on this machine, without AWS.

generate -> split -> STAND-IN MODEL -> evaluate -> bias and explanations, writing the report files the
pipeline writes, in the same folder layout as a pipeline execution under ``s3://<bucket>/pipeline/runs/<id>/``:

- ``split/<output>/...``: the split step's outputs;
- ``automl/predictions/test_features.csv.out``: predictions in the Autopilot ensemble's batch format;
- ``automl/evaluation/evaluation.json``: model quality (the registry's ModelQuality statistics);
- ``automl/clarify-config/analysis_config.json``: the Clarify analysis config for this run's facet;
- ``automl/clarify/analysis.json``: bias metrics and SHAP values (the registry's Bias and Explainability
  reports), computed by ``pipeline_code.bias`` instead of the Clarify container;
- ``roc_curve.png``: ROC curve of the test split (local only).

The model is a scikit-learn HistGradientBoostingClassifier standing in for the Autopilot candidate; it is
not what the pipeline trains, it only lets the surrounding steps run on real predictions. It runs on one
thread, which is as fast at this size and immune to OpenMP runtimes other libraries may have loaded.

CLI: ``python -m pipeline_code.local_run --out DIR [--rows N] [--split-mode MODE] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline_code import bias, clarify_config, evaluate, generate, split
from pipeline_code.columns import FEATURES, LABEL
from pipeline_code.problem import FRAUD, Facet, ProblemError

STAND_IN_LABEL = "local scikit-learn stand-in for the AutoML (Autopilot) model"
STAND_IN_MODEL_NAME = "local-stand-in-for-automl"
EXPLAINED_ROWS = 300


def train_stand_in(train: pd.DataFrame, seed: int):
    """The stand-in classifier, fitted on the train split's features."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=seed)
    model.fit(train[list(FEATURES)].to_numpy(dtype=float), train[LABEL].to_numpy())
    return model


def write_autopilot_predictions(model, test_features: pd.DataFrame, path: Path, threshold: float) -> None:
    """Predictions as an Autopilot ensemble writes them: ``predicted_label,probability,probabilities,labels``."""
    positive = model.predict_proba(test_features.to_numpy(dtype=float))[:, 1]
    predicted = (positive >= threshold).astype(int)
    probability = np.where(predicted == 1, positive, 1.0 - positive)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(
        f"{label},{p:.6f},\"[{1 - q:.6f}, {q:.6f}]\",\"['0', '1']\"\n"
        for label, p, q in zip(predicted, probability, positive)
    ))


def plot_roc(report: dict, path: Path) -> None:
    """ROC curve PNG from the curve stored in the evaluation report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["binary_classification_metrics"]
    curve = metrics["receiver_operating_characteristic_curve"]
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(curve["false_positive_rates"], curve["true_positive_rates"],
              label=f"stand-in model, AUC {metrics['auc']['value']:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curve, test split")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(out: Path, rows: int = 50_000, seed: int = 0, split_mode: str = "stratified",
        fractions: tuple = (0.7, 0.15, 0.15), fraud_rate: float = 0.02,
        facet_name: str = "home_state", facet_values: tuple = ("CA",), threshold: float = 0.5) -> dict:
    """Run every stage into ``out``; returns a summary with the paths written and the test AUC."""
    raw = out / "raw"
    customers, transactions = generate.generate(rows, seed=seed, fraud_rate=fraud_rate)
    generate.write(customers, transactions, raw)

    split_dir = out / "split"
    split_summary = split.run(raw, split_dir, FRAUD.replace(facets=(Facet(facet_name, tuple(facet_values)),)),
                              split_mode, fractions, seed)

    branch = out / "automl"
    test_dir = split_dir / "test"
    config = clarify_config.analysis_config(
        clarify_config.read_header(test_dir), FRAUD, (Facet(facet_name, tuple(facet_values)),), STAND_IN_MODEL_NAME,
        "ml.m5.large", "automl_classification", [1], threshold, label_headers=["0", "1"],
    )
    config_dir = branch / "clarify-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / clarify_config.CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))

    train = pd.read_csv(split_dir / split.OUTPUT_FILES["train"])
    test_features = pd.read_csv(split_dir / split.OUTPUT_FILES["transform_input"], header=None, names=list(FEATURES))
    predictions_dir = branch / "predictions"
    with threadpool_limits(limits=1):
        model = train_stand_in(train, seed)
        write_autopilot_predictions(model, test_features, predictions_dir / "test_features.csv.out", threshold)

    report = evaluate.run(test_dir, predictions_dir, branch / "evaluation", "automl_classification", threshold)

    test = pd.read_csv(test_dir / "test.csv")
    scores = evaluate.positive_scores(evaluate.read_prediction_lines(predictions_dir), "automl_classification")
    analysis = bias.bias_report(test, facet_name, list(facet_values), (scores >= threshold).astype(int))
    explained = test[list(FEATURES)].head(EXPLAINED_ROWS)
    with threadpool_limits(limits=1):
        analysis.update(bias.explanations_report(lambda x: model.predict_proba(x)[:, 1], explained, seed=seed))
    clarify_dir = branch / "clarify"
    clarify_dir.mkdir(parents=True, exist_ok=True)
    (clarify_dir / bias.ANALYSIS_FILE).write_text(json.dumps(analysis, indent=2, sort_keys=True))

    roc_path = out / "roc_curve.png"
    plot_roc(report, roc_path)
    return {
        "model": STAND_IN_LABEL,
        "split": split_summary,
        "test_auc": report["binary_classification_metrics"]["auc"]["value"],
        "files": {
            "evaluation": str(branch / "evaluation" / evaluate.EVALUATION_FILE),
            "analysis_config": str(config_dir / clarify_config.CONFIG_FILE),
            "analysis": str(clarify_dir / bias.ANALYSIS_FILE),
            "roc_curve": str(roc_path),
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.local_run",
        description="Run generate -> split -> stand-in model (for AutoML) -> evaluate -> bias report locally.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-mode", default="stratified", choices=split.MODES)
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--facet-name", default="home_state")
    parser.add_argument("--facet-values", default="CA", help="comma-separated")
    parser.add_argument("--threshold", type=float, default=0.5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args.out, rows=args.rows, seed=args.seed, split_mode=args.split_mode,
                      fraud_rate=args.fraud_rate, facet_name=args.facet_name,
                      facet_values=tuple(v.strip() for v in args.facet_values.split(",") if v.strip()),
                      threshold=args.threshold)
    except (generate.GenerationError, split.SplitError, evaluate.EvaluationError, bias.BiasError,
            clarify_config.ClarifyConfigError, ProblemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model: {summary['model']}")
    print(f"test AUC: {summary['test_auc']:.4f}")
    for name, path in summary["files"].items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
