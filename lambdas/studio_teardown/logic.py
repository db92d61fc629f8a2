"""One pass of tearing down what blocks deleting Studio user profiles or a Studio domain.

SageMaker refuses to delete a user profile while it has apps or owns spaces, a space while it has
apps, and a domain while it has user profiles or spaces. CloudFormation knows none of the apps or
spaces that users start. A teardown pass (`teardown_step`) moves everything one step further and
reports what is still there; the caller repeats it until nothing remains (the Provider framework's
isComplete polling), so no call ever waits.

Scope:

- user-profile scope (a team): the apps of the listed profiles, the spaces they own and those
  spaces' apps. CloudFormation deletes the profiles themselves afterwards.
- domain scope: every app and space of the domain, then any user profile CloudFormation does not
  delete (team stacks delete theirs first). With ``delete_home_efs``, the pass then deletes the
  domain itself with ``RetentionPolicy={"HomeEfsFileSystem": "Delete"}`` (SageMaker removes the
  home EFS volume) and, once the domain is gone, the two NFS security groups SageMaker left in the
  VPC (``security-group-for-inbound-nfs-<domainId>``, ``security-group-for-outbound-nfs-<domainId>``).

An app in status ``Deleted`` is gone; one in ``Deleting`` (and a space or profile in ``Deleting``)
is waited for, never deleted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

RETRY_CONFIG: dict[str, Any] = {"mode": "standard", "max_attempts": 8}
PAGE_SIZE = 100

APP_GONE = "Deleted"
DELETING = "Deleting"
NFS_GROUP_PREFIXES = ("security-group-for-inbound-nfs-", "security-group-for-outbound-nfs-")
EFS_RETENTION_DELETE = {"HomeEfsFileSystem": "Delete"}

# Outcomes of one delete call.
REQUESTED = "requested"
GONE = "gone"
RETRY = "retry"

# Deletes that may fail now and work on a later pass; anything else is raised.
_WAIT_AND_RETRY = frozenset({"ResourceInUse", "DependencyViolation", "ThrottlingException", "RequestLimitExceeded"})
_ALREADY_GONE = frozenset({"ResourceNotFound", "InvalidGroup.NotFound", "InvalidPermission.NotFound"})


def client_config() -> Config:
    """Botocore config of the teardown's clients (standard retries for throttling)."""
    return Config(retries=dict(RETRY_CONFIG))


@dataclass(frozen=True)
class TeardownTarget:
    """What one teardown resource covers.

    ``user_profiles`` None means the whole domain; a tuple (possibly empty) means only those
    profiles' apps and spaces. ``delete_home_efs`` and ``vpc_id`` only apply to the domain scope.
    """

    domain_id: str
    user_profiles: tuple[str, ...] | None = None
    delete_home_efs: bool = False
    vpc_id: str | None = None

    def __post_init__(self) -> None:
        if self.user_profiles is not None and self.delete_home_efs:
            raise ValueError("deleting the home EFS volume needs the domain scope (user_profiles None)")
        if self.delete_home_efs and not self.vpc_id:
            raise ValueError("deleting the home EFS volume needs the domain's VPC id (for its NFS security groups)")

    @property
    def is_domain_scope(self) -> bool:
        return self.user_profiles is None

    def describe(self) -> str:
        if self.is_domain_scope:
            return f"domain {self.domain_id}"
        return f"user profiles {', '.join(self.user_profiles) or '(none)'} of domain {self.domain_id}"


@dataclass
class StepResult:
    """What a pass did and what is still there (human-readable, one entry per resource)."""

    remaining: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.remaining


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "")


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs, PaginationConfig={"PageSize": PAGE_SIZE}):
        items.extend(page.get(key, []))
    return items


def _app_owner(app: dict[str, Any]) -> str:
    if app.get("SpaceName"):
        return f"space {app['SpaceName']}"
    return f"user profile {app.get('UserProfileName', '?')}"


def _app_label(app: dict[str, Any], status: str | None = None) -> str:
    return f"app {app.get('AppType')}/{app.get('AppName')} of {_app_owner(app)} ({status or app.get('Status')})"


def _space_owner(space: dict[str, Any]) -> str | None:
    return (space.get("OwnershipSettingsSummary") or {}).get("OwnerUserProfileName")


def _attempt(result: StepResult, label: str, action: str, call: Any, **kwargs: Any) -> str:
    """Run one delete call: REQUESTED (accepted), GONE (nothing to delete) or RETRY (noted as remaining)."""
    try:
        call(**kwargs)
    except ClientError as error:
        code = _code(error)
        if code in _ALREADY_GONE:
            result.actions.append(f"{label}: already gone")
            return GONE
        if code in _WAIT_AND_RETRY:
            result.remaining.append(f"{label}: {code} ({_message(error)}), retried on the next check")
            return RETRY
        raise
    result.actions.append(f"{action} {label}")
    return REQUESTED


def scoped_apps_and_spaces(sagemaker: Any, target: TeardownTarget) -> tuple[list[dict], list[dict]]:
    """The domain's apps and spaces that the target covers (apps in any status, ``Deleted`` included)."""
    apps = _paginate(sagemaker, "list_apps", "Apps", DomainIdEquals=target.domain_id)
    spaces = _paginate(sagemaker, "list_spaces", "Spaces", DomainIdEquals=target.domain_id)
    if target.is_domain_scope:
        return apps, spaces
    profiles = set(target.user_profiles or ())
    spaces = [s for s in spaces if _space_owner(s) in profiles]
    space_names = {s["SpaceName"] for s in spaces}
    apps = [
        a
        for a in apps
        if (a.get("SpaceName") and a["SpaceName"] in space_names)
        or (not a.get("SpaceName") and a.get("UserProfileName") in profiles)
    ]
    return apps, spaces


def _delete_apps(sagemaker: Any, target: TeardownTarget, apps: list[dict], result: StepResult) -> list[dict]:
    """Delete every live app that is not already being deleted; returns the apps still there."""
    still_there = []
    for app in apps:
        if app.get("Status") == APP_GONE:
            continue
        label = _app_label(app)
        if app.get("Status") == DELETING:
            result.remaining.append(label)
            still_there.append(app)
            continue
        owner = {"SpaceName": app["SpaceName"]} if app.get("SpaceName") else {"UserProfileName": app["UserProfileName"]}
        outcome = _attempt(
            result, label, "deleting", sagemaker.delete_app,
            DomainId=target.domain_id, AppType=app["AppType"], AppName=app["AppName"], **owner,
        )
        if outcome == REQUESTED:
            result.remaining.append(_app_label(app, "delete requested"))
        if outcome != GONE:
            still_there.append(app)
    return still_there


def _delete_spaces(
    sagemaker: Any, target: TeardownTarget, spaces: list[dict], live_apps: list[dict], result: StepResult
) -> None:
    """Delete each space that has no live app left and is not already being deleted."""
    busy = {a["SpaceName"] for a in live_apps if a.get("SpaceName")}
    for space in spaces:
        name = space["SpaceName"]
        label = f"space {name} ({space.get('Status')})"
        if space.get("Status") == DELETING:
            result.remaining.append(label)
        elif name in busy:
            result.remaining.append(f"{label}: waiting for its apps")
        else:
            outcome = _attempt(
                result, label, "deleting", sagemaker.delete_space, DomainId=target.domain_id, SpaceName=name
            )
            if outcome == REQUESTED:
                result.remaining.append(f"space {name} (delete requested)")


def _delete_leftover_profiles(sagemaker: Any, target: TeardownTarget, result: StepResult) -> None:
    """Domain scope: delete profiles that no stack deletes (only once their apps and spaces are gone)."""
    for profile in _paginate(sagemaker, "list_user_profiles", "UserProfiles", DomainIdEquals=target.domain_id):
        name = profile["UserProfileName"]
        label = f"user profile {name} ({profile.get('Status')})"
        if profile.get("Status") == DELETING:
            result.remaining.append(label)
            continue
        outcome = _attempt(
            result, label, "deleting", sagemaker.delete_user_profile, DomainId=target.domain_id, UserProfileName=name
        )
        if outcome == REQUESTED:
            result.remaining.append(f"user profile {name} (delete requested)")


def _delete_domain(sagemaker: Any, target: TeardownTarget, result: StepResult) -> bool:
    """Delete the domain and its home EFS volume; True once DescribeDomain no longer finds it."""
    try:
        domain = sagemaker.describe_domain(DomainId=target.domain_id)
    except ClientError as error:
        if _code(error) == "ResourceNotFound":
            return True
        raise
    status = domain.get("Status")
    label = f"domain {target.domain_id} ({status})"
    if status == DELETING:
        result.remaining.append(label)
        return False
    if status == "Delete_Failed":
        label = f"{label}: {domain.get('FailureReason', 'no reason given')}"
    outcome = _attempt(
        result, label, "deleting (home EFS volume too)", sagemaker.delete_domain,
        DomainId=target.domain_id, RetentionPolicy=dict(EFS_RETENTION_DELETE),
    )
    if outcome == REQUESTED:
        result.remaining.append(f"domain {target.domain_id} (delete requested)")
    return outcome == GONE


def nfs_security_group_names(domain_id: str) -> list[str]:
    """Names of the NFS security groups SageMaker creates for a domain's home EFS volume."""
    return [f"{prefix}{domain_id}" for prefix in NFS_GROUP_PREFIXES]


def _delete_nfs_security_groups(ec2: Any, target: TeardownTarget, result: StepResult) -> None:
    """Revoke the two groups' rules (they reference each other), then delete both."""
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [target.vpc_id]},
            {"Name": "group-name", "Values": nfs_security_group_names(target.domain_id)},
        ]
    ).get("SecurityGroups", [])
    for group in groups:
        label = f"security group {group['GroupId']} ({group.get('GroupName')})"
        if group.get("IpPermissions"):
            _attempt(result, f"{label} inbound rules", "revoking", ec2.revoke_security_group_ingress,
                     GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        if group.get("IpPermissionsEgress"):
            _attempt(result, f"{label} outbound rules", "revoking", ec2.revoke_security_group_egress,
                     GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
    for group in groups:
        label = f"security group {group['GroupId']} ({group.get('GroupName')})"
        _attempt(result, label, "deleted", ec2.delete_security_group, GroupId=group["GroupId"])


def teardown_step(sagemaker: Any, ec2: Any, target: TeardownTarget) -> StepResult:
    """One pass: start every delete that can start now; report what is still there.

    Safe to repeat: what is already being deleted is not deleted again, and "not found" counts as done.
    """
    result = StepResult()
    apps, spaces = scoped_apps_and_spaces(sagemaker, target)
    apps_still_there = _delete_apps(sagemaker, target, apps, result)
    _delete_spaces(sagemaker, target, spaces, apps_still_there, result)
    if not target.is_domain_scope or result.remaining:
        return result
    _delete_leftover_profiles(sagemaker, target, result)
    if not target.delete_home_efs or result.remaining:
        return result
    if _delete_domain(sagemaker, target, result):
        _delete_nfs_security_groups(ec2, target, result)
    return result
