"""The queue messages the deploy Lambda accepts.

The EventBridge rule's input transformer sends only the stable fields of a "SageMaker Model Package
State Change" event, so that FIFO content-based deduplication drops SageMaker's duplicate events::

    {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
     "group": "mlp-fraud-fraud-detection", "version": 3, "status": "Approved",
     "arn": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/mlp-fraud-fraud-detection/3"}

A whole EventBridge event (with ``detail``) is accepted too, so a message redriven or sent by hand in
the documented event shape works the same way.

`parse_message` either returns a valid `ApprovalChange` or raises `UnusableMessage`, whatever the body:
no other exception escapes it (a property test checks this), so a body that cannot become a change is
dropped, never retried into the dead-letter queue.
"""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass
from typing import Any

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
KNOWN_STATUSES = (APPROVED, REJECTED, PENDING)

# EventBridge's own limit on the size of an event: any event the rule could have delivered fits.
MAX_BODY_CHARS = 256 * 1024
# ModelPackageVersion is an API "integer" (a signed 32-bit integer in the service model's Smithy types).
MAX_VERSION = 2**31 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,10}")

_shown = reprlib.Repr()
_shown.maxstring = 80
_shown.maxother = 80


class UnusableMessage(ValueError):
    """A message that is malformed or not a model package state change; it is dropped, never retried."""


@dataclass(frozen=True)
class ApprovalChange:
    """A version of a model package group changed its approval status."""

    group: str
    version: int
    status: str
    arn: str


def _show(value: Any) -> str:
    """`value` for a log line: bounded in length and in nesting (a deep value cannot recurse here)."""
    return _shown.repr(value)


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise UnusableMessage(f"field {key!r} is missing")
    return data[key]


def _text(data: dict[str, Any], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str) or not value.strip():
        raise UnusableMessage(f"field {key!r} must be a non-empty string, got {_show(value)}")
    return value


def _version(value: Any) -> int:
    """A version from a JSON integer or a string of ASCII digits, between 1 and `MAX_VERSION`.

    Not ``str.isdigit()``: it is true for digits ``int()`` refuses, such as ``"²"``.
    """
    if isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        value = int(value)
    if type(value) is not int or not 1 <= value <= MAX_VERSION:  # type(): bool is an int subclass
        raise UnusableMessage(f"version must be an integer from 1 to {MAX_VERSION}, got {_show(value)}")
    return value


def parse_message(body: str) -> ApprovalChange:
    """Parse one SQS message body; raise `UnusableMessage` for anything that is not a usable change."""
    if not isinstance(body, str):
        raise UnusableMessage(f"body must be a string, got {type(body).__name__}")
    if len(body) > MAX_BODY_CHARS:
        raise UnusableMessage(f"body has {len(body)} characters, more than the {MAX_BODY_CHARS} an event can have")
    try:
        data = json.loads(body)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise UnusableMessage(f"body is not JSON: {_show(str(exc))}") from None
    if not isinstance(data, dict):
        raise UnusableMessage(f"body must be a JSON object, got {type(data).__name__}")

    source = _field(data, "source")
    detail_type = _field(data, "detail-type")
    if source != SOURCE or detail_type != DETAIL_TYPE:
        raise UnusableMessage(
            f"not a model package state change (source {_show(source)}, detail-type {_show(detail_type)})"
        )

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
        raise UnusableMessage(f"unknown approval status {_show(status)}")
    arn = _text(fields, "arn")
    if not arn.startswith("arn:") or ":model-package/" not in arn:
        raise UnusableMessage(f"field 'arn' is not a model package ARN: {_show(arn)}")
    return ApprovalChange(
        group=_text(fields, "group"),
        version=_version(_field(fields, "version")),
        status=status,
        arn=arn,
    )
