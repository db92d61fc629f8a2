"""The data generator: structure, fraud patterns, calibration, determinism, size, CLI (speed: bench/pipeline.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import generate
from pipeline_code.columns import KEY, LABEL, NIGHT_HOURS, TIME, TRANSACTION_ID


@pytest.fixture(scope="module")
def large():
    customers, transactions = generate.generate(200_000, seed=11, fraud_rate=0.03)
    joined = transactions.merge(customers, on=KEY)
    return customers, transactions, joined


def test_tables_have_the_documented_columns(large):
    customers, transactions, _ = large
    assert list(customers.columns) == [KEY, "home_state", "customer_age", "account_age_days"]
    assert list(transactions.columns) == [TRANSACTION_ID, KEY, TIME, "amount", "transaction_state", "hour", LABEL]
    assert transactions[KEY].isin(customers[KEY]).all()
    assert customers[KEY].is_unique and transactions[TRANSACTION_ID].is_unique
    assert (transactions["amount"] > 0).all()
    assert transactions["hour"].between(0, 23).all()
    assert (transactions[TIME].dt.hour == transactions["hour"]).all()
    assert transactions[TIME].is_monotonic_increasing


def test_fraud_rate_is_calibrated(large):
    _, transactions, _ = large
    assert transactions[LABEL].mean() == pytest.approx(0.03, abs=0.003)


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_fraud_rate_follows_the_parameter(rate):
    _, transactions = generate.generate(100_000, seed=2, fraud_rate=rate)
    assert transactions[LABEL].mean() == pytest.approx(rate, rel=0.15)


def test_fraud_is_likelier_at_high_amounts_away_from_home_and_at_night(large):
    _, _, joined = large
    fraud = joined[LABEL]
    away = joined["transaction_state"] != joined["home_state"]
    night = joined["hour"].isin(sorted(NIGHT_HOURS))
    high = joined["amount"] > joined["amount"].quantile(0.9)
    assert fraud[away].mean() > 3 * fraud[~away].mean()
    assert fraud[night].mean() > 2 * fraud[~night].mean()
    assert fraud[high].mean() > 2 * fraud[~high].mean()
    assert 0.03 < away.mean() < 0.15


def test_same_seed_same_data_other_seed_other_data():
    first = generate.generate(5000, seed=4)
    again = generate.generate(5000, seed=4)
    other = generate.generate(5000, seed=5)
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    assert not first[1].equals(other[1])


def test_a_million_rows_have_the_documented_shape_and_types():
    """Speed is measured by bench/pipeline.py (a ratio to a baseline of the same run), not asserted here."""
    customers, transactions = generate.generate(1_000_000, seed=0)

    assert transactions.shape == (1_000_000, 7)
    assert customers.shape == (1_000_000 // 50, 4)
    assert list(transactions.columns) == [TRANSACTION_ID, KEY, TIME, "amount", "transaction_state", "hour", LABEL]
    assert list(customers.columns) == [KEY, "home_state", "customer_age", "account_age_days"]
    types = pd.api.types
    for column in (TRANSACTION_ID, KEY, "hour", LABEL):
        assert types.is_integer_dtype(transactions[column]), column
    assert types.is_float_dtype(transactions["amount"])
    assert types.is_datetime64_any_dtype(transactions[TIME])
    assert types.is_string_dtype(transactions["transaction_state"])
    for column in (KEY, "customer_age", "account_age_days"):
        assert types.is_integer_dtype(customers[column]), column
    assert types.is_string_dtype(customers["home_state"])
    assert (transactions[TRANSACTION_ID].to_numpy() == np.arange(1, 1_000_000 + 1)).all()
    assert set(transactions[LABEL].unique()) == {0, 1}
    assert transactions[KEY].isin(customers[KEY]).all()


def test_no_test_of_the_generator_reads_the_clock():
    """A wall-time assertion fails on a slow or busy machine (2 shared cores, xdist); bench/pipeline.py times it."""
    tree = ast.parse(Path(__file__).read_text())
    clocks = {"time", "timeit"}
    imported = [
        (node.lineno, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] in clocks
    ] + [(node.lineno, node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module in clocks]
    assert imported == [], "time generation in bench/pipeline.py, not in a test"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 0}, "rows must be at least 1"),
        ({"rows": 10, "fraud_rate": 0.0}, "fraud_rate must be in"),
        ({"rows": 10, "fraud_rate": 0.9}, "fraud_rate must be in"),
        ({"rows": 10, "days": 0}, "days must be at least 1"),
        ({"rows": 10, "customers": 0}, "customers must be at least 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(generate.GenerationError, match=message):
        generate.generate(**kwargs)


def test_cli_writes_both_tables(tmp_path, capsys):
    assert generate.main(["--rows", "1000", "--out", str(tmp_path), "--seed", "7"]) == 0
    transactions = pd.read_csv(tmp_path / "transactions.csv", parse_dates=[TIME])
    customers = pd.read_csv(tmp_path / "customers.csv")
    expected_customers, expected = generate.generate(1000, seed=7)
    assert len(transactions) == 1000 and len(customers) == len(expected_customers)
    assert np.allclose(transactions["amount"], expected["amount"])
    assert (transactions[TIME] == expected[TIME]).all()
    assert "wrote 1000 transactions" in capsys.readouterr().out


def test_cli_rejects_bad_rate(tmp_path, capsys):
    assert generate.main(["--rows", "10", "--out", str(tmp_path), "--fraud-rate", "2"]) == 2
    assert "fraud_rate must be in" in capsys.readouterr().err
