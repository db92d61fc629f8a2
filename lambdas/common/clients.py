"""boto3 clients for the handlers: built on first use, then reused by later invocations of the same container.

boto3 is imported on the first call, not at import time, so a handler module stays cheap to import.
"""

from __future__ import annotations

from typing import Any

CLIENTS: dict[str, Any] = {}


def standard_config(max_attempts: int = 4) -> Any:
    """Standard-mode retries (throttling included) with short connect and read timeouts."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=5, read_timeout=15)


def cached_client(service: str, config: Any = None) -> Any:
    """The container's client for `service`, created with `config` (default: `standard_config()`) on first use."""
    if service not in CLIENTS:
        import boto3

        CLIENTS[service] = boto3.client(service, config=config or standard_config())
    return CLIENTS[service]
