"""The split at its edges: fractions at the bounds, the smallest data each mode accepts, the rounding of
small classes, oversampling at its boundaries, the files the built-in XGBoost path and batch transform
read, the summary, and the command line with its defaults."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline_code import split
from pipeline_code.columns import KEY, LABEL, TIME
from pipeline_code.problem import Problem

# --- fractions --------------------------------------------------------------------------------------


def test_a_fraction_of_exactly_one_is_refused_even_when_the_sum_is_within_tolerance():
    with pytest.raises(split.SplitError, match=r"^train fraction must be strictly between 0 and 1, got 1\.0$"):
        split.check_fractions((1.0, 1e-7, 1e-7))


def test_the_sum_error_names_each_fraction_in_its_place():
    with pytest.raises(split.SplitError) as error:
        split.check_fractions((0.5, 0.3, 0.4))
    assert str(error.value) == "fractions must sum to 1, got train 0.5 + validation 0.3 + test 0.4 = 1.2"


def test_fractions_within_the_tolerance_are_scaled_to_sum_to_one():
    scaled = split.check_fractions((0.6, 0.2, 0.2000009))
    assert sum(scaled) == pytest.approx(1.0, abs=1e-12)
    assert scaled[0] < 0.6


def test_other_than_three_fractions_is_refused_with_the_count():
    with pytest.raises(split.SplitError, match=r"^expected 3 fractions \(train, validation, test\), got 2$"):
        split.check_fractions((0.5, 0.5))


# --- the smallest data each mode accepts ----------------------------------------------------------


def frame_of(rows: int, **columns) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(rows, dtype=float), **columns})


@pytest.mark.parametrize("mode", ["random", "ordered"])
def test_three_rows_give_one_row_to_each_split_and_two_rows_are_refused(mode):
    parts = split.split_indices(frame_of(3, **{TIME: [3, 1, 2]}), mode, (0.34, 0.33, 0.33), seed=0)
    assert [len(p) for p in parts] == [1, 1, 1]

    with pytest.raises(split.SplitError) as error:
        split.split_indices(frame_of(2, **{TIME: [1, 2]}), mode, (0.34, 0.33, 0.33), seed=0)
    assert str(error.value) == "too few rows (2): the test split would be empty"


@pytest.mark.parametrize("rows", [0, 1])
def test_no_row_or_one_row_is_refused(rows):
    with pytest.raises(
        split.SplitError, match=rf"^too few rows \({rows}\): the (train|validation) split would be empty$"
    ):
        split.split_indices(frame_of(rows), "random", (0.6, 0.2, 0.2), seed=0)


def test_ordered_gives_train_the_earliest_rows_and_keeps_file_order_among_equal_times():
    # 40 rows at one time, then 10 later ones: the stable order keeps the tied rows as they are in the file.
    times = [5] * 40 + list(range(6, 16))
    train, validation, test = split.split_indices(frame_of(50, **{TIME: times}), "ordered", (0.6, 0.2, 0.2), seed=0)
    assert train.tolist() == list(range(30))
    assert validation.tolist() == list(range(30, 40))
    assert test.tolist() == list(range(40, 50))


def test_ordered_cuts_through_rows_of_one_time_in_file_order():
    # 500 rows at time 1 between 500 at time 2: train's 300 earliest are the first 300 time-1 rows of the file.
    times = np.tile([2, 1], 500)
    train, validation, test = split.split_indices(frame_of(1000, **{TIME: times}), "ordered", (0.3, 0.2, 0.5), seed=0)
    assert sorted(train.tolist()) == list(range(1, 600, 2))
    assert sorted(validation.tolist()) == list(range(601, 1000, 2))
    assert sorted(test.tolist()) == list(range(0, 1000, 2))


def test_ordered_reads_timestamps_written_as_text():
    stamps = [f"2026-01-{day:02d}T00:00:00" for day in (5, 1, 3, 2, 4)]
    train, validation, test = split.split_indices(frame_of(5, **{TIME: stamps}), "ordered", (0.6, 0.2, 0.2), seed=0)
    assert (train.tolist(), validation.tolist(), test.tolist()) == ([1, 3, 2], [4], [0])


@pytest.mark.parametrize(
    ("mode", "column", "parameter"), [("ordered", TIME, "time"), ("by_key", KEY, "key"), ("stratified", LABEL, "label")]
)
def test_a_missing_column_is_named_with_the_mode_that_needs_it(mode, column, parameter):
    with pytest.raises(split.SplitError) as error:
        split.split_indices(frame_of(10), mode, (0.6, 0.2, 0.2), seed=0)
    assert str(error.value).startswith(
        f"mode {mode!r} needs the {parameter} column {column!r}, which is not in the data"
    )


def test_an_unknown_mode_lists_the_modes_there_are():
    with pytest.raises(split.SplitError) as error:
        split.split_indices(frame_of(10), "shuffled", (0.6, 0.2, 0.2), seed=0)
    assert str(error.value) == "unknown split mode 'shuffled'; expected one of random, ordered, by_key, stratified"


@pytest.mark.parametrize(("mode", "column"), [("by_key", KEY), ("stratified", LABEL)])
def test_empty_keys_or_labels_are_refused_naming_the_column(mode, column):
    values = [1, 2, None, 1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(split.SplitError) as error:
        split.split_indices(frame_of(10, **{column: values}), mode, (0.6, 0.2, 0.2), seed=0)
    assert str(error.value) == f"{'key' if mode == 'by_key' else 'label'} column {column!r} has empty values"


# --- by_key -------------------------------------------------------------------------------------------


def key_sets(frame: pd.DataFrame, parts) -> list[set]:
    return [set(frame[KEY].to_numpy()[p]) for p in parts]


def test_by_key_with_three_keys_gives_one_key_to_each_split():
    frame = frame_of(9, **{KEY: [7, 8, 9] * 3})
    assert sorted(len(s) for s in key_sets(frame, split.split_indices(frame, "by_key", (0.8, 0.1, 0.1), seed=4))) == [
        1,
        1,
        1,
    ]


def test_by_key_cuts_at_the_key_boundaries_nearest_the_fractions():
    # Ten keys of ten rows: 50/30/20 % fall exactly on key boundaries.
    frame = frame_of(100, **{KEY: np.repeat(np.arange(10), 10)})
    parts = split.split_indices(frame, "by_key", (0.5, 0.3, 0.2), seed=1)
    assert [len(p) for p in parts] == [50, 30, 20]


def test_by_key_gives_a_small_split_one_key_and_no_more():
    # Four keys of ten rows at 10/10/80 %: the nearest cuts are at 0 and 1 key; each split still gets one key,
    # and the test split keeps the rest.
    frame = frame_of(40, **{KEY: np.repeat(np.arange(4), 10)})
    parts = split.split_indices(frame, "by_key", (0.1, 0.1, 0.8), seed=2)
    assert [len(s) for s in key_sets(frame, parts)] == [1, 1, 2]


def test_by_key_assignment_depends_on_the_seed():
    frame = frame_of(200, **{KEY: np.repeat(np.arange(20), 10)})
    assignments = {
        tuple(sorted(key_sets(frame, split.split_indices(frame, "by_key", (0.5, 0.25, 0.25), seed=seed))[0]))
        for seed in range(5)
    }
    assert len(assignments) > 1


def test_by_key_does_not_depend_on_the_order_of_the_rows():
    frame = frame_of(120, **{KEY: np.repeat([30, 10, 50, 20, 40, 60], 20)})
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = key_sets(frame, split.split_indices(frame, "by_key", (0.5, 0.25, 0.25), seed=9))
    second = key_sets(shuffled, split.split_indices(shuffled, "by_key", (0.5, 0.25, 0.25), seed=9))
    assert first == second


# --- stratified -------------------------------------------------------------------------------------


FRACTION_TRIPLES = [(0.5, 0.25, 0.25), (0.6, 0.2, 0.2), (0.7, 0.15, 0.15), (0.8, 0.1, 0.1), (0.4, 0.4, 0.2)]


def within_one(value: int, exact: float) -> bool:
    return abs(value - exact) < 1 - 1e-9


@pytest.mark.parametrize("triple", FRACTION_TRIPLES)
def test_every_small_pair_of_class_sizes_gets_a_rounding_within_one_row(triple):
    """Exhaustive over two classes of 0 to 12 rows: cells, rows and column totals all within one row."""
    for sizes in itertools.product(range(13), repeat=2):
        table = split.stratified_counts(list(sizes), triple)
        for row, size in zip(table, sizes):
            assert sum(row) == size, (sizes, table)
            assert all(within_one(cell, f * size) for cell, f in zip(row, triple)), (sizes, table)
        for column, f in zip(zip(*table), triple):
            assert within_one(sum(column), f * sum(sizes)), (sizes, table)


def test_cells_round_to_the_nearest_integer_when_the_totals_allow_it():
    # 7 rows per class at 70/15/15 %: exact 4.9, 1.05, 1.05; nearest 5, 1, 1 per class gives totals 10, 2, 2.
    assert split.stratified_counts([7, 7], (0.7, 0.15, 0.15)) == [[5, 1, 1], [5, 1, 1]]
    assert split.stratified_counts([1, 9], (0.8, 0.1, 0.1)) == [[1, 0, 0], [7, 1, 1]]


def test_stratified_split_of_a_table_problem_uses_its_target(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=90), "grade": np.repeat(["a", "b", "c"], 30)})
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "data.csv", index=False)
    problem = Problem(problem_type="multiclass", target="grade", classes=("a", "b", "c"), input_layout="table")
    summary = split.run(tmp_path / "raw", tmp_path / "out", problem, "stratified", (0.6, 0.2, 0.2), seed=0)
    assert summary["labels"] == {
        "train": {"a": 18, "b": 18, "c": 18},
        "validation": {"a": 6, "b": 6, "c": 6},
        "test": {"a": 6, "b": 6, "c": 6},
    }


# --- oversampling -----------------------------------------------------------------------------------


def train_of(labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(len(labels)), LABEL: labels})


def positives(frame: pd.DataFrame) -> np.ndarray:
    return (frame[LABEL] == 1).to_numpy()


def test_oversampling_adds_the_fewest_copies_that_reach_the_ratio():
    train = train_of([1] + [0] * 9)
    result = split.oversample_minority(train, positives(train), 0.5, seed=0)
    # 1 of 10 positive: 8 copies make 9 of 18 (one fewer would be 8 of 17 < 0.5).
    assert len(result) == 18
    assert int(result[LABEL].sum()) == 9
    assert result.iloc[:10].equals(train)
    assert (result.iloc[10:]["x"] == 0).all(), "only the positive row is copied"


def test_oversampling_is_deterministic_for_a_seed():
    train = train_of([1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    first = split.oversample_minority(train, positives(train), 0.5, seed=7)
    again = split.oversample_minority(train, positives(train), 0.5, seed=7)
    assert first.equals(again)


@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_a_ratio_already_reached_leaves_train_unchanged(ratio):
    train = train_of([1, 0] * 5)
    assert split.oversample_minority(train, positives(train), ratio, seed=0) is train


def test_a_ratio_of_zero_leaves_train_unchanged_even_without_positives():
    train = train_of([0] * 6)
    assert split.oversample_minority(train, positives(train), 0.0, seed=0) is train


def test_oversampling_a_train_without_positives_is_refused():
    train = train_of([0] * 6)
    with pytest.raises(split.SplitError) as error:
        split.oversample_minority(train, positives(train), 0.3, seed=0)
    assert str(error.value) == "cannot oversample: train has no positive rows"


# --- files and summary of a run -----------------------------------------------------------------------


BINARY = Problem(problem_type="binary", target="label", positive_label="yes", input_layout="table")


def write_binary_table(folder, rows: int = 40, labels=None) -> pd.DataFrame:
    labels = labels if labels is not None else (["yes", "no", "no", "no"] * rows)[:rows]
    frame = pd.DataFrame({"x": np.arange(rows) * 1.5, "label": labels})
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data.csv", index=False)
    return frame


def test_xgboost_files_encode_the_positive_label_as_1_and_have_no_header(tmp_path):
    write_binary_table(tmp_path / "raw")
    split.run(tmp_path / "raw", tmp_path / "out", BINARY, "random", (0.5, 0.25, 0.25), seed=0)
    out = tmp_path / "out"
    for channel, xgboost in (("train", "xgboost_train"), ("validation", "xgboost_validation")):
        readable = pd.read_csv(out / split.OUTPUT_FILES[channel])
        lines = (out / split.OUTPUT_FILES[xgboost]).read_text().splitlines()
        assert len(lines) == len(readable), f"{xgboost} has a header or lost rows"
        assert [line.split(",")[0] for line in lines] == ["1" if v == "yes" else "0" for v in readable["label"]]


def test_batch_transform_input_is_the_test_features_without_a_header(tmp_path):
    write_binary_table(tmp_path / "raw")
    split.run(tmp_path / "raw", tmp_path / "out", BINARY, "random", (0.5, 0.25, 0.25), seed=0)
    test = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["test"])
    lines = (tmp_path / "out" / split.OUTPUT_FILES["transform_input"]).read_text().splitlines()
    assert [float(line) for line in lines] == test["x"].tolist()


def test_multiclass_labels_are_written_as_class_indices(tmp_path):
    frame = pd.DataFrame({"x": np.arange(30.0), "grade": ["c", "a", "b"] * 10})
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "data.csv", index=False)
    problem = Problem(problem_type="multiclass", target="grade", classes=("c", "b", "a"), input_layout="table")
    split.run(tmp_path / "raw", tmp_path / "out", problem, "random", (0.6, 0.2, 0.2), seed=0)
    train = pd.read_csv(tmp_path / "out" / split.OUTPUT_FILES["train"])
    lines = (tmp_path / "out" / split.OUTPUT_FILES["xgboost_train"]).read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == [str(("c", "b", "a").index(g)) for g in train["grade"]]


def test_the_summary_counts_rows_labels_and_positives_per_split(tmp_path):
    write_binary_table(tmp_path / "raw")
    summary = split.run(tmp_path / "raw", tmp_path / "out", BINARY, "stratified", (0.5, 0.25, 0.25), seed=3)
    assert summary == {
        "mode": "stratified",
        "seed": 3,
        "fractions": [0.5, 0.25, 0.25],
        "oversample_ratio": 0.0,
        "problem_type": "binary",
        "target": "label",
        "training_path": "AutoML",
        "text_features": [],
        "rows": {"train": 20, "validation": 10, "test": 10},
        "labels": {
            "train": {"no": 15, "yes": 5},
            "validation": {"no": 7, "yes": 3},
            "test": {"no": 8, "yes": 2},
        },
        "positives": {"train": 5, "validation": 3, "test": 2},
        "features": ["x"],
        "test_columns": ["label", "x"],
        "oversampled_rows": 0,
    }
    assert json.loads((tmp_path / "out" / split.OUTPUT_FILES["summary"]).read_text()) == summary


def test_a_second_run_into_the_same_output_folder_replaces_the_files(tmp_path):
    write_binary_table(tmp_path / "raw")
    split.run(tmp_path / "raw", tmp_path / "out", BINARY, "random", (0.5, 0.25, 0.25), seed=0)
    summary = split.run(tmp_path / "raw", tmp_path / "out", BINARY, "random", (0.5, 0.25, 0.25), seed=1)
    assert json.loads((tmp_path / "out" / split.OUTPUT_FILES["summary"]).read_text())["seed"] == summary["seed"] == 1


def test_oversampling_is_refused_for_a_problem_that_is_not_binary(tmp_path):
    frame = pd.DataFrame({"x": np.arange(30.0), "y": np.arange(30.0)})
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "data.csv", index=False)
    problem = Problem(problem_type="regression", target="y", input_layout="table")
    with pytest.raises(split.SplitError) as error:
        split.run(tmp_path / "raw", tmp_path / "out", problem, "random", (0.6, 0.2, 0.2), seed=0, oversample_ratio=0.3)
    assert str(error.value) == "oversample ratio 0.3 is only allowed for a binary problem; use 0"


# --- targets the problem cannot use -----------------------------------------------------------------


def binary_target(values) -> pd.Series:
    return pd.Series(values, name="label")


@pytest.mark.parametrize(
    "values",
    [["yes", "no", "maybe"], ["no", "nope", "no"], ["yes", "yes"]],
    ids=["three values", "positive label missing", "only the positive label"],
)
def test_a_binary_target_needs_exactly_two_values_one_of_them_the_positive_label(values):
    with pytest.raises(split.SplitError) as error:
        split.encoded_labels(binary_target(values), BINARY)
    assert str(error.value) == (
        "target column 'label' of a binary problem needs exactly 2 values including the positive label 'yes'; "
        f"it has {sorted(set(values))}"
    )


def test_the_binary_error_lists_at_most_ten_values():
    values = ["yes"] + [f"v{i:02d}" for i in range(11)]
    with pytest.raises(split.SplitError) as error:
        split.encoded_labels(binary_target(values), BINARY)
    assert str(error.value).endswith(f"it has {sorted(values)[:10]}")


def test_unknown_classes_are_listed_up_to_ten():
    problem = Problem(problem_type="multiclass", target="grade", classes=("a", "b", "c"), input_layout="table")
    values = ["a"] + [f"z{i:02d}" for i in range(11)]
    with pytest.raises(split.SplitError) as error:
        split.encoded_labels(pd.Series(values, name="grade"), problem)
    assert str(error.value) == (
        f"target column 'grade' has value(s) {sorted(values)[1:11]} that are not among the classes ['a', 'b', 'c']"
    )


def test_empty_target_values_are_counted():
    with pytest.raises(split.SplitError) as error:
        split.encoded_labels(binary_target(["yes", None, "no", None]), BINARY)
    assert str(error.value) == "target column 'label' has 2 empty value(s)"


def test_a_regression_target_must_be_numeric():
    problem = Problem(problem_type="regression", target="y", input_layout="table")
    with pytest.raises(split.SplitError) as error:
        split.encoded_labels(pd.Series(["1.5", "high"], name="y"), problem)
    assert str(error.value) == "target column 'y' must be numeric for a regression problem, got object"


# --- input files --------------------------------------------------------------------------------------


def test_an_empty_input_folder_is_named(tmp_path):
    with pytest.raises(split.SplitError) as error:
        split.load_table(tmp_path, BINARY)
    assert str(error.value) == f"no *.csv file under {tmp_path} (input_layout table)"


def test_a_file_with_another_header_is_named_against_the_first(tmp_path):
    pd.DataFrame({"x": [1], "label": ["yes"]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"x": [2], "y": ["no"]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(split.SplitError) as error:
        split.load_table(tmp_path, BINARY)
    assert str(error.value) == (
        "b.csv has columns ['x', 'y'], but a.csv has ['x', 'label']; every input file needs the same header"
    )


def test_a_mode_the_problem_does_not_allow_is_named_with_what_it_allows(tmp_path):
    write_binary_table(tmp_path / "raw")
    with pytest.raises(split.SplitError) as error:
        split.run(tmp_path / "raw", tmp_path / "out", BINARY, "by_key", (0.6, 0.2, 0.2), seed=0)
    assert str(error.value) == (
        "mode 'by_key' is not allowed for this problem; it allows random, stratified "
        "(ordered needs a time column, by_key a key column, stratified a classification problem)"
    )


# --- command line -----------------------------------------------------------------------------------


def cli(tmp_path, *extra: str) -> list[str]:
    return [
        "--input-dir",
        str(tmp_path / "raw"),
        "--output-dir",
        str(tmp_path / "out"),
        "--problem-type",
        "binary",
        "--target",
        "label",
        "--positive-label",
        "yes",
        *extra,
    ]


def test_the_cli_prints_the_summary_it_writes_and_uses_its_documented_defaults(tmp_path, capsys):
    write_binary_table(tmp_path / "raw")
    assert split.main(cli(tmp_path)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "out" / split.OUTPUT_FILES["summary"]).read_text())
    assert (printed["mode"], printed["seed"], printed["fractions"], printed["oversample_ratio"]) == (
        "random",
        42,
        [0.7, 0.15, 0.15],
        0.0,
    )


def test_the_cli_reads_fractions_seed_and_oversample_ratio_as_numbers(tmp_path, capsys):
    write_binary_table(tmp_path / "raw")
    code = split.main(
        cli(
            tmp_path,
            "--train-fraction",
            "0.5",
            "--validation-fraction",
            "0.25",
            "--test-fraction",
            "0.25",
            "--seed",
            "5",
            "--oversample-ratio",
            "0.4",
            "--mode",
            "stratified",
        )
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["fractions"], printed["seed"], printed["oversample_ratio"]) == ([0.5, 0.25, 0.25], 5, 0.4)
    assert printed["oversampled_rows"] > 0


@pytest.mark.parametrize("missing", ["--input-dir", "--output-dir"])
def test_the_cli_needs_both_folders(tmp_path, missing, capsys):
    arguments = cli(tmp_path)
    index = arguments.index(missing)
    del arguments[index : index + 2]
    with pytest.raises(SystemExit) as exit_:
        split.main(arguments)
    assert exit_.value.code == 2
    assert f"the following arguments are required: {missing}" in capsys.readouterr().err


def test_the_help_names_the_command_and_the_default_of_every_option(capsys):
    """What `--help` says is what the tool does when the option is left out (checked by the test above)."""
    with pytest.raises(SystemExit) as exit_:
        split.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: python -m pipeline_code.split ")
    assert " Split the use case's table into train/validation/test, leak-free, for its pipeline. " in text
    for option, described in [
        ("--input-dir INPUT_DIR", "folder with the input CSV file(s)"),
        ("--output-dir OUTPUT_DIR", "folder for the split files"),
        ("--mode MODE", "one of random, ordered, by_key, stratified (default: random)"),
        ("--train-fraction TRAIN_FRACTION", "default: 0.7"),
        ("--validation-fraction VALIDATION_FRACTION", "default: 0.15"),
        ("--test-fraction TEST_FRACTION", "default: 0.15"),
        ("--seed SEED", "default: 42"),
        (
            "--oversample-ratio OVERSAMPLE_RATIO",
            "target share of positives in train after oversampling (binary only); 0 disables it",
        ),
    ]:
        assert re.search(rf"(^| ){re.escape(option)} {re.escape(described)}( |$)", text), option
