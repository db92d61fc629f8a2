"""Column names shared by the generator and every step script.

The split step turns the generated tables into one model table; everything after it relies on these names.
"""

from __future__ import annotations

LABEL = "is_fraud"
KEY = "customer_id"
TIME = "timestamp"
TRANSACTION_ID = "transaction_id"

FEATURES = (
    "amount",
    "hour",
    "is_night",
    "away_from_home",
    "customer_age",
    "account_age_days",
)
"""Model inputs, in the order the model sees them (train files, batch-transform input, Clarify)."""

CONTEXT = ("home_state", "transaction_state")
"""Columns kept in the test file for bias analysis but never sent to the model."""

NIGHT_HOURS = frozenset((22, 23, 0, 1, 2, 3, 4, 5))
