"""The platform configuration: one YAML file, validated by pydantic before any construct is built.

`load_config(path)` returns a `PlatformConfig` or raises `ConfigError`, whose message names every
bad field by its path (``teams[0].users[1]``), the bad value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline_code import definition as definition_module
from pipeline_code import problem as problem_module
from stacks.regions import SUPPORTED_REGIONS

# Longest `<prefix>-<team>-<use case>`: leaves room for `-v<5 digits>` and `-<9 char digest>` so run-time
# model and endpoint-config names never need shortening (SageMaker allows 63 characters).
MAX_GROUP_NAME_LENGTH = 47
MAX_PROFILE_NAME_LENGTH = 63
MAX_USE_CASES_PER_TEAM = 4
IDLE_MINUTES_MIN = 60
IDLE_MINUTES_MAX = 525_600


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the person who wrote it."""


def _pattern(regex: str, allowed: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not allowed: {allowed}")
        return value

    return AfterValidator(check)


Prefix = Annotated[str, _pattern(r"[a-z][a-z0-9]{1,9}", "2-10 lowercase letters or digits, starting with a letter")]
TeamName = Annotated[
    str,
    _pattern(
        r"[a-z][a-z0-9]{1,19}",
        "2-20 lowercase letters or digits, starting with a letter (no hyphens, so that no team's "
        "resource names can start with another team's)",
    ),
]
UserName = Annotated[
    str,
    _pattern(r"[a-z0-9](-?[a-z0-9]){0,39}", "1-40 lowercase letters, digits and single hyphens, not at either end"),
]
UseCaseName = Annotated[
    str,
    _pattern(r"[a-z0-9](-?[a-z0-9]){0,39}", "1-40 lowercase letters, digits and single hyphens, not at either end"),
]
InstanceType = Annotated[
    str, _pattern(r"ml\.[a-z0-9-]+\.[a-z0-9]+", "a SageMaker instance type such as 'ml.m5.large' (must start with 'ml.')")
]
AccountId = Annotated[str, _pattern(r"\d{12}", "exactly 12 digits")]
TagValue = Annotated[
    str, _pattern(r"[\w .:/=+\-@]{1,256}", "1-256 letters, digits, spaces and _ . : / = + - @")
]
RoleArn = Annotated[
    str,
    _pattern(
        r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
        "an IAM role ARN such as 'arn:aws:iam::123456789012:role/Admin' (a role, not a user or an assumed-role session)",
    ),
]
Email = Annotated[str, _pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address such as 'team@example.com'")]
VpcId = Annotated[str, _pattern(r"vpc-[0-9a-f]{8,17}", "a VPC id such as 'vpc-0123456789abcdef0'")]
SubnetId = Annotated[str, _pattern(r"subnet-[0-9a-f]{8,17}", "a subnet id such as 'subnet-0123456789abcdef0'")]
SecurityGroupId = Annotated[str, _pattern(r"sg-[0-9a-f]{8,17}", "a security group id such as 'sg-0123456789abcdef0'")]
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON_FIELD = {
    # name, numbers allowed, names allowed, special characters beyond , - * /
    "minutes": (0, 59, (), ""),
    "hours": (0, 23, (), ""),
    "day-of-month": (1, 31, (), "?LW"),
    "month": (1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), ""),
    "day-of-week": (1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), "?L#"),
    "year": (1970, 2199, (), ""),
}
SCHEDULE_HELP = (
    "an EventBridge schedule: 'rate(1 hour)', 'rate(5 minutes)' (a positive number; singular unit for 1, "
    "plural otherwise) or a six-field 'cron(minutes hours day-of-month month day-of-week year)' with '?' in "
    "exactly one of day-of-month and day-of-week, e.g. 'cron(0 * * * ? *)'"
)


def _cron_field_ok(text: str, name: str) -> bool:
    low, high, names, special = _CRON_FIELD[name]
    if text == "?":
        return "?" in special
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
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


ScheduleExpression = Annotated[str, AfterValidator(_schedule)]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}: each {what} must appear once")
        seen.add(value)


class NewNetwork(Strict):
    """A VPC the platform creates: isolated subnets in two zones and the endpoints Studio needs."""

    mode: Literal["new"] = "new"
    cidr: str = Field("10.80.0.0/16", description="IPv4 range of the new VPC, /16 to /24.")
    availability_zones: list[str] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="Two zone names to use; by default the first two zones of the region (resolved at deploy time).",
    )

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not allowed: an IPv4 CIDR block such as '10.80.0.0/16' ({exc})") from None
        if network.version != 4 or not 16 <= network.prefixlen <= 24:
            raise ValueError(f"{value!r} is not allowed: an IPv4 CIDR block with a prefix length from /16 to /24")
        return value


class ExistingNetwork(Strict):
    """A VPC that already exists; the ids are used as given (no lookups at synth time)."""

    mode: Literal["existing"]
    vpc_id: VpcId
    subnet_ids: list[SubnetId] = Field(min_length=1, description="Private subnets for Studio and jobs.")
    security_group_ids: list[SecurityGroupId] = Field(
        min_length=1, max_length=5, description="Security groups for Studio apps (at most 5)."
    )

    @field_validator("subnet_ids", "security_group_ids")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        _unique(values, "id")
        return values


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

    @model_validator(mode="after")
    def _max_not_below_default(self) -> "StudioSettings":
        if self.max_idle_timeout_minutes < self.idle_timeout_minutes:
            raise ValueError(
                f"max_idle_timeout_minutes ({self.max_idle_timeout_minutes}) must be at least "
                f"idle_timeout_minutes ({self.idle_timeout_minutes})"
            )
        return self


class QuotaUsage(str, Enum):
    """The usages SageMaker names in its instance quotas ('<type> for <usage>')."""

    processing = "processing"
    transform = "transform"
    training = "training"
    spot_training = "spot-training"
    endpoint = "endpoint"
    notebook_instance = "notebook-instance"


class QuotaRequest(Strict):
    """A SageMaker instance quota the platform raises (never lowers) on deploy."""

    instance_type: InstanceType
    usage: QuotaUsage
    desired: StrictInt = Field(gt=0, le=10_000, description="The applied value the platform asks for.")


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
    enabled: StrictBool = False
    sampling_percent: StrictInt = Field(20, ge=1, le=100)


class Alarms(Strict):
    """Thresholds of the per-endpoint alarms that roll an update back."""

    invocation_5xx_errors: StrictInt = Field(1, ge=1, description="5XX errors per minute that trip the alarm.")
    model_latency_ms: StrictInt = Field(1000, ge=1, le=3_600_000, description="Average model latency that trips the alarm.")


class EndpointSettings(Strict):
    """The endpoint that serves a use case's newest approved model version."""

    instance_type: InstanceType = "ml.m5.large"
    initial_instance_count: StrictInt = Field(1, ge=1, le=100)
    deployment: Deployment = Deployment()
    data_capture: DataCapture = DataCapture()
    alarms: Alarms = Alarms()
    keep_previous_configs: StrictInt = Field(2, ge=1, le=20, description="Older endpoint configs and models kept for rollback.")

    @model_validator(mode="after")
    def _shifting_needs_a_fleet(self) -> "EndpointSettings":
        if self.deployment.style != "all_at_once" and self.initial_instance_count < 2:
            raise ValueError(
                f"deployment.style {self.deployment.style!r} with initial_instance_count "
                f"{self.initial_instance_count} is not allowed: canary and linear shifting need at least 2 "
                "instances (each step is at most half the fleet); use style 'all_at_once' or more instances"
            )
        return self


ColumnName = Annotated[
    str,
    _pattern(
        r"[A-Za-z_][A-Za-z0-9_.-]{0,63}",
        "a column name of 1-64 letters, digits, _ . - starting with a letter or _ (no commas or spaces)",
    ),
]
ClassLabel = Annotated[str, _pattern(r"[A-Za-z0-9_.-]{1,64}", "1-64 letters, digits, _ . - (no commas)")]
DataPrefix = Annotated[
    str,
    _pattern(
        r"([a-z0-9][a-z0-9._-]*/)+",
        "a key prefix in the team bucket such as 'pipeline/data/churn/': lowercase segments, each ending in '/' "
        "(the trailing '/' keeps it from also matching a sibling prefix)",
    ),
]


class BiasFacet(Strict):
    """A sensitive column and the values that form its sensitive group."""

    name: ColumnName = Field(description="A feature or context column.")
    values: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^,;|=]+$")]] = Field(
        min_length=1, max_length=20, description="Values of the sensitive group (no , ; | or =)."
    )


class QualityGate(Strict):
    metric: str = Field(
        description="Evaluation metric the gate reads. binary: " + ", ".join(problem_module.QUALITY_METRICS["binary"])
        + "; multiclass: " + ", ".join(problem_module.QUALITY_METRICS["multiclass"])
        + "; regression: " + ", ".join(problem_module.QUALITY_METRICS["regression"]) + "."
    )
    threshold: float = Field(description="Registration needs the metric at or above it (at or below for the "
                             "error metrics rmse, mae and mse).")


DEFAULT_OBJECTIVES = {"binary": "AUC", "multiclass": "F1macro", "regression": "RMSE"}
DEFAULT_QUALITY_GATES = {"binary": ("auc", 0.8), "multiclass": ("weighted_f1", 0.7), "regression": ("r2", 0.6)}


class SplitSettings(Strict):
    mode: Literal["random", "ordered", "by_key", "stratified"] | None = Field(
        None, description="Default split of the pipeline; unset: stratified for classification, random for regression."
    )
    train_fraction: float = Field(0.7, gt=0, lt=1)
    validation_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    seed: StrictInt = Field(42, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "SplitSettings":
        total = self.train_fraction + self.validation_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train_fraction + validation_fraction + test_fraction is {total:g}, not allowed: they must sum to 1"
            )
        return self


class ProblemSettings(Strict):
    """What the use case's pipeline predicts, from which columns, and what a registrable model must reach."""

    problem_type: Literal["binary", "multiclass", "regression"] = Field(
        description="binary, multiclass or regression: decides the AutoML problem type, the XGBoost objective, the "
        "evaluation and the metrics a quality gate may read."
    )
    target: ColumnName = Field(description="The column the model predicts.")
    features: list[ColumnName] = Field(
        default_factory=list, max_length=500,
        description="Model inputs in order; empty means every column but target, id, time, key, context and exclude.",
    )
    exclude: list[ColumnName] = Field(default_factory=list, max_length=500, description="Columns never used as features.")
    id_column: ColumnName | None = Field(None, description="Row identity; never a model input.")
    time_column: ColumnName | None = Field(None, description="Event time; the ordered split needs it.")
    key_column: ColumnName | None = Field(None, description="Grouping key (customer, product); the by_key split needs it.")
    context: list[ColumnName] = Field(
        default_factory=list, max_length=50, description="Columns kept with the test rows for bias analysis, never model inputs."
    )
    positive_label: ClassLabel = Field("1", description="Positive class of a binary problem.")
    classes: list[ClassLabel] = Field(default_factory=list, max_length=100, description="Class labels of a multiclass problem (at least 3).")
    facets: list[BiasFacet] = Field(default_factory=list, max_length=10, description="Sensitive facets analysed for bias.")
    objective: str | None = Field(
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

    @model_validator(mode="after")
    def _consistent(self) -> "ProblemSettings":
        problems = []
        problem_type = self.problem_type
        objectives = problem_module.AUTOML_OBJECTIVES[problem_type]
        if self.objective not in objectives:
            problems.append(
                f"objective {self.objective!r} is not allowed for problem_type {problem_type!r}: "
                f"use one of {', '.join(objectives)}"
            )
        metrics = problem_module.QUALITY_METRICS[problem_type]
        if self.quality_gate.metric not in metrics:
            problems.append(
                f"quality_gate.metric {self.quality_gate.metric!r} is not allowed for problem_type {problem_type!r}: "
                f"use one of {', '.join(metrics)}"
            )
        gate = self.quality_gate
        direction = metrics.get(gate.metric)
        if direction == "min" and gate.threshold < 0:
            problems.append(f"quality_gate.threshold {gate.threshold} is not allowed for {gate.metric}: it must be >= 0")
        if gate.metric != "r2" and direction == "max" and not 0 <= gate.threshold <= 1:
            problems.append(f"quality_gate.threshold {gate.threshold} is not allowed for {gate.metric}: it must be in [0, 1]")
        if gate.metric == "r2" and gate.threshold > 1:
            problems.append(f"quality_gate.threshold {gate.threshold} is not allowed for r2: it must be <= 1")
        if problem_type == "multiclass" and len(self.classes) < 3:
            problems.append(
                f"classes {self.classes} is not allowed for problem_type 'multiclass': list at least 3 class labels"
            )
        if problem_type != "multiclass" and self.classes:
            problems.append(f"classes {self.classes} is only allowed for problem_type 'multiclass'")
        if len(set(self.classes)) != len(self.classes):
            problems.append(f"classes {self.classes} has duplicates")
        roles = {}
        for role in ("target", "id_column", "time_column", "key_column"):
            column = getattr(self, role)
            if column is None:
                continue
            if column in roles:
                problems.append(f"{role} {column!r} is not allowed: it is already the {roles[column]}")
            roles[column] = role
        for field_name in ("features", "exclude", "context"):
            values = getattr(self, field_name)
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                problems.append(f"{field_name} has duplicate column(s) {duplicates}")
            clash = [v for v in values if v in roles]
            if clash:
                problems.append(f"{field_name} {clash} is not allowed: already the {roles[clash[0]]}")
        overlap = sorted(set(self.features) & set(self.context))
        if overlap:
            problems.append(f"context {overlap} is not allowed: these columns are also features")
        if self.features and self.exclude:
            problems.append("exclude is only allowed when features is empty ('all but' the excluded columns)")
        for index, facet in enumerate(self.facets):
            where = f"facets[{index}].name {facet.name!r}"
            if facet.name in roles:
                problems.append(f"{where} is not allowed: it is the {roles[facet.name]}")
            if self.features and facet.name not in self.features and facet.name not in self.context:
                problems.append(
                    f"{where} is not among the columns: use one of the features or context columns "
                    f"({', '.join(self.features + self.context)})"
                )
            if facet.name in self.exclude:
                problems.append(f"{where} is not allowed: it is excluded; list it under context to analyse it")
        if problems:
            raise ValueError("; ".join(problems))
        allowed = self.to_problem().allowed_split_modes()
        if self.split.mode not in allowed:
            needs = {"ordered": "time_column", "by_key": "key_column", "stratified": "a classification problem_type"}
            problems.append(
                f"split.mode {self.split.mode!r} is not allowed here: it needs {needs[self.split.mode]}; "
                f"this problem allows {', '.join(allowed)}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_problem(self) -> "problem_module.Problem":
        """The problem as the pipeline definition and its step scripts see it."""
        return problem_module.Problem(
            problem_type=self.problem_type, target=self.target, features=tuple(self.features),
            exclude=tuple(self.exclude), id_column=self.id_column or "", time_column=self.time_column or "",
            key_column=self.key_column or "", context=tuple(self.context), positive_label=self.positive_label,
            classes=tuple(self.classes), input_layout=self.input_layout,
            facets=tuple(problem_module.Facet(f.name, tuple(f.values)) for f in self.facets),
        )


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

    def pipeline_spec(self) -> "definition_module.PipelineSpec":
        """What the use case's pipeline definition is built from."""
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
        )


# `<prefix>-platform-...` names the platform's own resources (its stack, its alarms, which its topic admits).
RESERVED_TEAM_NAMES = frozenset({"platform", "network"})


class Team(Strict):
    name: TeamName
    cost_center: TagValue
    users: list[UserName] = Field(default_factory=list)
    use_cases: list[UseCase] = Field(
        default_factory=list,
        max_length=MAX_USE_CASES_PER_TEAM,
        description="Registry groups, each with its endpoint and pipeline. At most 4: their endpoint settings "
        "travel in the deploy function's environment (4 KB) and each pipeline adds about 90 KB to the team's template.",
    )
    alert_emails: list[Email] = Field(default_factory=list)
    reaper: ReaperOverride = ReaperOverride()

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_TEAM_NAMES:
            raise ValueError(
                f"{name!r} is not allowed: reserved for the platform's own resources (<prefix>-{name}-...); "
                f"choose another name than {', '.join(sorted(RESERVED_TEAM_NAMES))}"
            )
        return name

    @field_validator("users")
    @classmethod
    def _unique_users(cls, users: list[str]) -> list[str]:
        _unique(users, "user name")
        return users

    @field_validator("use_cases")
    @classmethod
    def _unique_use_cases(cls, use_cases: list[UseCase]) -> list[UseCase]:
        _unique([u.name for u in use_cases], "use case name")
        return use_cases


class PlatformConfig(Strict):
    """The whole platform: shared network and Studio domain, and one environment per team."""

    prefix: Prefix = Field(description="Starts every stack and resource name; fixed after first deploy.")
    account: AccountId | None = Field(None, description="Deploy to this account; unset: the CLI's current account.")
    region: str | None = Field(None, description="Deploy to this region; unset: the CLI's current region.")
    network: NewNetwork | ExistingNetwork = Field(default_factory=NewNetwork, discriminator="mode")
    studio: StudioSettings = StudioSettings()
    alert_emails: list[Email] = Field(default_factory=list, description="Receive platform-wide alerts.")
    quotas: list[QuotaRequest] = Field(default_factory=list)
    reaper: ReaperSettings = ReaperSettings()
    tags: dict[str, TagValue] = Field(default_factory=dict, description="Extra tags on every taggable resource.")
    break_glass_role_arns: list[RoleArn] = Field(
        default_factory=list,
        max_length=10,
        description="Administrator roles that may still read and write every team's data bucket; every other "
        "principal but the team's own roles is denied by the bucket policy.",
    )
    teams: list[Team] = Field(min_length=1)

    @field_validator("region")
    @classmethod
    def _supported_region(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not allowed: one of {', '.join(SUPPORTED_REGIONS)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if not re.fullmatch(r"[\w .:/=+\-@]{1,128}", key) or key.lower().startswith(("aws:", "mlops:")):
                raise ValueError(
                    f"tag key {key!r} is not allowed: 1-128 letters, digits, spaces and _ . : / = + - @, "
                    "not starting with 'aws:' or 'mlops:' (reserved)"
                )
        return tags

    @field_validator("break_glass_role_arns")
    @classmethod
    def _unique_break_glass_roles(cls, arns: list[str]) -> list[str]:
        _unique(arns, "break-glass role ARN")
        return arns

    @field_validator("teams")
    @classmethod
    def _unique_teams(cls, teams: list[Team]) -> list[Team]:
        _unique([t.name for t in teams], "team name")
        return teams

    @field_validator("quotas")
    @classmethod
    def _unique_quotas(cls, quotas: list[QuotaRequest]) -> list[QuotaRequest]:
        _unique([(q.instance_type, q.usage.value) for q in quotas], "quota (instance_type, usage)")
        return quotas

    @model_validator(mode="after")
    def _names_fit_after_prefixing(self) -> "PlatformConfig":
        for ti, team in enumerate(self.teams):
            for ui, use_case in enumerate(team.use_cases):
                full = f"{self.prefix}-{team.name}-{use_case.name}"
                if len(full) > MAX_GROUP_NAME_LENGTH:
                    raise ValueError(
                        f"teams[{ti}].use_cases[{ui}].name: {use_case.name!r} makes the registry group name "
                        f"{full!r} {len(full)} characters long; at most {MAX_GROUP_NAME_LENGTH} are allowed "
                        "(prefix, team and use case together)"
                    )
            for ui, user in enumerate(team.users):
                profile = f"{team.name}-{user}"
                if len(profile) > MAX_PROFILE_NAME_LENGTH:
                    raise ValueError(
                        f"teams[{ti}].users[{ui}]: {user!r} makes the user profile name {profile!r} "
                        f"{len(profile)} characters long; at most {MAX_PROFILE_NAME_LENGTH} are allowed"
                    )
        return self

    def team(self, name: str) -> Team:
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(name)


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("new", "existing") and path.endswith("network"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    where = _location(error["loc"])
    kind = error["type"]
    value = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"{where}: unknown key (value {value!r}); remove it or check its spelling"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return (
            f"{where}: {value!r} is not allowed: text; put it in quotes (\"{value}\") so that YAML does not "
            "read it as a number (which also drops leading zeros)"
        )
    if where == "(top level)":
        return message
    if isinstance(value, (dict, list)) and len(repr(value)) > 80:  # the message names what is wrong in it
        return f"{where}: {message}"
    if kind in ("bool_type", "int_type") and isinstance(value, str):
        wanted = "true or false" if kind == "bool_type" else "a whole number"
        return f"{where}: {value!r} is not allowed: {wanted}, written without quotes (a quoted value is text)"
    if message.startswith(repr(value)) or where in message:
        return f"{where}: {message}"
    return f"{where}: {value!r} is not allowed: {message}"


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
    """The JSON Schema editors use to complete and check the config file."""
    schema = PlatformConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "SageMaker MLOps platform config"
    return schema
