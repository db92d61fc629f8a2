"""The checks that keep an endpoint, before any metric is read. Pure functions of tags, state and time."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from common import tags
from idle_endpoint_reaper.inventory import IN_SERVICE, ManagedEndpoint
from idle_endpoint_reaper.settings import TeamPolicy


def opt_out_reason(endpoint_tags: dict[str, str], now: datetime) -> str | None:
    """Why the endpoint's own tags keep it, or ``None`` when they do not.

    ``mlops:keep-alive`` = ``true`` (any case) keeps it for good; ``mlops:keep-until`` keeps it while the
    ISO date (kept through that whole day, UTC) or ISO date-time lies in the future. A keep-until value
    that is not ISO keeps the endpoint too: a typo must not cost someone their endpoint.
    """
    if endpoint_tags.get(tags.KEEP_ALIVE, "").strip().lower() == "true":
        return f"opted out: {tags.KEEP_ALIVE}=true"
    raw = endpoint_tags.get(tags.KEEP_UNTIL)
    if raw is None:
        return None
    until = _parse_keep_until(raw.strip())
    if until is None:
        return f"opted out: {tags.KEEP_UNTIL}={raw!r} is not an ISO date (kept to be safe)"
    if now < until:
        return f"opted out: {tags.KEEP_UNTIL}={raw}"
    return None


def _parse_keep_until(raw: str) -> datetime | None:
    """The first moment the tag no longer protects the endpoint."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is not None:
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def keep_reason(endpoint: ManagedEndpoint, policy: TeamPolicy, prefix: str, now: datetime) -> str | None:
    """Why ``endpoint`` is kept without looking at its traffic, or ``None`` if its traffic decides.

    Checked in this order: name inside the platform prefix, team exemption, opt-out tags, serverless,
    known production variants (their Invocations decide), status InService (as ListEndpoints reports
    it), last create/update older than the grace period.
    """
    if not endpoint.name.startswith(f"{prefix}-"):
        return f"name outside the platform prefix '{prefix}-'"
    if policy.exempt:
        return f"team {endpoint.team!r} is exempt"
    opted_out = opt_out_reason(endpoint.tags, now)
    if opted_out:
        return opted_out
    if endpoint.serverless:
        return "serverless endpoint (costs nothing when idle)"
    if not endpoint.variants:
        return "no production variants listed, so its traffic cannot be read"
    if endpoint.status is None or endpoint.last_modified_time is None:
        return "not returned by ListEndpoints (deleted or renamed since it was indexed)"
    if endpoint.status != IN_SERVICE:
        return f"status {endpoint.status}"
    age = now - endpoint.last_modified_time
    if age < timedelta(hours=policy.grace_period_hours):
        hours = age.total_seconds() / 3600
        return f"within grace period: created or updated {hours:.1f}h ago (grace {policy.grace_period_hours}h)"
    return None
