"""Build the SageMaker Clarify ``analysis_config.json`` at run time; runs in the scikit-learn container.

The pipeline runs this step after the model exists, so the config names the real model and the facet
chosen by the execution's parameters; the Clarify processing job then reads it from the step's output.
Nothing is uploaded when the pipeline is defined.

Contract of the config (Clarify analysis config schema 1.0):
- dataset: the split step's ``test.csv`` (CSV with header), label ``is_fraud``, positive label 1;
- the context columns (``home_state``, ``transaction_state``) are ``excluded_columns``: Clarify keeps them
  for facets but never sends them to the model, so the model sees exactly ``FEATURES`` in order;
- facet: ``--facet-name`` (a column of test.csv) with ``--facet-values`` (comma-separated);
- methods: all pre- and post-training bias metrics, SHAP (mean_abs over ``--shap-samples`` samples,
  baseline from one k-means cluster of the dataset) and the report;
- predictor: the model by name on a shadow endpoint of ``--instance-type``, reading the prediction
  format's probability (and label) columns.

CLI: ``python -m pipeline_code.clarify_config --test-dir DIR --output-dir DIR --model-name NAME ...``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from pipeline_code.columns import CONTEXT, FEATURES, LABEL

CONFIG_FILE = "analysis_config.json"
# Clarify names its shadow endpoint from this prefix; the pipeline passes the team's resource prefix
# (at most 31 characters: a 10-character platform prefix, a hyphen and a 20-character team name).
ENDPOINT_NAME_PREFIX_MAX = 31
ENDPOINT_NAME_PREFIX = re.compile(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,30}")
PREDICTOR_FIELDS = {
    "probability": {"probability": 0},
    "label_and_probability": {"label": 0, "probability": 1},
}
"""Prediction format -> where Clarify finds the outputs in the model's CSV response."""


class ClarifyConfigError(ValueError):
    """Raised for a facet or option the analysis cannot use."""


def read_header(test_dir: Path) -> list:
    """Column names of ``test.csv``."""
    path = test_dir / "test.csv"
    if not path.is_file():
        raise ClarifyConfigError(f"test file {path} not found")
    with path.open() as handle:
        return handle.readline().strip().split(",")


def _typed(value: str):
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def analysis_config(
    headers: list,
    facet_name: str,
    facet_values: list,
    model_name: str,
    instance_type: str,
    prediction_format: str,
    probability_threshold: float = 0.5,
    shap_samples: int = 100,
    label_column: str = LABEL,
    endpoint_name_prefix: str | None = None,
) -> dict:
    """The analysis config as a dict; raises ``ClarifyConfigError`` for an unusable facet or option."""
    if label_column not in headers:
        raise ClarifyConfigError(f"label column {label_column!r} not in the dataset header {headers}")
    if facet_name not in headers or facet_name == label_column:
        choices = [h for h in headers if h != label_column]
        raise ClarifyConfigError(f"facet {facet_name!r} is not a column of the test data; choose one of {choices}")
    values = [_typed(v.strip()) for v in facet_values if str(v).strip()]
    if not values:
        raise ClarifyConfigError("at least one facet value is needed")
    if prediction_format not in PREDICTOR_FIELDS:
        raise ClarifyConfigError(
            f"unknown prediction format {prediction_format!r}; expected one of {sorted(PREDICTOR_FIELDS)}"
        )
    if not 0.0 < probability_threshold < 1.0:
        raise ClarifyConfigError(f"probability threshold must be in (0, 1), got {probability_threshold}")
    if shap_samples < 1:
        raise ClarifyConfigError(f"shap samples must be at least 1, got {shap_samples}")
    missing = [f for f in FEATURES if f not in headers]
    if missing:
        raise ClarifyConfigError(f"the dataset lacks model features {missing}")
    if endpoint_name_prefix is not None and not ENDPOINT_NAME_PREFIX.fullmatch(endpoint_name_prefix):
        raise ClarifyConfigError(
            f"endpoint name prefix {endpoint_name_prefix!r} is not allowed: 1-{ENDPOINT_NAME_PREFIX_MAX} letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
    excluded = [h for h in headers if h in CONTEXT]
    predictor = {
        "model_name": model_name,
        "instance_type": instance_type,
        "initial_instance_count": 1,
        "content_type": "text/csv",
        "accept_type": "text/csv",
    }
    if endpoint_name_prefix:
        predictor["endpoint_name_prefix"] = endpoint_name_prefix
    predictor.update(PREDICTOR_FIELDS[prediction_format])
    return {
        "version": "1.0",
        "dataset_type": "text/csv",
        "headers": list(headers),
        "label": label_column,
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": facet_name, "value_or_threshold": values}],
        "excluded_columns": excluded,
        "probability_threshold": float(probability_threshold),
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {
                "num_clusters": 1,
                "num_samples": int(shap_samples),
                "agg_method": "mean_abs",
                "use_logit": False,
                "save_local_shap_values": False,
            },
            "report": {"name": "report", "title": "Fraud detection: bias and explainability"},
        },
        "predictor": predictor,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.clarify_config",
        description="Write the Clarify analysis_config.json for the trained model and the chosen facet.",
    )
    parser.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv (for its header)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for analysis_config.json")
    parser.add_argument("--model-name", required=True, help="SageMaker model Clarify deploys on a shadow endpoint")
    parser.add_argument(
        "--endpoint-name-prefix",
        default=None,
        help="name prefix of Clarify's shadow endpoint (the team's prefix, so the team role's grants cover it)",
    )
    parser.add_argument("--facet-name", default="home_state")
    parser.add_argument("--facet-values", default="CA", help="comma-separated values of the sensitive group")
    parser.add_argument("--instance-type", default="ml.m5.large")
    parser.add_argument("--prediction-format", default="probability", help=" or ".join(sorted(PREDICTOR_FIELDS)))
    parser.add_argument("--probability-threshold", type=float, default=0.5)
    parser.add_argument("--shap-samples", type=int, default=100)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = analysis_config(
            read_header(args.test_dir),
            args.facet_name,
            args.facet_values.split(","),
            args.model_name,
            args.instance_type,
            args.prediction_format,
            args.probability_threshold,
            args.shap_samples,
            endpoint_name_prefix=args.endpoint_name_prefix,
        )
    except ClarifyConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2, sort_keys=True))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
