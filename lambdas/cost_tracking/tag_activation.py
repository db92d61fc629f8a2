"""Keep the team tag active for cost allocation (Cost Explorer), idempotently.

CloudFormation has no resource for it; the Cost Explorer API has ``UpdateCostAllocationTagsStatus``. Cost
Explorer knows a tag key only after billing data with it arrived (up to 24 hours after the first tagged
resource), so the first runs after a new platform may find the key unknown: that is reported as
``pending``, and the next scheduled run tries again. Only a payer (management) account, or an account
outside an organization, may activate tags; a member account is refused and reported as ``refused``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

ACTIVE, ACTIVATED, PENDING, REFUSED = "active", "activated", "pending", "refused"


def tag_status(ce: Any, key: str) -> str | None:
    """``Active``, ``Inactive``, or None when Cost Explorer does not know the key yet."""
    found = ce.list_cost_allocation_tags(TagKeys=[key], Type="UserDefined")["CostAllocationTags"]
    return found[0]["Status"] if found else None


def ensure_tag_active(ce: Any, key: str) -> tuple[str, str]:
    """(state, detail): ``active`` (nothing to do), ``activated``, ``pending`` (not known yet) or ``refused``."""
    try:
        status = tag_status(ce, key)
    except ClientError as error:
        return REFUSED, f"ListCostAllocationTags refused: {error.response['Error'].get('Code')}"
    if status == "Active":
        return ACTIVE, f"{key} is active for cost allocation"
    if status is None:
        return PENDING, f"Cost Explorer does not know {key} yet (billing data with the tag takes up to 24 h)"
    try:
        response = ce.update_cost_allocation_tags_status(CostAllocationTagsStatus=[{"TagKey": key, "Status": "Active"}])
    except ClientError as error:
        code = error.response["Error"].get("Code")
        return REFUSED, (f"UpdateCostAllocationTagsStatus refused ({code}): only the payer account may activate "
                         f"{key}; activate it there (docs/costs.md) and set cost_allocation.activate_tag: false")
    errors = response.get("Errors") or []
    if errors:
        return PENDING, f"{key} not activated yet: {errors[0].get('Code')} {errors[0].get('Message', '')}".strip()
    return ACTIVATED, f"{key} activated for cost allocation"
