"""Read and raise one SageMaker instance quota through the Service Quotas API.

Shared by the custom-resource Lambda (`handler.py`) and `tools/quota_report.py`, so the deploy and
the report always agree. Functions take a boto3 ``service-quotas`` client; nothing here builds one.

The rules:

- A quota is found by its name (``"ml.m5.large for endpoint usage"``) in the AWS default quotas of
  SageMaker, falling back to the account's applied quotas; a name that exists in neither is an error.
- The applied value comes from GetServiceQuota; a quota that was never changed is unknown to it
  (NoSuchResourceException), and then the AWS default value applies.
- An increase is requested only when the applied value is below the desired one, the quota is
  adjustable, no request is open (PENDING or CASE_OPENED), and the most recent request did not ask
  for this same value and end without raising the quota (AWS already answered that one).
- AWS refusing a request is an outcome, not a failure: it is reported in the outcome's status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

SERVICE_CODE = "sagemaker"
PAGE_SIZE = 100
# Throttled calls are retried by botocore ("standard" mode retries ThrottlingException and
# TooManyRequestsException with exponential backoff); max_attempts is the number of retries after the
# first call (botocore turns it into total_max_attempts = max_attempts + 1).
RETRY_CONFIG: dict[str, Any] = {"mode": "standard", "max_attempts": 8}

USAGE_PHRASES: dict[str, str] = {
    "processing": "processing job usage",
    "transform": "transform job usage",
    "training": "training job usage",
    "spot-training": "spot training job usage",
    "endpoint": "endpoint usage",
    "notebook-instance": "notebook instance usage",
}

OPEN_REQUEST_STATUSES = frozenset({"PENDING", "CASE_OPENED"})
# Errors with which AWS turns down a RequestServiceQuotaIncrease call; reported, never raised.
REFUSAL_ERROR_CODES = frozenset(
    {
        "QuotaExceededException",
        "IllegalArgumentException",
        "InvalidResourceStateException",
        "ResourceAlreadyExistsException",
        "DependencyAccessDeniedException",
        "NoSuchResourceException",
    }
)

# Outcome statuses.
SUFFICIENT = "SUFFICIENT"  # applied value already at or above the desired value
REQUESTED = "REQUESTED"  # an increase was requested by this call
REQUEST_OPEN = "REQUEST_OPEN"  # a request is already open; AWS is still reviewing it
NOT_GRANTED = "NOT_GRANTED"  # the last request asked for this value and closed without raising the quota
REQUEST_REFUSED = "REQUEST_REFUSED"  # RequestServiceQuotaIncrease was refused (value above maximum, ...)
NOT_ADJUSTABLE = "NOT_ADJUSTABLE"  # AWS does not allow increases of this quota
BELOW_DESIRED = "BELOW_DESIRED"  # read-only inspection: the next deploy would request an increase

NONE = "none"
# CloudFormation accepts at most 4 KB per custom-resource response; attributes stay well below it.
MAX_MESSAGE_LENGTH = 500


class QuotaNotFoundError(Exception):
    """No SageMaker quota has the name built from the config's instance type and usage."""


def client_config() -> Config:
    """The botocore config every Service Quotas client of the platform uses (retries throttling)."""
    return Config(retries=dict(RETRY_CONFIG))


def quota_name(instance_type: str, usage: str) -> str:
    """SageMaker's quota name for an instance type and usage, e.g. ``ml.m5.large for endpoint usage``."""
    try:
        phrase = USAGE_PHRASES[usage]
    except KeyError:
        allowed = ", ".join(USAGE_PHRASES)
        raise ValueError(f"unknown quota usage {usage!r}; one of: {allowed}") from None
    return f"{instance_type} for {phrase}"


def format_value(value: float | None) -> str:
    """A quota value as CloudFormation and people read it: ``4`` rather than ``4.0``."""
    if value is None:
        return NONE
    return f"{value:g}"


@dataclass(frozen=True)
class QuotaInfo:
    """A quota found by name: its code and whether AWS allows increases."""

    name: str
    code: str
    adjustable: bool


@dataclass(frozen=True)
class QuotaChangeRequest:
    """One entry of the quota's request history."""

    request_id: str
    status: str
    desired_value: float
    created: Any

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REQUEST_STATUSES


@dataclass(frozen=True)
class QuotaState:
    """What the account has for one quota, read without changing anything."""

    info: QuotaInfo
    desired: int
    applied: float
    history: tuple[QuotaChangeRequest, ...]

    @property
    def open_request(self) -> QuotaChangeRequest | None:
        open_requests = [r for r in self.history if r.is_open]
        return max(open_requests, key=_created_key) if open_requests else None

    @property
    def latest_request(self) -> QuotaChangeRequest | None:
        return max(self.history, key=_created_key) if self.history else None


@dataclass(frozen=True)
class QuotaOutcome:
    """The result of bringing one quota towards its desired value; what the custom resource returns."""

    name: str
    code: str
    desired: int
    applied: float
    status: str
    request_id: str = NONE
    request_status: str = NONE
    message: str = ""

    def as_attributes(self) -> dict[str, str]:
        """The custom resource's attributes (``Fn::GetAtt`` names), all strings, none empty."""
        return {
            "QuotaName": self.name,
            "QuotaCode": self.code,
            "DesiredValue": str(self.desired),
            "AppliedValue": format_value(self.applied),
            "RequestId": self.request_id,
            "RequestStatus": self.request_status,
            "Status": self.status,
            "Message": (self.message or self.status)[:MAX_MESSAGE_LENGTH],
        }


def _created_key(request: QuotaChangeRequest) -> Any:
    created = request.created
    return created.timestamp() if hasattr(created, "timestamp") else (created or 0)


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def resolve_quotas(client: Any, names: Iterable[str]) -> dict[str, QuotaInfo]:
    """Find the quotas with these exact names; names that exist nowhere are left out of the result.

    Reads the AWS default quotas of SageMaker (which list every quota, changed or not) and stops as
    soon as every name is found; names still missing are looked up in the account's applied quotas.
    """
    wanted = set(names)
    found: dict[str, QuotaInfo] = {}
    for operation in ("list_aws_default_service_quotas", "list_service_quotas"):
        if not wanted - set(found):
            break
        paginator = client.get_paginator(operation)
        for page in paginator.paginate(ServiceCode=SERVICE_CODE, PaginationConfig={"PageSize": PAGE_SIZE}):
            for quota in page.get("Quotas", []):
                name = quota.get("QuotaName")
                if name in wanted and name not in found:
                    found[name] = QuotaInfo(
                        name=name,
                        code=quota["QuotaCode"],
                        adjustable=bool(quota.get("Adjustable", True)),
                    )
            if not wanted - set(found):
                break
    return found


def resolve_quota(client: Any, name: str) -> QuotaInfo:
    """The quota with this exact name, or QuotaNotFoundError naming it."""
    found = resolve_quotas(client, [name])
    if name not in found:
        raise QuotaNotFoundError(
            f"SageMaker has no quota named {name!r} in this region: check the instance type and usage "
            f"of this entry in the config's 'quotas' (the instance type may not exist or not be offered "
            f"for that usage here)"
        )
    return found[name]


def applied_value(client: Any, code: str) -> float:
    """The value in force in the account; the AWS default when the quota was never changed."""
    try:
        return float(client.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=code)["Quota"]["Value"])
    except ClientError as error:
        if _error_code(error) != "NoSuchResourceException":
            raise
    return float(client.get_aws_default_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=code)["Quota"]["Value"])


def request_history(client: Any, code: str) -> tuple[QuotaChangeRequest, ...]:
    """Every increase request of this quota that Service Quotas still lists, open or closed."""
    paginator = client.get_paginator("list_requested_service_quota_change_history_by_quota")
    requests = []
    for page in paginator.paginate(
        ServiceCode=SERVICE_CODE, QuotaCode=code, PaginationConfig={"PageSize": PAGE_SIZE}
    ):
        for item in page.get("RequestedQuotas", []):
            requests.append(
                QuotaChangeRequest(
                    request_id=item.get("Id", NONE),
                    status=item.get("Status", NONE),
                    desired_value=float(item.get("DesiredValue", 0.0)),
                    created=item.get("Created"),
                )
            )
    return tuple(requests)


def read_state(client: Any, info: QuotaInfo, desired: int) -> QuotaState:
    """Read the applied value and request history of a resolved quota."""
    return QuotaState(
        info=info, desired=desired, applied=applied_value(client, info.code), history=request_history(client, info.code)
    )


def assess(state: QuotaState) -> QuotaOutcome:
    """What the quota's situation is, without acting: the read-only half of `ensure`."""
    base = {"name": state.info.name, "code": state.info.code, "desired": state.desired, "applied": state.applied}
    if state.applied >= state.desired:
        message = f"applied value {format_value(state.applied)} already meets the desired {state.desired}"
        return QuotaOutcome(**base, status=SUFFICIENT, message=message)
    open_request = state.open_request
    if open_request:
        return QuotaOutcome(
            **base,
            status=REQUEST_OPEN,
            request_id=open_request.request_id,
            request_status=open_request.status,
            message=f"request {open_request.request_id} for {format_value(open_request.desired_value)} is "
            f"{open_request.status}; AWS is still reviewing it",
        )
    if not state.info.adjustable:
        return QuotaOutcome(**base, status=NOT_ADJUSTABLE, message="AWS does not allow increases of this quota")
    latest = state.latest_request
    if latest and latest.desired_value == state.desired:
        return QuotaOutcome(
            **base,
            status=NOT_GRANTED,
            request_id=latest.request_id,
            request_status=latest.status,
            message=f"request {latest.request_id} for {state.desired} ended {latest.status} and the applied "
            f"value is still {format_value(state.applied)}; it is not repeated for the same value (change "
            "'desired' or ask AWS Support)",
        )
    message = f"applied value {format_value(state.applied)} is below the desired {state.desired}"
    return QuotaOutcome(**base, status=BELOW_DESIRED, message=message)


def request_increase(client: Any, state: QuotaState) -> QuotaOutcome:
    """Ask for the desired value; AWS turning the call down is an outcome, not an exception."""
    base = {"name": state.info.name, "code": state.info.code, "desired": state.desired, "applied": state.applied}
    try:
        response = client.request_service_quota_increase(
            ServiceCode=SERVICE_CODE, QuotaCode=state.info.code, DesiredValue=float(state.desired)
        )
    except ClientError as error:
        code = _error_code(error)
        if code not in REFUSAL_ERROR_CODES:
            raise
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ResourceAlreadyExistsException":
            # A request opened moments ago (for example by a retried call) is not listed yet.
            return QuotaOutcome(**base, status=REQUEST_OPEN, request_status=code,
                                message=f"AWS reports a request for this quota is already open: {message}".strip())
        logger.warning(
            "quota increase refused",
            extra={"quota_name": state.info.name, "quota_code": state.info.code, "error_code": code},
        )
        return QuotaOutcome(**base, status=REQUEST_REFUSED, request_status=code, message=f"{code}: {message}".strip())
    requested = response["RequestedQuota"]
    logger.info(
        "quota increase requested",
        extra={"quota_name": state.info.name, "quota_code": state.info.code, "request_id": requested.get("Id")},
    )
    return QuotaOutcome(
        **base,
        status=REQUESTED,
        request_id=requested.get("Id", NONE),
        request_status=requested.get("Status", NONE),
        message=f"requested {state.desired} (applied value {format_value(state.applied)})",
    )


def ensure(client: Any, instance_type: str, usage: str, desired: int) -> QuotaOutcome:
    """Bring one quota towards ``desired``: request an increase only when one is needed and none is open."""
    info = resolve_quota(client, quota_name(instance_type, usage))
    state = read_state(client, info, desired)
    outcome = assess(state)
    if outcome.status == BELOW_DESIRED:
        return request_increase(client, state)
    return outcome
