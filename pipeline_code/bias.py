"""Bias sections of a SageMaker Clarify ``analysis.json``, computed by ``smclarify`` (the library behind Clarify).

smclarify computes every metric and decides what a facet means, as Clarify does: a facet column that is
numeric with at least 5 % distinct values (or of float type) and one value given is continuous, and the
sensitive group ``d`` is the rows above that threshold (reported as the interval ``(t, max]``); otherwise
``d`` is the rows whose value is one of the given values. Ratios with a zero denominator are written as
``"Infinity"`` / ``"-Infinity"`` and a metric that cannot be computed as ``value`` null with its ``error``,
both as smclarify writes them.

What this module adds (smclarify has no such function):
- the favourable outcome per problem type, as columns smclarify reads the intended way: class labels as
  categories (a 0/1 integer column of a small test split would otherwise count as continuous), the
  positive label as favourable (binary and multiclass), a value above the threshold for regression;
- the ``pre_training_bias_metrics`` / ``post_training_bias_metrics`` sections over several facets;
- a facet that selects no row or every row is refused with an error naming it;
- post-training metrics when no row is predicted favourable (smclarify refuses the whole report): each
  metric is written with value null and that reason as its ``error``;
- NaN (e.g. KL of disjoint distributions) written as null, so the file is strict JSON.

CLI: ``python -m pipeline_code.bias --test-dir DIR --predictions-dir DIR --output-dir DIR --facet-name
home_state --facet-values CA`` writes the bias part of ``analysis.json`` for the fraud example's binary
predictions (``pipeline_code.explain report`` writes the whole report for any problem).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from smclarify.bias import report as clarify_report
from smclarify.bias.metrics import common as clarify_common

from pipeline_code.columns import LABEL
from pipeline_code.evaluate import EvaluationError, positive_scores, read_prediction_lines

ANALYSIS_FILE = "analysis.json"
PRE_TRAINING_METRICS = ("CI", "DPL", "JS", "KL", "KS", "LP", "TVD")
"""smclarify's pre-training metrics except CDDL, which needs a group variable the pipeline does not have."""
POST_TRAINING_METRICS = ("AD", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "RD", "SD", "TE")
"""smclarify's post-training metrics except CDDPL (needs a group variable) and GE (needs an alpha)."""
SECTIONS = {"pre_training": "pre_training_bias_metrics", "post_training": "post_training_bias_metrics"}


class BiasError(ValueError):
    """Raised when the facet or label cannot be analysed."""


def typed(value):
    """A facet value as Clarify's config holds it: int or float when it reads as a number, else the text."""
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def categorical(values) -> pd.Series:
    """Class labels as text categories (the form smclarify reads as categorical whatever the row count)."""
    return pd.Series([str(v) for v in values]).astype("category")


def binary_predictions(scores, threshold: float, positive_label: str, labels) -> pd.Series:
    """Predicted class per row: the positive label when the score is at least ``threshold``, else the other
    label of ``labels`` (or ``not <positive>`` when the labels hold only the positive one)."""
    others = sorted({str(v) for v in labels} - {str(positive_label)})
    negative = others[0] if others else f"not {positive_label}"
    return categorical(np.where(np.asarray(scores, dtype=float) >= threshold, str(positive_label), negative))


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _unavailable(names: tuple, reason: str) -> list:
    metrics = [getattr(clarify_report.smclarify.bias.metrics, name) for name in names]
    return [{"name": m.__name__, "description": clarify_common.metric_description(m), "value": None,
             "error": reason} for m in metrics]


def facet_report(frame: pd.DataFrame, facet_name: str, facet_values: list, label_name: str, label: pd.Series,
                 positive: list, stage: str, predicted: pd.Series | None = None) -> list:
    """smclarify's ``bias_report`` for one facet and stage: ``[{value_or_threshold, metrics}]``.

    ``frame`` holds the facet column and the model features (FT reads them); ``label`` and ``predicted`` are
    aligned with it; ``positive`` is the favourable label values, or a one-element threshold.
    """
    if facet_name not in frame.columns:
        raise BiasError(f"facet column {facet_name!r} is not in the data (columns: {list(frame.columns)})")
    if not facet_values:
        raise BiasError(f"facet {facet_name!r} needs at least one value")
    frame = frame.reset_index(drop=True)
    label = label.reset_index(drop=True)
    facet = clarify_report.FacetColumn(facet_name, [typed(v) for v in facet_values])
    label_column = clarify_report.LabelColumn(label_name, label, list(positive))
    share = clarify_report.bias_basic_stats(frame, facet, label_column, clarify_report.StageType.PRE_TRAINING)
    proportion = next(m for m in share[0]["metrics"] if m["name"] == "proportion")
    if proportion["value"] is None or not 0.0 < proportion["value"] < 1.0:
        selected = "no" if not proportion["value"] else "every"
        raise BiasError(f"facet {facet_name}={'|'.join(map(str, facet_values))} selects {selected} row of the "
                        f"{len(frame)}: both the facet group and the rest must be non-empty "
                        f"({proportion.get('error') or 'share ' + str(proportion['value'])})")
    facet = clarify_report.FacetColumn(facet_name, [typed(v) for v in facet_values])  # smclarify edits the list
    if stage == "pre_training":
        result = clarify_report.bias_report(frame, facet, clarify_report.LabelColumn(label_name, label, list(positive)),
                                            clarify_report.StageType.PRE_TRAINING, metrics=list(PRE_TRAINING_METRICS))
        return _json_safe(result)
    if predicted is None:
        raise BiasError("post-training metrics need predicted labels")
    predicted = predicted.reset_index(drop=True)
    if len(predicted) != len(frame):
        raise BiasError(f"{len(predicted)} predicted labels for {len(frame)} rows")
    if not _any_favourable(predicted, positive):
        value = share[0]["value_or_threshold"]
        return [{"value_or_threshold": value,
                 "metrics": _unavailable(POST_TRAINING_METRICS, "no row is predicted favourable")}]
    result = clarify_report.bias_report(
        frame, facet, clarify_report.LabelColumn(label_name, label, list(positive)),
        clarify_report.StageType.POST_TRAINING,
        predicted_label_column=clarify_report.LabelColumn("predicted_label", predicted, list(positive)),
        metrics=list(POST_TRAINING_METRICS),
    )
    return _json_safe(result)


def _any_favourable(predicted: pd.Series, positive: list) -> bool:
    if isinstance(predicted.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(predicted):
        return bool(predicted.astype(str).isin([str(v) for v in positive]).any())
    return bool((predicted.astype(float) > float(positive[0])).any())


def bias_sections(frame: pd.DataFrame, facets, label_name: str, label: pd.Series, positive: list,
                  predicted: pd.Series | None = None, features: list | None = None) -> dict:
    """The Clarify-layout bias sections for ``facets`` (``(name, values)`` pairs); post-training only with
    ``predicted``. With ``features``, each facet is analysed on those columns plus the facet (FT needs numbers)."""
    facets = [(name, list(values)) for name, values in facets]
    if not facets:
        raise BiasError("at least one facet is needed (name=value[|value...])")
    stages = ["pre_training"] + (["post_training"] if predicted is not None else [])
    value_text = clarify_report.label_value_or_threshold(label.reset_index(drop=True), list(positive))
    sections = {}
    for stage in stages:
        section = {"label": label_name, "label_value_or_threshold": value_text, "facets": {}}
        for name, values in facets:
            columns = list(frame.columns) if features is None else [c for c in features if c != name] + [name]
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise BiasError(f"column(s) {missing} are not in the data (columns: {list(frame.columns)})")
            section["facets"][name] = facet_report(frame[columns], name, values, label_name, label, positive, stage,
                                                   predicted)
        sections[SECTIONS[stage]] = section
    return sections


def run(test_dir: Path, predictions_dir: Path, output_dir: Path, facet_name: str, facet_values: list,
        prediction_format: str = "probability", threshold: float = 0.5) -> dict:
    """Write the bias sections of ``analysis.json`` for binary batch predictions of ``is_fraud``."""
    frame = pd.read_csv(test_dir / "test.csv")
    try:
        scores = positive_scores(read_prediction_lines(predictions_dir), prediction_format)
    except EvaluationError as error:
        raise BiasError(str(error))
    if len(scores) != len(frame):
        raise BiasError(f"{len(scores)} predictions for {len(frame)} test rows")
    if LABEL not in frame.columns:
        raise BiasError(f"test file has no label column {LABEL!r}")
    report = {"version": "1.0"}
    report.update(bias_sections(frame, [(facet_name, facet_values)], LABEL, categorical(frame[LABEL]), ["1"],
                                binary_predictions(scores, threshold, "1", frame[LABEL])))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ANALYSIS_FILE).write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.bias",
        description="Compute Clarify bias metrics (smclarify) for the test split and its predictions.",
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
