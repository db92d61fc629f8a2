"""The platform configuration: one YAML file, validated by pydantic before any construct is built.

`load_config(path)` returns a `PlatformConfig` or raises `ConfigError`, whose message names every
bad field by its path (``teams[0].users[1]``), the bad value and what is allowed, all problems at once.

Every single-field rule is declared once, with its friendly message and the JSON-schema keywords that say
the same (`_Rule`), so that `config/platform.schema.json` rejects what the loader rejects. Rules that
involve several fields (`LOADER_ONLY_RULES`) are checked by each section's `_problems`, both on a
validated config and, when some fields are bad, on the raw data, so they are reported in the same run.
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import ipaddress
import re
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema, to_jsonable_python

from lambdas.common import naming
from pipeline_code import definition as definition_module
from pipeline_code import problem as problem_module
from stacks.regions import SUPPORTED_REGIONS

# Longest `<prefix>-<team>-<use case>`: leaves room for `-v<5 digits>` and `-<9 char digest>` so run-time
# model and endpoint-config names never need shortening (SageMaker allows 63 characters).
MAX_GROUP_NAME_LENGTH = 47
MAX_PROFILE_NAME_LENGTH = 63
MAX_USE_CASES_PER_TEAM = 4
MAX_REVIEWER_USERS = 20
MAX_REVIEWER_ROLES = 10
IDLE_MINUTES_MIN = 60
IDLE_MINUTES_MAX = 525_600
# `<prefix>-platform-...` names the platform's own resources (its stack, its alarms, which its topic admits).
RESERVED_TEAM_NAMES = frozenset({"platform", "network"})
# `<prefix>-<stage>-platform` and `<prefix>-<stage>-team-<name>` must never be another stack's name.
RESERVED_STAGE_NAMES = frozenset({"platform", "network", "team"})
MAX_STAGES = 5
FIRST_STAGE_PROMOTION, LATER_STAGE_PROMOTION = "approved", "promoted"

REGIONS_WITHOUT_BUDGETS = ("eu-north-1",)
"""Regions whose CloudFormation has no AWS::Budgets::Budget (cfn-lint's region schemas)."""

# Rules about several fields at once: the loader checks them, the editor schema cannot say them.
LOADER_ONLY_RULES = {
    "names_fit_after_prefixing": f"`<prefix>-<team>-<use case>` is at most {MAX_GROUP_NAME_LENGTH} characters "
    f"and `<team>-<user>` (`<team>-review-<user>` for reviewers) at most {MAX_PROFILE_NAME_LENGTH}",
    "unique_team_names": "no two teams have the same `name`",
    "reviewers_are_users": "every user in a `reviewers.users` list is a user of one of `teams` (a user of the "
    "platform's Studio domain)",
    "reviewers_when_required": "with `approval.reviewers_required`, every team with use cases has reviewers: its "
    "own `reviewers` or `approval.reviewers`",
    "unique_use_case_names": "no two use cases of a team have the same `name`",
    "unique_quotas": "no two `quotas` entries have the same `instance_type` and `usage`",
    "studio_idle_timeouts": "`studio.max_idle_timeout_minutes` is at least `studio.idle_timeout_minutes`",
    "studio_default_mlflow_team": "`studio.default_mlflow_team` is the `name` of one of `teams`",
    "fleet_for_shifting": "`endpoint.deployment.style` `canary` or `linear` needs `endpoint.initial_instance_count` "
    "(and `endpoint.autoscaling.min_instances`) of at least 2",
    "autoscaling_limits": "`endpoint.autoscaling.min_instances` <= `initial_instance_count` <= `max_instances`, "
    "every scheduled floor's `min_instances` at most `max_instances`, floor names unique",
    "endpoint_quota_covers_fleets": "an `endpoint` quota is at least twice the sum of the largest fleets of the "
    "use cases on its instance type (blue/green runs the old and the new fleet during an update)",
    "monitoring_needs_capture": "`endpoint.monitoring.enabled` needs `endpoint.data_capture.enabled`",
    "budgets_in_region": "a team `budget` needs a `region` whose CloudFormation has AWS::Budgets::Budget "
    "(not eu-north-1)",
    "stages_need_account_and_region": "`account` and `region` are set on the platform (the development account) "
    "when `stages` are",
    "unique_stage_names": "no two `stages` have the same `name`",
    "stage_accounts": "each stage's `account` differs from the platform's `account` and from every other stage's",
    "stage_regions": "each stage's `region` is the platform's `region` (SageMaker creates a model only from a model "
    "package of its own region)",
    "stage_promotion": "the first stage's `promotion` is `approved`, every later stage's `promoted`",
    "team_stages": "a team's `stages` name stages of the platform, from the first on and in their order",
    "not_yet_with_stages": "a team serving in stages has no `budget` and no use case with `endpoint.monitoring` "
    "enabled; an `endpoint` quota needs a team serving in the development account",
    "split_fractions": "`split.train_fraction + validation_fraction + test_fraction` is 1",
    "problem_objective": "`problem.objective` is one of the `problem_type`'s objectives",
    "problem_quality_gate": "`problem.quality_gate.metric` is one of the `problem_type`'s metrics, and its "
    "`threshold` is in [0, 1] (>= 0 for rmse, mae and mse, <= 1 for r2)",
    "problem_classes": "`problem.classes` lists at least 3 labels for `multiclass` and none for other types",
    "problem_columns": "`target`, `id_column`, `time_column` and `key_column` are distinct columns; `features`, "
    "`exclude` and `context` name none of them; no `context` column is a feature; `exclude` only when "
    "`features` is empty",
    "problem_facets": "a facet's `name` is a feature or context column (when `features` are listed), not "
    "`target` or another role column, and not excluded",
    "problem_split_mode": "`split.mode` fits the problem: `ordered` needs `time_column`, `by_key` `key_column`, "
    "`stratified` a classification `problem_type`",
}
# A rule checked together with the ones above (so that it is reported even when other items are bad) that the
# schema says too (`uniqueItems`).
UNIQUE_ITEMS_RULE = "unique_items"
# A quota's instance type is one of SageMaker's for the quota's usage; the schema says so with `if`/`then`.
INSTANCE_TYPE_RULE = "instance_type_for_usage"


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the person who wrote it."""


class _Rule:
    """Annotated metadata: a single-field check (raising ValueError with the friendly message) and the
    JSON-schema keywords that say the same, so that the loader and the editor schema share one declaration."""

    def __init__(self, schema: dict[str, Any], check: Callable[[Any], Any] | None = None) -> None:
        self.schema = schema
        self.check = check

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        inner = handler(source)
        return inner if self.check is None else core_schema.no_info_after_validator_function(self.check, inner)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        result = handler(schema)
        result.update(copy.deepcopy(self.schema))
        return result


def _pattern(regex: str, allowed: str) -> _Rule:
    """The whole value matches `regex`; `allowed` says in words what does."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not allowed: {allowed}")
        return value

    return _Rule({"pattern": f"^(?:{regex})$", "patternErrorMessage": allowed}, check)


def _one_of(values: typing.Iterable[str]) -> _Rule:
    values = list(values)

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not allowed: one of {', '.join(values)}")
        return value

    return _Rule({"enum": values}, check)


def _none_of(values: typing.Iterable[str], why: str) -> _Rule:
    values = sorted(values)

    def check(value: str) -> str:
        if value in values:
            reason = why.replace("{value}", value)
            raise ValueError(f"{value!r} is not allowed: {reason}; choose another name than {', '.join(values)}")
        return value

    return _Rule({"not": {"enum": values}}, check)


def _not_reviewer_like(value: str) -> str:
    reserved = f"{naming.REVIEWER_PROFILE_INFIX}-"
    if value.startswith(reserved):
        raise ValueError(f"{value!r} is not allowed: a team user name never starts with {reserved!r} (the Studio "
                         f"profiles <team>-{reserved}<user> are the reviewers'); choose another name")
    return value


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


Prefix = Annotated[str, _pattern(r"[a-z][a-z0-9]{1,9}", "2-10 lowercase letters or digits, starting with a letter")]
TeamName = Annotated[
    str,
    _pattern(
        r"[a-z][a-z0-9]{1,19}",
        "2-20 lowercase letters or digits, starting with a letter (no hyphens, so that no team's "
        "resource names can start with another team's)",
    ),
    _none_of(RESERVED_TEAM_NAMES, "reserved for the platform's own resources (<prefix>-{value}-...)"),
]
StageName = Annotated[
    str,
    _pattern(
        r"[a-z][a-z0-9]{1,15}",
        "2-16 lowercase letters or digits, starting with a letter (no hyphens, so that no stage's stack names can "
        "be another stack's)",
    ),
    _none_of(RESERVED_STAGE_NAMES, "reserved for the platform's own stacks (<prefix>-{value}-...)"),
]
UserName = Annotated[
    str,
    _pattern(r"[a-z0-9](-?[a-z0-9]){0,39}", "1-40 lowercase letters or digits, with single hyphens between them"),
]
MemberName = Annotated[
    UserName,
    _Rule(
        {"not": {"pattern": f"^{naming.REVIEWER_PROFILE_INFIX}-.*$"},
         "patternErrorMessage": f"does not start with '{naming.REVIEWER_PROFILE_INFIX}-'"},
        lambda value: _not_reviewer_like(value),
    ),
]
UseCaseName = Annotated[
    str,
    _pattern(r"[a-z0-9](-?[a-z0-9]){0,39}", "1-40 lowercase letters or digits, with single hyphens between them"),
]
InstanceType = Annotated[
    str, _pattern(r"ml\.[a-z0-9-]+\.[a-z0-9]+", "a SageMaker instance type such as 'ml.m5.large' (must start with 'ml.')")
]

# --- SageMaker instance types, per usage -----------------------------------------------------------------------
INSTANCE_TYPE_SHAPES = {
    "endpoint": "ProductionVariantInstanceType",
    "processing": "ProcessingInstanceType",
    "training": "TrainingInstanceType",
    "spot-training": "TrainingInstanceType",
    "transform": "TransformInstanceType",
    "notebook-instance": "InstanceType",
}
"""Per usage SageMaker names in its instance quotas, the shape of botocore's SageMaker service model whose enum
lists the instance types valid for that usage."""


def _sagemaker_instance_types() -> dict[str, tuple[str, ...]]:
    """The instance types valid per usage, read from botocore's SageMaker service model (offline)."""
    try:
        from botocore.loaders import create_loader
    except ImportError as exc:
        raise ImportError(
            "stacks.config needs botocore: its SageMaker service model lists the valid instance types "
            "(pip install -r requirements-dev.txt)"
        ) from exc
    shapes = create_loader().load_service_model("sagemaker", "service-2")["shapes"]
    return {usage: tuple(shapes[shape]["enum"]) for usage, shape in INSTANCE_TYPE_SHAPES.items()}


INSTANCE_TYPES = _sagemaker_instance_types()


def instance_type_problem(value: str, usage: str) -> str | None:
    """Why `value` is not a SageMaker instance type for `usage`, naming the close matches, the usages it is valid
    for and how to list all of them; None when it is one."""
    allowed = INSTANCE_TYPES[usage]
    if value in allowed:
        return None
    elsewhere = [other for other, types in INSTANCE_TYPES.items() if value in types]
    message = f"{value!r} is not a SageMaker instance type for {usage} usage"
    if elsewhere:
        message += f" (only for {', '.join(elsewhere)})"
    close = difflib.get_close_matches(value, allowed, n=5, cutoff=0.6)
    message += f"; close matches: {', '.join(close)}" if close else "; no close match"
    return f"{message}; all {len(allowed)}: python -m stacks.config instance-types {usage}"


def _instance_type_for(usage: str) -> _Rule:
    """One of SageMaker's instance types for `usage` (the schema's `allOf` keeps the long list out of docs/config.md)."""

    def check(value: str) -> str:
        problem = instance_type_problem(value, usage)
        if problem:
            raise ValueError(problem)
        return value

    return _Rule({"allOf": [{"enum": list(INSTANCE_TYPES[usage])}]}, check)


EndpointInstanceType = Annotated[InstanceType, _instance_type_for("endpoint")]
ProcessingInstanceType = Annotated[InstanceType, _instance_type_for("processing")]
AccountId = Annotated[str, _pattern(r"[0-9]{12}", "exactly 12 digits")]
Region = Annotated[str, _one_of(SUPPORTED_REGIONS)]
TagValue = Annotated[
    str, _pattern(r"[\w .:/=+\-@]{1,256}", "1-256 letters, digits, spaces and _ . : / = + - @")
]
_TAG_KEY = re.compile(r"[\w .:/=+\-@]{1,128}")
_TAG_KEY_HELP = (
    "1-128 letters, digits, spaces and _ . : / = + - @, not starting with 'aws:' or 'mlops:' (reserved)"
)


def _tag_key(key: str) -> str:
    if not _TAG_KEY.fullmatch(key) or key.lower().startswith(("aws:", "mlops:")):
        raise ValueError(f"{key!r} is not allowed: {_TAG_KEY_HELP}")
    return key


TagKey = Annotated[
    str,
    _Rule(
        {
            "pattern": f"^(?!{_any_case('aws:')}|{_any_case('mlops:')})(?:{_TAG_KEY.pattern})$",
            "patternErrorMessage": _TAG_KEY_HELP,
        },
        _tag_key,
    ),
]
RoleArn = Annotated[
    str,
    _pattern(
        r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}",
        "an IAM role ARN such as 'arn:aws:iam::123456789012:role/Admin' (a role, not a user or an assumed-role session)",
    ),
]
Email = Annotated[str, _pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address such as 'team@example.com'")]
VpcId = Annotated[str, _pattern(r"vpc-[0-9a-f]{8,17}", "a VPC id such as 'vpc-0123456789abcdef0'")]
SubnetId = Annotated[str, _pattern(r"subnet-[0-9a-f]{8,17}", "a subnet id such as 'subnet-0123456789abcdef0'")]
SecurityGroupId = Annotated[str, _pattern(r"sg-[0-9a-f]{8,17}", "a security group id such as 'sg-0123456789abcdef0'")]

# --- IPv4 CIDR blocks from /16 to /24, host bits zero --------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


def _cidr_regex() -> str:
    """`a.b.c.0/p` with 16 <= p <= 24 and the low 24-p bits of c zero (any c for /24)."""
    alternatives = []
    for zeros in range(8, 0, -1):  # third octets with exactly `zeros` trailing zero bits (0 counts as 8)
        octets = [v for v in range(256) if (v & -v if v else 256).bit_length() - 1 == zeros]
        lengths = range(24 - zeros, 24)
        alternatives.append(f"(?:{'|'.join(map(str, octets))})\\.0/(?:{'|'.join(map(str, lengths))})")
    alternatives.append(rf"{_OCTET}\.0/24")
    return rf"{_OCTET}\.{_OCTET}\.(?:{'|'.join(alternatives)})"


CIDR_REGEX = _cidr_regex()
CIDR_HELP = "an IPv4 CIDR block from /16 to /24 with its host bits zero, such as '10.80.0.0/16'"


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not allowed: an IPv4 CIDR block such as '10.80.0.0/16' ({exc})") from None
    if network.version != 4 or not 16 <= network.prefixlen <= 24:
        raise ValueError(f"{value!r} is not allowed: an IPv4 CIDR block with a prefix length from /16 to /24")
    if not re.fullmatch(r"[0-9.]+/[0-9]{2}", value):  # not a netmask or a zero-padded length: CloudFormation's form
        raise ValueError(f"{value!r} is not allowed: an IPv4 CIDR block written address/length, such as '10.80.0.0/16'")
    return value


Cidr = Annotated[str, _Rule({"pattern": f"^(?:{CIDR_REGEX})$", "patternErrorMessage": CIDR_HELP}, _cidr)]

# --- EventBridge schedule expressions ------------------------------------------------------------------------
_RATE = re.compile(r"rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)")
_CRON_FIELD = {
    # name: numbers allowed, names allowed, special characters beyond , - * /, regex of the numbers (leading
    # zeros allowed, as int() reads them)
    "minutes": (0, 59, (), "", r"0*(?:[1-5]?[0-9])"),
    "hours": (0, 23, (), "", r"0*(?:1?[0-9]|2[0-3])"),
    "day-of-month": (1, 31, (), "?LW", r"0*(?:[1-9]|[12][0-9]|3[01])"),
    "month": (1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), "",
              r"0*(?:[1-9]|1[0-2])"),
    "day-of-week": (1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), "?L#", r"0*[1-7]"),
    "year": (1970, 2199, (), "", r"0*(?:19[7-9][0-9]|2[01][0-9][0-9])"),
}
SCHEDULE_HELP = (
    "an EventBridge schedule: 'rate(1 hour)', 'rate(5 minutes)' (a positive number; singular unit for 1, "
    "plural otherwise) or a six-field 'cron(minutes hours day-of-month month day-of-week year)' with '?' in "
    "exactly one of day-of-month and day-of-week, e.g. 'cron(0 * * * ? *)'"
)


def _cron_field_ok(text: str, name: str) -> bool:
    low, high, names, special, _ = _CRON_FIELD[name]
    if text == "?":
        return "?" in special
    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and not (step.isascii() and step.isdigit() and int(step) >= 1):
            return False
        if base == "*" or (base in ("L", "W", "LW") and base[0] in special):
            continue
        if "#" in base and "#" in special:
            day, _, nth = base.partition("#")
            if not (_cron_value(day, low, high, names) and nth in ("1", "2", "3", "4", "5")):
                return False
            continue
        if base.endswith(("L", "W")) and base[-1] in special and base[:-1]:
            base = base[:-1]
        ends = base.split("-")
        if len(ends) > 2 or not all(_cron_value(end, low, high, names) for end in ends):
            return False
    return True


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.upper() in names:
        return True
    return text.isascii() and text.isdigit() and low <= int(text) <= high


def _schedule(value: str) -> str:
    """An EventBridge schedule expression, checked as EventBridge checks it (rate units, cron fields)."""
    rate = _RATE.fullmatch(value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count >= 1 and unit.endswith("s") == (count != 1):
            return value
        raise ValueError(f"{value!r} is not allowed: {SCHEDULE_HELP}")
    if value.startswith("cron(") and value.endswith(")"):
        fields = value[5:-1].split(" ")
        if len(fields) == len(_CRON_FIELD) and all(_cron_field_ok(f, n) for f, n in zip(fields, _CRON_FIELD)):
            if (fields[2] == "?") != (fields[4] == "?"):
                return value
    raise ValueError(f"{value!r} is not allowed: {SCHEDULE_HELP}")


def _cron_field_regex(name: str) -> str:
    """The regex twin of `_cron_field_ok` for one field (without the lone '?')."""
    _, _, names, special, numbers = _CRON_FIELD[name]
    value = "(?:" + "|".join([numbers, *map(_any_case, names)]) + ")"
    bases = [r"\*", *(b for b in ("L", "W", "LW") if b[0] in special)]
    if "#" in special:
        bases.append(f"{value}#[1-5]")
    suffix = "".join(c for c in "LW" if c in special)
    bases.append(f"{value}(?:-{value})?" + (f"[{suffix}]?" if suffix else ""))
    part = "(?:" + "|".join(bases) + ")(?:/0*[1-9][0-9]*)?"
    return f"{part}(?:,{part})*"


def _schedule_regex() -> str:
    rate = r"rate\((?:0*1 (?:minute|hour|day)|0*(?:[2-9]|[1-9][0-9]+) (?:minutes|hours|days))\)"
    minutes, hours, dom, month, dow, year = map(_cron_field_regex, _CRON_FIELD)
    cron = rf"cron\({minutes} {hours} (?:\? {month} {dow}|{dom} {month} \?) {year}\)"
    return f"{rate}|{cron}"


SCHEDULE_REGEX = _schedule_regex()
ScheduleExpression = Annotated[
    str, _Rule({"pattern": f"^(?:{SCHEDULE_REGEX})$", "patternErrorMessage": SCHEDULE_HELP}, _schedule)
]


def _unique_items() -> dict[str, Any]:
    return {"uniqueItems": True}


def _keys_checked(schema: dict[str, Any]) -> None:
    """A mapping with constrained keys: pydantic writes the key pattern as `patternProperties`, which lets any
    other key through; say it as `propertyNames` (every key) and the values as `additionalProperties`."""
    ((key_pattern, values),) = schema.pop("patternProperties").items()
    schema["propertyNames"] = {"pattern": key_pattern, **schema.get("propertyNames", {})}
    schema["additionalProperties"] = values


def _mode_required(schema: dict[str, Any], model: type) -> None:
    """The network section is told apart by its `mode`, so the loader needs it whenever `network` is given."""
    schema["required"] = sorted({*schema.get("required", ()), "mode"})


# --- problems that involve several fields ---------------------------------------------------------------------


class Problem(NamedTuple):
    """One config problem found by a section's `_problems`: where (relative to the section), the offending value,
    the whole message (it names the value), and the rule (a `LOADER_ONLY_RULES` key, `UNIQUE_ITEMS_RULE` or
    `INSTANCE_TYPE_RULE`)."""

    loc: tuple[str | int, ...]
    value: Any
    message: str
    rule: str


Ok = Callable[..., bool]
"""``ok(*path)``: the value at `path` (relative to the section) passed its own checks, so a rule may read it."""

# Set while a whole PlatformConfig is validated: the sections leave their `_problems` to the platform, which
# checks them all on the raw data too when some field is bad (pydantic skips after-validators then).
_PLATFORM_WIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("platform_wide", default=False)


def _always_ok(*_path: Any) -> bool:
    return True


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _duplicates(keyed: list[tuple[int, Any]], field: str, what: str, rule: str) -> list[Problem]:
    first: dict[Any, int] = {}
    problems = []
    for index, key in keyed:
        try:
            earlier = first.setdefault(key, index)
        except TypeError:  # an unhashable value is reported by its own check
            continue
        if earlier != index:
            message = f"duplicate {what} {key!r} at [{earlier}] and [{index}]: each {what} must appear once"
            problems.append(Problem((field,), key, message, rule))
    return problems


def _line_errors(problems: list[Problem]) -> list[dict[str, Any]]:
    return [
        {"type": PydanticCustomError("cross_field", p.message, {"rule": p.rule}), "loc": p.loc, "input": p.value}
        for p in problems
    ]


def _cross_field_error(title: str, problems: list[Problem]) -> ValidationError:
    return ValidationError.from_exception_data(title, _line_errors(problems))


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        """Problems involving several fields of this section, read from `data` (JSON-like, defaults filled)."""
        return []

    @classmethod
    def _with_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        filled = dict(data)
        for name, field in cls.model_fields.items():
            if name not in filled and not field.is_required():
                filled[name] = to_jsonable_python(field.get_default(call_default_factory=True))
        return filled

    @model_validator(mode="after")
    def _check_section(self) -> "Strict":
        if not _PLATFORM_WIDE.get():  # a section validated on its own (a whole config checks all of them)
            problems = type(self)._problems(self.model_dump(mode="json"), _always_ok)
            if problems:
                raise _cross_field_error(type(self).__name__, problems)
        return self


class NewNetwork(Strict):
    """A VPC the platform creates: isolated subnets in two zones and the endpoints Studio needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_mode_required)

    mode: Literal["new"] = "new"
    cidr: Cidr = Field("10.80.0.0/16", description="IPv4 range of the new VPC, /16 to /24.")
    availability_zones: list[str] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="Two zone names to use; by default the first two zones of the region (resolved at deploy time).",
    )


class ExistingNetwork(Strict):
    """A VPC that already exists; the ids are used as given (no lookups at synth time)."""

    mode: Literal["existing"]
    vpc_id: VpcId
    subnet_ids: list[SubnetId] = Field(
        min_length=1, json_schema_extra=_unique_items(), description="Private subnets for Studio and jobs."
    )
    security_group_ids: list[SecurityGroupId] = Field(
        min_length=1, max_length=5, json_schema_extra=_unique_items(),
        description="Security groups for Studio apps (at most 5).",
    )

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        return [
            problem
            for field in ("subnet_ids", "security_group_ids")
            for problem in _duplicates(
                [(i, v) for i, v in _items(data.get(field)) if ok(field, i)], field, "id", UNIQUE_ITEMS_RULE
            )
        ]


class StudioSettings(Strict):
    """The SageMaker Studio domain shared by all teams."""

    idle_timeout_minutes: StrictInt = Field(
        120, ge=IDLE_MINUTES_MIN, le=IDLE_MINUTES_MAX, description="JupyterLab and Code Editor apps shut down after this idle time."
    )
    max_idle_timeout_minutes: StrictInt = Field(
        480, ge=IDLE_MINUTES_MIN, le=IDLE_MINUTES_MAX, description="Longest idle timeout a user may choose."
    )
    home_efs_on_delete: Literal["retain", "delete"] = Field(
        "retain", description="What happens to the home-directory EFS volume when the domain is deleted."
    )
    default_mlflow_team: TeamName | None = Field(
        None,
        description="The team whose MLflow App is the domain's default MLflow App (what Studio opens for every "
        "user); one of `teams[].name`. Unset: the domain has no default App.",
    )

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        if not (ok("idle_timeout_minutes") and ok("max_idle_timeout_minutes")):
            return []
        idle, longest = data["idle_timeout_minutes"], data["max_idle_timeout_minutes"]
        if longest < idle:
            return [Problem(("max_idle_timeout_minutes",), longest,
                            f"{longest} is not allowed: it must be at least idle_timeout_minutes ({idle})",
                            "studio_idle_timeouts")]
        return []


class QuotaUsage(str, Enum):
    """The usages SageMaker names in its instance quotas ('<type> for <usage>')."""

    processing = "processing"
    transform = "transform"
    training = "training"
    spot_training = "spot-training"
    endpoint = "endpoint"
    notebook_instance = "notebook-instance"


def _instance_type_per_usage(schema: dict[str, Any], model: type) -> None:
    """A quota's instance type is one of SageMaker's for its usage."""
    schema["allOf"] = [
        {
            "if": {"properties": {"usage": {"const": usage}}, "required": ["usage"]},
            "then": {"properties": {"instance_type": {"enum": list(types)}}},
        }
        for usage, types in INSTANCE_TYPES.items()
    ]


class QuotaRequest(Strict):
    """A SageMaker instance quota the platform raises (never lowers) on deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_instance_type_per_usage)

    instance_type: InstanceType = Field(
        description="One of SageMaker's instance types for the usage (`python -m stacks.config instance-types "
        "<usage>` lists them)."
    )
    usage: QuotaUsage
    desired: StrictInt = Field(gt=0, le=10_000, description="The applied value the platform asks for.")

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        if not (ok("instance_type") and ok("usage")):
            return []
        value = data["instance_type"]
        problem = instance_type_problem(value, QuotaUsage(data["usage"]).value)
        return [Problem(("instance_type",), value, problem, INSTANCE_TYPE_RULE)] if problem else []


class ReaperSettings(Strict):
    """The scheduled teardown of idle endpoints."""

    enabled: StrictBool = True
    schedule: ScheduleExpression = "rate(1 hour)"
    idle_window_hours: StrictInt = Field(24, ge=1, le=24 * 14, description="An endpoint with zero invocations over this window is idle.")
    grace_period_hours: StrictInt = Field(24, ge=0, le=24 * 30, description="Endpoints created or updated more recently are kept.")
    dry_run: StrictBool = Field(True, description="Report what would be deleted without deleting.")
    max_deletions_per_run: StrictInt = Field(10, ge=0, le=1000)


class ReaperOverride(Strict):
    """Per-team overrides of the platform's reaper settings; unset fields inherit."""

    idle_window_hours: StrictInt | None = Field(None, ge=1, le=24 * 14)
    grace_period_hours: StrictInt | None = Field(None, ge=0, le=24 * 30)
    dry_run: StrictBool | None = None
    exempt: StrictBool = Field(False, description="Never reap this team's endpoints.")


class Deployment(Strict):
    """How an update shifts traffic to the new version (blue/green, with alarm rollback)."""

    style: Literal["all_at_once", "canary", "linear"] = Field(
        "all_at_once",
        description="Blue/green traffic shifting; canary and linear need at least 2 instances (a step is at most half the fleet).",
    )
    canary_percent: StrictInt = Field(10, ge=1, le=50, description="Share of capacity in the canary step (canary style).")
    linear_step_percent: StrictInt = Field(20, ge=10, le=50, description="Share of capacity per step (linear style).")
    wait_interval_seconds: StrictInt = Field(300, ge=0, le=3600, description="Baking time between traffic steps.")
    termination_wait_seconds: StrictInt = Field(120, ge=0, le=3600, description="Old fleet kept this long after the shift.")
    maximum_execution_timeout_seconds: StrictInt = Field(3600, ge=600, le=14400)


class DataCapture(Strict):
    """Capture of a sampled share of the endpoint's requests and responses."""

    enabled: StrictBool = False
    sampling_percent: StrictInt = Field(20, ge=1, le=100)


class Alarms(Strict):
    """Thresholds of the per-endpoint alarms that roll an update back."""

    invocation_5xx_errors: StrictInt = Field(1, ge=1, description="5XX errors per minute that trip the alarm.")
    model_latency_ms: StrictInt = Field(1000, ge=1, le=3_600_000, description="Average model latency that trips the alarm.")


FloorName = Annotated[
    str, _pattern(r"[a-z0-9](-?[a-z0-9]){0,31}", "1-32 lowercase letters or digits, with single hyphens between them")
]


class ScheduledFloor(Strict):
    """From `schedule` on (UTC), the endpoint keeps at least `min_instances`: a scheduled action of its target."""

    name: FloorName
    schedule: ScheduleExpression = Field(
        description="When the floor takes effect, e.g. 'cron(0 7 ? * MON-FRI *)'; it holds until another floor's "
        "schedule sets a new minimum."
    )
    min_instances: StrictInt = Field(ge=1, le=100)


class Autoscaling(Strict):
    """Target tracking on invocations per instance, registered when the endpoint reaches InService."""

    enabled: StrictBool = False
    min_instances: StrictInt = Field(1, ge=1, le=100)
    max_instances: StrictInt = Field(2, ge=1, le=100)
    target_invocations_per_instance: StrictInt = Field(
        ge=1, le=1_000_000, default=1000,
        description="SageMakerVariantInvocationsPerInstance the policy holds the fleet at (per minute).",
    )
    scale_in_cooldown_seconds: StrictInt = Field(300, ge=0, le=86_400)
    scale_out_cooldown_seconds: StrictInt = Field(60, ge=0, le=86_400)
    scheduled_floors: list[ScheduledFloor] = Field(default_factory=list, max_length=10)


class MonitoringAlarms(Strict):
    """Thresholds of the endpoint's monitoring alarms; each notifies the team topic."""

    drifted_feature_share: StrictFloat = Field(
        0.5, gt=0, le=1,
        description="Share of the model's features that drift in a window at or above which the drift alarm "
        "fires (0.5: Evidently's dataset-drift rule).",
    )
    quality_threshold: StrictFloat | None = Field(
        None,
        description="The quality gate's metric measured on labelled requests below this (above it for rmse, "
        "mae and mse) fires the quality alarm; unset, the quality gate's threshold.",
    )


class Monitoring(Strict):
    """Drift and quality of the served requests: a scheduled job compares each window of data capture with
    the baseline of the version that served it (see docs/monitoring.md)."""

    enabled: StrictBool = False
    schedule: ScheduleExpression = Field(
        "rate(1 day)", description="When the monitoring job runs; windows tile when it runs every window_hours.")
    window_hours: StrictInt = Field(24, ge=1, le=168, description="Hours of data capture one run compares.")
    min_rows: StrictInt = Field(
        100, ge=10, le=10_000_000, description="Captured rows a window needs for a drift verdict.")
    instance_type: ProcessingInstanceType = Field(
        "ml.m5.large", description="Instance type of the monitoring job: one of SageMaker's processing instance types "
        "(`python -m stacks.config instance-types processing` lists them).")
    alarms: MonitoringAlarms = MonitoringAlarms()


class EndpointSettings(Strict):
    """The endpoint that serves a use case's newest approved model version."""

    instance_type: EndpointInstanceType = Field(
        "ml.m5.large", description="One of SageMaker's endpoint instance types (`python -m stacks.config "
        "instance-types endpoint` lists them).")
    initial_instance_count: StrictInt = Field(1, ge=1, le=100)
    deployment: Deployment = Deployment()
    data_capture: DataCapture = DataCapture()
    alarms: Alarms = Alarms()
    autoscaling: Autoscaling = Autoscaling()
    monitoring: Monitoring = Monitoring()
    keep_previous_configs: StrictInt = Field(2, ge=1, le=20, description="Older endpoint configs and models kept for rollback.")

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        problems = cls._autoscaling_problems(data, ok)
        monitoring, capture = data.get("monitoring"), data.get("data_capture")
        if (
            isinstance(monitoring, dict) and ok("monitoring", "enabled") and monitoring.get("enabled")
            and not (isinstance(capture, dict) and capture.get("enabled"))
            and (not isinstance(capture, dict) or ok("data_capture", "enabled"))
        ):
            problems.append(Problem(
                ("monitoring", "enabled"), True,
                "monitoring.enabled true needs data_capture.enabled true: the monitoring job reads the "
                "endpoint's data capture",
                "monitoring_needs_capture",
            ))
        deployment = data.get("deployment")
        if not (isinstance(deployment, dict) and ok("deployment", "style") and ok("initial_instance_count")):
            return problems
        style, count = deployment.get("style", "all_at_once"), data["initial_instance_count"]
        if style != "all_at_once" and count < 2:
            problems.append(Problem(
                (), count,
                f"deployment.style {style!r} with initial_instance_count {count} is not allowed: canary and linear "
                "shifting need at least 2 instances (each step is at most half the fleet); use style 'all_at_once' "
                "or more instances",
                "fleet_for_shifting",
            ))
        scaling = data.get("autoscaling")
        if (
            style != "all_at_once" and isinstance(scaling, dict) and scaling.get("enabled")
            and ok("autoscaling", "min_instances") and scaling.get("min_instances", 1) < 2
        ):
            low = scaling.get("min_instances", 1)
            problems.append(Problem(
                ("autoscaling", "min_instances"), low,
                f"autoscaling.min_instances {low} with deployment.style {style!r} is not allowed: the fleet can "
                "shrink below the 2 instances canary and linear shifting need; use at least 2 or style 'all_at_once'",
                "fleet_for_shifting",
            ))
        return problems

    @classmethod
    def _autoscaling_problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        scaling = data.get("autoscaling")
        if not (isinstance(scaling, dict) and ok("autoscaling", "enabled") and scaling.get("enabled")):
            return []
        problems: list[Problem] = []
        low, high = scaling.get("min_instances", 1), scaling.get("max_instances", 2)
        limits_ok = ok("autoscaling", "min_instances") and ok("autoscaling", "max_instances")
        if limits_ok and low > high:
            problems.append(Problem(
                ("autoscaling", "min_instances"), low,
                f"autoscaling.min_instances {low} is more than max_instances {high}: not allowed",
                "autoscaling_limits",
            ))
        count = data.get("initial_instance_count", 1)
        if limits_ok and ok("initial_instance_count") and low <= high and not low <= count <= high:
            problems.append(Problem(
                ("initial_instance_count",), count,
                f"initial_instance_count {count} is not allowed with autoscaling: it must lie between "
                f"autoscaling.min_instances {low} and max_instances {high}",
                "autoscaling_limits",
            ))
        floors = list(_items(scaling.get("scheduled_floors")))
        for index, floor in floors:
            if not (isinstance(floor, dict) and ok("autoscaling", "max_instances")):
                continue
            if ok("autoscaling", "scheduled_floors", index, "min_instances") and floor["min_instances"] > high:
                problems.append(Problem(
                    ("autoscaling", "scheduled_floors", index, "min_instances"), floor["min_instances"],
                    f"scheduled floor min_instances {floor['min_instances']} is more than autoscaling.max_instances "
                    f"{high}: not allowed",
                    "autoscaling_limits",
                ))
        names = [
            (i, f["name"]) for i, f in floors
            if isinstance(f, dict) and ok("autoscaling", "scheduled_floors", i, "name")
        ]
        problems += [
            p._replace(loc=("autoscaling",) + p.loc)
            for p in _duplicates(names, "scheduled_floors", "scheduled floor name", "autoscaling_limits")
        ]
        return problems

    @property
    def largest_fleet(self) -> int:
        """The most instances the endpoint can run outside an update."""
        return self.autoscaling.max_instances if self.autoscaling.enabled else self.initial_instance_count


ColumnName = Annotated[
    str,
    _pattern(
        r"[A-Za-z_][A-Za-z0-9_.-]{0,63}",
        "a column name of 1-64 letters, digits, _ . - starting with a letter or _ (no commas or spaces)",
    ),
]
ClassLabel = Annotated[str, _pattern(r"[A-Za-z0-9_.-]{1,64}", "1-64 letters, digits, _ . - (no commas)")]
FacetValue = Annotated[str, _pattern(r"[^,;|=]{1,64}", "1-64 characters, none of , ; | =")]
DataPrefix = Annotated[
    str,
    _pattern(
        r"([a-z0-9][a-z0-9._-]*/)+",
        "a key prefix in the team bucket such as 'pipeline/data/churn/': lowercase segments, each ending in '/' "
        "(the trailing '/' keeps it from also matching a sibling prefix)",
    ),
]
_ALL_OBJECTIVES = sorted({o for objectives in problem_module.AUTOML_OBJECTIVES.values() for o in objectives})
_ALL_QUALITY_METRICS = sorted({m for metrics in problem_module.QUALITY_METRICS.values() for m in metrics})


class BiasFacet(Strict):
    """A sensitive column and the values that form its sensitive group."""

    name: ColumnName = Field(description="A feature or context column.")
    values: list[FacetValue] = Field(
        min_length=1, max_length=20, description="Values of the sensitive group (no , ; | or =)."
    )


class QualityGate(Strict):
    """What a model version must reach to be registered for approval."""

    metric: Annotated[str, _Rule({"enum": _ALL_QUALITY_METRICS})] = Field(
        description="Evaluation metric the gate reads. binary: " + ", ".join(problem_module.QUALITY_METRICS["binary"])
        + "; multiclass: " + ", ".join(problem_module.QUALITY_METRICS["multiclass"])
        + "; regression: " + ", ".join(problem_module.QUALITY_METRICS["regression"]) + "."
    )
    threshold: StrictFloat = Field(description="Registration needs the metric at or above it (at or below for the "
                                   "error metrics rmse, mae and mse).")


DEFAULT_OBJECTIVES = {"binary": "AUC", "multiclass": "F1macro", "regression": "RMSE"}
DEFAULT_QUALITY_GATES = {"binary": ("auc", 0.8), "multiclass": ("weighted_f1", 0.7), "regression": ("r2", 0.6)}


class SplitSettings(Strict):
    """How the pipeline splits the data into train, validation and test rows."""

    mode: Literal["random", "ordered", "by_key", "stratified"] | None = Field(
        None, description="Default split of the pipeline; unset: stratified for classification, random for regression."
    )
    train_fraction: StrictFloat = Field(0.7, gt=0, lt=1)
    validation_fraction: StrictFloat = Field(0.15, gt=0, lt=1)
    test_fraction: StrictFloat = Field(0.15, gt=0, lt=1)
    seed: StrictInt = Field(42, ge=0, le=2**31 - 1)

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        names = ("train_fraction", "validation_fraction", "test_fraction")
        if not all(ok(name) for name in names):
            return []
        total = sum(data[name] for name in names)
        if abs(total - 1.0) > 1e-6:
            return [Problem(
                (), total,
                f"train_fraction + validation_fraction + test_fraction is {total:g}, not allowed: they must sum to 1",
                "split_fractions",
            )]
        return []


def _problem_type_defaults(data: Any) -> Any:
    """Objective, quality gate and split mode default by problem type (only when the type itself is valid)."""
    if not isinstance(data, dict) or data.get("problem_type") not in DEFAULT_OBJECTIVES:
        return data
    problem_type = data["problem_type"]
    data = dict(data)
    if data.get("objective") is None:
        data["objective"] = DEFAULT_OBJECTIVES[problem_type]
    if data.get("quality_gate") is None:
        metric, threshold = DEFAULT_QUALITY_GATES[problem_type]
        data["quality_gate"] = {"metric": metric, "threshold": threshold}
    split = data.get("split")
    if split is None or (isinstance(split, dict) and split.get("mode") is None):
        split = dict(split or {})
        split["mode"] = "random" if problem_type == "regression" else "stratified"
        data["split"] = split
    return data


def _problem_from(data: dict[str, Any]) -> "problem_module.Problem":
    """The problem as the pipeline definition and its step scripts see it, from a problem section's data."""
    return problem_module.Problem(
        problem_type=data["problem_type"], target=data["target"], features=tuple(data["features"]),
        exclude=tuple(data["exclude"]), id_column=data["id_column"] or "", time_column=data["time_column"] or "",
        key_column=data["key_column"] or "", context=tuple(data["context"]), positive_label=data["positive_label"],
        classes=tuple(data["classes"]), input_layout=data["input_layout"],
        facets=tuple(problem_module.Facet(f["name"], tuple(f["values"])) for f in data["facets"]),
    )


class ProblemSettings(Strict):
    """What the use case's pipeline predicts, from which columns, and what a registrable model must reach."""

    problem_type: Literal["binary", "multiclass", "regression"] = Field(
        description="binary, multiclass or regression: decides the AutoML problem type, the XGBoost objective, the "
        "evaluation and the metrics a quality gate may read."
    )
    target: ColumnName = Field(description="The column the model predicts.")
    features: list[ColumnName] = Field(
        default_factory=list, max_length=500, json_schema_extra=_unique_items(),
        description="Model inputs in order; empty means every column but target, id, time, key, context and exclude.",
    )
    exclude: list[ColumnName] = Field(
        default_factory=list, max_length=500, json_schema_extra=_unique_items(),
        description="Columns never used as features.",
    )
    id_column: ColumnName | None = Field(None, description="Row identity; never a model input.")
    time_column: ColumnName | None = Field(None, description="Event time; the ordered split needs it.")
    key_column: ColumnName | None = Field(None, description="Grouping key (customer, product); the by_key split needs it.")
    context: list[ColumnName] = Field(
        default_factory=list, max_length=50, json_schema_extra=_unique_items(),
        description="Columns kept with the test rows for bias analysis, never model inputs.",
    )
    positive_label: ClassLabel = Field("1", description="Positive class of a binary problem.")
    classes: list[ClassLabel] = Field(
        default_factory=list, max_length=100, json_schema_extra=_unique_items(),
        description="Class labels of a multiclass problem (at least 3).",
    )
    facets: list[BiasFacet] = Field(default_factory=list, max_length=10, description="Sensitive facets analysed for bias.")
    objective: Annotated[str, _Rule({"enum": _ALL_OBJECTIVES})] | None = Field(
        None,
        description="Autopilot objective metric. binary: "
        + ", ".join(problem_module.AUTOML_OBJECTIVES["binary"]) + "; multiclass: "
        + ", ".join(problem_module.AUTOML_OBJECTIVES["multiclass"]) + "; regression: "
        + ", ".join(problem_module.AUTOML_OBJECTIVES["regression"]) + " (unset: AUC, F1macro, RMSE).",
    )
    quality_gate: QualityGate | None = Field(
        None, description="Unset: auc >= 0.8 (binary), weighted_f1 >= 0.7 (multiclass), r2 >= 0.6 (regression)."
    )
    split: SplitSettings = SplitSettings()
    input_layout: Literal["table", "transactions_and_customers"] = Field(
        "table", description="table: every *.csv under the data prefix, one header each; transactions_and_customers: "
        "the fraud example's two tables, joined."
    )
    data_prefix: DataPrefix | None = Field(
        None, description="Where the pipeline reads its data in the team bucket; default pipeline/data/<use case>/."
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_the_problem_type(cls, data: Any) -> Any:
        return _problem_type_defaults(data)

    @classmethod
    def _with_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        return super()._with_defaults(_problem_type_defaults(data))

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:  # noqa: C901 - one rule after another
        problems: list[Problem] = []

        def problem(loc: tuple, value: Any, message: str, rule: str) -> None:
            problems.append(Problem(loc, value, message, rule))

        problem_type = data.get("problem_type")
        typed = ok("problem_type") and problem_type in problem_module.AUTOML_OBJECTIVES
        if typed and ok("objective"):
            objectives = problem_module.AUTOML_OBJECTIVES[problem_type]
            objective = data.get("objective")
            if objective not in objectives:
                problem(("objective",), objective, f"{objective!r} is not allowed for problem_type {problem_type!r}: "
                        f"use one of {', '.join(objectives)}", "problem_objective")
        gate = data.get("quality_gate")
        if typed and isinstance(gate, dict) and ok("quality_gate", "metric"):
            metrics = problem_module.QUALITY_METRICS[problem_type]
            metric = gate.get("metric")
            if metric not in metrics:
                problem(("quality_gate", "metric"), metric, f"{metric!r} is not allowed for problem_type "
                        f"{problem_type!r}: use one of {', '.join(metrics)}", "problem_quality_gate")
            threshold = gate.get("threshold")
            if ok("quality_gate", "threshold"):
                where, direction = ("quality_gate", "threshold"), metrics.get(metric)
                if direction == "min" and threshold < 0:
                    problem(where, threshold, f"{threshold} is not allowed for {metric}: it must be >= 0",
                            "problem_quality_gate")
                if metric != "r2" and direction == "max" and not 0 <= threshold <= 1:
                    problem(where, threshold, f"{threshold} is not allowed for {metric}: it must be in [0, 1]",
                            "problem_quality_gate")
                if metric == "r2" and threshold > 1:
                    problem(where, threshold, f"{threshold} is not allowed for r2: it must be <= 1",
                            "problem_quality_gate")
        classes = data.get("classes")
        if typed and ok("classes"):
            if problem_type == "multiclass" and len(classes) < 3:
                problem(("classes",), classes, f"{classes} is not allowed for problem_type 'multiclass': list at least "
                        "3 class labels", "problem_classes")
            if problem_type != "multiclass" and classes:
                problem(("classes",), classes, f"{classes} is only allowed for problem_type 'multiclass'",
                        "problem_classes")
        problems += _duplicates([(i, c) for i, c in _items(classes) if ok("classes", i)], "classes", "class label",
                                UNIQUE_ITEMS_RULE)
        roles: dict[str, str] = {}
        for role in ("target", "id_column", "time_column", "key_column"):
            column = data.get(role)
            if column is None or not ok(role):
                continue
            if column in roles:
                problem((role,), column, f"{column!r} is not allowed: it is already the {roles[column]}",
                        "problem_columns")
            else:
                roles[column] = role
        listed = {}
        for field_name in ("features", "exclude", "context"):
            listed[field_name] = [(i, v) for i, v in _items(data.get(field_name)) if ok(field_name, i)]
            problems += _duplicates(listed[field_name], field_name, "column", UNIQUE_ITEMS_RULE)
            for index, column in listed[field_name]:
                if column in roles:
                    problem((field_name, index), column,
                            f"{column!r} is not allowed: it is already the {roles[column]}", "problem_columns")
        features = {v for _, v in listed["features"]}
        for index, column in listed["context"]:
            if column in features:
                problem(("context", index), column, f"{column!r} is not allowed: it is also one of the features",
                        "problem_columns")
        exclude = data.get("exclude")
        if isinstance(data.get("features"), list) and data["features"] and isinstance(exclude, list) and exclude:
            problem(("exclude",), exclude, f"{exclude} is not allowed: exclude is only allowed when features is empty "
                    "('all but' the excluded columns)", "problem_columns")
        columns_ok = ok("features") and ok("context")
        for index, facet in _items(data.get("facets")):
            if not (isinstance(facet, dict) and ok("facets", index, "name")):
                continue
            where, name = ("facets", index, "name"), facet["name"]
            if name in roles:
                problem(where, name, f"{name!r} is not allowed: it is the {roles[name]}", "problem_facets")
            if columns_ok and data["features"] and name not in data["features"] and name not in data["context"]:
                problem(where, name, f"{name!r} is not among the columns: use one of the features or context columns "
                        f"({', '.join(data['features'] + data['context'])})", "problem_facets")
            if ok("exclude") and name in data["exclude"]:
                problem(where, name, f"{name!r} is not allowed: it is excluded; list it under context to analyse it",
                        "problem_facets")
        split = data.get("split")
        if problems or not (typed and isinstance(split, dict) and ok("split", "mode") and ok("time_column")
                            and ok("key_column")):
            return problems
        try:  # only a consistent problem knows its split modes; a field that is bad itself is reported already
            allowed = _problem_from(data).allowed_split_modes()
        except (problem_module.ProblemError, KeyError, TypeError):
            return problems
        mode = split.get("mode")
        if mode not in allowed:
            needs = {"ordered": "time_column", "by_key": "key_column", "stratified": "a classification problem_type"}
            problem(("split", "mode"), mode, f"{mode!r} is not allowed here: it needs {needs.get(mode, mode)}; this "
                    f"problem allows {', '.join(allowed)}", "problem_split_mode")
        return problems

    def to_problem(self) -> "problem_module.Problem":
        """The problem as the pipeline definition and its step scripts see it."""
        return _problem_from(self.model_dump(mode="json"))


def _fraud_problem() -> ProblemSettings:
    fraud = problem_module.FRAUD
    return ProblemSettings(
        problem_type=fraud.problem_type, target=fraud.target, features=list(fraud.features),
        time_column=fraud.time_column, key_column=fraud.key_column, context=list(fraud.context),
        positive_label=fraud.positive_label, input_layout=fraud.input_layout,
        facets=[BiasFacet(name=f.name, values=list(f.values)) for f in fraud.facets],
    )


class UseCase(Strict):
    """One model package group in the registry, with its endpoint and its experiment pipeline."""

    name: UseCaseName
    description: str = Field("", max_length=1000, description="Registry group description (fixed after first deploy).")
    endpoint: EndpointSettings = EndpointSettings()
    problem: ProblemSettings = Field(
        default_factory=_fraud_problem,
        description="The pipeline's problem; without it, the fraud-detection example's problem.",
    )

    def pipeline_spec(self, explainability: str = "open") -> "definition_module.PipelineSpec":
        """What the use case's pipeline definition is built from (``explainability``: the platform's option)."""
        problem = self.problem
        split = problem.split
        return definition_module.PipelineSpec(
            problem=problem.to_problem(),
            objective=problem.objective,
            quality_metric=problem.quality_gate.metric,
            quality_threshold=float(problem.quality_gate.threshold),
            split_mode=split.mode,
            fractions=(split.train_fraction, split.validation_fraction, split.test_fraction),
            split_seed=split.seed,
            data_prefix=problem.data_prefix or f"{definition_module.DATA_ROOT}/{self.name}/",
            title=self.description or self.name,
            explainability=explainability,
        )


class Budget(Strict):
    """A monthly AWS Budget on the team's cost (its cost-allocation tag), alerting the team topic."""

    monthly_usd: StrictFloat = Field(gt=0, le=10_000_000, description="The monthly limit in USD.")
    alert_thresholds_percent: list[Annotated[StrictInt, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [80, 100], min_length=1, max_length=5, json_schema_extra=_unique_items(),
        description="Alert when actual cost reaches these percentages of the limit (at most 5, each 1-1000; the "
        "team topic gets one notification per threshold and month).",
    )
    forecast_alert: StrictBool = Field(
        True, description="Also alert when the month's forecast cost passes the limit.")

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        thresholds = [(i, v) for i, v in _items(data.get("alert_thresholds_percent"))
                      if ok("alert_thresholds_percent", i)]
        return _duplicates(thresholds, "alert_thresholds_percent", "alert threshold", UNIQUE_ITEMS_RULE)


class CostAllocation(Strict):
    """The team tag as a cost-allocation tag, which budgets and Cost Explorer filter by."""

    activate_tag: StrictBool = Field(
        True,
        description="Activate `mlops:team` and `mlops:platform` for cost allocation from this account (ce:UpdateCostAllocationTagsStatus, "
        "retried daily until Cost Explorer knows the tag). Only the payer (management) account of an organization "
        "may: in a member account set false and activate it there (docs/costs.md).",
    )


class Stage(Strict):
    """An account that serves the approved or promoted versions of the teams that serve in it."""

    name: StageName
    account: AccountId = Field(description="The stage's AWS account (12 digits, quoted); not the development "
                               "account and not another stage's.")
    region: Region = Field(description="The stage's region: the platform's `region` (SageMaker creates a model "
                           "only from a model package of its own region).")
    promotion: Literal["approved", "promoted"] = Field(
        description="What makes a version serve here: `approved` (its approval in the development account's "
        "registry) for the first stage, `promoted` (a reviewer promotes a version that serves in the previous "
        "stage) for every later one.",
    )
    reaper: ReaperSettings | None = Field(
        None, description="The idle-endpoint reaper of this stage's account; unset: the platform's `reaper`.")


class Reviewers(Strict):
    """The people who approve and reject model versions: Studio users and IAM roles."""

    users: list[UserName] = Field(
        default_factory=list, max_length=MAX_REVIEWER_USERS, json_schema_extra=_unique_items(),
        description="Users of the config's teams (the Studio domain's users) who review; each gets, per team it "
        "reviews, the Studio profile `<team>-review-<user>`, which runs as the team's reviewer role.",
    )
    role_arns: list[RoleArn] = Field(
        default_factory=list, max_length=MAX_REVIEWER_ROLES, json_schema_extra=_unique_items(),
        description="IAM roles (of any account; they must exist when the team stack deploys) that may assume the "
        "team's reviewer role `<prefix>-<team>-model-reviewer`; a listed role that approves with permissions of "
        "its own counts as a reviewer too.",
    )

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        users = [(i, u) for i, u in _items(data.get("users")) if ok("users", i)]
        arns = [(i, a) for i, a in _items(data.get("role_arns")) if ok("role_arns", i)]
        return [
            *_duplicates(users, "users", "reviewer user", UNIQUE_ITEMS_RULE),
            *_duplicates(arns, "role_arns", "reviewer role ARN", UNIQUE_ITEMS_RULE),
        ]


class Approval(Strict):
    """Who may send a model version live: with `reviewers_required`, only a reviewer who did not build it."""

    reviewers_required: StrictBool = Field(
        False,
        description="Maker-checker: the team role registers versions only as PendingManualApproval and may only "
        "reject; a team's reviewers approve, and the deploy automation deploys only a version approved, with a "
        "description, by a reviewer who did not build it. Off by default so that configs written before reviewers "
        "and one-person teams deploy unchanged.",
    )
    reviewers: Reviewers = Field(
        default_factory=Reviewers, description="Reviewers of every team, besides each team's own `reviewers`.")


class Team(Strict):
    """One data-science team: its people, its use cases and where its alerts go."""

    name: TeamName
    cost_center: TagValue
    users: list[MemberName] = Field(default_factory=list, json_schema_extra=_unique_items())
    reviewers: Reviewers = Field(
        default_factory=Reviewers,
        description="Who approves and rejects the team's model versions (with `approval.reviewers`, which review "
        "every team); required when `approval.reviewers_required` is true and the team has use cases.",
    )
    use_cases: list[UseCase] = Field(
        default_factory=list,
        max_length=MAX_USE_CASES_PER_TEAM,
        description="Registry groups, each with its endpoint and pipeline. At most 4: their endpoint settings "
        "travel in the deploy function's environment (4 KB) and each pipeline adds about 90 KB to the team's template.",
    )
    alert_emails: list[Email] = Field(default_factory=list)
    reaper: ReaperOverride = ReaperOverride()
    budget: Budget | None = Field(None, description="A monthly budget on the team's cost; unset: none.")
    stages: list[StageName] | None = Field(
        None, json_schema_extra=_unique_items(),
        description="The platform's `stages` the team serves in, from the first on and in order (a team that "
        "serves in production also serves in the stage production promotes from); unset: every stage; `[]`: "
        "none, the team's endpoints run in the development account as without stages.",
    )

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        users = [(i, u) for i, u in _items(data.get("users")) if ok("users", i)]
        use_cases = [
            (i, u["name"]) for i, u in _items(data.get("use_cases"))
            if isinstance(u, dict) and ok("use_cases", i, "name")
        ]
        stages = [(i, name) for i, name in _items(data.get("stages")) if ok("stages", i)]
        return [
            *_duplicates(users, "users", "user name", UNIQUE_ITEMS_RULE),
            *_duplicates(use_cases, "use_cases", "use case name", "unique_use_case_names"),
            *_duplicates(stages, "stages", "stage name", UNIQUE_ITEMS_RULE),
        ]


def _normalized(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error location without the tag pydantic inserts for the network union (``network.existing.vpc_id``)."""
    if len(loc) > 1 and loc[0] == "network" and loc[1] in ("new", "existing"):
        return loc[:1] + loc[2:]
    return tuple(loc)


def _ok_unless(bad: list[tuple[Any, ...]]) -> Callable[[tuple[Any, ...]], bool]:
    """Whether the value at an absolute path is usable: no field error at it, inside it, or above it."""

    def ok(loc: tuple[Any, ...]) -> bool:
        return not any(error[: len(loc)] == loc or loc[: len(error)] == error for error in bad)

    return ok


def _sections(annotation: Any, value: Any, loc: tuple[Any, ...]):
    """The config sections (model, data, location) a field's value holds: itself, list items, a union member."""
    if isinstance(annotation, type) and issubclass(annotation, Strict):
        yield annotation, value, loc
    elif typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        for index, element in _items(value):
            yield from _sections(item, element, loc + (index,))
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if isinstance(m, type) and issubclass(m, Strict)]
        if len(members) == 1:
            yield from _sections(members[0], value, loc)
        for member in members if len(members) > 1 and isinstance(value, dict) else ():
            if value.get("mode", "new") in typing.get_args(member.model_fields["mode"].annotation):
                yield member, value, loc


def _section_problems(model: type[Strict], data: Any, loc: tuple[Any, ...], ok: Callable) -> list[Problem]:
    """Every several-field problem of a section and the sections inside it, at absolute locations."""
    if not isinstance(data, dict):
        return []
    data = model._with_defaults(data)
    problems = [p._replace(loc=loc + p.loc) for p in model._problems(data, lambda *path: ok(loc + path))]
    for name, field in model.model_fields.items():
        for section, value, where in _sections(field.annotation, data.get(name), loc + (name,)):
            problems += _section_problems(section, value, where, ok)
    return problems


def _stage_names(data: dict[str, Any]) -> list[Any]:
    return [stage.get("name") for _, stage in _items(data.get("stages")) if isinstance(stage, dict)]


def _team_stage_names(team: Any, stage_names: list[Any]) -> list[Any]:
    """The stage names a team's raw data serves in (unset: every stage)."""
    chosen = team.get("stages") if isinstance(team, dict) else None
    return list(stage_names) if chosen is None else chosen if isinstance(chosen, list) else []


def _largest_fleets(data: dict[str, Any], ok: Callable[..., bool]) -> dict[str, list[tuple[str, int]]] | None:
    """Per endpoint instance type, each use case's largest fleet ('team/use case', instances), of the teams that
    serve in the development account; None when a value it needs is itself bad (reported on its own)."""
    fleets: dict[str, list[tuple[str, int]]] = {}
    stage_names = _stage_names(data)
    for ti, team in _items(data.get("teams")):
        if _team_stage_names(team, stage_names):
            continue
        for ui, use_case in _items(team.get("use_cases") if isinstance(team, dict) else None):
            endpoint = use_case.get("endpoint", {}) if isinstance(use_case, dict) else None
            where = ("teams", ti, "use_cases", ui, "endpoint")
            if not (isinstance(endpoint, dict) and ok(*where)):
                return None
            scaling = endpoint.get("autoscaling") or {}
            if scaling.get("enabled"):
                largest = scaling.get("max_instances", Autoscaling.model_fields["max_instances"].default)
            else:
                largest = endpoint.get("initial_instance_count", 1)
            name = f"{team.get('name')}/{use_case.get('name')}"
            fleets.setdefault(endpoint.get("instance_type", "ml.m5.large"), []).append((name, largest))
    return fleets


def _endpoint_quota_problems(data: dict[str, Any], ok: Callable[..., bool]) -> list[Problem]:
    quotas = [
        (i, q) for i, q in _items(data.get("quotas"))
        if isinstance(q, dict) and q.get("usage") == "endpoint" and ok("quotas", i)
    ]
    fleets = _largest_fleets(data, ok) if quotas else None
    problems = []
    for index, quota in quotas if fleets is not None else ():
        using = fleets.get(quota["instance_type"], [])
        need = 2 * sum(n for _, n in using)
        if quota["desired"] < need:
            parts = " + ".join(f"{n} ({name})" for name, n in using)
            problems.append(Problem(
                ("quotas", index, "desired"), quota["desired"],
                f"quota {quota['instance_type']} for endpoint usage asks for {quota['desired']}, less than the "
                f"{need} instances its use cases can need: 2 x ({parts}), the largest fleets doubled because a "
                "blue/green update runs the old and the new fleet at once; ask for at least "
                f"{need}, or lower the use cases' instance counts or autoscaling maxima",
                "endpoint_quota_covers_fleets",
            ))
    return problems


def _team_stage_problems(
    data: dict[str, Any], ok: Callable[..., bool], stage_names: list[Any] | None
) -> list[Problem]:
    """A team's `stages`, unless the platform's stage names are bad themselves (None): names of the platform's
    stages, from the first on."""
    problems = []
    for ti, team in _items(data.get("teams")):
        chosen = team.get("stages") if isinstance(team, dict) else None
        if not (isinstance(chosen, list) and ok("teams", ti, "stages")):
            continue
        duplicates = len(set(chosen)) != len(chosen)  # reported by Team._problems
        if stage_names is None:
            continue
        unknown = [(si, name) for si, name in enumerate(chosen) if name not in stage_names]
        for si, name in unknown:
            allowed = (f"one of the platform's stages ({', '.join(map(str, stage_names))})" if stage_names
                       else "nothing: the platform has no `stages` (leave the team's `stages` out)")
            problems.append(Problem(("teams", ti, "stages", si), name, f"{name!r} is not allowed: {allowed}",
                                    "team_stages"))
        if not unknown and not duplicates and chosen != stage_names[: len(chosen)]:
            options = " or ".join(repr(stage_names[:n]) for n in range(len(stage_names) + 1))
            problems.append(Problem(
                ("teams", ti, "stages"), chosen,
                f"{chosen!r} is not allowed: a team serves in the platform's stages from the first on and in their "
                f"order, because each later stage is promoted from the one before it: {options}", "team_stages"))
    return problems


def _not_yet_with_stages(data: dict[str, Any], ok: Callable[..., bool], stage_names: list[Any]) -> list[Problem]:
    """Settings that do not yet work across accounts, refused for the teams that serve in stages."""
    problems = []
    in_development = []
    for ti, team in _items(data.get("teams")):
        if not isinstance(team, dict):
            continue
        serving = [name for name in _team_stage_names(team, stage_names) if name in stage_names]
        if not serving:
            in_development.append(team.get("name"))
            continue
        # A stage's name may be bad itself (missing, a number): reported on its own, shown as it is here.
        where = f"team {team.get('name')!r} serves in stages ({', '.join(map(str, serving))})"
        if team.get("budget") is not None and ok("teams", ti, "budget"):
            problems.append(Problem(
                ("teams", ti, "budget"), "budget",
                f"{where}, and a team budget is not yet available with stages (the budget would live in the "
                "development account, which sees the stage accounts' costs only as their organization's payer "
                "account): leave budget out, or set the team's `stages: []`", "not_yet_with_stages"))
        for ui, use_case in _items(team.get("use_cases")):
            endpoint = use_case.get("endpoint") if isinstance(use_case, dict) else None
            monitoring = endpoint.get("monitoring") if isinstance(endpoint, dict) else None
            loc = ("teams", ti, "use_cases", ui, "endpoint", "monitoring", "enabled")
            if isinstance(monitoring, dict) and monitoring.get("enabled") is True and ok(*loc):
                problems.append(Problem(
                    loc, True,
                    f"{where}, and endpoint monitoring is not yet available with stages (its pipeline and baselines "
                    "are in the development account, the captured requests in the stage's): set it false, or set "
                    "the team's `stages: []`", "not_yet_with_stages"))
    if not in_development:
        problems += [
            Problem(("quotas", qi, "usage"), "endpoint",
                    f"'endpoint' is not allowed here: an endpoint quota is not yet available with stages, because "
                    "quotas are requested in the development account and every team serves in stages (their "
                    "endpoints run in the stage accounts); leave it out", "not_yet_with_stages")
            for qi, quota in _items(data.get("quotas"))
            if isinstance(quota, dict) and quota.get("usage") == "endpoint" and ok("quotas", qi, "usage")
        ]
    return problems


def _stage_problems(data: dict[str, Any], ok: Callable[..., bool]) -> list[Problem]:
    """The rules of `stages` and of the teams' `stages`."""
    stages = [(i, stage) for i, stage in _items(data.get("stages")) if isinstance(stage, dict)]
    stage_names = [stage.get("name") for _, stage in stages]
    name_at = {i: stage.get("name") for i, stage in stages if ok("stages", i, "name")}
    # The list and every item's name, also of an item that is no mapping at all (a stage whose name is unknown);
    # not ok("stages"), which a bad field elsewhere in a stage (its account, say) would make false too.
    names_ok = isinstance(data.get("stages"), list) and all(
        ok("stages", i, "name") for i, _ in _items(data.get("stages")))
    # A team's stages are checked against the stage names only when those are good themselves.
    problems = _team_stage_problems(data, ok, stage_names if names_ok else None)
    if not stages:
        return problems
    listed = ", ".join(repr(name) for name in stage_names)
    for field, what in (("account", "the development account (12 digits, quoted)"),
                        ("region", "the region of the development account and of every stage")):
        if data.get(field) is None:
            problems.append(Problem(
                (field,), None,
                f"required when `stages` are set ({listed}): {what}, which keeps Studio, the buckets, the "
                "registry and the pipelines", "stages_need_account_and_region"))
    named = [(i, stage["name"]) for i, stage in stages if ok("stages", i, "name")]
    problems += _duplicates(named, "stages", "stage name", "unique_stage_names")
    accounts = [(i, stage["account"]) for i, stage in stages if ok("stages", i, "account")]
    development = data.get("account") if ok("account") else None
    for i, account in accounts:
        if account == development:
            problems.append(Problem(
                ("stages", i, "account"), account,
                f"{account!r} is not allowed: it is the development account (the platform's `account`); each stage "
                "needs an account of its own", "stage_accounts"))
    problems += _duplicates(accounts, "stages", "stage account", "stage_accounts")
    region = data.get("region") if ok("region") else None
    for i, stage in stages:
        if region is not None and ok("stages", i, "region") and stage.get("region") != region:
            problems.append(Problem(
                ("stages", i, "region"), stage["region"],
                f"{stage['region']!r} is not allowed: the platform's region {region!r} (SageMaker creates a model only "
                "from a model package of its own region, and a stage's models come from the development account's "
                "registry)", "stage_regions"))
        promotion = stage.get("promotion")
        if not ok("stages", i, "promotion") or promotion is None:
            continue
        if i == 0 and promotion != FIRST_STAGE_PROMOTION:
            problems.append(Problem(
                ("stages", i, "promotion"), promotion,
                f"{promotion!r} is not allowed for the first stage: 'approved' (a version's approval in the "
                "registry makes it serve here; there is no earlier stage to promote it from)", "stage_promotion"))
        elif i > 0 and promotion != LATER_STAGE_PROMOTION:
            problems.append(Problem(
                ("stages", i, "promotion"), promotion,
                f"{promotion!r} is not allowed: only the first stage promotes on 'approved'; stage "
                f"{stage.get('name')!r} serves the versions a reviewer promotes from "
                f"{repr(name_at[i - 1]) if i - 1 in name_at else 'the stage before it'} ('promoted')",
                "stage_promotion"))
    return problems + _not_yet_with_stages(data, ok, stage_names)


class PlatformConfig(Strict):
    """The whole platform: shared network and Studio domain, and one environment per team."""

    prefix: Prefix = Field(description="Starts every stack and resource name; fixed after first deploy.")
    account: AccountId | None = Field(None, description="Deploy to this account; unset: the CLI's current account.")
    region: Region | None = Field(None, description="Deploy to this region; unset: the CLI's current region.")
    network: NewNetwork | ExistingNetwork = Field(default_factory=NewNetwork, discriminator="mode")
    studio: StudioSettings = StudioSettings()
    alert_emails: list[Email] = Field(default_factory=list, description="Receive platform-wide alerts.")
    quotas: list[QuotaRequest] = Field(default_factory=list)
    reaper: ReaperSettings = ReaperSettings()
    cost_allocation: CostAllocation = CostAllocation()
    budget: Budget | None = Field(
        None, description="A monthly budget on the whole platform's cost (tag `mlops:platform`), alerting the "
        "platform topic; unset: none. With `stages`, it lives in the development account and counts the stage "
        "accounts' cost only when that account is their organization's payer account.")
    explainability: Literal["open", "clarify"] = Field(
        "open",
        description="Bias metrics and SHAP: `open` computes them in the team's own processing steps with smclarify "
        "and shap (every account); `clarify` uses SageMaker Clarify jobs and Debugger rules (only accounts that "
        "had them before 2026-07-30).",
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, json_schema_extra=_keys_checked, description="Extra tags on every taggable resource."
    )
    approval: Approval = Field(default_factory=Approval)
    break_glass_role_arns: list[RoleArn] = Field(
        default_factory=list,
        max_length=10,
        json_schema_extra=_unique_items(),
        description="Administrator roles that may still read and write every team's data bucket; every other "
        "principal but the team's own roles is denied by the bucket policy.",
    )
    stages: list[Stage] = Field(
        default_factory=list, max_length=MAX_STAGES,
        description="Accounts that serve the teams' models, in promotion order (e.g. staging, then production); "
        "`account` and `region` are then the development account's, which keeps Studio, the buckets, the "
        "registry, the pipelines and MLflow. Empty: every team serves in the development account.",
    )
    teams: list[Team] = Field(min_length=1)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> "PlatformConfig":
        """A validated config, or one ValidationError with the field errors and the several-field problems:
        pydantic alone skips the latter when any field is bad, so they are found on the raw data then (skipping
        rules whose inputs are bad themselves).

        This wraps the validator from outside rather than as a `mode="wrap"` model validator: pydantic-core's
        wrap handler (`ValidatorCallable`) reports the model's whole validator tree to the garbage collector
        without owning it, and a failed validation keeps the handler alive in the traceback frames of its
        errors, so a collection while it lives can free the model class itself."""
        token = _PLATFORM_WIDE.set(True)
        try:
            config = super().model_validate(obj, **options)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            problems = _section_problems(cls, obj, (), _ok_unless([_normalized(e["loc"]) for e in errors]))
            if not problems:
                raise
            raise ValidationError.from_exception_data(exc.title, [
                *({"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e.get("input")}
                  for e in errors),
                *_line_errors(problems),
            ]) from None
        finally:
            _PLATFORM_WIDE.reset(token)
        problems = _section_problems(cls, config.model_dump(mode="json"), (), lambda loc: True)
        if problems:
            raise _cross_field_error(cls.__name__, problems)
        return config

    @classmethod
    def _problems(cls, data: dict[str, Any], ok: Ok) -> list[Problem]:
        problems: list[Problem] = []
        prefix_ok, prefix = ok("prefix"), data.get("prefix")
        team_names = []
        for ti, team in _items(data.get("teams")):
            if not (isinstance(team, dict) and ok("teams", ti, "name")):
                continue
            name = team["name"]
            team_names.append((ti, name))
            for ui, use_case in _items(team.get("use_cases")):
                if not (prefix_ok and isinstance(use_case, dict) and ok("teams", ti, "use_cases", ui, "name")):
                    continue
                full = f"{prefix}-{name}-{use_case['name']}"
                if len(full) > MAX_GROUP_NAME_LENGTH:
                    problems.append(Problem(
                        ("teams", ti, "use_cases", ui, "name"), use_case["name"],
                        f"{use_case['name']!r} makes the registry group name {full!r} {len(full)} characters long; at "
                        f"most {MAX_GROUP_NAME_LENGTH} are allowed (prefix, team and use case together)",
                        "names_fit_after_prefixing",
                    ))
            for ui, user in _items(team.get("users")):
                profile = f"{name}-{user}"
                if ok("teams", ti, "users", ui) and len(profile) > MAX_PROFILE_NAME_LENGTH:
                    problems.append(Problem(
                        ("teams", ti, "users", ui), user,
                        f"{user!r} makes the user profile name {profile!r} {len(profile)} characters long; at most "
                        f"{MAX_PROFILE_NAME_LENGTH} are allowed",
                        "names_fit_after_prefixing",
                    ))
        problems += _duplicates(team_names, "teams", "team name", "unique_team_names")
        studio = data.get("studio")
        default_team = studio.get("default_mlflow_team") if isinstance(studio, dict) else None
        known = [name for _, name in team_names]
        if default_team is not None and ok("studio", "default_mlflow_team") and default_team not in known:
            problems.append(Problem(
                ("studio", "default_mlflow_team"), default_team,
                f"{default_team!r} is not allowed: the name of one of the config's teams ({', '.join(known)})",
                "studio_default_mlflow_team",
            ))
        quotas = [
            (i, (q["instance_type"], q["usage"])) for i, q in _items(data.get("quotas"))
            if isinstance(q, dict) and ok("quotas", i, "instance_type") and ok("quotas", i, "usage")
        ]
        problems += _duplicates(quotas, "quotas", "quota (instance_type, usage)", "unique_quotas")
        problems += _endpoint_quota_problems(data, ok)
        region = data.get("region")
        if region in REGIONS_WITHOUT_BUDGETS and ok("region"):
            if data.get("budget") is not None and ok("budget"):
                problems.append(Problem(
                    ("budget",), "budget", f"the platform has a budget, but CloudFormation has no "
                    f"AWS::Budgets::Budget in region {region!r}: deploy to another region or leave budget out",
                    "budgets_in_region"))
            problems += [
                Problem(("teams", ti, "budget"), "budget",
                        f"team {team.get('name')!r} has a budget, but CloudFormation has no AWS::Budgets::Budget in "
                        f"region {region!r}: deploy to another region or leave budget out", "budgets_in_region")
                for ti, team in _items(data.get("teams"))
                if isinstance(team, dict) and team.get("budget") is not None and ok("teams", ti, "budget")
            ]
        arns = [(i, arn) for i, arn in _items(data.get("break_glass_role_arns")) if ok("break_glass_role_arns", i)]
        problems += _duplicates(arns, "break_glass_role_arns", "break-glass role ARN", UNIQUE_ITEMS_RULE)
        problems += _stage_problems(data, ok)
        problems += _reviewer_problems(data, ok)
        return problems

    def team(self, name: str) -> Team:
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(name)

    def stages_of(self, team: Team) -> list[Stage]:
        """The stages `team` serves in, in promotion order (none: it serves in the development account)."""
        names = [stage.name for stage in self.stages] if team.stages is None else team.stages
        return [stage for stage in self.stages if stage.name in names]

    def teams_in(self, stage: Stage) -> list[Team]:
        """The teams that serve in `stage`, in config order."""
        return [team for team in self.teams if stage in self.stages_of(team)]

    def reviewers_of(self, team: Team) -> Reviewers:
        """`team`'s own reviewers and the platform's, each once, the team's first."""
        users = list(dict.fromkeys([*team.reviewers.users, *self.approval.reviewers.users]))
        arns = list(dict.fromkeys([*team.reviewers.role_arns, *self.approval.reviewers.role_arns]))
        return Reviewers(users=users, role_arns=arns)

    def serves_in_development(self, team: Team) -> bool:
        return not self.stages_of(team)


def _reviewer_problems(data: dict[str, Any], ok: Ok) -> list[Problem]:
    """Reviewer users are users of the config; their profile names fit; reviewers exist where they are required."""
    problems: list[Problem] = []
    teams = [(ti, t) for ti, t in _items(data.get("teams")) if isinstance(t, dict)]
    known = sorted({u for ti, t in teams for ui, u in _items(t.get("users")) if ok("teams", ti, "users", ui)})
    users_ok = all(ok("teams", ti, "users") for ti, _ in teams)
    approval = data.get("approval") if isinstance(data.get("approval"), dict) else {}
    shared = approval.get("reviewers") if isinstance(approval.get("reviewers"), dict) else {}
    lists = [(("approval", "reviewers"), shared, None)]
    lists += [(("teams", ti, "reviewers"), t.get("reviewers") if isinstance(t.get("reviewers"), dict) else {}, t)
              for ti, t in teams]
    for where, reviewers, team in lists:
        for ui, user in _items(reviewers.get("users")):
            if not ok(*where, "users", ui):
                continue
            if users_ok and user not in known:
                allowed = ", ".join(known) if known else "none: the config's teams list no users"
                problems.append(Problem(
                    (*where, "users", ui), user,
                    f"{user!r} is not allowed: a user of one of the config's teams, the Studio domain's users "
                    f"({allowed})", "reviewers_are_users"))
            reviewed = [team] if team is not None else [t for _, t in teams]
            for reviewed_team in reviewed:
                name = reviewed_team.get("name")
                if not isinstance(name, str):
                    continue
                profile = naming.reviewer_profile_name(name, user)
                if len(profile) > MAX_PROFILE_NAME_LENGTH:
                    problems.append(Problem(
                        (*where, "users", ui), user,
                        f"{user!r} makes the reviewer profile name {profile!r} {len(profile)} characters long; at "
                        f"most {MAX_PROFILE_NAME_LENGTH} are allowed", "names_fit_after_prefixing"))
    if approval.get("reviewers_required") is True and ok("approval"):
        shared_any = bool(shared.get("users") or shared.get("role_arns"))
        for ti, team in teams:
            own = team.get("reviewers") if isinstance(team.get("reviewers"), dict) else {}
            if team.get("use_cases") and not shared_any and not (own.get("users") or own.get("role_arns")) \
                    and ok("teams", ti, "reviewers"):
                problems.append(Problem(
                    ("teams", ti, "reviewers"), own,
                    f"team {team.get('name')!r} has no reviewers, but approval.reviewers_required is true: list "
                    f"Studio users (reviewers.users) or IAM role ARNs (reviewers.role_arns) under teams[{ti}].reviewers, "
                    "or under approval.reviewers for every team", "reviewers_when_required"))
    return problems


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in _normalized(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":  # a mapping's key, ('tags', 'aws:x', '[key]'): "tags: key 'aws:x' is not ..."
        return f"{_location(loc[:-2])}: key {_what_is_wrong(_location(loc), kind, value, message)}"
    where = _location(loc)
    if where == "(top level)" and kind not in ("extra_forbidden", "missing"):
        return message
    return f"{where}: {_what_is_wrong(where, kind, value, message)}"


def _what_is_wrong(where: str, kind: str, value: Any, message: str) -> str:
    if kind == "cross_field":
        return message
    if kind == "extra_forbidden":
        return f"unknown key (value {value!r}); remove it or check its spelling"
    if kind == "missing":
        return "required field is missing"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        tags = "'new' (a VPC the platform creates) or 'existing'" if where == "network" else "see docs/config.md"
        if kind == "union_tag_not_found":
            return f"'mode' is missing: {tags}"
        tag = value.get("mode") if isinstance(value, dict) else value
        return f"mode {tag!r} is not allowed: {tags}"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return (
            f"{value!r} is not allowed: text; put it in quotes (\"{value}\") so that YAML does not "
            "read it as a number (which also drops leading zeros)"
        )
    if isinstance(value, (dict, list)) and len(repr(value)) > 80:  # the message names what is wrong in it
        return message
    if kind in ("bool_type", "int_type", "float_type") and isinstance(value, str):
        wanted = {"bool_type": "true or false", "int_type": "a whole number", "float_type": "a number"}[kind]
        return f"{value!r} is not allowed: {wanted}, written without quotes (a quoted value is text)"
    if message.startswith(repr(value)) or where in message:
        return message
    return f"{value!r} is not allowed: {message}"


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid platform config ({error.error_count()} problem(s)):"]
    lines += [f"  - {_describe(e)}" for e in error.errors(include_url=False)]
    return "\n".join(lines)


def parse_config(data: Any, source: str = "config") -> PlatformConfig:
    """Validate already-parsed YAML data."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | Path) -> PlatformConfig:
    """Read and validate a platform config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist (choose one with -c config=PATH)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    return parse_config(data, str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to complete and check the config file (the same rules as the loader's, but
    those in `LOADER_ONLY_RULES`)."""
    schema = PlatformConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "SageMaker MLOps platform config"
    return schema


def _main(argv: list[str]) -> int:
    """``python -m stacks.config instance-types <usage>``: SageMaker's instance types for a usage, one a line."""
    if len(argv) != 2 or argv[0] != "instance-types" or argv[1] not in INSTANCE_TYPES:
        print(f"usage: python -m stacks.config instance-types {{{','.join(INSTANCE_TYPES)}}}", file=sys.stderr)
        return 2
    print("\n".join(sorted(INSTANCE_TYPES[argv[1]])))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
