"""Lambda entry point: one EventBridge "SageMaker Endpoint State Change" event of the team's endpoints.

An error propagates, so Lambda retries the asynchronous invocation and then sends the event to the
construct's failed-events queue (alarmed).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from common.clients import cached_client

from .settings import VerifierSettings
from .verify import handle_state_change

logger = logging.getLogger(__name__)

_settings: VerifierSettings | None = None


def settings() -> VerifierSettings:
    global _settings
    if _settings is None:
        _settings = VerifierSettings.from_env(os.environ)
    return _settings


def client(service: str) -> Any:
    return cached_client(service)


def handler(event: dict[str, Any], context: Any) -> dict:
    report = handle_state_change(
        client("sagemaker"), client("sns"), settings(), event, autoscaling=client("application-autoscaling"),
        scheduler=client("scheduler"),
    )
    summary = dataclasses.asdict(report)
    logger.info("verifier %s", report.action, extra=summary)
    return summary
