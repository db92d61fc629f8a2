"""The split step: invariants of every mode over random data (hypothesis), bad parameters, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_code import split
from pipeline_code.columns import CONTEXT, FEATURES, KEY, LABEL, TIME
from pipeline_code.generate import generate, write
from pipeline_code.problem import FRAUD, Facet, Problem

FRAUD_ARGUMENTS = FRAUD.to_arguments()

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def fractions(draw):
    train = draw(st.floats(0.2, 0.8))
    validation = draw(st.floats(0.05, 0.9 - train))
    return (train, validation, 1.0 - train - validation)


@st.composite
def frames(draw, min_rows: int = 20, max_rows: int = 400):
    rows = draw(st.integers(min_rows, max_rows))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    keys = draw(st.integers(3, max(3, rows // 2)))
    positive_share = draw(st.floats(0.05, 0.5))
    labels = (rng.random(rows) < positive_share).astype(int)
    labels[:3] = 1
    labels[3:6] = 0
    return pd.DataFrame(
        {
            KEY: rng.integers(0, keys, size=rows),
            TIME: rng.integers(0, max(2, rows // 3), size=rows),
            LABEL: labels,
            "amount": rng.random(rows),
        }
    )


def exact_shares(total: int, fraction_triple) -> list:
    normalised = np.asarray(fraction_triple) / sum(fraction_triple)
    return [f * total for f in normalised]


def check_partition(frame, parts) -> None:
    combined = np.concatenate(parts)
    assert sorted(combined.tolist()) == list(range(len(frame))), "every row in exactly one split"
    assert all(len(p) > 0 for p in parts)


@SETTINGS
@given(frame=frames(), triple=fractions(), seed=st.integers(0, 10_000))
def test_random_sizes_within_one_row_and_deterministic(frame, triple, seed):
    parts = split.split_indices(frame, "random", triple, seed)
    check_partition(frame, parts)
    for part, exact in zip(parts, exact_shares(len(frame), triple)):
        assert abs(len(part) - exact) < 1
    again = split.split_indices(frame, "random", triple, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@SETTINGS
@given(frame=frames(), triple=fractions(), seed=st.integers(0, 10_000))
def test_ordered_puts_no_later_row_before_an_earlier_split(frame, triple, seed):
    train, validation, test = split.split_indices(frame, "ordered", triple, seed)
    check_partition(frame, (train, validation, test))
    times = frame[TIME].to_numpy()
    assert times[train].max() <= times[validation].min()
    assert times[validation].max() <= times[test].min()
    for part, exact in zip((train, validation, test), exact_shares(len(frame), triple)):
        assert abs(len(part) - exact) < 1


@SETTINGS
@given(frame=frames(), triple=fractions(), seed=st.integers(0, 10_000))
def test_by_key_keeps_each_key_in_one_split_and_cuts_near_the_fractions(frame, triple, seed):
    parts = split.split_indices(frame, "by_key", triple, seed)
    check_partition(frame, parts)
    key_sets = [set(frame[KEY].to_numpy()[p]) for p in parts]
    assert not (key_sets[0] & key_sets[1] or key_sets[0] & key_sets[2] or key_sets[1] & key_sets[2])
    largest_key = int(frame[KEY].value_counts().max())
    shares = exact_shares(len(frame), triple)
    assert abs(len(parts[0]) - shares[0]) <= 2 * largest_key
    assert abs(len(parts[0]) + len(parts[1]) - shares[0] - shares[1]) <= 2 * largest_key
    again = split.split_indices(frame, "by_key", triple, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@SETTINGS
@given(frame=frames(min_rows=60), triple=fractions(), seed=st.integers(0, 10_000))
def test_stratified_keeps_label_ratio_and_sizes_within_one_row(frame, triple, seed):
    labels = frame[LABEL].to_numpy()
    try:
        parts = split.split_indices(frame, "stratified", triple, seed)
    except split.SplitError as error:
        assert "too few rows" in str(error)
        positives = int(labels.sum())
        assert min(positives, len(labels) - positives) * min(triple) < 1
        return
    check_partition(frame, parts)
    for part, exact in zip(parts, exact_shares(len(frame), triple)):
        assert abs(len(part) - exact) < 1
    for value in (0, 1):
        count = int((labels == value).sum())
        for part, exact in zip(parts, exact_shares(count, triple)):
            assert abs(int((labels[part] == value).sum()) - exact) < 1
    again = split.split_indices(frame, "stratified", triple, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@SETTINGS
@given(sizes=st.lists(st.integers(0, 500), min_size=2, max_size=4), triple=fractions())
def test_controlled_rounding_exists_for_any_class_sizes(sizes, triple):
    table = split.stratified_counts(sizes, triple)
    total = sum(sizes)
    for row, size in zip(table, sizes):
        assert sum(row) == size
        for cell, exact in zip(row, exact_shares(size, triple)):
            assert abs(cell - exact) < 1
    for column, exact in zip(zip(*table), exact_shares(total, triple)):
        assert abs(sum(column) - exact) < 1


def test_different_seeds_give_different_random_splits():
    frame = pd.DataFrame({LABEL: [0, 1] * 100, KEY: range(200), TIME: range(200)})
    first = split.split_indices(frame, "random", (0.6, 0.2, 0.2), 1)
    second = split.split_indices(frame, "random", (0.6, 0.2, 0.2), 2)
    assert not np.array_equal(first[2], second[2])


SMALL = pd.DataFrame({KEY: [1, 1, 2, 3, 4, 5], TIME: range(6), LABEL: [0, 1, 0, 1, 0, 0]})


@pytest.mark.parametrize(
    ("mode", "triple", "frame", "message"),
    [
        ("random", (0.7, 0.2, 0.2), SMALL, "must sum to 1"),
        ("random", (0.5, 0.5, 0.0), SMALL, "test fraction must be strictly between 0 and 1"),
        ("random", (1.2, -0.1, -0.1), SMALL, "train fraction"),
        ("shuffled", (0.6, 0.2, 0.2), SMALL, "unknown split mode 'shuffled'"),
        ("ordered", (0.6, 0.2, 0.2), SMALL.drop(columns=[TIME]), "needs the time column 'timestamp'"),
        ("by_key", (0.6, 0.2, 0.2), SMALL.drop(columns=[KEY]), "needs the key column 'customer_id'"),
        ("stratified", (0.6, 0.2, 0.2), SMALL.drop(columns=[LABEL]), "needs the label column 'is_fraud'"),
        ("random", (0.8, 0.1, 0.1), SMALL.head(4), "too few rows (4): the test split would be empty"),
        ("stratified", (0.6, 0.2, 0.2), SMALL, "too few rows with is_fraud=1 for a stratified split"),
        ("stratified", (0.6, 0.2, 0.2), SMALL.assign(**{LABEL: 0}), "needs at least 2 label values"),
        ("by_key", (0.6, 0.2, 0.2), SMALL.assign(**{KEY: [1, 1, 1, 2, 2, 2]}), "too few keys"),
        ("ordered", (0.6, 0.2, 0.2), SMALL.assign(**{TIME: ["x"] * 6}), "neither numeric nor a parseable timestamp"),
    ],
)
def test_bad_parameters_give_a_clear_error(mode, triple, frame, message):
    with pytest.raises(split.SplitError) as error:
        split.split_indices(frame, mode, triple, seed=0)
    assert message in str(error.value)


def test_oversampling_touches_train_only(tmp_path):
    customers, transactions = generate(3000, seed=5)
    raw = tmp_path / "raw"
    write(customers, transactions, raw)
    out = tmp_path / "out"
    summary = split.run(raw, out, FRAUD, "stratified", (0.7, 0.15, 0.15), seed=1, oversample_ratio=0.2)
    plain = split.run(raw, tmp_path / "plain", FRAUD, "stratified", (0.7, 0.15, 0.15), seed=1)
    train = pd.read_csv(out / split.OUTPUT_FILES["train"])
    assert train[LABEL].mean() >= 0.2
    assert summary["oversampled_rows"] == len(train) - plain["rows"]["train"] > 0
    for name in ("validation", "test", "transform_input", "bias_dataset"):
        header = None if name in ("transform_input", "bias_dataset") else "infer"
        assert pd.read_csv(out / split.OUTPUT_FILES[name], header=header).equals(
            pd.read_csv(tmp_path / "plain" / split.OUTPUT_FILES[name], header=header)
        )
    original_train = pd.read_csv(tmp_path / "plain" / split.OUTPUT_FILES["train"])
    extra = train.iloc[len(original_train):]
    assert (extra[LABEL] == 1).all()
    assert extra.merge(original_train.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").all()


def test_oversample_ratio_out_of_range_is_rejected():
    frame = pd.DataFrame({LABEL: [0, 1, 0]})
    with pytest.raises(split.SplitError, match="oversample ratio must be in"):
        split.oversample_minority(frame, (frame[LABEL] == 1).to_numpy(), 1.0, seed=0)


def test_cli_writes_every_output_with_the_documented_columns(tmp_path):
    customers, transactions = generate(2000, seed=9)
    write(customers, transactions, tmp_path / "raw")
    code = split.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "out"),
                       "--mode", "by_key", "--seed", "3", *FRAUD_ARGUMENTS])
    assert code == 0
    out = tmp_path / "out"
    for relative in split.OUTPUT_FILES.values():
        assert (out / relative).is_file(), relative
    assert list(pd.read_csv(out / split.OUTPUT_FILES["train"]).columns) == list(FEATURES) + [LABEL]
    assert list(pd.read_csv(out / split.OUTPUT_FILES["test"]).columns) == [LABEL] + list(FEATURES) + list(CONTEXT)
    assert pd.read_csv(out / split.OUTPUT_FILES["transform_input"], header=None).shape[1] == len(FEATURES)
    test = pd.read_csv(out / split.OUTPUT_FILES["test"])
    bias_rows = pd.read_csv(out / split.OUTPUT_FILES["bias_dataset"], header=None, names=list(test.columns))
    assert bias_rows.equals(test), "the bias dataset is the test file without its header row"
    xgb = pd.read_csv(out / split.OUTPUT_FILES["xgboost_train"], header=None)
    assert set(xgb[0].unique()) <= {0, 1} and xgb.shape[1] == len(FEATURES) + 1
    summary = json.loads((out / split.OUTPUT_FILES["summary"]).read_text())
    assert sum(summary["rows"].values()) == 2000
    assert summary["mode"] == "by_key"


def test_cli_reports_bad_parameters_on_stderr(tmp_path, capsys):
    customers, transactions = generate(500, seed=1)
    write(customers, transactions, tmp_path / "raw")
    code = split.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "out"),
                       "--train-fraction", "0.9", *FRAUD_ARGUMENTS])
    assert code == 2
    assert "fractions must sum to 1" in capsys.readouterr().err


def test_missing_input_files_are_named(tmp_path):
    with pytest.raises(split.SplitError, match="transactions.csv not found"):
        split.run(tmp_path, tmp_path / "out", FRAUD, "random", (0.6, 0.2, 0.2), seed=0)


def test_no_output_name_is_a_prefix_of_another():
    folders = [relative.split("/")[0] for relative in split.OUTPUT_FILES.values()]
    assert len(set(folders)) == len(folders)
    clashes = [(a, b) for a in folders for b in folders if a != b and b.startswith(a)]
    assert clashes == [], f"S3Prefix inputs of {clashes} would read each other's files"


def table_problem(**changes) -> Problem:
    base = Problem(problem_type="multiclass", target="grade", key_column="account", time_column="day",
                   context=("region",), classes=("a", "b", "c"), input_layout="table",
                   facets=(Facet("region", ("north",)),))
    return base.replace(**changes)


def write_table(folder, rows: int = 300, seed: int = 0, files: int = 2):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "account": rng.integers(0, 40, rows), "day": np.arange(rows), "x1": rng.normal(size=rows),
        "x2": rng.normal(size=rows), "region": rng.choice(["north", "south"], rows),
        "grade": rng.choice(["a", "b", "c"], rows),
    })
    folder.mkdir(parents=True, exist_ok=True)
    for index, part in enumerate(np.array_split(frame, files)):
        part.to_csv(folder / f"part-{index}.csv", index=False)
    return frame


def test_table_layout_reads_every_csv_and_encodes_classes_for_xgboost(tmp_path):
    frame = write_table(tmp_path / "raw")
    summary = split.run(tmp_path / "raw", tmp_path / "out", table_problem(), "by_key", (0.6, 0.2, 0.2), seed=0)
    assert sum(summary["rows"].values()) == len(frame), "rows of both files"
    assert summary["features"] == ["x1", "x2"], "all but target, key, time and context"
    train = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["train"])
    assert list(train.columns) == ["x1", "x2", "grade"]
    xgb = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["xgboost_train"], header=None)
    assert list(xgb[0]) == [("a", "b", "c").index(g) for g in train["grade"]]
    test = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["test"])
    assert list(test.columns) == ["grade", "x1", "x2", "region"]
    accounts = [set(frame.loc[frame["x1"].isin(pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES[n])["x1"]), "account"])
                for n in ("train", "validation", "test")]
    assert not (accounts[0] & accounts[1] or accounts[0] & accounts[2] or accounts[1] & accounts[2])


def test_regression_targets_stay_numbers(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"day": np.arange(200), "x": rng.normal(size=200), "y": rng.normal(size=200) * 10})
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "data.csv", index=False)
    problem = Problem(problem_type="regression", target="y", time_column="day", input_layout="table")
    summary = split.run(tmp_path / "raw", tmp_path / "out", problem, "ordered", (0.7, 0.15, 0.15), seed=0)
    xgb = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["xgboost_train"], header=None)
    assert np.allclose(xgb[0], pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["train"])["y"])
    assert set(summary["labels"]["test"]) == {"mean", "min", "max"}


@pytest.mark.parametrize(("problem", "mode", "message"), [
    (table_problem(time_column=""), "ordered", "mode 'ordered' is not allowed for this problem"),
    (table_problem(key_column=""), "by_key", "mode 'by_key' is not allowed"),
    (Problem(problem_type="regression", target="x1", input_layout="table"), "stratified", "stratified"),
    (table_problem(classes=("a", "b", "z")), "random", "value(s) ['c'] that are not among the classes"),
    (table_problem(features=("x1", "x9")), "random", "feature column(s) ['x9'] are not in the data"),
    (table_problem(facets=(Facet("segment", ("x",)),)), "random", "facet 'segment' is not a column of the data"),
])
def test_problems_the_data_cannot_honour_are_named(tmp_path, problem, mode, message):
    write_table(tmp_path / "raw")
    with pytest.raises((split.SplitError, ValueError)) as error:
        split.run(tmp_path / "raw", tmp_path / "out", problem, mode, (0.6, 0.2, 0.2), seed=0)
    assert message in str(error.value)


def test_table_files_with_different_headers_are_refused(tmp_path):
    write_table(tmp_path / "raw", files=1)
    pd.DataFrame({"account": [1], "grade": ["a"]}).to_csv(tmp_path / "raw" / "z-extra.csv", index=False)
    with pytest.raises(split.SplitError, match="every input file needs the same header"):
        split.run(tmp_path / "raw", tmp_path / "out", table_problem(), "random", (0.6, 0.2, 0.2), seed=0)


def test_a_text_feature_is_refused_on_the_xgboost_path_before_any_training(tmp_path):
    """Built-in XGBoost reads numbers only: the split refuses a text feature on that path, naming it and the ways
    out, and lets the AutoML path (Autopilot encodes text) take it, recording it in the summary."""
    write_table(tmp_path / "raw")
    problem = table_problem(context=(), features=("x1", "region"))
    with pytest.raises(split.SplitError, match=r"feature column\(s\) \['region'\] hold text: the built-in XGBoost "
                                               r"path reads numbers only.*TrainingPath AutoML"):
        split.run(tmp_path / "raw", tmp_path / "xgb", problem, "random", (0.6, 0.2, 0.2), seed=0,
                  training_path="XGBoost")
    assert not (tmp_path / "xgb").exists(), "nothing is written before the refusal"
    summary = split.run(tmp_path / "raw", tmp_path / "automl", problem, "random", (0.6, 0.2, 0.2), seed=0,
                        training_path="AutoML")
    assert summary["text_features"] == ["region"] and summary["training_path"] == "AutoML"
    numeric = split.run(tmp_path / "raw", tmp_path / "numbers", table_problem(), "random", (0.6, 0.2, 0.2), seed=0,
                        training_path="XGBoost")
    assert numeric["text_features"] == []


def test_the_split_step_is_given_the_executions_training_path():
    from pipeline_code import definition

    arguments = definition.split_step(definition.FRAUD_SPEC)["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--training-path") + 1] == definition.param("TrainingPath")
