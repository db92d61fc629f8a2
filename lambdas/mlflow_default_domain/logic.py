"""Make one team's MLflow App the default MLflow App of a Studio domain, and undo it.

An App is the default of every domain in its ``DefaultDomainIdList`` (UpdateMlflowApp replaces the
whole list). CloudFormation has no property for it, so the ``Custom::MlflowDefaultDomain`` resource
keeps one entry of that list: `add_domain` puts its domain id in, keeping every id already there, and
makes no call when the id is already in; `remove_domain` takes out only its id, and does nothing when
the App is gone or the id is not in the list.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

RETRY_CONFIG: dict[str, Any] = {"mode": "standard", "max_attempts": 8}
NOT_FOUND = "ResourceNotFound"


def client_config() -> Config:
    """Botocore config of the handler's client (standard retries for throttling)."""
    return Config(retries=dict(RETRY_CONFIG))


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def default_domains(sagemaker: Any, app_arn: str) -> list[str] | None:
    """The App's ``DefaultDomainIdList``; None when the App does not exist."""
    try:
        described = sagemaker.describe_mlflow_app(Arn=app_arn)
    except ClientError as error:
        if _error_code(error) == NOT_FOUND:
            return None
        raise
    return list(described.get("DefaultDomainIdList") or [])


def add_domain(sagemaker: Any, app_arn: str, domain_id: str) -> bool:
    """Put ``domain_id`` into the App's default-domain list; True when a call changed the list.

    Raises ``ClientError`` (``ResourceNotFound``) when the App does not exist.
    """
    current = default_domains(sagemaker, app_arn)
    if current is None:
        raise ClientError(
            {"Error": {"Code": NOT_FOUND, "Message": f"MLflow App {app_arn} does not exist"}}, "DescribeMlflowApp"
        )
    if domain_id in current:
        logger.info("domain already a default", extra={"app": app_arn, "domain": domain_id})
        return False
    sagemaker.update_mlflow_app(Arn=app_arn, DefaultDomainIdList=current + [domain_id])
    logger.info("domain added", extra={"app": app_arn, "domain": domain_id, "kept": current})
    return True


def remove_domain(sagemaker: Any, app_arn: str, domain_id: str) -> bool:
    """Take ``domain_id`` out of the App's default-domain list; True when a call changed the list.

    Nothing happens when the App is gone or the id is not in its list.
    """
    current = default_domains(sagemaker, app_arn)
    if current is None or domain_id not in current:
        logger.info("nothing to remove", extra={"app": app_arn, "domain": domain_id, "app_exists": current is not None})
        return False
    remaining = [d for d in current if d != domain_id]
    try:
        sagemaker.update_mlflow_app(Arn=app_arn, DefaultDomainIdList=remaining)
    except ClientError as error:
        if _error_code(error) == NOT_FOUND:
            return False
        raise
    logger.info("domain removed", extra={"app": app_arn, "domain": domain_id, "kept": remaining})
    return True
