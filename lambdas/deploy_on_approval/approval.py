"""Whether a version's approval may send it live: approved, with a description, by a reviewer who did not build it.

The construct writes ``APPROVAL_RULES`` only when the config requires reviewers (``approval.reviewers_required``)::

    {"reviewer_role": "mlp-fraud-model-reviewer", "users": ["carol"], "role_arns": ["arn:aws:iam::...:role/Risk"]}

`check_approval` reads what ``DescribeModelPackage`` returns: ``LastModifiedBy`` is the approver (the team role
cannot modify a version once registered, only reviewers can), ``CreatedBy`` and the starter of the pipeline
execution named in ``CustomerMetadataProperties.PipelineExecutionArn`` (``DescribePipelineExecution``, when it
is in the version's own account and this function's) are the builders. Two identities are the same person when
they name the same Studio user (`naming.studio_user_of`), the same source identity or the same IAM session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from common import naming
from common.environment import SettingsError

ENV_APPROVAL_RULES = "APPROVAL_RULES"
_ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$")
_VERSION_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:sagemaker:[^:]+:(?P<account>\d{12}):")


@dataclass(frozen=True)
class ApprovalRules:
    reviewer_role: str
    users: frozenset[str]
    role_arns: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ApprovalRules | None":
        raw = env.get(ENV_APPROVAL_RULES)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            rules = cls(str(data["reviewer_role"]), frozenset(str(u) for u in data["users"]),
                        tuple(str(a) for a in data["role_arns"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{ENV_APPROVAL_RULES} is not the JSON object the construct writes: {exc}") from None
        for arn in rules.role_arns:
            if not _ROLE.match(arn):
                raise SettingsError(f"{ENV_APPROVAL_RULES} lists {arn!r}, which is not an IAM role ARN")
        return rules

    def reviewer_roles(self, registry_account: str) -> set[tuple[str, str]]:
        """(account, role name) of every role whose sessions approve as reviewers."""
        roles = {(registry_account, self.reviewer_role)}
        for arn in self.role_arns:
            match = _ROLE.match(arn)
            roles.add((match["account"], match["role"]))
        return roles


@dataclass(frozen=True)
class Verdict:
    """`allowed`, or the rule the approval breaks; `approver` and `description` for the record."""

    allowed: bool
    approver: str
    description: str
    rule: str = ""


def who(context: Mapping[str, Any] | None) -> str:
    """A person for a log line or an alert: the Studio profile, else the source identity, else the IAM ARN."""
    context = context or {}
    identity = context.get("IamIdentity") or {}
    return context.get("UserProfileName") or identity.get("SourceIdentity") or identity.get("Arn") or "unknown"


def identities(context: Mapping[str, Any] | None) -> set[str]:
    """What names the person behind a UserContext: Studio user, source identity, IAM session ARN."""
    context = context or {}
    names = set()
    user = naming.studio_user_of(context.get("UserProfileName") or "")
    if user:
        names.add(f"studio:{user}")
    identity = context.get("IamIdentity") or {}
    if identity.get("SourceIdentity"):
        names.add(f"source:{identity['SourceIdentity']}")
    if identity.get("Arn"):
        names.add(f"iam:{identity['Arn']}")
    return names


def version_account(arn: str) -> str:
    match = _VERSION_ACCOUNT.match(arn)
    return match["account"] if match else ""


def pipeline_starter(sagemaker: Any, package: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Who started the pipeline execution that registered `package`, when it names one of its own account."""
    execution = (package.get("CustomerMetadataProperties") or {}).get("PipelineExecutionArn") or \
        (package.get("MetadataProperties") or {}).get("GeneratedBy") or ""
    if ":pipeline/" not in execution or version_account(execution) != version_account(package["ModelPackageArn"]):
        return None
    try:
        return sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution).get("CreatedBy")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFound":
            return None
        raise


def check_approval(package: Mapping[str, Any], rules: ApprovalRules, starter: Mapping[str, Any] | None = None,
                   ) -> Verdict:
    """Whether the approval of `package` (a DescribeModelPackage answer) may deploy it under `rules`."""
    approver = package.get("LastModifiedBy") or {}
    shown = who(approver)
    description = (package.get("ApprovalDescription") or "").strip()
    session = _ASSUMED_ROLE.match((approver.get("IamIdentity") or {}).get("Arn") or "")
    if session is None:
        return Verdict(False, shown, description, "the approver's IAM identity is not recorded as a role session")
    role = (session["account"], session["role"])
    reviewer_role = (version_account(package["ModelPackageArn"]), rules.reviewer_role)
    if role not in rules.reviewer_roles(reviewer_role[0]):
        return Verdict(False, shown, description,
                       f"approved by {session['role']}, which is not the team's reviewer role nor a listed reviewer role")
    profile = approver.get("UserProfileName")
    if profile and role == reviewer_role and naming.studio_user_of(profile) not in rules.users:
        return Verdict(False, shown, description, f"Studio profile {profile} is not a configured reviewer's")
    if not description:
        return Verdict(False, shown, description, "a reviewer's approval needs an ApprovalDescription")
    builders = identities(package.get("CreatedBy")) | identities(starter)
    shared = identities(approver) & builders
    if shared:
        return Verdict(False, shown, description,
                       f"approved by the person who built it ({sorted(shared)[0].split(':', 1)[1]})")
    return Verdict(True, shown, description)
