"""Lambda entry point: one EventBridge "SageMaker Endpoint State Change" event of the team's endpoints.

An error propagates, so Lambda retries the asynchronous invocation and then sends the event to the
construct's failed-events queue (alarmed).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from .settings import VerifierSettings
from .verify import handle_state_change

logger = logging.getLogger(__name__)

_settings: VerifierSettings | None = None
_clients: dict[str, Any] = {}


def settings() -> VerifierSettings:
    global _settings
    if _settings is None:
        _settings = VerifierSettings.from_env(os.environ)
    return _settings


def client(service: str) -> Any:
    """A boto3 client built on first use and reused across invocations of the same container."""
    if service not in _clients:
        import boto3
        from botocore.config import Config

        _clients[service] = boto3.client(
            service,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=15),
        )
    return _clients[service]


def handler(event: dict[str, Any], context: Any) -> dict:
    report = handle_state_change(client("sagemaker"), client("sns"), settings(), event)
    summary = dataclasses.asdict(report)
    logger.info("verifier %s", report.action, extra=summary)
    return summary
