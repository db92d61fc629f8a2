"""Bias metrics (smclarify) and Kernel SHAP explanations (shap) without an endpoint, in Clarify's layout.

Kernel SHAP's sampled coalitions depend on the data only, never on the model's outputs, so the work is split
around a batch transform and no model runs inside these steps:

``samples``: picks up to ``--max-rows`` test rows (seeded), builds one baseline row from the train split
(numeric feature: its mean, as Clarify's baseline with ``num_clusters`` 1; other features: the most frequent
value, ties to the first in text order) and runs ``shap.KernelExplainer`` with a *recording* model function,
which answers zeros and keeps every array it is asked to score. It writes ``samples.csv`` (no header, the
model's features in ``transform_input`` order, every recorded row in call order; numbers written so they read
back to the same float) and ``design.json`` (features, baseline, explained test rows, nsamples, seed, l1_reg,
shap version, output names, and per model call its row count and the sha256 of its rows' CSV text).

The pipeline batch-transforms ``samples.csv`` with the branch's model, in the test predictions' format.

``report``: replays the explainer with the same settings and a model function that answers the recorded
predictions call by call, after checking each call's rows against the design (a changed design, shap
version or sample predictions file fails naming the call); computes the bias metrics with smclarify
(``pipeline_code.bias``); and writes ``analysis.json`` (``version``, ``pre_training_bias_metrics``,
``post_training_bias_metrics``, ``explanations.kernel_shap.<output>`` with ``global_shap_values`` (mean
|SHAP| per feature) and ``expected_value``), ``local_shap_values.csv`` (per explained row and output) and
``summary.json`` (top features per output, largest bias per facet) for experiment tracking. With no facet
(neither ``--facets`` nor the problem's ``--facet``) the bias sections are left out and ``analysis.json`` and
``summary.json`` say why in ``bias_skipped`` (``problem.NO_FACETS_REASON``); the SHAP values are written all
the same.

Explained outputs: binary -> the positive class's score (``label0``); regression -> the value (``label0``);
multiclass -> one output per class, named by the class: each class's probability (``automl_classification``,
from the ``probabilities`` and ``labels`` fields) or its one-hot indicator of the predicted class
(``class_index``, which gives only the predicted class).

The explainer draws from numpy's global random state, seeded with ``--seed`` right before ``shap_values``
and restored afterwards. ``l1_reg`` is ``num_features(M)`` for M features: shap's default feature selection
without its cap at 10 features (identical to the default up to 10 features).

CLI: ``python -m pipeline_code.explain samples --test-dir D --train-dir D --output-dir D [--design-dir D]
--shap-samples N --max-rows R --seed S <problem args>`` and ``python -m pipeline_code.explain report
--test-dir D --predictions-dir D --design-dir D --sample-predictions-dir D --output-dir D --facets F
--prediction-format F [--threshold T] <problem args>``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import shap

from pipeline_code import bias
from pipeline_code import problem as problem_module
from pipeline_code.evaluate import (
    EvaluationError,
    parse_list_field,
    positive_scores,
    predicted_classes,
    predicted_values,
    prediction_fields,
    read_prediction_lines,
)
from pipeline_code.problem import NO_FACETS_REASON, Problem, ProblemError, parse_facets

SAMPLES_FILE = "samples.csv"
DESIGN_FILE = "design.json"
ANALYSIS_FILE = "analysis.json"
LOCAL_FILE = "local_shap_values.csv"
SUMMARY_FILE = "summary.json"
DESIGN_VERSION = 1
TOP_FEATURES = 5
OUTPUT_FORMATS = {
    "binary": ("probability", "label_and_probability", "automl_classification"),
    "multiclass": ("automl_classification", "class_index"),
    "regression": ("value",),
}
"""Problem type -> prediction formats whose outputs the report can explain."""


class ExplainError(ValueError):
    """Raised for inputs the explanation steps cannot use; the message names the file, field or call."""


# --- data ---------------------------------------------------------------------------------------------


def read_split(folder: Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.csv`` (a split step output, with a header)."""
    path = folder / f"{name}.csv"
    if not path.is_file():
        raise ExplainError(f"{name} file {path} not found")
    return pd.read_csv(path)


def model_features(problem: Problem, columns) -> list:
    try:
        return problem.model_features([c for c in columns if c != problem.target])
    except ProblemError as error:
        raise ExplainError(f"the data lacks model features: {error}")


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Rows as the explainer sees them: float64 when every column is numeric, else objects."""
    if all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns):
        return frame.to_numpy(dtype=float)
    return frame.astype(object).where(frame.notna(), None).to_numpy(dtype=object)


def baseline_row(train: pd.DataFrame, features: list) -> list:
    """One row: the mean of each numeric feature, the most frequent value of any other (ties: text order)."""
    row = []
    for name in features:
        column = train[name]
        if pd.api.types.is_numeric_dtype(column):
            value = float(column.astype(float).mean())
            if math.isnan(value):
                raise ExplainError(f"feature {name!r} has no value in the train split to average")
        else:
            counts = column.dropna().astype(str).value_counts()
            if counts.empty:
                raise ExplainError(f"feature {name!r} has no value in the train split")
            value = sorted(counts.index[counts == counts.max()])[0]
        row.append(value)
    return row


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def encode_rows(array) -> str:
    """CSV text of ``array``'s rows as the batch transform receives them (floats as ``repr``, NaN empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in np.asarray(array):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def output_names(problem: Problem) -> list:
    """Names of the explained outputs (``explanations.kernel_shap`` keys)."""
    return list(problem.classes) if problem.problem_type == "multiclass" else ["label0"]


def check_format(prediction_format: str, problem: Problem) -> None:
    allowed = OUTPUT_FORMATS[problem.problem_type]
    if prediction_format not in allowed:
        raise ExplainError(f"prediction format {prediction_format!r} cannot be explained for a "
                           f"{problem.problem_type} problem; expected one of {list(allowed)}")


def model_outputs(lines: list, prediction_format: str, problem: Problem) -> np.ndarray:
    """(rows, outputs) array of the explained outputs of each prediction line."""
    check_format(prediction_format, problem)
    try:
        if problem.problem_type == "binary":
            return positive_scores(lines, prediction_format, problem.positive_label)[:, None]
        if problem.problem_type == "regression":
            return predicted_values(lines, prediction_format)[:, None]
        classes = list(problem.classes)
        if prediction_format == "class_index":
            predicted = predicted_classes(lines, prediction_format, problem.classes)
            return np.array([[1.0 if p == c else 0.0 for c in classes] for p in predicted])
        return np.array([_class_probabilities(index, line, classes) for index, line in enumerate(lines)])
    except EvaluationError as error:
        raise ExplainError(str(error))


def _class_probabilities(index: int, line: str, classes: list) -> list:
    fields = prediction_fields(line)
    try:
        if len(fields) != 4:
            raise ValueError(f"expected 4 fields (predicted_label,probability,probabilities,labels), got {len(fields)}")
        probabilities = [float(p) for p in parse_list_field(fields[2], "probabilities")]
        labels = [str(label) for label in parse_list_field(fields[3], "labels")]
        if len(probabilities) != len(labels) or sorted(labels) != sorted(classes):
            raise ValueError(f"labels {labels} must list the classes {classes} once each, one probability each")
    except ValueError as error:
        raise ExplainError(f"prediction line {index + 1} {line!r}: {error}")
    by_label = dict(zip(labels, probabilities))
    return [by_label[c] for c in classes]


# --- the explainer ----------------------------------------------------------------------------------------


def l1_reg(features: list) -> str:
    return f"num_features({len(features)})"


def kernel_shap(predict, baseline, rows, nsamples: int, seed: int, regularization: str):
    """(SHAP values (rows, features, outputs), expected value per output) of ``shap.KernelExplainer``."""
    baseline = np.asarray(baseline)[None, :]
    explainer = shap.KernelExplainer(predict, baseline)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        values = explainer.shap_values(np.asarray(rows), nsamples=nsamples, l1_reg=regularization, silent=True)
    finally:
        np.random.set_state(state)
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        values = values[:, :, None]
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))


class Recorder:
    """Model function that answers zeros of the outputs' shape and keeps every array it is given."""

    def __init__(self, outputs: int) -> None:
        self.outputs, self.calls = outputs, []

    def __call__(self, array):
        array = np.asarray(array)
        self.calls.append(array.copy())
        return np.zeros(len(array)) if self.outputs == 1 else np.zeros((len(array), self.outputs))


class Replayer:
    """Model function that answers the recorded predictions call by call, after checking each call's rows
    against the design; a call whose rows or prediction lines do not match fails naming the call."""

    def __init__(self, calls: list, lines: list, prediction_format: str, problem: Problem) -> None:
        self.calls, self.lines, self.format, self.problem = calls, lines, prediction_format, problem
        self.position, self.offset = 0, 0

    def __call__(self, array):
        array = np.asarray(array)
        number = self.position + 1
        if self.position >= len(self.calls):
            raise ExplainError(f"model call {number} ({len(array)} rows) is not in the design, which records "
                               f"{len(self.calls)} calls: the design or the shap version changed")
        expected = self.calls[self.position]
        found = digest(encode_rows(array))
        if len(array) != expected["rows"] or found != expected["sha256"]:
            raise ExplainError(
                f"model call {number}: the explainer asks for {len(array)} rows with sha256 {found}, but the design "
                f"recorded {expected['rows']} rows with sha256 {expected['sha256']}: the test split, the design or "
                "the shap version changed since the samples step")
        first, last = self.offset + 1, self.offset + len(array)
        chunk = self.lines[self.offset:self.offset + len(array)]
        if len(chunk) != len(array):
            raise ExplainError(f"model call {number} needs sample prediction lines {first}-{last}, but there are "
                               f"only {len(self.lines)}: the sample predictions file was cut or changed")
        try:
            answer = model_outputs(chunk, self.format, self.problem)
        except ExplainError as error:
            raise ExplainError(f"model call {number} (sample prediction lines {first}-{last}): {error}")
        self.position += 1
        self.offset += len(array)
        return answer[:, 0] if answer.shape[1] == 1 else answer

    def check_done(self) -> None:
        """Every recorded call replayed and every sample prediction line used."""
        if self.position != len(self.calls):
            raise ExplainError(f"the replay made {self.position} of the design's {len(self.calls)} model calls")
        if self.offset != len(self.lines):
            raise ExplainError(f"{len(self.lines) - self.offset} sample prediction line(s) after the last model call "
                               f"({len(self.lines)} lines for the design's {self.offset} sample rows)")


# --- samples ---------------------------------------------------------------------------------------------


def make_samples(test_dir: Path, train_dir: Path, output_dir: Path, design_dir: Path, problem: Problem,
                 nsamples: int, max_rows: int, seed: int) -> dict:
    """Write ``samples.csv`` and ``design.json``; returns the design."""
    if nsamples < 2:
        raise ExplainError(f"--shap-samples must be at least 2, got {nsamples}")
    if max_rows < 1:
        raise ExplainError(f"--max-rows must be at least 1, got {max_rows}")
    test, train = read_split(test_dir, "test"), read_split(train_dir, "train")
    features = model_features(problem, test.columns)
    missing = [c for c in features if c not in train.columns]
    if missing:
        raise ExplainError(f"feature(s) {missing} are not columns of the train split {list(train.columns)}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(test), size=min(max_rows, len(test)), replace=False))
    baseline = baseline_row(train, features)
    rows = feature_matrix(test[features]).take(chosen, axis=0)
    if rows.dtype != object:
        baseline_array = np.array(baseline, dtype=float)
    else:
        baseline_array = np.array(baseline, dtype=object)
    outputs = output_names(problem)
    recorder = Recorder(len(outputs))
    kernel_shap(recorder, baseline_array, rows, nsamples, seed, l1_reg(features))
    texts = [encode_rows(call) for call in recorder.calls]
    output_dir.mkdir(parents=True, exist_ok=True)
    design_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SAMPLES_FILE).write_text("".join(texts))
    design = {
        "version": DESIGN_VERSION,
        "features": features,
        "baseline": [_json_value(v) for v in baseline],
        "baseline_method": "mean of each numeric feature, most frequent value of any other (train split)",
        "explained_rows": [int(i) for i in chosen],
        "nsamples": int(nsamples),
        "seed": int(seed),
        "l1_reg": l1_reg(features),
        "shap_version": shap.__version__,
        "outputs": outputs,
        "problem_type": problem.problem_type,
        "samples_file": SAMPLES_FILE,
        "rows": int(sum(len(call) for call in recorder.calls)),
        "calls": [{"rows": int(len(call)), "sha256": digest(text)} for call, text in zip(recorder.calls, texts)],
    }
    (design_dir / DESIGN_FILE).write_text(json.dumps(design, indent=2, allow_nan=False))
    return design


def _json_value(value):
    return float(value) if isinstance(value, (float, np.floating)) else value


# --- report ----------------------------------------------------------------------------------------------


def read_design(design_dir: Path) -> dict:
    path = design_dir / DESIGN_FILE
    if not path.is_file():
        raise ExplainError(f"design file {path} not found")
    design = json.loads(path.read_text())
    for key in ("version", "features", "baseline", "explained_rows", "nsamples", "seed", "l1_reg", "shap_version",
                "outputs", "rows", "calls"):
        if key not in design:
            raise ExplainError(f"design file {path} has no {key!r}")
    if design["version"] != DESIGN_VERSION:
        raise ExplainError(f"design version {design['version']!r} is not {DESIGN_VERSION}")
    if design["shap_version"] != shap.__version__:
        raise ExplainError(f"the design was made with shap {design['shap_version']}, this step has shap "
                           f"{shap.__version__}: the replay needs the same version")
    return design


def replay_explanations(test: pd.DataFrame, design: dict, sample_lines: list, prediction_format: str,
                        problem: Problem) -> tuple:
    """(SHAP values (rows, features, outputs), expected values, explained row indices) from the recorded scores."""
    features = design["features"]
    missing = [c for c in features if c not in test.columns]
    if missing:
        raise ExplainError(f"design feature(s) {missing} are not columns of the test split")
    if design["outputs"] != output_names(problem):
        raise ExplainError(f"design outputs {design['outputs']} differ from this problem's {output_names(problem)}")
    check_format(prediction_format, problem)
    chosen = list(design["explained_rows"])
    if any(not 0 <= i < len(test) for i in chosen):
        raise ExplainError(f"explained rows {chosen[:5]}... do not all lie in the {len(test)} test rows")
    rows = feature_matrix(test[features]).take(chosen, axis=0)
    baseline = np.array(design["baseline"], dtype=float if rows.dtype != object else object)
    replayer = Replayer(design["calls"], sample_lines, prediction_format, problem)
    values, expected = kernel_shap(replayer, baseline, rows, design["nsamples"], design["seed"], design["l1_reg"])
    replayer.check_done()
    return values, expected, chosen


def explanations_section(values: np.ndarray, expected: np.ndarray, features: list, outputs: list,
                         nsamples: int) -> dict:
    """``explanations`` of ``analysis.json``: per output, mean |SHAP| per feature and the expected value."""
    kernel = {}
    for index, name in enumerate(outputs):
        magnitude = np.abs(values[:, :, index]).mean(axis=0)
        kernel[name] = {
            "global_shap_values": {f: float(v) for f, v in zip(features, magnitude)},
            "expected_value": float(expected[index]),
            "agg_method": "mean_abs",
            "num_samples": int(nsamples),
        }
    return {"kernel_shap": kernel}


def _label_and_predictions(test: pd.DataFrame, lines: list, prediction_format: str, problem: Problem,
                           threshold: float) -> tuple:
    """(label series, favourable values, predicted series) in the form smclarify reads."""
    target = test[problem.target]
    try:
        if problem.problem_type == "regression":
            observed = target.astype(float)
            return observed, [float(np.median(observed))], pd.Series(predicted_values(lines, prediction_format))
        if problem.problem_type == "binary":
            scores = positive_scores(lines, prediction_format, problem.positive_label)
            return (bias.categorical(target), [problem.positive_label],
                    bias.binary_predictions(scores, threshold, problem.positive_label, target))
        predicted = predicted_classes(lines, prediction_format, problem.classes)
        return bias.categorical(target), [problem.positive_label], bias.categorical(predicted)
    except EvaluationError as error:
        raise ExplainError(str(error))


def _deviation(metric: dict) -> float | None:
    value = metric.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return None
    return abs(value - 1.0) if metric["name"] == "DI" else abs(value)


def summary(analysis: dict, facets: list, top: int = TOP_FEATURES) -> dict:
    """Top features per output and, per facet, the metric farthest from no bias (|v|; |DI - 1| for DI)."""
    result = {"top_features": {}, "largest_bias": {}}
    if "bias_skipped" in analysis:
        result["bias_skipped"] = analysis["bias_skipped"]
    for name, output in analysis["explanations"]["kernel_shap"].items():
        ranked = sorted(output["global_shap_values"].items(), key=lambda item: (-item[1], item[0]))
        result["top_features"][name] = [{"feature": f, "mean_abs_shap": v} for f, v in ranked[:top]]
    for facet in facets:
        best = None
        for section in bias.SECTIONS.values():
            for group in analysis.get(section, {}).get("facets", {}).get(facet, []):
                for metric in group["metrics"]:
                    size = _deviation(metric)
                    if size is not None and (best is None or size > best[0]):
                        best = (size, {"stage": section, "value_or_threshold": group["value_or_threshold"],
                                       "metric": metric["name"], "value": metric["value"]})
        result["largest_bias"][facet] = best[1] if best else None
    return result


def make_report(test_dir: Path, predictions_dir: Path, design_dir: Path, sample_predictions_dir: Path,
                output_dir: Path, facets: tuple, prediction_format: str, problem: Problem,
                threshold: float = 0.5) -> dict:
    """Write ``analysis.json``, ``local_shap_values.csv`` and ``summary.json``; returns the analysis."""
    if problem.problem_type == "binary" and not 0.0 < threshold < 1.0:
        raise ExplainError(f"--threshold must be in (0, 1), got {threshold}")
    facets = tuple(facets) or tuple(problem.facets)
    design = read_design(design_dir)
    test = read_split(test_dir, "test")
    if problem.target not in test.columns:
        raise ExplainError(f"the test split has no target column {problem.target!r}")
    try:
        lines = read_prediction_lines(predictions_dir)
        sample_lines = read_prediction_lines(sample_predictions_dir)
    except EvaluationError as error:
        raise ExplainError(str(error))
    if len(lines) != len(test):
        raise ExplainError(f"{len(lines)} prediction lines for {len(test)} test rows")
    values, expected, chosen = replay_explanations(test, design, sample_lines, prediction_format, problem)
    label, positive, predicted = _label_and_predictions(test, lines, prediction_format, problem, threshold)
    features = design["features"]
    sections = {"bias_skipped": NO_FACETS_REASON}
    if facets:
        try:
            sections = bias.bias_sections(test, [(f.name, f.values) for f in facets], problem.target, label,
                                          positive, predicted, features=features)
        except bias.BiasError as error:
            raise ExplainError(str(error))
    analysis = {"version": "1.0", **sections,
                "explanations": explanations_section(values, expected, features, design["outputs"],
                                                     design["nsamples"])}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ANALYSIS_FILE).write_text(json.dumps(analysis, indent=2, allow_nan=False))
    local = [{"row": row, "output": name, **{f: float(values[i, j, k]) for j, f in enumerate(features)}}
             for i, row in enumerate(chosen) for k, name in enumerate(design["outputs"])]
    pd.DataFrame(local, columns=["row", "output", *features]).to_csv(output_dir / LOCAL_FILE, index=False)
    (output_dir / SUMMARY_FILE).write_text(
        json.dumps(summary(analysis, [f.name for f in facets]), indent=2, allow_nan=False))
    if not facets:
        print(f"{NO_FACETS_REASON}: SHAP values only", file=sys.stderr)
    return analysis


# --- CLI -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.explain",
        description="Kernel SHAP samples for a batch transform, then bias (smclarify) and SHAP (shap) from its scores.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    samples = commands.add_parser("samples", help="write samples.csv and design.json")
    samples.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv")
    samples.add_argument("--train-dir", type=Path, required=True, help="folder with train.csv (for the baseline)")
    samples.add_argument("--output-dir", type=Path, required=True, help="folder for samples.csv")
    samples.add_argument("--design-dir", type=Path, default=None, help="folder for design.json (default: --output-dir)")
    samples.add_argument("--shap-samples", type=int, default=100, help="coalitions per explained row (default: 100)")
    samples.add_argument("--max-rows", type=int, default=50, help="test rows to explain (default: 50)")
    samples.add_argument("--seed", type=int, default=0, help="default: 0")
    problem_module.add_arguments(samples)
    report = commands.add_parser("report", help="write analysis.json, local_shap_values.csv and summary.json")
    report.add_argument("--test-dir", type=Path, required=True, help="folder with test.csv")
    report.add_argument("--predictions-dir", type=Path, required=True, help="batch predictions of the test rows")
    report.add_argument("--design-dir", "--samples-dir", dest="design_dir", type=Path, required=True,
                        help="folder with design.json")
    report.add_argument("--sample-predictions-dir", type=Path, required=True, help="batch predictions of samples.csv")
    report.add_argument("--output-dir", type=Path, required=True, help="folder for the reports")
    report.add_argument("--facets", default="", help="sensitive facets: name=v1|v2;name2=v3 (default: the problem's)")
    report.add_argument("--prediction-format", required=True,
                        choices=sorted({f for formats in OUTPUT_FORMATS.values() for f in formats}))
    report.add_argument("--threshold", type=float, default=0.5, help="binary: score counted positive (default: 0.5)")
    problem_module.add_arguments(report)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        problem = problem_module.from_namespace(args)
        if args.command == "samples":
            design = make_samples(args.test_dir, args.train_dir, args.output_dir, args.design_dir or args.output_dir,
                                  problem, args.shap_samples, args.max_rows, args.seed)
            print(f"wrote {design['rows']} sample rows for {len(design['explained_rows'])} test rows "
                  f"in {len(design['calls'])} model calls")
        else:
            analysis = make_report(args.test_dir, args.predictions_dir, args.design_dir, args.sample_predictions_dir,
                                   args.output_dir, parse_facets(args.facets), args.prediction_format, problem,
                                   args.threshold)
            top = summary(analysis, [])["top_features"]
            first = next(iter(top.values()))
            print(f"wrote {args.output_dir / ANALYSIS_FILE}: top feature {first[0]['feature'] if first else '-'}")
    except (ExplainError, ProblemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
