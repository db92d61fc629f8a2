"""The machine-learning problem of one use case: what is predicted, from which columns, judged by what.

One ``Problem`` travels from the platform config (``stacks/config.py`` validates it) into the pipeline
definition, where every processing step receives it as container arguments (``to_arguments``) and
rebuilds it (``add_arguments`` + ``from_namespace``). Column lists are sent comma-joined in chunks of at
most ``MAX_ARGUMENT_LENGTH`` characters, the limit SageMaker puts on one container argument.

Columns of the input table, by role:
- ``target``: what the model predicts;
- ``features``: model inputs, in order; empty means every column except the target, the id, time and
  key columns, the ``context`` columns and ``exclude``;
- ``id_column``, ``time_column``, ``key_column``: row identity, event time (needed by the ``ordered``
  split) and grouping key (needed by ``by_key``); never model inputs;
- ``context``: kept beside the test rows for bias analysis (a facet that is not a model input).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

PROBLEM_TYPES = ("binary", "multiclass", "regression")
AUTOML_PROBLEM_TYPES = {
    "binary": "BinaryClassification",
    "multiclass": "MulticlassClassification",
    "regression": "Regression",
}
AUTOML_OBJECTIVES = {
    "binary": ("AUC", "Accuracy", "BalancedAccuracy", "F1", "Precision", "Recall"),
    "multiclass": ("Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    "regression": ("MSE", "RMSE", "MAE", "R2"),
}
"""Autopilot objective metrics per problem type (each one is in botocore's ``AutoMLMetricEnum``)."""

METRICS_SECTION = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
"""The Model Registry metrics document section the evaluation writes, per problem type."""

QUALITY_METRICS = {
    "binary": {"auc": "max", "accuracy": "max", "balanced_accuracy": "max", "f1": "max",
               "precision": "max", "recall": "max"},
    "multiclass": {"accuracy": "max", "balanced_accuracy": "max", "weighted_f1": "max",
                   "weighted_precision": "max", "weighted_recall": "max"},
    "regression": {"r2": "max", "rmse": "min", "mae": "min", "mse": "min"},
}
"""Metrics a quality gate may read, per problem type, and whether larger (max) or smaller (min) is better."""

INPUT_LAYOUTS = ("table", "transactions_and_customers")
"""``table``: every ``*.csv`` under the input folder, one header each, concatenated. ``transactions_and_customers``:
the fraud example's ``transactions.csv`` and ``customers.csv``, joined row-wise by ``pipeline_code.features``."""

SPLIT_MODES = ("random", "ordered", "by_key", "stratified")
MAX_ARGUMENT_LENGTH = 256


class ProblemError(ValueError):
    """Raised for a problem description that contradicts itself or the data."""


@dataclass(frozen=True)
class Facet:
    """A sensitive column and the values that make up its sensitive group."""

    name: str
    values: tuple = ()

    def text(self) -> str:
        """``name=v1|v2`` (the form of the BiasFacets parameter)."""
        return f"{self.name}={'|'.join(str(v) for v in self.values)}"


def parse_facets(text: str) -> tuple:
    """``"a=x|y;b=z"`` -> (Facet("a", ("x", "y")), Facet("b", ("z",))); empty text gives no facets."""
    facets = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, separator, values = part.partition("=")
        if not separator or not name.strip() or not values.strip():
            raise ProblemError(f"facet {part!r} is not name=value[|value...]")
        facets.append(Facet(name.strip(), tuple(v.strip() for v in values.split("|") if v.strip())))
    return tuple(facets)


def facets_text(facets) -> str:
    return ";".join(f.text() for f in facets)


NO_FACETS_REASON = "bias skipped: no facets configured"
"""Why a run has no bias metrics when neither ``problem.facets`` nor the BiasFacets parameter names a facet:
the analysis (``bias_skipped``) and the execution's MLflow run (tag ``mlops.bias_skipped``) record it."""


@dataclass(frozen=True)
class Problem:
    problem_type: str = "binary"
    target: str = "is_fraud"
    features: tuple = ()
    exclude: tuple = ()
    id_column: str = ""
    time_column: str = ""
    key_column: str = ""
    context: tuple = ()
    positive_label: str = "1"
    classes: tuple = ()
    input_layout: str = "table"
    facets: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.problem_type not in PROBLEM_TYPES:
            raise ProblemError(f"problem_type {self.problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}")
        if self.input_layout not in INPUT_LAYOUTS:
            raise ProblemError(f"input_layout {self.input_layout!r} is not one of {', '.join(INPUT_LAYOUTS)}")
        if self.problem_type == "multiclass" and len(self.classes) < 3:
            raise ProblemError(f"a multiclass problem needs at least 3 classes, got {list(self.classes)}")
        roles = self.role_columns()
        for name in self.features:
            if name in roles:
                raise ProblemError(f"feature {name!r} is also the {roles[name]} column")

    @property
    def classification(self) -> bool:
        return self.problem_type != "regression"

    def role_columns(self) -> dict:
        """Column -> role for the target and the id, time and key columns that are set."""
        roles = {}
        for role in ("key_column", "time_column", "id_column"):
            if getattr(self, role):
                roles[getattr(self, role)] = role.removesuffix("_column")
        roles[self.target] = "target"
        return roles

    def allowed_split_modes(self) -> tuple:
        """Split modes this problem supports: ordered needs a time column, by_key a key, stratified classes."""
        allowed = ["random"]
        if self.time_column:
            allowed.append("ordered")
        if self.key_column:
            allowed.append("by_key")
        if self.classification:
            allowed.append("stratified")
        return tuple(m for m in SPLIT_MODES if m in allowed)

    def model_features(self, columns) -> list:
        """The model's input columns, in order, given the input table's columns; raises naming what is missing."""
        columns = list(columns)
        if self.features:
            missing = [c for c in self.features if c not in columns]
            if missing:
                raise ProblemError(f"feature column(s) {missing} are not in the data; it has {columns}")
            return list(self.features)
        skip = set(self.role_columns()) | set(self.context) | set(self.exclude)
        chosen = [c for c in columns if c not in skip]
        if not chosen:
            raise ProblemError(f"no feature columns left in {columns} after leaving out {sorted(skip)}")
        return chosen

    def check_columns(self, columns) -> list:
        """Check the table has every column the problem names; returns the model features."""
        columns = list(columns)
        needed = list(self.role_columns()) + list(self.context)
        missing = [c for c in dict.fromkeys(needed) if c not in columns]
        if missing:
            raise ProblemError(f"column(s) {missing} named by the problem are not in the data; it has {columns}")
        for facet in self.facets:
            if facet.name not in columns:
                raise ProblemError(f"facet {facet.name!r} is not a column of the data; it has {columns}")
        return self.model_features(columns)

    def to_arguments(self) -> list:
        """Container arguments that ``from_namespace`` turns back into this problem."""
        arguments = ["--problem-type", self.problem_type, "--target", self.target,
                     "--input-layout", self.input_layout, "--positive-label", self.positive_label]
        for option, value in (("--id-column", self.id_column), ("--time-column", self.time_column),
                              ("--key-column", self.key_column)):
            if value:
                arguments += [option, value]
        for option, values in (("--features", self.features), ("--exclude", self.exclude),
                               ("--context", self.context), ("--classes", self.classes)):
            for chunk in _chunks(values):
                arguments += [option, chunk]
        for facet in self.facets:
            arguments += ["--facet", facet.text()]
        too_long = [a for a in arguments if len(a) > MAX_ARGUMENT_LENGTH]
        if too_long:
            raise ProblemError(f"argument {too_long[0][:40]!r}... is longer than {MAX_ARGUMENT_LENGTH} characters")
        return arguments

    def replace(self, **changes) -> "Problem":
        return dataclasses.replace(self, **changes)


def _chunks(values) -> list:
    """Comma-joined pieces of ``values``, each at most ``MAX_ARGUMENT_LENGTH`` characters."""
    chunks, current = [], ""
    for value in values:
        value = str(value)
        if "," in value:
            raise ProblemError(f"column or class {value!r} contains a comma")
        candidate = f"{current},{value}" if current else value
        if len(candidate) > MAX_ARGUMENT_LENGTH and current:
            chunks.append(current)
            candidate = value
        current = candidate
    if current:
        chunks.append(current)
    return chunks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``to_arguments`` writes; problem type and target are required (no silent example default)."""
    group = parser.add_argument_group("problem")
    group.add_argument("--problem-type", required=True, choices=PROBLEM_TYPES)
    group.add_argument("--target", required=True, help="column the model predicts")
    group.add_argument("--input-layout", default="table", choices=INPUT_LAYOUTS)
    group.add_argument("--positive-label", default="1", help="the positive class of a binary problem")
    group.add_argument("--id-column", default="")
    group.add_argument("--time-column", default="")
    group.add_argument("--key-column", default="")
    for option, help_text in (("--features", "model input columns, comma-separated (repeatable)"),
                              ("--exclude", "columns never used as features (repeatable)"),
                              ("--context", "columns kept for bias analysis only (repeatable)"),
                              ("--classes", "class labels of a multiclass problem (repeatable)")):
        group.add_argument(option, action="append", default=[], help=help_text)
    group.add_argument("--facet", action="append", default=[], help="sensitive facet name=v1|v2 (repeatable)")


def from_namespace(args: argparse.Namespace) -> Problem:
    def joined(chunks):
        return tuple(v for chunk in chunks for v in chunk.split(",") if v)

    facets = tuple(f for text in args.facet for f in parse_facets(text))
    return Problem(
        problem_type=args.problem_type, target=args.target, features=joined(args.features),
        exclude=joined(args.exclude), id_column=args.id_column, time_column=args.time_column,
        key_column=args.key_column, context=joined(args.context), positive_label=args.positive_label,
        classes=joined(args.classes), input_layout=args.input_layout, facets=facets,
    )


FRAUD = Problem(
    problem_type="binary",
    target="is_fraud",
    features=("amount", "hour", "is_night", "away_from_home", "customer_age", "account_age_days"),
    id_column="",
    time_column="timestamp",
    key_column="customer_id",
    context=("home_state", "transaction_state"),
    positive_label="1",
    input_layout="transactions_and_customers",
    facets=(Facet("home_state", ("CA",)),),
)
"""The fraud-detection example: what a use case without a ``problem`` section gets."""
