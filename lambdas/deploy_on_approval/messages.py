"""The queue messages the deploy Lambda accepts.

The EventBridge rule's input transformer sends only the stable fields of a "SageMaker Model Package
State Change" event, so that FIFO content-based deduplication drops SageMaker's duplicate events::

    {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
     "group": "mlp-fraud-fraud-detection", "version": 3, "status": "Approved",
     "arn": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/mlp-fraud-fraud-detection/3"}

A whole EventBridge event (with ``detail``) is accepted too, so a message redriven or sent by hand in
the documented event shape works the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
KNOWN_STATUSES = (APPROVED, REJECTED, PENDING)


class UnusableMessage(ValueError):
    """A message that is malformed or not a model package state change; it is dropped, never retried."""


@dataclass(frozen=True)
class ApprovalChange:
    """A version of a model package group changed its approval status."""

    group: str
    version: int
    status: str
    arn: str


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise UnusableMessage(f"field {key!r} is missing")
    return data[key]


def _text(data: dict[str, Any], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str) or not value.strip():
        raise UnusableMessage(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool):
        raise UnusableMessage(f"version must be a positive integer, got {value!r}")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise UnusableMessage(f"version must be a positive integer, got {value!r}")
    return value


def parse_message(body: str) -> ApprovalChange:
    """Parse one SQS message body; raise `UnusableMessage` for anything that is not a usable change."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise UnusableMessage(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UnusableMessage(f"body must be a JSON object, got {type(data).__name__}")

    source = _field(data, "source")
    detail_type = _field(data, "detail-type")
    if source != SOURCE or detail_type != DETAIL_TYPE:
        raise UnusableMessage(f"not a model package state change (source {source!r}, detail-type {detail_type!r})")

    if "detail" in data:
        detail = data["detail"]
        if not isinstance(detail, dict):
            raise UnusableMessage("field 'detail' must be an object")
        fields = {
            "group": detail.get("ModelPackageGroupName"),
            "version": detail.get("ModelPackageVersion"),
            "status": detail.get("ModelApprovalStatus"),
            "arn": detail.get("ModelPackageArn"),
        }
        fields = {k: v for k, v in fields.items() if v is not None}
    else:
        fields = data

    status = _text(fields, "status")
    if status not in KNOWN_STATUSES:
        raise UnusableMessage(f"unknown approval status {status!r}")
    arn = _text(fields, "arn")
    if not arn.startswith("arn:") or ":model-package/" not in arn:
        raise UnusableMessage(f"field 'arn' is not a model package ARN: {arn!r}")
    return ApprovalChange(
        group=_text(fields, "group"),
        version=_version(_field(fields, "version")),
        status=status,
        arn=arn,
    )
