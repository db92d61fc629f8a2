"""Row-wise feature derivation: joins each transaction with its customer.

Contract: every derived value depends on one transaction row and its customer only, never on other rows,
so deriving features before the split leaks nothing between splits. Runs in the scikit-learn container.
"""

from __future__ import annotations

import pandas as pd

from pipeline_code.columns import CONTEXT, FEATURES, KEY, LABEL, NIGHT_HOURS, TIME

CUSTOMER_COLUMNS = (KEY, "home_state", "customer_age", "account_age_days")
TRANSACTION_COLUMNS = (KEY, TIME, "amount", "transaction_state", "hour", LABEL)


class FeatureError(ValueError):
    """Raised when the input tables lack a column or a transaction has no customer."""


def _require(frame: pd.DataFrame, columns: tuple, table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureError(f"{table} is missing column(s) {missing}; it has {list(frame.columns)}")


def build_model_table(transactions: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction, in input order: key, time, features, context columns and label."""
    _require(transactions, TRANSACTION_COLUMNS, "transactions")
    _require(customers, CUSTOMER_COLUMNS, "customers")
    if customers[KEY].duplicated().any():
        raise FeatureError(f"customers has duplicate {KEY} values")
    joined = transactions.merge(customers[list(CUSTOMER_COLUMNS)], on=KEY, how="left", sort=False)
    unknown = joined["home_state"].isna()
    if unknown.any():
        examples = joined.loc[unknown, KEY].head(3).tolist()
        raise FeatureError(f"{int(unknown.sum())} transaction(s) have no customer, e.g. {KEY} {examples}")
    joined["is_night"] = joined["hour"].isin(sorted(NIGHT_HOURS)).astype("int64")
    joined["away_from_home"] = (joined["transaction_state"] != joined["home_state"]).astype("int64")
    columns = [KEY, TIME] + list(FEATURES) + list(CONTEXT) + [LABEL]
    return joined[columns].reset_index(drop=True)
