"""Synthetic churn-propensity data: monthly snapshots of customers, with a known signal.

Contract:
- ``generate(rows, seed)`` returns exactly ``rows`` rows and is a pure function of its arguments;
  ``generate_with_truth`` returns the same table and each row's true churn probability.
- One row per customer and month, grouped by customer, months consecutive and increasing within a
  customer. Every customer has 3-12 snapshots except the last one, whose history is cut short (possibly
  to 1 or 2 rows) so the table has exactly ``rows`` rows.
- Columns, in this order: ``customer_id`` (key, ``C000000``...), ``month`` (ISO date of the snapshot's
  first day, time), the numeric model features ``tenure_months``, ``monthly_charges``,
  ``support_calls_90d``, ``contract_months`` (1, 12 or 24), ``late_payments_12m``, ``senior`` (0/1), the
  context column ``region`` (north/south/east/west: the bias facet, never a model input) and the target
  ``churned`` (0/1).

Planted signal: the log-odds of churn rise with monthly charges, support calls and late payments and for
seniors, fall with tenure and contract length (``LOGIT_WEIGHTS``), and carry a hidden per-customer effect
(normal, sd ``customer_effect_sd``, default ``CUSTOMER_EFFECT_SD``) shared by all of a customer's rows.
Rows of one customer are therefore correlated: a random row split puts a customer's other months in train
and leaks that effect into the test score, which is why the use case splits ``by_key`` on ``customer_id``.
The intercept is calibrated so the mean churn probability equals ``churn_rate`` (default 15 %). Southern
customers hold more month-to-month contracts, so the ``south`` facet churns more through the features alone
(a pre-training bias for the bias report to find).
Labels are drawn independently per snapshot given its probability; a churned customer's history does not
end there (a simplification of the synthetic data).

Runs with numpy and pandas only. CLI: ``python -m pipeline_code.churn_data --out DIR [--rows N] [--seed S]``
writes ``DIR/churn.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code.problem import Facet, Problem

FILE_NAME = "churn.csv"
REGIONS = ("north", "south", "east", "west")
REGION_WEIGHTS = (0.3, 0.25, 0.25, 0.2)
CONTRACTS = (1, 12, 24)
CONTRACT_WEIGHTS = {"south": (0.7, 0.2, 0.1), "other": (0.4, 0.3, 0.3)}
"""Share of 1-, 12- and 24-month contracts, for the south and for the other regions."""
FEATURES = ("tenure_months", "monthly_charges", "support_calls_90d", "contract_months", "late_payments_12m", "senior")
COLUMNS = ("customer_id", "month") + FEATURES + ("region", "churned")
MIN_MONTHS, MAX_MONTHS = 3, 12
FIRST_MONTH = "2023-01"
LOGIT_WEIGHTS = {
    "monthly_charges": 0.025,
    "support_calls_90d": 0.45,
    "late_payments_12m": 0.4,
    "tenure_months": -0.035,
    "contract_months": -0.08,
    "senior": 0.4,
}
"""Effect of one unit of each feature on the log-odds of churn."""
CUSTOMER_EFFECT_SD = 1.0
"""Sd of the hidden per-customer effect on the log-odds: what a random row split would leak."""
DEFAULT_CHURN_RATE = 0.15
PROBLEM = Problem(
    problem_type="binary",
    target="churned",
    features=FEATURES,
    key_column="customer_id",
    time_column="month",
    context=("region",),
    positive_label="1",
    input_layout="table",
    facets=(Facet("region", ("south",)),),
)
"""The churn-propensity problem: the same model features as leaving ``features`` out of the config."""


class GenerationError(ValueError):
    """Raised for arguments the generator cannot honour."""


def _calibrated_intercept(logits: np.ndarray, target_rate: float) -> float:
    """Intercept ``b`` with ``mean(sigmoid(logits + b)) == target_rate`` (bisection, monotone in b)."""
    low, high = -40.0, 40.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if np.mean(1.0 / (1.0 + np.exp(-(logits + middle)))) < target_rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _months_per_customer(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Snapshot counts of 3-12 summing to exactly ``rows`` (the last one cut to fit)."""
    drawn = rng.integers(MIN_MONTHS, MAX_MONTHS + 1, size=rows // MIN_MONTHS + 1)
    ends = np.cumsum(drawn)
    customers = int(np.searchsorted(ends, rows)) + 1
    counts = drawn[:customers].copy()
    counts[-1] -= int(ends[customers - 1]) - rows
    return counts


def generate_with_truth(rows: int, seed: int = 0, churn_rate: float = DEFAULT_CHURN_RATE,
                        customer_effect_sd: float = CUSTOMER_EFFECT_SD) -> tuple:
    """(table of exactly ``rows`` rows, true churn probability of each row as a float array)."""
    if rows < 1:
        raise GenerationError(f"rows must be at least 1, got {rows}")
    if not 0.0 < churn_rate < 1.0:
        raise GenerationError(f"churn_rate must be in (0, 1), got {churn_rate}")
    if customer_effect_sd < 0:
        raise GenerationError(f"customer_effect_sd must not be negative, got {customer_effect_sd}")
    rng = np.random.default_rng(seed)
    months = _months_per_customer(rng, rows)
    customers = len(months)

    region = rng.choice(np.array(REGIONS), size=customers, p=REGION_WEIGHTS)
    south = region == "south"
    contract = np.where(
        south,
        rng.choice(CONTRACTS, size=customers, p=CONTRACT_WEIGHTS["south"]),
        rng.choice(CONTRACTS, size=customers, p=CONTRACT_WEIGHTS["other"]),
    )
    start_tenure = rng.integers(0, 60, size=customers)
    charges = np.round(15.0 + rng.gamma(4.0, 18.0, size=customers), 2)
    senior = (rng.random(customers) < 0.18).astype(np.int64)
    call_rate = rng.gamma(2.0, 0.5, size=customers)
    late_rate = rng.gamma(1.5, 0.3, size=customers) * (1.0 + senior)
    effect = rng.normal(0.0, customer_effect_sd, size=customers)
    first_month = rng.integers(0, 24, size=customers)

    owner = np.repeat(np.arange(customers), months)
    offset = np.arange(rows) - np.repeat(np.cumsum(months) - months, months)
    columns = {
        "tenure_months": (start_tenure[owner] + offset).astype(np.int64),
        "monthly_charges": charges[owner],
        "support_calls_90d": rng.poisson(call_rate[owner]).astype(np.int64),
        "contract_months": contract[owner].astype(np.int64),
        "late_payments_12m": rng.poisson(late_rate[owner]).astype(np.int64),
        "senior": senior[owner],
    }
    logits = sum(weight * columns[name] for name, weight in LOGIT_WEIGHTS.items()) + effect[owner]
    probability = 1.0 / (1.0 + np.exp(-(logits + _calibrated_intercept(logits, churn_rate))))
    churned = (rng.random(rows) < probability).astype(np.int64)

    snapshot = np.datetime64(FIRST_MONTH, "M") + (first_month[owner] + offset).astype("timedelta64[M]")
    frame = pd.DataFrame({
        "customer_id": np.char.add("C", np.char.zfill(owner.astype(str), 6)),
        "month": np.datetime_as_string(snapshot.astype("datetime64[D]"), unit="D"),
        **columns,
        "region": region[owner],
        "churned": churned,
    })
    return frame[list(COLUMNS)], probability


def generate(rows: int, seed: int = 0, churn_rate: float = DEFAULT_CHURN_RATE,
             customer_effect_sd: float = CUSTOMER_EFFECT_SD) -> pd.DataFrame:
    """The table of ``generate_with_truth`` without the truth."""
    return generate_with_truth(rows, seed, churn_rate, customer_effect_sd)[0]


def write(frame: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``out_dir/churn.csv`` with a header and no index; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    frame.to_csv(path, index=False)
    return path


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.churn_data",
                                     description="Write synthetic customer-month churn snapshots to DIR/churn.csv.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--rows", type=int, default=50_000, help="number of customer-month rows (default 50000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--churn-rate", type=float, default=DEFAULT_CHURN_RATE, help="expected share of churned rows")
    args = parser.parse_args(argv)
    try:
        frame = generate(args.rows, args.seed, args.churn_rate)
    except GenerationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = write(frame, args.out)
    print(f"wrote {len(frame)} rows of {frame['customer_id'].nunique()} customers to {path} "
          f"(churn rate {frame['churned'].mean():.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
