"""Local stand-ins for the AWS-managed steps, honouring the output contracts the pipeline relies on.

- AutoML (Autopilot): a scikit-learn HistGradientBoosting model on the ``training`` channel (CSV with a
  header, ``TargetAttributeName``), every other column a feature, stopped early on the ``validation`` channel.
  As Autopilot infers each column's type and encodes non-numeric (categorical, text, date) columns itself, a
  non-numeric column is a categorical feature of the stand-in (its training values as categories, any other
  value missing); requests carry it as text. Its container answers with the keys of
  ``SAGEMAKER_INFERENCE_OUTPUT`` as an Autopilot ensemble does: ``predicted_label``, ``probability`` (of the
  *predicted* label), ``probabilities`` (a quoted list in ``labels`` order) and ``labels``; a regression
  model answers ``predicted_label`` only.
- Built-in XGBoost (tuning and training): the ``train`` channel (CSV without header, label first), boosted
  with the job's ``num_round``, ``eta``, ``max_depth`` and ``min_child_weight``, and its ``objective``: ``binary:logistic`` answers the positive class's probability,
  ``multi:softmax`` the class index, ``reg:squarederror`` the value.
- Batch transform: every object under the input prefix, one CSV line per record, written to
  ``<S3OutputPath>/<relative name>.out``; a line whose field count is not the model's feature count fails,
  as does a non-numeric field for a model without categorical features (built-in XGBoost reads numbers only).
- Clarify: reads ``analysis_config.json`` and the dataset as the Clarify container does for ``text/csv``
  with ``headers`` given: **every file under the dataset folder, as rows without a header**, each with
  exactly ``len(headers)`` fields; a header row or a file of another width fails the job instead of being
  dropped. It calls the model named by ``predictor.model_name`` on the columns that are neither the label
  nor excluded, reads its answer literally as the predictor config says (``label``, ``probability`` index,
  ``probability_threshold``, ``label_headers``) and writes ``analysis.json``: bias metrics with smclarify
  (``pipeline_code.bias``) and Kernel SHAP with shap (``pipeline_code.explain.kernel_shap``) against one
  baseline row, the dataset's single cluster centre (Clarify's baseline with ``num_clusters`` 1: K-means for
  numeric data, K-prototypes for mixed data, so the mean of each numeric column and the most frequent value of
  any other).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline_code import bias, explain

MODEL_FILE = "model.pkl"
SHAP_ROWS = 100


class StandInError(ValueError):
    """A managed step's inputs that the AWS service would refuse or mis-handle."""


def _estimator(classification: bool, seed: int = 0, **settings):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    settings = {"max_iter": 100, **settings}
    if classification:
        return HistGradientBoostingClassifier(random_state=seed, **settings)
    return HistGradientBoostingRegressor(random_state=seed, **settings)


def xgboost_settings(hyperparameters: dict) -> dict:
    """The gradient-boosting settings that stand for XGBoost's ``num_round``, ``eta``, ``max_depth``,
    ``min_child_weight``; a value XGBoost would refuse raises naming the hyperparameter."""
    settings = {}
    for name, key, kind, allowed in (("num_round", "max_iter", int, lambda v: v >= 1),
                                     ("eta", "learning_rate", float, lambda v: 0 < v <= 1),
                                     ("max_depth", "max_depth", int, lambda v: v >= 1),
                                     ("min_child_weight", "min_samples_leaf", float, lambda v: v >= 0)):
        if name not in hyperparameters:
            continue
        try:
            value = kind(float(hyperparameters[name])) if kind is int else kind(hyperparameters[name])
        except ValueError:
            raise StandInError(f"hyperparameter {name}={hyperparameters[name]!r} is not a number")
        if not allowed(value):
            raise StandInError(f"hyperparameter {name}={value} is out of XGBoost's range")
        settings[key] = max(1, int(round(value))) if key == "min_samples_leaf" else value
    return settings


def read_table(files: list, header: bool) -> pd.DataFrame:
    frames = [pd.read_csv(path, header=0 if header else None) for path in sorted(files)]
    if not frames:
        raise StandInError("the channel holds no files")
    widths = {frame.shape[1] for frame in frames}
    if len(widths) != 1:
        raise StandInError(f"channel files have different column counts {sorted(widths)}")
    return pd.concat(frames, ignore_index=True)


def _numeric(frame: pd.DataFrame, where: str) -> np.ndarray:
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise StandInError(f"{where}: the local stand-in model needs numeric features; {text} are not")
    return frame.to_numpy(dtype=float)


def _categories(frame: pd.DataFrame) -> dict:
    """Column position -> sorted text values of each non-numeric column of ``frame``."""
    return {i: sorted(frame[c].dropna().astype(str).unique()) for i, c in enumerate(frame.columns)
            if not pd.api.types.is_numeric_dtype(frame[c])}


def _encoded(frame: pd.DataFrame, categories: dict) -> np.ndarray:
    """``frame`` as floats, each categorical column as its category's index (any other value missing)."""
    columns = []
    for i, name in enumerate(frame.columns):
        if i in categories:
            codes = {value: float(code) for code, value in enumerate(categories[i])}
            columns.append(frame[name].map(lambda v: codes.get(str(v), np.nan) if pd.notna(v) else np.nan))
        else:
            columns.append(pd.to_numeric(frame[name]))
    return np.column_stack([c.to_numpy(dtype=float) for c in columns]) if columns else np.empty((len(frame), 0))


class StandInModel:
    """A fitted model and how its container answers; ``categories``: position -> values of each categorical
    feature (an AutoML model's non-numeric columns)."""

    def __init__(self, kind: str, problem: str, features: list, estimator, objective: str = "",
                 categories: dict | None = None) -> None:
        self.kind, self.problem, self.features, self.estimator, self.objective = kind, problem, features, estimator, objective
        self.categories = categories or {}

    def matrix(self, rows) -> np.ndarray:
        """``rows`` (n x features, numbers or text) as the estimator's float matrix; raises for a non-numeric
        value of a numeric feature."""
        rows = np.asarray(rows, dtype=object if self.categories else None)
        if rows.ndim != 2 or rows.shape[1] != len(self.features):
            raise StandInError(f"the model takes {len(self.features)} features, got records of "
                               f"{rows.shape[1] if rows.ndim == 2 else 0} fields")
        frame = pd.DataFrame(rows)
        try:
            return _encoded(frame.replace("", np.nan), self.categories)
        except (ValueError, TypeError) as error:
            raise StandInError(f"a record holds a non-numeric value for a numeric feature: {error}")

    def answer(self, rows, environment: dict) -> list:
        """CSV lines the container returns for ``rows`` (n x features)."""
        rows = self.matrix(rows)
        with threadpool_limits(limits=1):
            if self.kind == "xgboost":
                if self.objective == "binary:logistic":
                    return [f"{p:.6f}" for p in self.estimator.predict_proba(rows)[:, 1]]
                if self.objective.startswith("multi:"):
                    return [f"{float(c):.1f}" for c in self.estimator.predict(rows)]
                return [f"{v:.6f}" for v in self.estimator.predict(rows)]
            if self.problem == "Regression":
                return [f"{v:.6f}" for v in self.estimator.predict(rows)]
            probabilities = self.estimator.predict_proba(rows)
        labels = [str(c) for c in self.estimator.classes_]
        keys = environment.get("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label").split(",")
        lines = []
        for row in probabilities:
            best = int(np.argmax(row))
            fields = {
                "predicted_label": labels[best],
                "probability": f"{row[best]:.6f}",
                "probabilities": "[" + ", ".join(f"{p:.6f}" for p in row) + "]",
                "labels": "[" + ", ".join(repr(label) for label in labels) + "]",
            }
            unknown = [k for k in keys if k not in fields]
            if unknown:
                raise StandInError(f"SAGEMAKER_INFERENCE_OUTPUT has unknown key(s) {unknown}")
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow([fields[k.strip()] for k in keys])
            lines.append(buffer.getvalue())
        return lines


def pack(model: StandInModel, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(pickle.dumps(model))
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / MODEL_FILE, arcname=MODEL_FILE)
    return archive


def unpack(archive: Path) -> StandInModel:
    with tarfile.open(archive) as tar:
        return pickle.loads(tar.extractfile(MODEL_FILE).read())


def train_automl(training_files: list, validation_files: list, target: str, problem_type: str) -> StandInModel:
    train = read_table(training_files, header=True)
    validation = read_table(validation_files, header=True)
    if list(train.columns) != list(validation.columns):
        raise StandInError(f"training columns {list(train.columns)} differ from validation {list(validation.columns)}")
    if target not in train.columns:
        raise StandInError(f"TargetAttributeName {target!r} is not a column of the training data {list(train.columns)}")
    features = [c for c in train.columns if c != target]
    classification = problem_type != "Regression"
    y = train[target].astype(str) if classification else train[target].astype(float)
    y_val = validation[target].astype(str) if classification else validation[target].astype(float)
    categories = _categories(train[features])
    # Autopilot selects its candidate on the validation channel; the stand-in stops boosting on it.
    # HistGradientBoosting takes at most 255 categories per feature; a column with more enters as its codes.
    categorical = [len(categories.get(i, ())) in range(1, 256) for i in range(len(features))]
    estimator = _estimator(classification, max_iter=300, learning_rate=0.05, early_stopping=True, n_iter_no_change=20,
                           **({"categorical_features": categorical} if any(categorical) else {}))
    with threadpool_limits(limits=1):
        estimator.fit(_encoded(train[features], categories), y,
                      X_val=_encoded(validation[features], categories), y_val=y_val)
    return StandInModel("automl", problem_type, features, estimator, categories=categories)


XGBOOST_OBJECTIVE_NAMES = ("binary:logistic", "multi:softmax", "reg:squarederror")


def _xgboost_channel(files: list, objective: str, num_class: int) -> tuple:
    table = read_table(files, header=False)
    labels, features = table.iloc[:, 0], table.iloc[:, 1:]
    if objective != "reg:squarederror":
        labels = labels.astype(int)
        if objective == "multi:softmax" and labels.max() >= num_class:
            raise StandInError(f"label {labels.max()} is not below num_class {num_class}")
    return _numeric(features, "XGBoost channel"), labels


def train_xgboost(train_files: list, hyperparameters: dict, validation_files: list | None = None) -> StandInModel:
    """Boost on the ``train`` channel; with ``early_stopping_rounds`` and a ``validation`` channel, stop as
    XGBoost does when the validation score has not improved for that many rounds."""
    objective = hyperparameters.get("objective", "")
    if objective not in XGBOOST_OBJECTIVE_NAMES:
        raise StandInError(f"objective {objective!r} is not one the stand-in knows")
    num_class = int(hyperparameters.get("num_class", 0) or 0)
    features, labels = _xgboost_channel(train_files, objective, num_class)
    settings = xgboost_settings(hyperparameters)
    fit = {}
    rounds = int(hyperparameters.get("early_stopping_rounds", 0) or 0)
    if rounds and validation_files:
        fit["X_val"], fit["y_val"] = _xgboost_channel(validation_files, objective, num_class)
        settings.update(early_stopping=True, n_iter_no_change=rounds)
    estimator = _estimator(objective != "reg:squarederror", **settings)
    with threadpool_limits(limits=1):
        estimator.fit(features, labels, **fit)
    return StandInModel("xgboost", objective, [f"f{i}" for i in range(features.shape[1])], estimator, objective)


def validation_score(model: StandInModel, validation_files: list, metric: str) -> float:
    """``validation:<metric>`` of ``model`` as XGBoost reports it: ``auc``, ``merror`` or ``rmse``."""
    features, labels = _xgboost_channel(validation_files, model.objective, 10**9)
    with threadpool_limits(limits=1):
        if metric == "auc":
            from sklearn.metrics import roc_auc_score

            return float(roc_auc_score(labels, model.estimator.predict_proba(features)[:, 1]))
        predictions = model.estimator.predict(features)
    if metric == "merror":
        return float(np.mean(predictions != labels.to_numpy()))
    if metric == "rmse":
        return float(np.sqrt(np.mean((predictions - labels.to_numpy(dtype=float)) ** 2)))
    raise StandInError(f"objective metric validation:{metric} is not one the stand-in knows")


def _range_point(item: dict, fraction: float) -> float:
    low, high = float(item["MinValue"]), float(item["MaxValue"])
    if item.get("ScalingType") == "Logarithmic":
        return float(np.exp(np.log(low) + fraction * (np.log(high) - np.log(low))))
    return low + fraction * (high - low)


def tuning_candidates(ranges: dict, count: int) -> list:
    """``count`` (at most 5) points spread over every range at once, as strings a tuning job reports."""
    fractions = [0.5, 0.25, 0.75, 0.1, 0.9][:max(1, min(count, 5))]
    candidates = []
    for fraction in fractions:
        values = {}
        for item in ranges.get("ContinuousParameterRanges", []):
            values[item["Name"]] = f"{_range_point(item, fraction):.6g}"
        for item in ranges.get("IntegerParameterRanges", []):
            values[item["Name"]] = str(int(round(_range_point(item, fraction))))
        for item in ranges.get("CategoricalParameterRanges", []):
            values[item["Name"]] = item["Values"][int(fraction * len(item["Values"])) % len(item["Values"])]
        candidates.append(values)
    return candidates


def tune_xgboost(train_files: list, validation_files: list, static: dict, ranges: dict, objective: dict,
                 max_jobs: int) -> tuple:
    """(best tuned values, their validation score, scores of every candidate) of a tuning job."""
    if not objective["MetricName"].startswith("validation:"):
        raise StandInError(f"tuning objective {objective['MetricName']!r} is not a validation metric")
    metric = objective["MetricName"].partition(":")[2]
    maximize = objective["Type"] == "Maximize"
    scored = []
    for values in tuning_candidates(ranges, max_jobs):
        model = train_xgboost(train_files, {**static, **values}, validation_files)
        scored.append((validation_score(model, validation_files, metric), values))
    best = max(scored, key=lambda pair: pair[0] if maximize else -pair[0])
    return best[1], best[0], [score for score, _ in scored]


def transform(model: StandInModel, environment: dict, files: list) -> dict:
    """Relative input name -> output text, one answer line per input line."""
    outputs = {}
    for path, relative in files:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        rows = []
        for number, line in enumerate(lines, start=1):
            fields = next(csv.reader([line]))
            if len(fields) != len(model.features):
                raise StandInError(f"{relative} line {number} has {len(fields)} fields; the model takes "
                                   f"{len(model.features)}")
            if model.categories:
                rows.append(fields)
                continue
            try:
                rows.append([float(v) for v in fields])
            except ValueError:
                raise StandInError(f"{relative} line {number} is not numeric: {line[:80]!r}")
        shape = (len(rows), len(model.features))
        answers = model.answer(np.array(rows, dtype=object if model.categories else float).reshape(shape),
                               environment) if rows else []
        outputs[relative] = "".join(a + "\n" for a in answers)
    return outputs


def read_clarify_dataset(folder: Path, headers: list) -> pd.DataFrame:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise StandInError(f"the Clarify dataset folder {folder} is empty")
    frames = []
    for path in files:
        frame = pd.read_csv(path, header=None, dtype=str)
        relative = path.relative_to(folder).as_posix()
        if frame.shape[1] != len(headers):
            raise StandInError(
                f"dataset file {relative} has {frame.shape[1]} columns but the analysis config's headers list "
                f"{len(headers)}: Clarify loads every file under the dataset input as one table"
            )
        if list(frame.iloc[0]) == list(headers):
            raise StandInError(f"dataset file {relative} starts with a header row, which Clarify reads as data "
                               "because the analysis config lists the headers")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.columns = list(headers)
    return table.apply(_typed)


def _typed(column: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _scores(model: StandInModel, environment: dict, predictor: dict, rows: np.ndarray, config: dict) -> tuple:
    """(predicted favourable outcome per row, explained score per row) read the way the predictor says."""
    answers = [next(csv.reader([line])) for line in model.answer(rows, environment)]
    label_values = config["label_values_or_threshold"]
    headers = predictor.get("label_headers")
    if "probability" in predictor:
        column = [a[predictor["probability"]] for a in answers]
        if headers:
            lists = [[float(p) for p in ast.literal_eval(value)] for value in column]
            favourable = [str(v) for v in label_values]
            position = next((i for i, h in enumerate(headers) if h in favourable), None)
            if position is None:
                raise StandInError(f"label_headers {headers} hold none of the favourable labels {label_values}")
            score = np.array([row[position] for row in lists])
            if "label" in predictor:
                predicted = np.array([a[predictor["label"]] in favourable for a in answers])
            else:
                predicted = np.array([int(np.argmax(row)) == position for row in lists])
            return predicted, score
        score = np.array([float(v) for v in column])
        return score >= float(config.get("probability_threshold", 0.5)), score
    column = [a[predictor["label"]] for a in answers]
    if headers:
        labels = [headers[int(float(v))] for v in column]
        favourable = {str(v) for v in label_values}
        predicted = np.array([label in favourable for label in labels])
        return predicted, predicted.astype(float)
    try:
        values = np.array([float(v) for v in column])
    except ValueError:
        predicted = np.array([v in {str(x) for x in label_values} for v in column])
        return predicted, predicted.astype(float)
    if len(label_values) == 1 and isinstance(label_values[0], float):
        return values > label_values[0], values
    return np.isin(values, [float(v) for v in label_values]), values


def check_score_semantics(model: StandInModel, environment: dict, predictor: dict) -> None:
    """Refuse a predictor that does not read an Autopilot classifier's class scores from ``probabilities``.

    AWS documents ``probability`` as the probability of the *predicted* label: read as the favourable
    class's score with a threshold, every row is predicted favourable and SHAP explains confidence, not
    risk. The class scores are ``probabilities``, in the order of ``label_headers``.
    """
    if model.kind != "automl" or model.problem == "Regression" or "probability" not in predictor:
        return
    keys = [k.strip() for k in environment.get("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label").split(",")]
    index = predictor["probability"]
    read = keys[index] if isinstance(index, int) and 0 <= index < len(keys) else None
    if read == "probabilities" and predictor.get("label_headers"):
        return
    if read is None:
        raise StandInError(f"predictor.probability = {index!r} is not a field of the model's answer {keys}")
    meaning = {"probability": "the probability of the predicted label, not of the favourable class",
               "predicted_label": "a label, not a score"}.get(read, "not a class score")
    raise StandInError(
        f"predictor.probability = {index} reads the Autopilot answer's {read!r} field, which is {meaning}; "
        f"read 'probabilities' (field {keys.index('probabilities') if 'probabilities' in keys else 'absent'}) "
        "with label_headers instead"
    )


def clarify(config: dict, dataset: pd.DataFrame, model: StandInModel, environment: dict) -> dict:
    """``analysis.json`` for ``dataset`` as Clarify would compute it for this config and model."""
    label = config["label"]
    excluded = set(config.get("excluded_columns", []))
    features = [h for h in config["headers"] if h != label and h not in excluded]
    label_values = config["label_values_or_threshold"]
    if len(label_values) == 1 and isinstance(label_values[0], float) and not pd.api.types.is_integer_dtype(dataset[label]):
        observed = dataset[label].astype(float) > label_values[0]
    else:
        observed = dataset[label].astype(str).isin([str(v) for v in label_values])
    frame = dataset
    rows = explain.feature_matrix(frame[features])
    predictor = config["predictor"]
    check_score_semantics(model, environment, predictor)
    predicted, _ = _scores(model, environment, predictor, rows, config)
    # Clarify computes only the methods the config lists: a SHAP-only config (no facets) has no bias sections,
    # and one that asks for bias without a facet is refused as Clarify refuses it.
    bias_methods = [m for m in ("pre_training_bias", "post_training_bias") if m in config.get("methods", {})]
    facets = [(facet["name_or_index"], list(facet["value_or_threshold"])) for facet in config.get("facet", [])]
    if bias_methods and not facets:
        raise StandInError(f"the analysis config asks for {bias_methods} but names no facet")
    try:
        sections = bias.bias_sections(frame, facets, label, bias.categorical(observed.astype(int)), ["1"],
                                      bias.categorical(predicted.astype(int)), features=features) if bias_methods else {}
    except bias.BiasError as error:
        raise StandInError(str(error))
    sections = {name: section for name, section in sections.items() if any(name.startswith(m) for m in bias_methods)}
    analysis = {"version": "1.0"}
    for name, section in sections.items():
        analysis[name] = {**section, "label_value_or_threshold": str(label_values)}
    explained = rows[:SHAP_ROWS]

    def explain_scores(matrix: np.ndarray) -> np.ndarray:
        return _scores(model, environment, predictor, matrix, config)[1]

    nsamples = int(config["methods"]["shap"].get("num_samples", 100))
    values, expected = explain.kernel_shap(explain_scores, explain.baseline_row(frame, features), explained, nsamples, 0,
                                           explain.l1_reg(features))
    analysis["explanations"] = explain.explanations_section(values, expected, features, ["label0"], nsamples)
    analysis["local_stand_in"] = {
        "predicted_favourable_rate": float(np.mean(predicted)),
        "observed_favourable_rate": float(np.mean(observed)),
        "rows": int(len(frame)),
    }
    return analysis


def clarify_config_file(folder: Path) -> dict:
    files = sorted(folder.rglob("analysis_config.json"))
    if len(files) != 1:
        raise StandInError(f"expected one analysis_config.json under the config input, found {len(files)}")
    return json.loads(files[0].read_text())
