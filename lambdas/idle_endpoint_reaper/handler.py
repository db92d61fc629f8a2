"""Lambda entry point of the idle endpoint reaper, invoked by a schedule.

Event: the scheduled EventBridge event (its content is ignored), or for a manual preview
``{"dry_run": true}``, which forces a dry run for every team. Any other value of ``dry_run`` is ignored:
an invocation can make a run safer, never more destructive than the settings allow.

Environment: see ``settings.ENV_*`` (prefix, idle window, grace period, dry run, cap, team overrides)
and ``ALERT_TOPIC_ARN``, the topic that receives the run's one summary.

Returns the run's counts and the names acted on.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config
from idle_endpoint_reaper import pricing, report, settings
from idle_endpoint_reaper.reaper import Clients, reap

logger = logging.getLogger()
logger.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def build_clients() -> Clients:
    """Clients for the function's own region, with retries suited to throttled list calls."""
    return Clients(
        sagemaker=boto3.client("sagemaker", config=CLIENT_CONFIG),
        cloudwatch=boto3.client("cloudwatch", config=CLIENT_CONFIG),
        autoscaling=boto3.client("application-autoscaling", config=CLIENT_CONFIG),
        ssm=boto3.client("ssm", config=CLIENT_CONFIG),
        scheduler=boto3.client("scheduler", config=CLIENT_CONFIG),
        pricing=boto3.client("pricing", region_name=pricing.PRICING_REGION, config=CLIENT_CONFIG),
        region=boto3.session.Session().region_name or "",
    )


def forces_dry_run(event: Any) -> bool:
    """True when the event asks for a preview (``{"dry_run": true}``)."""
    return isinstance(event, dict) and event.get("dry_run") is True


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = settings.from_environment(os.environ)
    topic_arn = os.environ[settings.ENV_TOPIC_ARN]
    run = reap(build_clients(), config, datetime.now(timezone.utc), force_dry_run=forces_dry_run(event))
    result = run.as_result()
    logger.info("reaper run finished", extra={"reaper_run": result})
    report.publish(boto3.client("sns", config=CLIENT_CONFIG), topic_arn, run)
    return result
