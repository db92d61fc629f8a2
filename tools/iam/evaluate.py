"""IAM policy evaluation for offline proofs: does a set of statements allow one request?

Implements what the platform's policies use, with IAM's documented semantics:
- ``Action``/``NotAction`` (case-insensitive, ``*`` and ``?`` wildcards), ``Resource``/``NotResource``
  (a six-segment ARN pattern matches segment by segment, a shorter one's last wildcard covers the rest),
  ``Principal``/``NotPrincipal`` for resource policies (``*``, ``AWS`` ARN, ``Service``; an account
  principal delegates to the identity policies of that account's principals);
- explicit ``Deny`` wins over any ``Allow``; nothing allowed is an implicit deny;
- condition operators ``String*``, ``Arn*``, ``Bool``, ``Null``, ``Numeric*``, with ``...IfExists``
  and the ``ForAllValues:``/``ForAnyValue:`` set prefixes; a key missing from the request context
  makes a positive operator false and a negated one (``StringNotEquals``, ``ArnNotLike``...) true, as
  IAM does. Context keys are case-insensitive.

``evaluate(statements, request)`` evaluates one policy set (for example a role's identity policies);
``evaluate_access`` joins the identity policies and the resource's policy the way IAM does, for a
principal of the resource's account and (through ``evaluate_cross_account``) for one of another account,
with the KMS rule that a key policy must admit the caller.

Cross-account evaluation, as AWS documents it:
- IAM user guide, "Cross-account policy evaluation logic"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html):
  the resource-based policy of the trusting account must name the principal (an account, or a role,
  user or session of it) and the principal's identity-based policy must allow the access as well; an
  explicit deny in any policy wins. Within one account, by contrast, an allow of either side suffices
  ("Policy evaluation for requests within a single account",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html).
- IAM user guide, "AWS JSON policy elements: Principal"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html): an account
  principal (``123456789012`` or ``arn:aws:iam::123456789012:root``, both alike) delegates to the
  account, whose own policies then grant it to its identities; it does not mean only the root user.
- KMS developer guide, "Allowing users in other accounts to use a KMS key"
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html): the
  key policy must give the external account (or its users and roles) permission, and the external
  account's IAM policies must delegate it to its users and roles; neither alone is sufficient. That page
  also says cross-account use works only for the operations the "Cross-account use" column of "AWS KMS
  permissions" lists; that list is not modelled here.
- An action the Service Authorization Reference authorizes on no resource type (resource ``*``, e.g.
  ``sagemaker:ListModelPackageGroups``, ``kms:ListKeys``) has no resource and no resource policy: it acts
  in the caller's own account, so a request on ``*`` is same-account by definition and its identity
  policies alone decide.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tools.iam.reference import key_in_request
from tools.iam.template import describe

DEFAULT_CONTEXT = {"aws:SecureTransport": "true"}


@dataclass
class Request:
    """One authorization request: action, resource ARN (or ``*``), context keys, and who asks."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    principal_arn: str | None = None
    principal_service: str | None = None
    principal_account: str | None = None

    def context_value(self, key: str) -> Any:
        """A context key as IAM sets it: the given context over the keys every request carries, and None
        for a key the Service Authorization Reference does not list for the action or its resource type
        (`tools.iam.reference.key_in_request`): AWS never sets it, whatever the call's parameters say."""
        if not key_in_request(self.action, self.resource, key):
            return None
        implied: dict[str, Any] = {"aws:PrincipalIsAWSService": "true" if self.principal_service else "false"}
        if self.principal_arn:
            implied["aws:PrincipalArn"] = self.principal_arn
            implied["aws:PrincipalAccount"] = _account_of(self.principal_arn)
        merged = {**DEFAULT_CONTEXT, **implied, **self.context}
        for name, value in merged.items():
            if name.lower() == key.lower():
                return value
        return None

    def __str__(self) -> str:
        who = self.principal_service or self.principal_arn or "caller"
        return f"{who} {self.action} on {self.resource}"


@dataclass
class Decision:
    allowed: bool
    allows: list[dict[str, Any]]
    denies: list[dict[str, Any]]

    def explain(self) -> str:
        if self.denies:
            return "explicitly denied by " + ", ".join(describe(s) for s in self.denies)
        if self.allows:
            return "allowed by " + ", ".join(describe(s) for s in self.allows)
        return "no statement allows it (implicit deny)"


def evaluate(statements: list[dict[str, Any]], request: Request, *, resource_policy: bool = False) -> Decision:
    """The decision of one policy set; `resource_policy` makes ``Principal`` count."""
    allows, denies = [], []
    for statement in statements:
        if statement_applies(statement, request, resource_policy=resource_policy):
            (denies if statement.get("Effect") == "Deny" else allows).append(statement)
    return Decision(allowed=bool(allows) and not denies, allows=allows, denies=denies)


class ResourceAccountUnknown(ValueError):
    """A cross-account decision needs the resource's account, and the request's resource ARN has none."""


def principal_account(request: Request) -> str | None:
    """The account of the request's principal (`principal_account`, else its ARN's); None for a service."""
    return request.principal_account or _account_of(request.principal_arn)


def resource_account_of(request: Request, given: str | None = None) -> str | None:
    """The account owning the request's resource: `given`, else the ARN's account segment; None for ``*``
    and for an ARN without one (S3 buckets and objects)."""
    if request.resource == "*":
        return None
    return given or _account_of(request.resource) or None


def evaluate_access(
    identity: list[dict[str, Any]],
    resource: list[dict[str, Any]],
    request: Request,
    *,
    key_policy: bool = False,
    resource_account: str | None = None,
) -> Decision:
    """IAM's decision joining the caller's identity policies and the resource's policy.

    The resource's account is `resource_account`, else its ARN's. When it differs from the principal's
    account the request is cross-account (`evaluate_cross_account`). Otherwise (same account, a request on
    ``*``, a service principal, or an ARN without account such as S3's with no `resource_account`) it is
    judged as within one account: any explicit Deny of either side wins; then an Allow of either side
    suffices. For a KMS key (`key_policy`), the key policy must allow the request itself, or allow the
    account's root principal (which delegates to IAM policies) and the identity policy must allow it.
    """
    owner = resource_account_of(request, resource_account)
    caller = principal_account(request)
    if owner is not None and caller is not None and owner != caller:
        return evaluate_cross_account(identity, resource, request, key_policy=key_policy, resource_account=owner)
    ident = evaluate(identity, request)
    res = evaluate(resource, request, resource_policy=True)
    denies = ident.denies + res.denies
    if key_policy:
        account = request.principal_account or _account_of(request.principal_arn)
        root = Request(
            request.action,
            request.resource,
            request.context,
            principal_arn=f"arn:aws:iam::{account}:root" if account else None,
        )
        delegated = [s for s in resource if statement_applies(s, root, resource_policy=True, root_only=True)]
        allowed = bool(res.allows) or (bool(delegated) and bool(ident.allows))
        return Decision(allowed=allowed and not denies, allows=res.allows + ident.allows, denies=denies)
    allows = ident.allows + res.allows
    return Decision(allowed=bool(allows) and not denies, allows=allows, denies=denies)


def evaluate_cross_account(
    identity: list[dict[str, Any]],
    resource: list[dict[str, Any]],
    request: Request,
    *,
    key_policy: bool = False,
    resource_account: str | None = None,
) -> Decision:
    """Access of a principal to a resource of another account: both sides must allow, a Deny of either wins.

    The resource's policy (for a KMS key, its key policy; `key_policy` changes nothing else here, the rule
    is the same) admits the caller by naming its ARN, its account (delegation to that account's identity
    policies) or ``*``; a Deny of the resource's policy naming the caller, its account or ``*`` applies to
    it. A request on ``*`` is never cross-account: it is judged by the identity policies alone.
    Raises `ResourceAccountUnknown` when the resource's account is neither given nor in its ARN (S3), and
    ValueError when the caller's account is unknown or the same as the resource's.
    """
    if request.resource == "*":
        return evaluate(identity, request)
    owner = resource_account_of(request, resource_account)
    if owner is None:
        raise ResourceAccountUnknown(
            f"{request}: the resource ARN carries no account (S3 bucket and object ARNs never do); pass "
            "resource_account= to decide whether its principal is of another account"
        )
    caller = principal_account(request)
    if caller is None or caller == owner:
        raise ValueError(f"{request}: not a cross-account request (principal account {caller}, resource account {owner})")
    ident = evaluate(identity, request)
    res_allows, res_denies = [], []
    for statement in resource:
        if statement_applies(statement, request, resource_policy=True, account_admits=True):
            (res_denies if statement.get("Effect") == "Deny" else res_allows).append(statement)
    denies = ident.denies + res_denies
    allowed = bool(ident.allows) and bool(res_allows) and not denies
    return Decision(allowed=allowed, allows=res_allows + ident.allows, denies=denies)


def statement_applies(
    statement: dict[str, Any],
    request: Request,
    *,
    resource_policy: bool = False,
    root_only: bool = False,
    account_admits: bool = False,
) -> bool:
    """Whether `statement` covers `request`. In a resource policy (`resource_policy`) its ``Principal``
    must match: `root_only` ignores ``*`` principals, `account_admits` lets an account principal match
    every principal of that account (the cross-account reading of delegation). ``NotPrincipal`` exempts
    only what it names, an account principal only the account's root."""
    if "Action" in statement and not _any_action(statement["Action"], request.action):
        return False
    if "NotAction" in statement and _any_action(statement["NotAction"], request.action):
        return False
    if "Resource" in statement and not _any_resource(statement["Resource"], request.resource):
        return False
    if "NotResource" in statement and _any_resource(statement["NotResource"], request.resource):
        return False
    if resource_policy:
        if "Principal" in statement and not _principal_matches(
            statement["Principal"], request, root_only=root_only, account_admits=account_admits
        ):
            return False
        if "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], request):
            return False
    return conditions_hold(statement.get("Condition", {}), request)


# --- actions, resources, principals ------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=65536)
def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _any_action(patterns: Any, action: str) -> bool:
    return any(action_matches(p, action) for p in _as_list(patterns))


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM ARN matching: segment by segment for a six-segment pattern (the last segment takes anything its
    wildcards allow); a shorter pattern such as ``arn:aws:sns:*`` is one glob over the whole ARN."""
    if pattern == "*":
        return True
    if resource == "*":
        return False
    pattern_parts = pattern.split(":", 5)
    resource_parts = resource.split(":", 5)
    if len(pattern_parts) != len(resource_parts):
        return len(pattern_parts) < 6 and _glob(pattern, resource)
    return all(_glob(p, r) for p, r in zip(pattern_parts, resource_parts))


def _any_resource(patterns: Any, resource: str) -> bool:
    return any(resource_matches(p, resource) for p in _as_list(patterns))


def _glob(pattern: str, text: str) -> bool:
    return _glob_regex(pattern).fullmatch(text) is not None


@lru_cache(maxsize=65536)
def _glob_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _account_of(arn: str | None) -> str | None:
    if not arn:
        return None
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else None


def _principal_matches(principal: Any, request: Request, *, root_only: bool = False, account_admits: bool = False) -> bool:
    if principal == "*":
        return not root_only
    if not isinstance(principal, dict):
        return False
    for kind, values in principal.items():
        for value in _as_list(values):
            if kind == "AWS":
                if value == "*" and not root_only:
                    return True
                if request.principal_arn is None:
                    continue
                if value == request.principal_arn:
                    return True
                # An account principal names the account itself: to a role of that account it grants
                # nothing directly, it lets the role's identity policies decide (see evaluate_access).
                account = _account_of(request.principal_arn)
                if value in (account, f"arn:aws:iam::{account}:root") and (
                    account_admits or request.principal_arn.endswith(":root")
                ):
                    return True
            elif kind == "Service" and request.principal_service == value:
                return True
    return False


# --- conditions -------------------------------------------------------------------------------------

_NEGATED = ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
            "NumericNotEquals")


def conditions_hold(condition: dict[str, Any], request: Request) -> bool:
    """Every operator of the block holds (AND); within one key, any listed value matches (OR)."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            if not _operator_holds(operator, key, _as_list(expected), request):
                return False
    return True


def _operator_holds(operator: str, key: str, expected: list, request: Request) -> bool:
    set_prefix = None
    if ":" in operator:
        set_prefix, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    actual = request.context_value(key)
    if base == "Null":
        wants_missing = str(expected[0]).lower() == "true"
        return (actual is None) == wants_missing
    if actual is None:
        if set_prefix == "ForAllValues":
            return True
        return if_exists or base in _NEGATED
    values = [str(v) if not isinstance(v, bool) else str(v).lower() for v in _as_list(actual)]
    negated = base in _NEGATED
    positive = base.replace("Not", "", 1) if negated else base

    def one(value: str) -> bool:
        return any(_compare(positive, value, str(e) if not isinstance(e, bool) else str(e).lower()) for e in expected)

    if set_prefix == "ForAllValues":
        matched = all(one(v) for v in values)
        return (not any(one(v) for v in values)) if negated else matched
    if set_prefix == "ForAnyValue":
        return any(not one(v) for v in values) if negated else any(one(v) for v in values)
    result = any(one(v) for v in values)
    return not result if negated else result


def _compare(operator: str, actual: str, expected: str) -> bool:
    if operator == "StringEquals":
        return actual == expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if operator == "StringLike":
        return _glob(expected, actual)
    if operator in ("ArnEquals", "ArnLike"):
        return resource_matches(expected, actual)
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {
            "NumericEquals": a == e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[operator]
    raise ValueError(f"condition operator {operator} is not supported by this evaluator")
