"""Each team's month-to-date cost and forecast, as its budget has them, as CloudWatch metrics.

AWS Budgets refreshes a budget's ``CalculatedSpend`` about three times a day; the platform dashboard graphs
``MonthToDateCost`` and ``ForecastedCost`` against ``BudgetLimit`` (namespace ``<prefix>/Costs``,
dimension ``Team``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from common import metric_datums

METRIC_ACTUAL = "MonthToDateCost"
METRIC_FORECAST = "ForecastedCost"
METRIC_LIMIT = "BudgetLimit"


@dataclass(frozen=True)
class TeamBudget:
    team: str
    budget_name: str


@dataclass(frozen=True)
class Spend:
    team: str
    limit: float
    actual: float
    forecast: float | None


def _amount(spend: dict | None) -> float | None:
    return float(spend["Amount"]) if spend and spend.get("Amount") not in (None, "") else None


def read_spend(budgets: Any, account: str, team: TeamBudget) -> Spend | None:
    """The budget's numbers, or None when the budget does not exist (not deployed yet, or removed)."""
    try:
        budget = budgets.describe_budget(AccountId=account, BudgetName=team.budget_name)["Budget"]
    except ClientError as error:
        if error.response["Error"].get("Code") == "NotFoundException":
            return None
        raise
    calculated = budget.get("CalculatedSpend") or {}
    return Spend(team.team, _amount(budget.get("BudgetLimit")) or 0.0,
                 _amount(calculated.get("ActualSpend")) or 0.0, _amount(calculated.get("ForecastedSpend")))


def metric_data(spends: list) -> list:
    data = []
    for spend in spends:
        dimensions = [{"Name": "Team", "Value": spend.team}]
        data.append({"MetricName": METRIC_ACTUAL, "Dimensions": dimensions, "Value": spend.actual, "Unit": "None"})
        data.append({"MetricName": METRIC_LIMIT, "Dimensions": dimensions, "Value": spend.limit, "Unit": "None"})
        if spend.forecast is not None:
            data.append({"MetricName": METRIC_FORECAST, "Dimensions": dimensions, "Value": spend.forecast,
                         "Unit": "None"})
    return data


def publish(cloudwatch: Any, namespace: str, data: list) -> list:
    """PutMetricData of ``data`` made valid by ``common.metric_datums`` (at most 1,000 datums a request); returns
    the reasons of the datums left out (a NaN or infinite amount), each also logged."""
    return metric_datums.put_metric_data(cloudwatch, namespace, data)[1]
