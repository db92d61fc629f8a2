"""Build the SageMaker Clarify ``analysis_config.json`` at run time; runs in the scikit-learn container.

The pipeline runs this step after the batch predictions exist, so the config names the real model, the
facets chosen by the execution's parameters and the label order the model reports.

Contract of the config (Clarify analysis config schema 1.0):
- dataset: the split step's ``bias_dataset`` output: the test rows *without* a header row, so the
  config's ``headers`` (the header of ``test.csv``, same columns in the same order) is the only naming
  of the columns and no header line can be read as data;
- label: the problem's target; the favourable outcome is the positive label (binary), the positive label
  as favourable class (multiclass), or a value above the test split's median target (regression);
- every column that is not a model feature or the target is an ``excluded_column``: Clarify keeps it for
  facets but never sends it to the model, so the model sees exactly its features in order;
- facets: ``--facets name=v1|v2;name2=...`` (columns of the test data, not the target); with none (an empty
  ``--facets``) the config has no ``facet`` and no bias methods, so Clarify computes only SHAP values (bias
  skipped: ``problem.NO_FACETS_REASON``);
- predictor: the model by name on a shadow endpoint, read per prediction format:
  ``probability`` -> column 0 is the positive class's score, thresholded by ``probability_threshold``;
  ``automl_classification`` -> column 0 is the predicted label and column 2 the list of every class's
  probability, in the order of ``label_headers`` (taken from the ``labels`` column of the batch
  predictions, never assumed), so SHAP explains each class's probability, not the model's confidence;
  ``class_index`` -> column 0 is the index into ``label_headers`` (the classes); ``value`` -> column 0.

CLI: ``python -m pipeline_code.clarify_config --test-dir DIR --output-dir DIR --model-name NAME ...``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code import problem as problem_module
from pipeline_code.evaluate import EvaluationError, parse_list_field, prediction_fields, read_prediction_lines
from pipeline_code.problem import Problem, ProblemError, parse_facets

CONFIG_FILE = "analysis_config.json"
# Clarify names its shadow endpoint from this prefix; the pipeline passes the team's resource prefix
# (at most 31 characters: a 10-character platform prefix, a hyphen and a 20-character team name).
ENDPOINT_NAME_PREFIX_MAX = 31
ENDPOINT_NAME_PREFIX = re.compile(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,30}")
PREDICTOR_FIELDS = {
    "probability": {"probability": 0},
    "automl_classification": {"label": 0, "probability": 2},
    "class_index": {"label": 0},
    "value": {"label": 0},
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


def reported_labels(predictions_dir: Path) -> list:
    """The ``labels`` list of the first prediction line (Autopilot reports the class order per line)."""
    try:
        lines = read_prediction_lines(predictions_dir)
        fields = prediction_fields(lines[0])
        if len(fields) != 4:
            raise ClarifyConfigError(f"prediction line {lines[0]!r} is not predicted_label,probability,probabilities,labels")
        return [str(label) for label in parse_list_field(fields[3], "labels")]
    except (EvaluationError, ValueError) as error:
        raise ClarifyConfigError(str(error))


def favourable_outcome(problem: Problem, test_dir: Path) -> list:
    """``label_values_or_threshold``: the positive label, or the test median for a regression target."""
    if problem.problem_type != "regression":
        return [_typed(problem.positive_label)]
    frame = pd.read_csv(test_dir / "test.csv", usecols=[problem.target])
    return [float(np.median(frame[problem.target].to_numpy(dtype=float)))]


def analysis_config(
    headers: list,
    problem: Problem,
    facets: tuple,
    model_name: str,
    instance_type: str,
    prediction_format: str,
    label_values: list,
    probability_threshold: float = 0.5,
    shap_samples: int = 100,
    label_headers: list | None = None,
    endpoint_name_prefix: str | None = None,
) -> dict:
    """The analysis config as a dict; raises ``ClarifyConfigError`` for an unusable facet or option."""
    label_column = problem.target
    if label_column not in headers:
        raise ClarifyConfigError(f"label column {label_column!r} not in the dataset header {headers}")
    choices = [h for h in headers if h != label_column]
    for facet in facets:
        if facet.name not in choices:
            raise ClarifyConfigError(f"facet {facet.name!r} is not a column of the test data; choose one of {choices}")
        if not facet.values:
            raise ClarifyConfigError(f"facet {facet.name!r} needs at least one value")
    if prediction_format not in PREDICTOR_FIELDS:
        raise ClarifyConfigError(
            f"unknown prediction format {prediction_format!r}; expected one of {sorted(PREDICTOR_FIELDS)}"
        )
    if not 0.0 < probability_threshold < 1.0:
        raise ClarifyConfigError(f"probability threshold must be in (0, 1), got {probability_threshold}")
    if shap_samples < 1:
        raise ClarifyConfigError(f"shap samples must be at least 1, got {shap_samples}")
    try:
        features = problem.model_features(headers)
    except ProblemError as error:
        raise ClarifyConfigError(f"the dataset lacks model features: {error}")
    if endpoint_name_prefix is not None and not ENDPOINT_NAME_PREFIX.fullmatch(endpoint_name_prefix):
        raise ClarifyConfigError(
            f"endpoint name prefix {endpoint_name_prefix!r} is not allowed: 1-{ENDPOINT_NAME_PREFIX_MAX} letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
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
    if prediction_format == "automl_classification":
        if not label_headers or (problem.problem_type == "binary" and problem.positive_label not in label_headers):
            raise ClarifyConfigError(f"the model's labels {label_headers} must include the positive label "
                                     f"{problem.positive_label!r}")
        predictor["label_headers"] = list(label_headers)
    elif prediction_format == "class_index":
        predictor["label_headers"] = list(problem.classes)
    bias_methods = {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}}
    config = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "headers": list(headers),
        "label": label_column,
        "label_values_or_threshold": list(label_values),
        "facet": [{"name_or_index": f.name, "value_or_threshold": [_typed(v) for v in f.values]} for f in facets],
        "excluded_columns": [h for h in headers if h != label_column and h not in features],
        "methods": {
            **(bias_methods if facets else {}),
            "shap": {
                "num_clusters": 1,
                "num_samples": int(shap_samples),
                "agg_method": "mean_abs",
                "use_logit": False,
                "save_local_shap_values": False,
            },
            "report": {"name": "report", "title": f"{problem.problem_type} model on {label_column}: bias and explainability"},
        },
        "predictor": predictor,
    }
    if not facets:
        del config["facet"]
        config["methods"]["report"]["title"] = f"{problem.problem_type} model on {label_column}: explainability"
    if prediction_format == "probability":
        config["probability_threshold"] = float(probability_threshold)
    return config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.clarify_config",
        description="Write the Clarify analysis_config.json for the trained model and the chosen facets.",
    )
    parser.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv (for its header)")
    parser.add_argument("--predictions-dir", type=Path, default=None,
                        help="batch predictions (for the label order of automl_classification)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for analysis_config.json")
    parser.add_argument("--model-name", required=True, help="SageMaker model Clarify deploys on a shadow endpoint")
    parser.add_argument(
        "--endpoint-name-prefix",
        default=None,
        help="name prefix of Clarify's shadow endpoint (the team's prefix, so the team role's grants cover it)",
    )
    parser.add_argument("--facets", required=True,
                        help="sensitive facets: name=v1|v2;name2=v3 (empty: no bias analysis, SHAP only)")
    parser.add_argument("--instance-type", default="ml.m5.large", help="default: ml.m5.large")
    parser.add_argument("--prediction-format", required=True, choices=sorted(PREDICTOR_FIELDS))
    parser.add_argument("--probability-threshold", type=float, default=0.5, help="default: 0.5")
    parser.add_argument("--shap-samples", type=int, default=100, help="default: 100")
    problem_module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        problem = problem_module.from_namespace(args)
        label_headers = None
        if args.prediction_format == "automl_classification":
            if args.predictions_dir is None:
                raise ClarifyConfigError("--predictions-dir is needed for prediction format automl_classification")
            label_headers = reported_labels(args.predictions_dir)
        config = analysis_config(
            read_header(args.test_dir),
            problem,
            parse_facets(args.facets),
            args.model_name,
            args.instance_type,
            args.prediction_format,
            favourable_outcome(problem, args.test_dir),
            args.probability_threshold,
            args.shap_samples,
            label_headers=label_headers,
            endpoint_name_prefix=args.endpoint_name_prefix,
        )
    except (ClarifyConfigError, ProblemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2, sort_keys=True))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
