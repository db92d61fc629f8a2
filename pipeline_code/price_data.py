"""Synthetic price-elasticity data: daily demand per product against price and context, with a known signal.

Contract:
- ``generate(rows, seed)`` returns exactly ``rows`` rows and is a pure function of its arguments;
  ``generate_with_truth`` returns the same table and each row's true expected units.
- One row per product and day for ``PRODUCTS`` products from ``FIRST_DATE`` on, sorted by date (then
  product); the last day holds only the first ``rows % PRODUCTS`` products when ``rows`` is not a multiple.
- Columns, in this order: ``date`` (ISO, time), ``product_id`` (key, ``P000``...), the numeric model
  features ``price``, ``base_price``, ``discount_pct``, ``promo`` (0/1), ``day_of_week`` (0 = Monday),
  ``is_holiday`` (0/1), ``competitor_price``, ``temperature_c``, the context column ``store_region``
  (urban/suburban/rural: the bias facet, never a model input) and the target ``units_sold``.

Planted signal (``DEMAND_WEIGHTS``): log(expected units) = product level + product elasticity
* log(price / base_price) + promo lift + weekend and holiday lifts + cross-price effect
* log(competitor_price / base_price) + a small temperature effect. Each product's elasticity is drawn
around ``MEAN_ELASTICITY`` (-1.5, sd ``ELASTICITY_SD``); its level around ``MEAN_LEVEL`` (lower in rural
stores). Units sold are Poisson around the expected units. Later dates are the test period, so the use
case splits ``ordered`` by ``date``.

Runs with numpy and pandas only. CLI: ``python -m pipeline_code.price_data --out DIR [--rows N] [--seed S]``
writes ``DIR/prices.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_code.problem import Facet, Problem

FILE_NAME = "prices.csv"
REGIONS = ("urban", "suburban", "rural")
REGION_WEIGHTS = (0.45, 0.35, 0.2)
FEATURES = ("price", "base_price", "discount_pct", "promo", "day_of_week", "is_holiday", "competitor_price",
            "temperature_c")
COLUMNS = ("date", "product_id") + FEATURES + ("store_region", "units_sold")
PRODUCTS = 40
FIRST_DATE = "2024-01-01"
HOLIDAYS = ("01-01", "05-01", "07-04", "11-28", "12-24", "12-25", "12-26", "12-31")
"""Month-day of the holidays, every year."""
MEAN_ELASTICITY = -1.5
ELASTICITY_SD = 0.3
MEAN_LEVEL = 3.0
"""Mean log expected units of a product at base price on an ordinary weekday (about 20 units)."""
LEVEL_SD = 0.5
RURAL_LEVEL_SHIFT = -0.4
DEMAND_WEIGHTS = {"promo": 0.3, "weekend": 0.25, "is_holiday": 0.4, "competitor": 0.6, "temperature": 0.01}
"""Effects on log expected units: promo, Saturday/Sunday and holiday lifts, the cross-price elasticity on
log(competitor_price / base_price), and per degree Celsius above ``MEAN_TEMPERATURE``."""
MEAN_TEMPERATURE = 12.0
PROMO_SHARE = 0.15
PROMO_DISCOUNTS = (10, 20, 30)
EVERYDAY_DISCOUNTS = (0, 0, 0, 5)
"""Discount in percent off base price, drawn uniformly: on promo days, and on the others."""
PROBLEM = Problem(
    problem_type="regression",
    target="units_sold",
    features=FEATURES,
    time_column="date",
    key_column="product_id",
    context=("store_region",),
    input_layout="table",
    facets=(Facet("store_region", ("rural",)),),
)
"""The price-elasticity problem, as the example config declares it."""


class GenerationError(ValueError):
    """Raised for arguments the generator cannot honour."""


def generate_with_truth(rows: int, seed: int = 0) -> tuple:
    """(table of exactly ``rows`` rows sorted by date, true expected units of each row as a float array)."""
    if rows < 1:
        raise GenerationError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    days = -(-rows // PRODUCTS)
    product = np.tile(np.arange(PRODUCTS), days)[:rows]
    day = np.repeat(np.arange(days), PRODUCTS)[:rows]

    base_price = np.round(rng.uniform(2.0, 40.0, size=PRODUCTS), 2)
    region = rng.choice(np.array(REGIONS), size=PRODUCTS, p=REGION_WEIGHTS)
    level = rng.normal(MEAN_LEVEL, LEVEL_SD, size=PRODUCTS) + RURAL_LEVEL_SHIFT * (region == "rural")
    elasticity = rng.normal(MEAN_ELASTICITY, ELASTICITY_SD, size=PRODUCTS)

    dates = pd.DatetimeIndex(np.datetime64(FIRST_DATE, "D") + day.astype("timedelta64[D]"))
    day_of_week = dates.dayofweek.to_numpy().astype(np.int64)
    is_holiday = np.isin(dates.strftime("%m-%d"), HOLIDAYS).astype(np.int64)
    promo = (rng.random(rows) < PROMO_SHARE).astype(np.int64)
    discount = np.where(promo == 1, rng.choice(PROMO_DISCOUNTS, size=rows),
                        rng.choice(EVERYDAY_DISCOUNTS, size=rows)).astype(np.float64)
    price = np.round(base_price[product] * (1.0 - discount / 100.0) * rng.uniform(0.95, 1.05, size=rows), 2)
    competitor_price = np.round(base_price[product] * rng.uniform(0.85, 1.15, size=rows), 2)
    season = np.sin(2.0 * np.pi * (dates.dayofyear.to_numpy() - 105) / 365.25)
    temperature = np.round(MEAN_TEMPERATURE + 10.0 * season + rng.normal(0.0, 3.0, size=rows), 1)

    log_expected = (
        level[product]
        + elasticity[product] * np.log(price / base_price[product])
        + DEMAND_WEIGHTS["promo"] * promo
        + DEMAND_WEIGHTS["weekend"] * (day_of_week >= 5)
        + DEMAND_WEIGHTS["is_holiday"] * is_holiday
        + DEMAND_WEIGHTS["competitor"] * np.log(competitor_price / base_price[product])
        + DEMAND_WEIGHTS["temperature"] * (temperature - MEAN_TEMPERATURE)
    )
    expected_units = np.exp(log_expected)
    frame = pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"),
        "product_id": np.char.add("P", np.char.zfill(product.astype(str), 3)),
        "price": price,
        "base_price": base_price[product],
        "discount_pct": discount,
        "promo": promo,
        "day_of_week": day_of_week,
        "is_holiday": is_holiday,
        "competitor_price": competitor_price,
        "temperature_c": temperature,
        "store_region": region[product],
        "units_sold": rng.poisson(expected_units).astype(np.int64),
    })
    return frame, expected_units


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """The table of ``generate_with_truth`` without the truth."""
    return generate_with_truth(rows, seed)[0]


def write(frame: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``out_dir/prices.csv`` with a header and no index; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    frame.to_csv(path, index=False)
    return path


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.price_data",
                                     description="Write synthetic product-day demand to DIR/prices.csv.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--rows", type=int, default=50_000, help="number of product-day rows (default 50000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    args = parser.parse_args(argv)
    try:
        frame = generate(args.rows, args.seed)
    except GenerationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = write(frame, args.out)
    print(f"wrote {len(frame)} rows of {frame['product_id'].nunique()} products over "
          f"{frame['date'].nunique()} days to {path} (mean units {frame['units_sold'].mean():.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
