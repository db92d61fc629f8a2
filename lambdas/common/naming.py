"""The one place that builds SageMaker resource names.

Every name matches ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`` (SageMaker's rule for models, endpoint
configs, endpoints and model package groups). A name that had to be changed to fit (invalid
characters replaced, or too long) gets a stable hash of the original parts appended, so two
different inputs never map to the same name.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
HASH_LENGTH = 10
_INVALID = re.compile(r"[^a-zA-Z0-9]+")


def _digest(parts: tuple[str, ...]) -> str:
    raw = "\x1f".join(parts).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:HASH_LENGTH]


def sagemaker_name(*parts: str | int, max_length: int = MAX_LENGTH) -> str:
    """Join ``parts`` with ``-`` into a valid, deterministic SageMaker name of at most ``max_length``.

    Names that are already valid and short enough are returned unchanged, so they stay readable.
    """
    if not parts:
        raise ValueError("sagemaker_name needs at least one part")
    if max_length < HASH_LENGTH + 2:
        raise ValueError(f"max_length must be at least {HASH_LENGTH + 2}, got {max_length}")
    texts = tuple(str(p) for p in parts)
    cleaned = [_INVALID.sub("-", t).strip("-") for t in texts]
    joined = "-".join(c for c in cleaned if c)
    if joined == "-".join(texts) and len(joined) <= max_length and NAME_PATTERN.match(joined):
        return joined
    suffix = _digest(texts)
    head = joined[: max_length - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{suffix}" if head else suffix


def model_package_group_name(prefix: str, team: str, use_case: str) -> str:
    """Registry group of one team's use case, e.g. ``mlp-fraud-fraud-detection``."""
    return sagemaker_name(prefix, team, use_case)


def endpoint_name(prefix: str, team: str, use_case: str) -> str:
    """The one endpoint that serves a group's newest approved version."""
    return sagemaker_name(prefix, team, use_case)


def model_name(prefix: str, team: str, use_case: str, version: int) -> str:
    """The SageMaker Model built from version ``version`` of a group."""
    return sagemaker_name(prefix, team, use_case, f"v{int(version)}")


def endpoint_config_name(prefix: str, team: str, use_case: str, version: int, settings_digest: str) -> str:
    """The endpoint config for one version under one set of endpoint settings."""
    return sagemaker_name(prefix, team, use_case, f"v{int(version)}", settings_digest)


def team_resource_prefix(prefix: str, team: str) -> str:
    """Leading part shared by every SageMaker resource name of a team (for IAM ARN patterns)."""
    return f"{prefix}-{team}-"


MONITORING_SCHEDULE_NAME = "drift-monitor"
"""The one schedule in an endpoint's schedule group (EventBridge Scheduler)."""


MONITORING_PIPELINE_SUFFIX = "--monitor"
"""Use case names have single hyphens only, so no experiment pipeline name ends like this."""


def monitoring_pipeline_name(prefix: str, team: str, use_case: str) -> str:
    """The SageMaker pipeline that monitors a use case's endpoint, e.g. ``mlp-fraud-fraud-detection--monitor``
    (never the name of another use case's experiment pipeline)."""
    return f"{model_package_group_name(prefix, team, use_case)}{MONITORING_PIPELINE_SUFFIX}"


def monitoring_schedule_group(prefix: str, team: str, use_case: str) -> str:
    """The schedule group of a use case's monitoring schedule: the endpoint's name (CloudFormation owns the
    group, so deleting the use case deletes the group and every schedule in it)."""
    return endpoint_name(prefix, team, use_case)


def monitoring_namespace(prefix: str, team: str) -> str:
    """The CloudWatch namespace of a team's monitoring metrics (only the team's roles may publish to it)."""
    return f"{prefix}/{team}/EndpointMonitoring"


REVIEWER_PROFILE_INFIX = "review"
"""Studio profiles of a team's reviewers are ``<team>-review-<user>``; no team user name starts with ``review-``."""


def user_profile_name(team: str, user: str) -> str:
    """A team member's Studio profile, e.g. ``fraud-alice``."""
    return f"{team}-{user}"


def reviewer_profile_name(team: str, user: str) -> str:
    """A reviewer's Studio profile for one team, e.g. ``fraud-review-carol``; it runs as the team's reviewer role."""
    return f"{team}-{REVIEWER_PROFILE_INFIX}-{user}"


def reviewer_role_name(prefix: str, team: str) -> str:
    """The IAM role that approves and rejects a team's model versions, e.g. ``mlp-fraud-model-reviewer``."""
    return f"{prefix}-{team}-model-reviewer"


def studio_user_of(profile: str) -> str | None:
    """The user name behind a platform Studio profile (``fraud-alice`` and ``churn-review-alice`` are both
    ``alice``: team names have no hyphen, member names never start with ``review-``), else None."""
    team, _, user = profile.partition("-")
    if not team or not user:
        return None
    reviewer = f"{REVIEWER_PROFILE_INFIX}-"
    if user.startswith(reviewer):
        user = user[len(reviewer):]
    return user or None
