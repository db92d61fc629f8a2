"""Lambda entry point: an SQS FIFO batch of model package approval changes in, partial batch failures out.

Each record is parsed, matched to one of the team's use cases and reconciled (`deploy.reconcile`).
Unusable or foreign messages, and any body the parser fails on, are logged once and dropped (no AWS
call): parsing calls nothing, so a retry could only fail the same way. A record whose endpoint is busy, or
whose processing raised, is reported in ``batchItemFailures`` so SQS delivers it again later; after
the queue's maximum receive count it goes to the dead-letter queue, whose alarm notifies the team.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from common.clients import cached_client

from .deploy import log_outcome, reconcile
from .messages import APPROVED, REJECTED, UnusableMessage, parse_message
from .settings import DeploySettings

logger = logging.getLogger(__name__)

_settings: DeploySettings | None = None


def settings() -> DeploySettings:
    global _settings
    if _settings is None:
        _settings = DeploySettings.from_env(os.environ)
    return _settings


def client(service: str) -> Any:
    return cached_client(service)


def process_record(record: dict[str, Any], sagemaker: Any, sns: Any, config: DeploySettings,
                   autoscaling: Any = None) -> bool:
    """Handle one SQS record; True when it is done, False when it must be delivered again."""
    try:
        change = parse_message(record.get("body", ""))
    except UnusableMessage as exc:
        logger.warning("ignored unusable message", extra={"action": "ignored", "reason": str(exc)})
        return True
    except Exception as exc:  # parsing makes no AWS call: a retry would fail the same way
        # `parse_message` should only raise UnusableMessage; whatever else it raises is a bug in it,
        # and retrying would only carry the message to the dead-letter queue and fire its alarm.
        logger.error(
            "ignored message the parser failed on",
            extra={"action": "ignored", "reason": f"parser error {type(exc).__name__}: {str(exc)[:200]}"},
        )
        return True
    target = config.for_group(change.group)
    if target is None:
        logger.warning(
            "ignored message for a group this team does not own",
            extra={"action": "ignored", "group": change.group, "version": change.version},
        )
        return True
    if change.status not in (APPROVED, REJECTED):
        logger.info(
            "ignored status that does not deploy",
            extra={"action": "ignored", "group": change.group, "version": change.version, "status": change.status},
        )
        return True
    outcome = reconcile(sagemaker, sns, config, target, change, autoscaling)
    log_outcome(change, target, outcome)
    return not outcome.retry


def process_batch(records: list[dict[str, Any]], sagemaker: Any, sns: Any, config: DeploySettings,
                  autoscaling: Any = None) -> dict:
    """The SQS partial batch response for `records`.

    FIFO order: once a record fails, it and every later record are returned unprocessed, so that no
    message of a message group overtakes an earlier one.
    """
    failures: list[dict[str, str]] = []
    for index, record in enumerate(records):
        try:
            done = process_record(record, sagemaker, sns, config, autoscaling)
        except Exception:
            logger.exception("deploy failed, message will be retried", extra={"action": "error"})
            done = False
        if not done:
            failures = [{"itemIdentifier": r["messageId"]} for r in records[index:]]
            break
    return {"batchItemFailures": failures}


def handler(event: dict[str, Any], context: Any) -> dict:
    records = event.get("Records", []) if isinstance(event, dict) else []
    return process_batch(records, client("sagemaker"), client("sns"), settings(),
                         autoscaling=client("application-autoscaling"))
