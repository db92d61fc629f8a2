"""The handlers' shared boto3 clients: short timeouts and standard retries, built once per container."""

from __future__ import annotations

from common import clients


def test_a_handler_client_gives_up_on_a_silent_connection_and_retries_throttling(monkeypatch):
    monkeypatch.setattr(clients, "CLIENTS", {})
    client = clients.cached_client("sagemaker")

    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 15)
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}, "the first call and 4 retries"
    assert clients.cached_client("sagemaker") is client


def test_a_client_built_with_its_own_config_keeps_it(monkeypatch):
    monkeypatch.setattr(clients, "CLIENTS", {})
    client = clients.cached_client("ssm", clients.standard_config(max_attempts=8))

    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}
