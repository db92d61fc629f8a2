"""Split the model table into train, validation and test; runs in the scikit-learn processing container.

Modes (``--mode``):
- ``random``: rows shuffled with the seed;
- ``ordered``: by the time column, test is the latest period and no train row is later than any
  validation or test row;
- ``by_key``: every row of one key (customer) lands in one split; cut points fall at the key boundaries
  nearest the requested row fractions (each split gets at least one key, so a cut can be off by up to
  two key groups);
- ``stratified``: every label value is spread over the splits in the requested proportions, each split
  within one row of its exact share, both per label value and in total.

Row counts follow the fractions to within one row (largest-remainder rounding) in every mode except
``by_key``. The result depends only on the data, the parameters and the seed.

Anything that looks at more than one row (oversampling of the minority class) runs after the split, on
train only. Bad parameters raise ``SplitError`` with a message naming the parameter.

Input: the problem's ``input_layout`` (see ``pipeline_code.problem``): every ``*.csv`` under the input
folder as one table, or the fraud example's ``transactions.csv`` and ``customers.csv`` joined row-wise.
The problem (``--problem-type``, ``--target``, ... as written by ``Problem.to_arguments``) decides the
model features, the allowed modes and how labels are encoded for the built-in XGBoost path.

CLI: ``python -m pipeline_code.split --input-dir DIR --output-dir DIR --problem-type T --target C [options]``
writes the files listed in ``OUTPUT_FILES``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code import problem as problem_module
from pipeline_code.columns import KEY, LABEL, TIME
from pipeline_code.features import FeatureError, build_model_table
from pipeline_code.problem import Problem, ProblemError

MODES = ("random", "ordered", "by_key", "stratified")
SPLITS = ("train", "validation", "test")
FRACTION_TOLERANCE = 1e-6

OUTPUT_FILES = {
    "train": "train/train.csv",
    "validation": "validation/validation.csv",
    "test": "test/test.csv",
    "transform_input": "transform_input/test_features.csv",
    "bias_dataset": "bias_dataset/test_rows.csv",
    "xgboost_train": "xgboost_train/train.csv",
    "xgboost_validation": "xgboost_validation/validation.csv",
    "summary": "summary/split_summary.json",
}
"""Output name -> path under the output directory; each top folder is one processing output.

- ``train``, ``validation``: features then target, with a header (Autopilot's channels);
- ``test``: target, features, context columns, with a header (evaluation, bias config);
- ``transform_input``: the test features only, no header (batch transform sends each line to the model);
- ``bias_dataset``: the rows of ``test`` without a header, for a bias job whose config lists the headers;
- ``xgboost_train``, ``xgboost_validation``: encoded label first, then features, no header (built-in XGBoost:
  1/0 for the positive class of a binary problem, the class's index for multiclass, the value for regression);
- ``summary``: counts, seed, mode, features and label distribution of each split.
"""


class SplitError(ValueError):
    """Raised for parameters or data the split cannot honour."""


def check_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    """Return the fractions if each is in (0, 1) and they sum to 1 (within 1e-6); raise otherwise."""
    if len(fractions) != 3:
        raise SplitError(f"expected 3 fractions (train, validation, test), got {len(fractions)}")
    for name, value in zip(SPLITS, fractions):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
            raise SplitError(f"{name} fraction must be strictly between 0 and 1, got {value!r}")
    total = float(sum(fractions))
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise SplitError(
            f"fractions must sum to 1, got train {fractions[0]} + validation {fractions[1]} "
            f"+ test {fractions[2]} = {total:.6g}"
        )
    return tuple(float(f) / total for f in fractions)


def allocate(total: int, fractions: tuple[float, ...]) -> list[int]:
    """Largest-remainder rounding: integers summing to ``total``, each within one of ``f * total``."""
    exact = [f * total for f in fractions]
    counts = [int(math.floor(e)) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _bounds(value: float) -> tuple[int, ...]:
    low = int(math.floor(value))
    return (low,) if low == value else (low, low + 1)


def stratified_counts(class_sizes: list[int], fractions: tuple[float, ...]) -> list[list[int]]:
    """Controlled rounding of the class-by-split table.

    Every cell is the floor or ceiling of ``fraction * class size``, every row sums to its class size and
    every column total is the floor or ceiling of ``fraction * total``. Such a rounding always exists for
    a two-way table; among them the one closest to the exact table is chosen (ties: lexicographic).
    """
    total = sum(class_sizes)
    column_bounds = [_bounds(f * total) for f in fractions]
    options = []
    for size in class_sizes:
        exact = [f * size for f in fractions]
        rows = [
            list(choice)
            for choice in itertools.product(*(_bounds(e) for e in exact))
            if sum(choice) == size
        ]
        rows.sort(key=lambda row: (sum((r - e) ** 2 for r, e in zip(row, exact)), row))
        options.append(rows)

    def search(index: int, partial: list[int]) -> list[list[int]] | None:
        if index == len(options):
            if all(p in bounds for p, bounds in zip(partial, column_bounds)):
                return []
            return None
        for row in options[index]:
            candidate = [p + r for p, r in zip(partial, row)]
            if any(c > max(bounds) for c, bounds in zip(candidate, column_bounds)):
                continue
            rest = search(index + 1, candidate)
            if rest is not None:
                return [row] + rest
        return None

    table = search(0, [0] * len(fractions))
    if table is None:
        raise SplitError(f"no stratified allocation of class sizes {class_sizes} to fractions {fractions}")
    return table


def _require_column(frame: pd.DataFrame, column: str, parameter: str, mode: str) -> None:
    if column not in frame.columns:
        raise SplitError(
            f"mode {mode!r} needs the {parameter} column {column!r}, which is not in the data "
            f"(columns: {list(frame.columns)})"
        )


def _check_non_empty(counts: list[int], rows: int) -> None:
    for name, count in zip(SPLITS, counts):
        if count == 0:
            raise SplitError(f"too few rows ({rows}): the {name} split would be empty")


def _time_values(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(series).to_numpy()
    except (ValueError, TypeError) as error:
        raise SplitError(f"time column {series.name!r} is neither numeric nor a parseable timestamp: {error}")


def split_indices(
    frame: pd.DataFrame,
    mode: str,
    fractions: tuple[float, float, float],
    seed: int,
    key_column: str = KEY,
    time_column: str = TIME,
    label_column: str = LABEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positional row indices of train, validation and test; together they cover every row once."""
    if mode not in MODES:
        raise SplitError(f"unknown split mode {mode!r}; expected one of {', '.join(MODES)}")
    fractions = check_fractions(tuple(fractions))
    rows = len(frame)
    rng = np.random.default_rng(seed)

    if mode == "random":
        counts = allocate(rows, fractions)
        _check_non_empty(counts, rows)
        order = rng.permutation(rows)
        return _cut(order, counts)

    if mode == "ordered":
        _require_column(frame, time_column, "time", mode)
        counts = allocate(rows, fractions)
        _check_non_empty(counts, rows)
        order = np.argsort(_time_values(frame[time_column]), kind="stable")
        return _cut(order, counts)

    if mode == "by_key":
        _require_column(frame, key_column, "key", mode)
        return _split_by_key(frame[key_column], fractions, rng)

    _require_column(frame, label_column, "label", mode)
    return _split_stratified(frame[label_column], fractions, rng)


def _cut(order: np.ndarray, counts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first, second = counts[0], counts[0] + counts[1]
    return order[:first], order[first:second], order[second:]


def _split_by_key(keys: pd.Series, fractions: tuple[float, ...], rng: np.random.Generator):
    if keys.isna().any():
        raise SplitError(f"key column {keys.name!r} has empty values")
    codes, uniques = pd.factorize(keys, sort=True)
    if len(uniques) < len(SPLITS):
        raise SplitError(f"too few keys: mode 'by_key' needs at least 3 distinct {keys.name!r} values, got {len(uniques)}")
    key_order = rng.permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[key_order]
    cumulative = np.concatenate(([0], np.cumsum(sizes)))
    rows = int(cumulative[-1])
    cuts = []
    lowest = 1
    for position, target in enumerate((fractions[0] * rows, (fractions[0] + fractions[1]) * rows)):
        nearest = int(np.argmin(np.abs(cumulative - target)))
        highest = len(uniques) - (len(SPLITS) - 1 - position)
        cut = min(max(nearest, lowest), highest)
        cuts.append(cut)
        lowest = cut + 1
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[key_order] = np.arange(len(uniques))
    row_rank = rank[codes]
    positions = np.arange(len(codes))
    return (
        positions[row_rank < cuts[0]],
        positions[(row_rank >= cuts[0]) & (row_rank < cuts[1])],
        positions[row_rank >= cuts[1]],
    )


def _split_stratified(labels: pd.Series, fractions: tuple[float, ...], rng: np.random.Generator):
    if labels.isna().any():
        raise SplitError(f"label column {labels.name!r} has empty values")
    codes, classes = pd.factorize(labels, sort=True)
    if len(classes) < 2:
        raise SplitError(f"stratified split needs at least 2 label values, got {list(classes)}")
    sizes = np.bincount(codes, minlength=len(classes)).tolist()
    table = stratified_counts(sizes, fractions)
    for value, row in zip(classes, table):
        for name, count in zip(SPLITS, row):
            if count == 0:
                raise SplitError(
                    f"too few rows with {labels.name}={value!r} for a stratified split: "
                    f"{sizes[list(classes).index(value)]} row(s) leave the {name} split without any"
                )
    parts = [[], [], []]
    for class_index, row in enumerate(table):
        members = np.flatnonzero(codes == class_index)
        shuffled = members[rng.permutation(len(members))]
        for split_index, piece in enumerate(_cut(shuffled, row)):
            parts[split_index].append(piece)
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def oversample_minority(train: pd.DataFrame, positive: np.ndarray, target_ratio: float, seed: int) -> pd.DataFrame:
    """Append copies of train's positive rows (``positive``: a boolean mask over train) until they make up
    ``target_ratio`` of train. Works on train alone, after the split; 0 leaves train unchanged, as does a
    ratio already reached.
    """
    if not 0.0 <= target_ratio < 1.0:
        raise SplitError(f"oversample ratio must be in [0, 1), got {target_ratio}")
    positives = train.index[positive]
    current = len(positives) / len(train) if len(train) else 0.0
    if target_ratio == 0.0 or current >= target_ratio:
        return train
    if len(positives) == 0:
        raise SplitError("cannot oversample: train has no positive rows")
    extra = int(math.ceil((target_ratio * len(train) - len(positives)) / (1.0 - target_ratio)))
    rng = np.random.default_rng(seed + 1)
    copies = train.loc[rng.choice(positives, size=extra, replace=True)]
    return pd.concat([train, copies], ignore_index=True)


def load_table(input_dir: Path, problem: Problem) -> pd.DataFrame:
    """The model table from the input folder, in the problem's input layout."""
    if problem.input_layout == "transactions_and_customers":
        transactions_path = input_dir / "transactions.csv"
        customers_path = input_dir / "customers.csv"
        for path in (transactions_path, customers_path):
            if not path.is_file():
                raise SplitError(f"input file {path} not found (input_layout transactions_and_customers)")
        return build_model_table(pd.read_csv(transactions_path), pd.read_csv(customers_path))
    files = sorted(p for p in input_dir.rglob("*.csv") if p.is_file())
    if not files:
        raise SplitError(f"no *.csv file under {input_dir} (input_layout table)")
    frames = []
    for path in files:
        frame = pd.read_csv(path)
        if frames and list(frame.columns) != list(frames[0].columns):
            raise SplitError(
                f"{path.relative_to(input_dir)} has columns {list(frame.columns)}, but "
                f"{files[0].relative_to(input_dir)} has {list(frames[0].columns)}; every input file needs the same header"
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def encoded_labels(target: pd.Series, problem: Problem) -> pd.Series:
    """The target as the built-in XGBoost path reads it; raises naming values the problem does not allow."""
    if target.isna().any():
        raise SplitError(f"target column {target.name!r} has {int(target.isna().sum())} empty value(s)")
    if problem.problem_type == "regression":
        if not pd.api.types.is_numeric_dtype(target):
            raise SplitError(f"target column {target.name!r} must be numeric for a regression problem, got {target.dtype}")
        return target.astype(float)
    text = target.astype(str)
    values = sorted(text.unique())
    if problem.problem_type == "binary":
        if problem.positive_label not in values or len(values) != 2:
            raise SplitError(
                f"target column {target.name!r} of a binary problem needs exactly 2 values including the positive "
                f"label {problem.positive_label!r}; it has {values[:10]}"
            )
        return (text == problem.positive_label).astype("int64")
    unknown = [v for v in values if v not in problem.classes]
    if unknown:
        raise SplitError(f"target column {target.name!r} has value(s) {unknown[:10]} that are not among the classes "
                         f"{list(problem.classes)}")
    return text.map({c: i for i, c in enumerate(problem.classes)}).astype("int64")


def label_counts(target: pd.Series, problem: Problem) -> dict:
    if problem.problem_type == "regression":
        return {"mean": float(target.mean()), "min": float(target.min()), "max": float(target.max())}
    return {str(k): int(v) for k, v in target.astype(str).value_counts().sort_index().items()}


def write_outputs(
    table: pd.DataFrame,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray],
    output_dir: Path,
    problem: Problem,
    features: list,
    oversample_ratio: float,
    seed: int,
    summary: dict,
) -> dict:
    """Write every file of ``OUTPUT_FILES``; returns the summary written to ``split_summary.json``."""
    target = problem.target
    train, validation, test = (table.iloc[np.sort(p)].reset_index(drop=True) for p in parts)
    if oversample_ratio and problem.problem_type != "binary":
        raise SplitError(f"oversample ratio {oversample_ratio} is only allowed for a binary problem; use 0")
    if problem.problem_type == "binary":
        train = oversample_minority(train, (train[target].astype(str) == problem.positive_label).to_numpy(),
                                    oversample_ratio, seed)
    model_columns = list(features) + [target]
    test_columns = [target] + list(features) + [c for c in problem.context if c not in features]

    def labelled_first(frame: pd.DataFrame) -> pd.DataFrame:
        encoded = frame[list(features)].copy()
        encoded.insert(0, target, encoded_labels(frame[target], problem))
        return encoded

    frames = {
        "train": (train[model_columns], True),
        "validation": (validation[model_columns], True),
        "test": (test[test_columns], True),
        "transform_input": (test[list(features)], False),
        "bias_dataset": (test[test_columns], False),
        "xgboost_train": (labelled_first(train), False),
        "xgboost_validation": (labelled_first(validation), False),
    }
    for name, (frame, header) in frames.items():
        path = output_dir / OUTPUT_FILES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, header=header)
    summary = dict(summary)
    summary["rows"] = {"train": len(train), "validation": len(validation), "test": len(test)}
    summary["labels"] = {name: label_counts(frame[target], problem)
                         for name, frame in (("train", train), ("validation", validation), ("test", test))}
    if problem.problem_type == "binary":
        summary["positives"] = {name: int((frame[target].astype(str) == problem.positive_label).sum())
                                for name, frame in (("train", train), ("validation", validation), ("test", test))}
    summary["features"] = list(features)
    summary["test_columns"] = test_columns
    summary["oversampled_rows"] = len(train) - len(parts[0])
    summary_path = output_dir / OUTPUT_FILES["summary"]
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def run(
    input_dir: Path,
    output_dir: Path,
    problem: Problem,
    mode: str,
    fractions: tuple[float, float, float],
    seed: int,
    oversample_ratio: float = 0.0,
    training_path: str = "AutoML",
) -> dict:
    """Read the input table, split it as the problem allows, write outputs; returns the summary. On the
    ``XGBoost`` training path a feature column holding text is refused here, before any training job."""
    allowed = problem.allowed_split_modes()
    if mode in MODES and mode not in allowed:
        raise SplitError(f"mode {mode!r} is not allowed for this problem; it allows {', '.join(allowed)} "
                         "(ordered needs a time column, by_key a key column, stratified a classification problem)")
    table = load_table(input_dir, problem)
    features = problem.check_columns(table.columns)
    encoded_labels(table[problem.target], problem)
    text_features = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if training_path == "XGBoost" and text_features:
        raise SplitError(
            f"feature column(s) {text_features} hold text: the built-in XGBoost path reads numbers only, so its "
            "training would fail; encode them in the data, leave them out of problem.features, or run with "
            "TrainingPath AutoML (Autopilot encodes text columns itself)"
        )
    parts = split_indices(table, mode, fractions, seed, key_column=problem.key_column or KEY,
                          time_column=problem.time_column or TIME, label_column=problem.target)
    summary = {"mode": mode, "seed": seed, "fractions": list(fractions), "oversample_ratio": oversample_ratio,
               "problem_type": problem.problem_type, "target": problem.target, "training_path": training_path,
               "text_features": text_features}
    return write_outputs(table, parts, output_dir, problem, features, oversample_ratio, seed, summary)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.split",
        description="Split the use case's table into train/validation/test, leak-free, for its pipeline.",
    )
    parser.add_argument("--input-dir", type=Path, required=True, help="folder with the input CSV file(s)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for the split files")
    parser.add_argument("--mode", default="random", help=f"one of {', '.join(MODES)} (default: random)")
    parser.add_argument("--train-fraction", type=float, default=0.7, help="default: 0.7")
    parser.add_argument("--validation-fraction", type=float, default=0.15, help="default: 0.15")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="default: 0.15")
    parser.add_argument("--seed", type=int, default=42, help="default: 42")
    parser.add_argument("--training-path", default="AutoML",
                        help="the execution's TrainingPath (XGBoost refuses text features); default: AutoML")
    parser.add_argument("--oversample-ratio", type=float, default=0.0,
                        help="target share of positives in train after oversampling (binary only); 0 disables it")
    problem_module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fractions = (args.train_fraction, args.validation_fraction, args.test_fraction)
    try:
        problem = problem_module.from_namespace(args)
        summary = run(args.input_dir, args.output_dir, problem, args.mode, fractions, args.seed,
                      oversample_ratio=args.oversample_ratio, training_path=args.training_path)
    except (SplitError, FeatureError, ProblemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
