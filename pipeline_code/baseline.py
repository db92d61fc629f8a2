"""The drift baseline of one model version; runs in the scikit-learn processing container.

Written before registration and recorded on the model package (``DriftCheckBaselines`` and the
``DriftBaseline`` metadata property), so the monitoring job of an endpoint compares what it serves with
what *that* version was trained on:

- ``baseline.json``: the model's feature columns in request order with their kind (numerical or
  categorical, see ``pipeline_code.drift``), summary statistics per feature, the problem (target, classes,
  positive label), the prediction format of the model's responses, the decision threshold, the quality
  metric and the test metrics from ``evaluation.json``;
- ``reference.csv``: the rows the drift tests compare against: the training split without the oversampled
  copies (the split step appends those after the original rows), the model's features only, at most
  ``--max-reference-rows`` of them drawn without replacement with ``--seed``.

CLI: ``python -m pipeline_code.baseline --train-dir DIR --split-dir DIR --evaluation-dir DIR --output-dir DIR
--prediction-format F --quality-metric M [--threshold T] --problem-type T --target C [problem options]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code import drift
from pipeline_code import problem as problem_module
from pipeline_code.definition import BASELINE_FILE
from pipeline_code.evaluate import EVALUATION_FILE, PREDICTION_FORMATS
from pipeline_code.problem import METRICS_SECTION, Problem, ProblemError

REFERENCE_FILE = "reference.csv"
FORMAT_VERSION = 1
MAX_REFERENCE_ROWS = 10_000
TOP_CATEGORIES = 20
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class BaselineError(ValueError):
    """Raised when the split or evaluation output cannot make a baseline."""


def original_training_rows(train: pd.DataFrame, summary: dict) -> pd.DataFrame:
    """``train`` without the copies oversampling appended (``split_summary.json``'s ``oversampled_rows``)."""
    extra = int(summary.get("oversampled_rows", 0))
    if not 0 <= extra < len(train):
        raise BaselineError(f"split summary says {extra} oversampled rows, but train has {len(train)} rows")
    return train.iloc[: len(train) - extra]


def reference_sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``frame`` in their original order, drawn without replacement."""
    if max_rows < 1:
        raise BaselineError(f"max reference rows must be at least 1, got {max_rows}")
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    chosen = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[chosen].reset_index(drop=True)


def feature_statistics(values: pd.Series, kind: str) -> dict:
    """What the registry reader sees per feature: counts, missing share and the distribution's shape."""
    present = values.replace([np.inf, -np.inf], np.nan).dropna()
    statistics = {"kind": kind, "count": int(len(values)), "missing": int(len(values) - len(present)),
                  "distinct": int(present.nunique())}
    if kind == drift.NUMERICAL and len(present):
        statistics.update(mean=float(present.mean()), std=float(present.std(ddof=0)), min=float(present.min()),
                          max=float(present.max()),
                          quantiles={str(q): float(present.quantile(q)) for q in QUANTILES})
    elif len(present):
        shares = present.astype(str).value_counts(normalize=True).head(TOP_CATEGORIES)
        statistics["top_values"] = {str(value): float(share) for value, share in shares.items()}
    return statistics


def test_metrics(evaluation: dict, problem: Problem) -> dict:
    """``metric -> value`` of the evaluation report's scalar metrics."""
    section = evaluation.get(METRICS_SECTION[problem.problem_type])
    if not isinstance(section, dict):
        raise BaselineError(f"{EVALUATION_FILE} has no {METRICS_SECTION[problem.problem_type]!r} section")
    return {name: float(entry["value"]) for name, entry in sorted(section.items())
            if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float))}


def build(train: pd.DataFrame, summary: dict, evaluation: dict, problem: Problem, prediction_format: str,
          quality_metric: str, threshold: float, max_rows: int = MAX_REFERENCE_ROWS, seed: int = 0) -> tuple:
    """(baseline document, reference frame) for one version."""
    features = list(summary.get("features") or [])
    if not features:
        raise BaselineError("split summary lists no features")
    missing = [name for name in features if name not in train.columns]
    if missing:
        raise BaselineError(f"train split lacks feature column(s) {missing}")
    rows = original_training_rows(train, summary)[features]
    reference = reference_sample(rows, max_rows, seed)
    kinds = {name: drift.column_kind(rows[name]) for name in features}
    metrics = test_metrics(evaluation, problem)
    if quality_metric not in metrics:
        raise BaselineError(f"quality metric {quality_metric!r} is not in {EVALUATION_FILE}; it has {sorted(metrics)}")
    document = {
        "format_version": FORMAT_VERSION,
        "features": [{"name": name, "kind": kinds[name]} for name in features],
        "statistics": {name: feature_statistics(rows[name], kinds[name]) for name in features},
        "reference": {"file": REFERENCE_FILE, "rows": int(len(reference)), "training_rows": int(len(rows)),
                      "seed": seed},
        "problem": {"problem_type": problem.problem_type, "target": problem.target,
                    "arguments": problem.to_arguments()},
        "prediction_format": prediction_format,
        "threshold": threshold,
        "quality_metric": quality_metric,
        "test_metrics": metrics,
    }
    return document, reference


def write(output_dir: Path, document: dict, reference: pd.DataFrame) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    reference.to_csv(output_dir / REFERENCE_FILE, index=False)
    path = output_dir / BASELINE_FILE
    path.write_text(json.dumps(document, indent=2, sort_keys=True))
    return path


def _one_json(folder: Path, name: str) -> dict:
    path = folder / name
    if not path.is_file():
        raise BaselineError(f"{path} not found")
    return json.loads(path.read_text())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.baseline",
                                     description="Write a model version's drift baseline.")
    parser.add_argument("--train-dir", type=Path, required=True, help="folder with train.csv from the split step")
    parser.add_argument("--split-dir", type=Path, required=True, help="folder with split_summary.json")
    parser.add_argument("--evaluation-dir", type=Path, required=True, help="folder with evaluation.json")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--prediction-format", required=True, choices=PREDICTION_FORMATS)
    parser.add_argument("--quality-metric", required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--max-reference-rows", type=int, default=MAX_REFERENCE_ROWS)
    parser.add_argument("--seed", type=int, default=0)
    problem_module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        problem = problem_module.from_namespace(args)
        train_file = args.train_dir / "train.csv"
        if not train_file.is_file():
            raise BaselineError(f"{train_file} not found")
        train = pd.read_csv(train_file)
        document, reference = build(train, _one_json(args.split_dir, "split_summary.json"),
                                    _one_json(args.evaluation_dir, EVALUATION_FILE), problem,
                                    args.prediction_format, args.quality_metric, args.threshold,
                                    args.max_reference_rows, args.seed)
        path = write(args.output_dir, document, reference)
    except (BaselineError, ProblemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(document['features'])} features, {document['reference']['rows']} reference rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
