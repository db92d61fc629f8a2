"""Scheduled run (EventBridge): keep the team tag active for cost allocation, publish each team's budget spend.

Environment: ``ACCOUNT_ID``, ``COST_NAMESPACE`` (``<prefix>/Costs``), ``TEAM_BUDGETS`` (JSON list of
``{"team", "budget_name"}``; the platform's budget has team ``platform``), ``ACTIVATE_TAG_KEYS`` (comma-separated
tags to activate; empty: leave cost allocation alone).
Cost Explorer and Budgets are global APIs, called in us-east-1.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from common.clients import standard_config

from . import spend, tag_activation

logger = logging.getLogger()
logger.setLevel(logging.INFO)
GLOBAL_REGION = "us-east-1"


def clients() -> dict[str, Any]:
    import boto3

    config = standard_config()
    return {"ce": boto3.client("ce", region_name=GLOBAL_REGION, config=config),
            "budgets": boto3.client("budgets", region_name=GLOBAL_REGION, config=config),
            "cloudwatch": boto3.client("cloudwatch", config=config)}


def track_costs(environment: dict, ce: Any, budgets: Any, cloudwatch: Any) -> dict:
    """One run; returns what it did (also logged as one line)."""
    summary: dict[str, Any] = {}
    keys = [key for key in environment.get("ACTIVATE_TAG_KEYS", "").split(",") if key]
    if keys:
        summary["tags"] = {key: dict(zip(("state", "detail"), tag_activation.ensure_tag_active(ce, key)))
                           for key in keys}
    teams = [spend.TeamBudget(str(t["team"]), str(t["budget_name"])) for t in json.loads(environment["TEAM_BUDGETS"])]
    spends = [s for s in (spend.read_spend(budgets, environment["ACCOUNT_ID"], t) for t in teams) if s is not None]
    data = spend.metric_data(spends)
    if data:
        spend.publish(cloudwatch, environment["COST_NAMESPACE"], data)
    summary["teams"] = {s.team: {"limit": s.limit, "actual": s.actual, "forecast": s.forecast} for s in spends}
    summary["budgets_missing"] = sorted({t.team for t in teams} - {s.team for s in spends})
    return summary


def handler(event: dict, context: Any) -> dict:
    summary = track_costs(dict(os.environ), **clients())
    logger.info("cost tracking run", extra={"costs": summary})
    return summary
