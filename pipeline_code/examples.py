"""The example use cases' synthetic data, by use-case name, as the files the pipeline reads.

``tables(name, rows, seed)`` returns ``{file name: CSV text}`` for the use case's input folder:
- ``fraud-detection``: ``customers.csv`` and ``transactions.csv`` (input layout transactions_and_customers);
- ``churn-propensity``: ``churn.csv``, customer-month snapshots (by_key split on ``customer_id``);
- ``price-elasticity``: ``prices.csv``, product-day demand (ordered split on ``date``).
"""

from __future__ import annotations

import io

EXAMPLES = ("fraud-detection", "churn-propensity", "price-elasticity")


def _csv(frame, **options) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, **options)
    return buffer.getvalue()


def tables(name: str, rows: int, seed: int = 0) -> dict:
    """The input files of example ``name`` with about ``rows`` model rows; raises ``KeyError`` for other names."""
    if name == "fraud-detection":
        from pipeline_code import generate

        customers, transactions = generate.generate(rows, seed=seed)
        return {
            "customers.csv": _csv(customers),
            "transactions.csv": _csv(transactions, date_format="%Y-%m-%dT%H:%M:%S"),
        }
    if name == "churn-propensity":
        from pipeline_code import churn_data

        return {"churn.csv": _csv(churn_data.generate(rows, seed=seed))}
    if name == "price-elasticity":
        from pipeline_code import price_data

        return {"prices.csv": _csv(price_data.generate(rows, seed=seed))}
    raise KeyError(f"no example data for use case {name!r}; examples: {', '.join(EXAMPLES)}")
