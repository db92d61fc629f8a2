"""Bias metrics and SHAP explanations in the layout of a SageMaker Clarify ``analysis.json``.

In the pipeline the Clarify processing job produces ``analysis.json``; this module computes the same
metrics here, with the definitions Clarify documents (facet ``d`` = rows matching the facet values, the
sensitive group; ``a`` = all other rows), so a local run writes the report the pipeline attaches to a
model version:
- pre-training: CI, DPL, KL, JS, LP, TVD, KS (labels only);
- post-training: DPPL, DI, DCA, DCR, RD, DAR, DRR, AD, TE (labels and predicted labels), with Clarify's
  sign conventions (DCR, DRR and TE are ``d`` minus ``a``; the others ``a`` minus ``d``);
- explanations: Shapley values estimated by permutation sampling against one baseline row (the mean
  of the explained rows); per row they add up exactly to ``f(row) - f(baseline)``, and features the model
  ignores get exactly 0. Reported as ``mean_abs`` global values like Clarify's ``kernel_shap``.

A ratio with a zero denominator is infinite and written as the string ``"Infinity"`` or ``"-Infinity"``,
as Clarify writes it.

Facet values follow Clarify: a facet column that is numeric with at least 5 % distinct values and one
value given is continuous, and ``d`` is the rows above that threshold; otherwise ``d`` is the rows whose
value is one of the given values.

CLI: ``python -m pipeline_code.bias --test-dir DIR --predictions-dir DIR --output-dir DIR --facet-name
home_state --facet-values CA`` writes the bias part of ``analysis.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pipeline_code.columns import LABEL
from pipeline_code.evaluate import (
    EvaluationError,
    positive_scores,
    read_prediction_lines,
)

ANALYSIS_FILE = "analysis.json"
UNIQUENESS_THRESHOLD = 0.05

PRE_TRAINING_METRICS = {
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "KL": "Kullback-Liebler Divergence (KL)",
    "JS": "Jensen-Shannon Divergence (JS)",
    "LP": "L-p Norm (LP)",
    "TVD": "Total Variation Distance (TVD)",
    "KS": "Kolmogorov-Smirnov Distance (KS)",
}
POST_TRAINING_METRICS = {
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DI": "Disparate Impact (DI)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "DCR": "Difference in Conditional Rejection (DCR)",
    "RD": "Recall Difference (RD)",
    "DAR": "Difference in Acceptance Rates (DAR)",
    "DRR": "Difference in Rejection Rates (DRR)",
    "AD": "Accuracy Difference (AD)",
    "TE": "Treatment Equality (TE)",
}


class BiasError(ValueError):
    """Raised when the facet or label cannot be analysed."""


def _divide(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return 0.0 if numerator == 0 else math.inf
    return numerator / denominator


def facet_mask(values: pd.Series, facet_values: list) -> np.ndarray:
    """Boolean mask of the sensitive group ``d`` (see module docstring for the threshold rule)."""
    if not facet_values:
        raise BiasError("at least one facet value is needed")
    numeric = pd.api.types.is_numeric_dtype(values)
    unique_share = values.nunique() / max(values.count(), 1)
    if numeric and len(facet_values) == 1 and (
        pd.api.types.is_float_dtype(values) or unique_share >= UNIQUENESS_THRESHOLD
    ):
        return (values.astype(float) > float(facet_values[0])).to_numpy()
    if numeric:
        try:
            wanted = [float(v) for v in facet_values]
        except ValueError:
            raise BiasError(f"facet column {values.name!r} is numeric but facet values {facet_values} are not")
        return values.astype(float).isin(wanted).to_numpy()
    return values.astype(str).isin([str(v) for v in facet_values]).to_numpy()


def _aligned_distributions(labels: np.ndarray, sensitive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values_a, counts_a = np.unique(labels[~sensitive], return_counts=True)
    values_d, counts_d = np.unique(labels[sensitive], return_counts=True)
    share_a = dict(zip(values_a.tolist(), (counts_a / counts_a.sum()).tolist()))
    share_d = dict(zip(values_d.tolist(), (counts_d / counts_d.sum()).tolist()))
    common = sorted(set(share_a) & set(share_d))
    return np.array([share_a[v] for v in common]), np.array([share_d[v] for v in common])


def pre_training_metrics(labels: np.ndarray, positive: np.ndarray, sensitive: np.ndarray) -> dict:
    """Label-only metrics; ``labels`` raw values, ``positive`` and ``sensitive`` boolean masks."""
    n_a, n_d = int((~sensitive).sum()), int(sensitive.sum())
    pa, pd_ = _aligned_distributions(labels, sensitive)
    middle = (pa + pd_) / 2.0
    return {
        "CI": (n_a - n_d) / (n_a + n_d),
        "DPL": positive[~sensitive].mean() - positive[sensitive].mean(),
        "KL": float(np.sum(pa * np.log(pa / pd_))),
        "JS": float(0.5 * (np.sum(pa * np.log(pa / middle)) + np.sum(pd_ * np.log(pd_ / middle)))),
        "LP": float(np.linalg.norm(pa - pd_, 2)),
        "TVD": float(0.5 * np.linalg.norm(pa - pd_, 1)),
        "KS": float(np.linalg.norm(pa - pd_, np.inf)),
    }


def post_training_metrics(positive: np.ndarray, predicted: np.ndarray, sensitive: np.ndarray) -> dict:
    """Metrics comparing labels and predicted labels (boolean masks) between ``a`` and ``d``."""

    def counts(group: np.ndarray) -> dict:
        return {
            "n": int(group.sum()),
            "tp": int((positive & predicted & group).sum()),
            "fp": int((~positive & predicted & group).sum()),
            "fn": int((positive & ~predicted & group).sum()),
            "tn": int((~positive & ~predicted & group).sum()),
        }

    a, d = counts(~sensitive), counts(sensitive)
    for c in (a, d):
        c["pred_pos"], c["pred_neg"] = c["tp"] + c["fp"], c["tn"] + c["fn"]
        c["pos"], c["neg"] = c["tp"] + c["fn"], c["tn"] + c["fp"]
    q_a, q_d = a["pred_pos"] / a["n"], d["pred_pos"] / d["n"]
    return {
        "DPPL": q_a - q_d,
        "DI": _divide(q_d, q_a),
        "DCA": _gap(_divide(a["pos"], a["pred_pos"]), _divide(d["pos"], d["pred_pos"])),
        "DCR": _gap(_divide(d["neg"], d["pred_neg"]), _divide(a["neg"], a["pred_neg"])),
        "RD": _gap(_divide(a["tp"], a["pos"]), _divide(d["tp"], d["pos"])),
        "DAR": _gap(_divide(a["tp"], a["pred_pos"]), _divide(d["tp"], d["pred_pos"])),
        "DRR": _gap(_divide(d["tn"], d["pred_neg"]), _divide(a["tn"], a["pred_neg"])),
        "AD": (a["tp"] + a["tn"]) / a["n"] - (d["tp"] + d["tn"]) / d["n"],
        "TE": _treatment_equality(a, d),
    }


def _gap(first: float, second: float) -> float:
    """``first - second``, and 0 when both are infinite (Clarify's convention)."""
    if first == second == math.inf:
        return 0.0
    return first - second


def _treatment_equality(a: dict, d: dict) -> float:
    return _gap(_divide(d["fn"], d["fp"]), _divide(a["fn"], a["fp"]))


def _json_value(value: float):
    """Clarify's encoding: infinities as the strings "Infinity" / "-Infinity", NaN as null."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def _metric_list(values: dict, descriptions: dict) -> list:
    return [
        {
            "name": name,
            "description": descriptions[name],
            "value": _json_value(values[name]),
        }
        for name in sorted(values)
    ]


def bias_report(
    frame: pd.DataFrame,
    facet_name: str,
    facet_values: list,
    predicted_labels=None,
    label_column: str = LABEL,
    positive_label=1,
) -> dict:
    """Clarify-layout bias sections; post-training metrics only when ``predicted_labels`` is given."""
    for column in (label_column, facet_name):
        if column not in frame.columns:
            raise BiasError(f"column {column!r} not in the data (columns: {list(frame.columns)})")
    sensitive = facet_mask(frame[facet_name], list(facet_values))
    if sensitive.all() or not sensitive.any():
        raise BiasError(
            f"facet {facet_name}={facet_values} selects {int(sensitive.sum())} of {len(frame)} rows; "
            "both the facet group and the rest must be non-empty"
        )
    labels = frame[label_column].to_numpy()
    positive = labels == positive_label
    facet_text = ",".join(str(v) for v in facet_values)
    section = {
        "label": label_column,
        "label_value_or_threshold": str(positive_label),
        "facets": {facet_name: [{"value_or_threshold": facet_text, "metrics": None}]},
    }
    pre = json.loads(json.dumps(section))
    pre["facets"][facet_name][0]["metrics"] = _metric_list(
        pre_training_metrics(labels, positive, sensitive), PRE_TRAINING_METRICS
    )
    report = {"version": "1.0", "pre_training_bias_metrics": pre}
    if predicted_labels is not None:
        predicted = np.asarray(predicted_labels) == positive_label
        if len(predicted) != len(frame):
            raise BiasError(f"{len(predicted)} predicted labels for {len(frame)} rows")
        post = json.loads(json.dumps(section))
        post["facets"][facet_name][0]["metrics"] = _metric_list(
            post_training_metrics(positive, predicted, sensitive), POST_TRAINING_METRICS
        )
        report["post_training_bias_metrics"] = post
    return report


def shapley_values(
    predict: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    baseline: np.ndarray,
    permutations: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Permutation-sampling Shapley values, shape ``rows.shape``.

    ``predict`` maps an (m, d) array to m scores; it is called once, on every intermediate row of every
    sampled feature order. For each order, features switch from the
    baseline to the row's value one at a time and each switch is credited with the change in score, so
    every row's values sum exactly to ``predict(row) - predict(baseline)``.
    """
    rows = np.asarray(rows, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    if rows.ndim != 2 or baseline.shape != (rows.shape[1],):
        raise BiasError(f"rows must be (n, d) and baseline (d,), got {rows.shape} and {baseline.shape}")
    if permutations < 1:
        raise BiasError(f"permutations must be at least 1, got {permutations}")
    rng = np.random.default_rng(seed)
    count, width = rows.shape
    orders = [rng.permutation(width) for _ in range(permutations)]
    stages = []
    for order in orders:
        current = np.tile(baseline, (count, 1))
        stages.append(current.copy())
        for feature in order:
            current[:, feature] = rows[:, feature]
            stages.append(current.copy())
    scores = np.asarray(predict(np.concatenate(stages)), dtype=float).reshape(permutations, width + 1, count)
    values = np.zeros_like(rows)
    for index, order in enumerate(orders):
        gains = np.diff(scores[index], axis=0)
        for step, feature in enumerate(order):
            values[:, feature] += gains[step]
    return values / permutations


def explanations_report(
    predict: Callable[[np.ndarray], np.ndarray],
    rows: pd.DataFrame,
    permutations: int = 32,
    seed: int = 0,
) -> dict:
    """Clarify-layout ``explanations`` section for the model behind ``predict`` on ``rows``."""
    matrix = rows.to_numpy(dtype=float)
    baseline = matrix.mean(axis=0)
    values = shapley_values(predict, matrix, baseline, permutations, seed)
    expected = float(np.asarray(predict(baseline[None, :]), dtype=float)[0])
    global_values = {name: float(v) for name, v in zip(rows.columns, np.abs(values).mean(axis=0))}
    return {
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": global_values,
                    "expected_value": expected,
                    "baseline": [float(v) for v in baseline],
                    "agg_method": "mean_abs",
                    "num_samples": permutations,
                }
            }
        }
    }


def run(test_dir: Path, predictions_dir: Path, output_dir: Path, facet_name: str, facet_values: list,
        prediction_format: str = "probability", threshold: float = 0.5) -> dict:
    """Write the bias sections of ``analysis.json`` for batch predictions on the test split."""
    frame = pd.read_csv(test_dir / "test.csv")
    try:
        scores = positive_scores(read_prediction_lines(predictions_dir), prediction_format)
    except EvaluationError as error:
        raise BiasError(str(error))
    if len(scores) != len(frame):
        raise BiasError(f"{len(scores)} predictions for {len(frame)} test rows")
    report = bias_report(frame, facet_name, facet_values, (scores >= threshold).astype(int))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ANALYSIS_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.bias",
        description="Compute Clarify-style bias metrics for the test split and its predictions.",
    )
    parser.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv")
    parser.add_argument("--predictions-dir", type=Path, required=True, help="folder with prediction files")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for analysis.json")
    parser.add_argument("--facet-name", default="home_state")
    parser.add_argument("--facet-values", default="CA", help="comma-separated values of the sensitive group")
    parser.add_argument("--prediction-format", default="probability")
    parser.add_argument("--threshold", type=float, default=0.5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    values = [v.strip() for v in args.facet_values.split(",") if v.strip()]
    try:
        run(args.test_dir, args.predictions_dir, args.output_dir, args.facet_name, values,
            args.prediction_format, args.threshold)
    except BiasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output_dir / ANALYSIS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
