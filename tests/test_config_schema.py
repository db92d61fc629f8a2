"""The editor schema rejects what the loader rejects, and the loader reports every problem at once.

`config/platform.schema.json` is generated from the same declarations the loader enforces (`stacks/config.py`).
Each mistake below is applied to the example config: the loader must reject it with a message naming the field
path and the offending value, and the schema must reject it at or above that path too. Only rules that involve
several fields (`LOADER_ONLY`) may be the loader's alone; they have a corpus of their own.
"""

from __future__ import annotations

import copy
import json
import random
import re
import typing
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from stacks import config as config_module
from stacks.config import (
    CIDR_REGEX,
    LOADER_ONLY_RULES,
    SCHEDULE_REGEX,
    ConfigError,
    PlatformConfig,
    Team,
    format_validation_error,
    parse_config,
)
from tests.conftest import EDGE_CONFIGS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())
MULTI_ACCOUNT = yaml.safe_load((ROOT / "config" / "multi-account.yaml").read_text())
BASES = {"platform": EXAMPLE, "multi-account": MULTI_ACCOUNT}
SCHEMA = json.loads((ROOT / "config" / "platform.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# Rules about several fields that JSON Schema (without if/then per problem type or cross-item comparisons) does
# not say; the loader checks them on every load. A rule missing here that the schema does not check fails
# test_every_single_field_mistake_is_rejected_by_both.
LOADER_ONLY = {
    "names_fit_after_prefixing",  # lengths of prefix + team + use case (and team + user) together
    "unique_team_names",  # uniqueness of one key of list items that are objects (uniqueItems compares whole items)
    "unique_use_case_names",  # same, per team
    "unique_quotas",  # same, a pair of keys
    "studio_idle_timeouts",  # compares two fields
    "studio_default_mlflow_team",  # a team name against the names of the config's teams
    "reviewers_are_users",  # a reviewer name against the users of every team
    "reviewers_when_required",  # a team's reviewers against the platform's switch and reviewers
    "fleet_for_shifting",  # deployment style against the instance count
    "autoscaling_limits",  # min, initial, max and floors against each other; floor names unique
    "endpoint_quota_covers_fleets",  # a quota against the sum of the use cases' largest fleets
    "monitoring_needs_capture",  # monitoring against data capture
    "budgets_in_region",  # a team's budget against the platform's region
    "stages_need_account_and_region",  # the platform's account and region against its stages
    "unique_stage_names",  # uniqueness of one key of list items that are objects
    "stage_accounts",  # each stage's account against the platform's and the other stages'
    "stage_regions",  # each stage's region against the platform's
    "stage_promotion",  # a stage's promotion depends on its position in the list
    "team_stages",  # a team's stage names against the platform's stages and their order
    "not_yet_with_stages",  # a team's budget, monitoring and the endpoint quotas against where the teams serve
    "split_fractions",  # a sum of three fields
    "problem_objective",  # allowed objectives depend on problem_type (the schema knows the union of them)
    "problem_quality_gate",  # allowed metrics depend on problem_type, the threshold's range on the metric
    "problem_classes",  # depends on problem_type
    "problem_columns",  # compares the role columns and lists with each other
    "problem_facets",  # a facet against the feature, context and exclude lists
    "problem_split_mode",  # against time_column, key_column and problem_type
}

EXISTING_NETWORK = {
    "mode": "existing",
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "security_group_ids": ["sg-0123456789abcdef0"],
}
DELETE = object()


class Mistake(NamedTuple):
    path: str  # dotted, list indexes as numbers; missing mappings on the way are created
    value: Any  # the new value, or DELETE
    where: str | None = None  # the field path the message must name (default: from `path`)
    shown: str | None = None  # how the message shows the offending value (default: its repr)
    existing: bool = False  # apply to the example with an existing network
    base: str = "platform"  # the example it is applied to: config/platform.yaml or config/multi-account.yaml (MA)

    def data(self) -> dict:
        data = copy.deepcopy(BASES[self.base])
        if self.existing:
            data["network"] = copy.deepcopy(EXISTING_NETWORK)
        *parents, last = [int(p) if p.isdigit() else p for p in self.path.split(".")]
        node = data
        for part in parents:
            node = node[part] if isinstance(part, int) else node.setdefault(part, {})
        if self.value is DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(self.value)
        return data

    def field_path(self) -> str:
        return re.sub(r"\.(\d+)", r"[\1]", self.where or self.path)

    def value_text(self) -> str:
        if self.shown is not None:
            return self.shown
        return "required field is missing" if self.value is DELETE else repr(self.value)


P1 = "teams.1.use_cases.0.problem"  # churn: binary, key split, context and a facet, no features
P2 = "teams.2.use_cases.0.problem"  # pricing: regression, features, ordered split
E0 = "teams.0.use_cases.0.endpoint"  # fraud: canary on 2 instances, autoscaling 2-4 with two floors
ARN = "arn:aws:iam::123456789012:role/Admin"
MA = "multi-account"  # stages staging (approved) and production (promoted); fraud serves in both, churn in staging
STAGE = {"account": "444444444444", "region": "eu-west-1", "promotion": "promoted"}

SINGLE_FIELD = [
    # top level
    Mistake("prefix", "My_Platform"),
    Mistake("prefix", "x"),
    Mistake("prefix", "abcdefghijk"),
    Mistake("prefix", 12, shown="12"),
    Mistake("prefix", DELETE),
    Mistake("unknown_key", "x", shown="unknown key"),
    Mistake("account", "12345"),
    Mistake("account", "1234567890123"),
    Mistake("account", 123456789012, shown="put it in quotes"),
    Mistake("account", "١٢٣٤٥٦٧٨٩٠١٢"),  # Arabic-Indic digits: not an account id
    Mistake("region", "us-east-9"),
    Mistake("region", "Frankfurt"),
    Mistake("alert_emails.0", "not-an-email"),
    Mistake("alert_emails", "ops@example.com"),
    Mistake("tags", {"aws:owner": "x"}, where="tags: key", shown="'aws:owner'"),
    Mistake("tags", {"MLOps:team": "x"}, where="tags: key", shown="'MLOps:team'"),
    Mistake("tags", {"bad,key": "x"}, where="tags: key", shown="'bad,key'"),
    Mistake("tags.project", ""),
    Mistake("tags.project", 2024, shown="put it in quotes"),
    Mistake("tags", ["project"]),
    Mistake("break_glass_role_arns", ["arn:aws:iam::123456789012:user/admin"], where="break_glass_role_arns[0]",
            shown="'arn:aws:iam::123456789012:user/admin'"),
    Mistake("break_glass_role_arns", ["arn:aws:sts::123456789012:assumed-role/Admin/me"],
            where="break_glass_role_arns[0]", shown="assumed-role"),
    Mistake("break_glass_role_arns", [ARN, ARN], shown=f"duplicate break-glass role ARN {ARN!r}"),
    Mistake("break_glass_role_arns", [f"{ARN}{i}" for i in range(11)], shown="at most 10 items"),
    Mistake("teams", [], shown="at least 1 item"),
    Mistake("teams", {"fraud": {}}, shown="valid list"),
    # network
    Mistake("network", "new", shown="'new'"),
    Mistake("network", {"mode": "somewhere"}, shown="'somewhere'"),
    Mistake("network", {"cidr": "10.80.0.0/16"}, shown="'mode' is missing"),
    Mistake("network.mode", "NEW", where="network", shown="'NEW'"),
    Mistake("network.cidr", "10.0.0.0/33"),
    Mistake("network.cidr", "10.0.0.1/16"),
    Mistake("network.cidr", "10.0.0.0/8"),
    Mistake("network.cidr", "10.80.0.0/255.255.0.0"),
    Mistake("network.cidr", "10.80.0.0/016"),
    Mistake("network.cidr", "fd00::/16"),
    Mistake("network.cidr", "010.80.0.0/16"),
    Mistake("network.availability_zones", ["eu-west-1a"], shown="at least 2 items"),
    Mistake("network.availability_zones", "eu-west-1a"),
    Mistake("network.vpc_id", "vpc-0123456789abcdef0", shown="unknown key"),
    Mistake("network.mode", "Existing", where="network", shown="'Existing'", existing=True),
    Mistake("network.vpc_id", "vpc-123", existing=True),
    Mistake("network.vpc_id", DELETE, existing=True),
    Mistake("network.subnet_ids", [], shown="at least 1 item", existing=True),
    Mistake("network.subnet_ids.0", "subnet-123", existing=True),
    Mistake("network.subnet_ids", ["subnet-0123456789abcdef0"] * 2, shown="duplicate id 'subnet-0123456789abcdef0'",
            existing=True),
    Mistake("network.security_group_ids.0", "sg-1", existing=True),
    Mistake("network.security_group_ids", [f"sg-0123456789abcdef{i}" for i in range(6)], shown="at most 5 items",
            existing=True),
    Mistake("network.security_group_ids", ["sg-0123456789abcdef0"] * 2, shown="duplicate id 'sg-0123456789abcdef0'",
            existing=True),
    Mistake("network.cidr", "10.0.0.0/16", shown="unknown key", existing=True),
    # studio
    Mistake("studio", "big"),
    Mistake("studio.idle_timeout_minutes", 59, shown="59"),
    Mistake("studio.idle_timeout_minutes", 525601, shown="525601"),
    Mistake("studio.idle_timeout_minutes", "120"),
    Mistake("studio.idle_timeout_minutes", 90.5, shown="90.5"),
    Mistake("studio.max_idle_timeout_minutes", 0, shown="0"),
    Mistake("studio.home_efs_on_delete", "keep"),
    Mistake("studio.home_efs_on_delete", True, shown="True"),
    Mistake("studio.default_mlflow_team", "Fraud"),
    Mistake("studio.default_mlflow_team", 7, shown="7"),
    Mistake("studio.colour", "blue", shown="unknown key"),
    # quotas
    Mistake("quotas", "all"),
    Mistake("quotas.0.instance_type", "c5.large"),
    Mistake("quotas.0.usage", "inference"),
    Mistake("quotas.0.desired", 0, shown="0"),
    Mistake("quotas.0.desired", 10001, shown="10001"),
    Mistake("quotas.0.desired", "4"),
    Mistake("quotas.0.desired", DELETE),
    Mistake("quotas.0.region", "eu-west-1", shown="unknown key"),
    # reaper
    Mistake("reaper", None, shown="None"),
    Mistake("reaper.enabled", "yes"),
    Mistake("reaper.schedule", "every 1 hour"),
    *(Mistake("reaper.schedule", schedule) for schedule in (
        "rate(1 hours)", "rate(5 hour)", "rate(0 minutes)", "rate(1 Hour)", "rate(١ hour)", "cron(0 * * *)",
        "cron(0 * * * *)", "cron(0 * * * * *)", "cron(0 * ? * ? *)", "cron(60 * * * ? *)", "cron(0 * 32 * ? *)",
        "cron(0/ * * * ? *)", "cron(0 * * 13 ? *)", "cron(0 * ? * 8 *)", "cron(0 * * * ? 1969)",
        "cron(0 * ? * MON#6 *)", "cron(0 * 5L * ? *)x", "cron(0  * * * ? *)",
    )),
    Mistake("reaper.idle_window_hours", 0, shown="0"),
    Mistake("reaper.idle_window_hours", 337, shown="337"),
    Mistake("reaper.grace_period_hours", -1, shown="-1"),
    Mistake("reaper.dry_run", "false"),
    Mistake("reaper.max_deletions_per_run", 1001, shown="1001"),
    # explainability
    Mistake("explainability", "shap"),
    Mistake("explainability", "Clarify"),
    Mistake("reaper.max_deletions_per_run", True, shown="True"),
    # teams
    Mistake("teams.0", "fraud"),
    Mistake("teams.0.name", "fraud-team"),
    Mistake("teams.0.name", "Fraud"),
    Mistake("teams.0.name", "platform"),
    Mistake("teams.0.name", "network"),
    Mistake("teams.0.cost_center", 1001, shown="put it in quotes"),
    Mistake("teams.0.cost_center", "CC#1001"),
    Mistake("teams.0.cost_center", DELETE),
    Mistake("teams.0.users.0", "Alice!"),
    Mistake("teams.0.users.0", "-alice"),
    Mistake("teams.0.users", ["alice", "alice"], shown="duplicate user name 'alice'"),
    Mistake("teams.0.use_cases", [{"name": f"case{i}"} for i in range(5)], shown="at most 4 items"),
    Mistake("teams.0.alert_emails.0", "fraud-ml"),
    Mistake("teams.0.favourite_colour", "blue", shown="unknown key"),
    Mistake("teams.0.reaper.exempt", "yes"),
    Mistake("teams.0.budget", 2500, shown="2500"),
    Mistake("teams.0.budget.monthly_usd", 0, shown="0"),
    Mistake("teams.0.budget.monthly_usd", DELETE),
    Mistake("teams.0.budget.alert_thresholds_percent", [], shown="at least 1 item"),
    Mistake("teams.0.budget.alert_thresholds_percent.1", 1001, shown="1001"),
    Mistake("teams.0.budget.alert_thresholds_percent", [80, 80], where="teams[0].budget.alert_thresholds_percent",
            shown="duplicate alert threshold 80"),
    Mistake("teams.0.budget.forecast_alert", "yes"),
    Mistake("cost_allocation", "on"),
    Mistake("budget.monthly_usd", -1, shown="-1"),
    Mistake("budget", "10000"),
    Mistake("cost_allocation.activate_tag", "no"),
    Mistake("teams.2.reaper.grace_period_hours", 721, shown="721"),
    Mistake("teams.2.reaper.idle_window_hours", 0, shown="0"),
    Mistake("teams.2.reaper.dry_run", "no"),
    Mistake("teams.2.reaper.schedule", "rate(1 hour)", shown="unknown key"),
    # use cases
    Mistake("teams.0.use_cases.0.name", "fraud--detection"),
    Mistake("teams.0.use_cases.0.name", "Fraud"),
    Mistake("teams.0.use_cases.0.name", "a" * 41),
    Mistake("teams.0.use_cases.0.description", "x" * 1001, shown="at most 1000 characters"),
    Mistake("teams.0.use_cases.0.description", 5, shown="put it in quotes"),
    Mistake(f"{E0}.instance_type", "m5.large"),
    Mistake(f"{E0}.instance_type", "ml.m5"),
    Mistake(f"{E0}.initial_instance_count", "2"),
    Mistake(f"{E0}.initial_instance_count", 101, shown="101"),
    Mistake(f"{E0}.keep_previous_configs", 0, shown="0"),
    Mistake(f"{E0}.deployment.style", "blue_green"),
    Mistake(f"{E0}.deployment.canary_percent", 60, shown="60"),
    Mistake(f"{E0}.deployment.linear_step_percent", 5, shown="5"),
    Mistake(f"{E0}.deployment.wait_interval_seconds", 3601, shown="3601"),
    Mistake(f"{E0}.deployment.termination_wait_seconds", -1, shown="-1"),
    Mistake(f"{E0}.deployment.maximum_execution_timeout_seconds", 599, shown="599"),
    Mistake(f"{E0}.data_capture.enabled", "true"),
    Mistake(f"{E0}.autoscaling", "on"),
    Mistake(f"{E0}.autoscaling.enabled", "yes"),
    Mistake(f"{E0}.autoscaling.min_instances", 0, shown="0"),
    Mistake(f"{E0}.autoscaling.max_instances", 101, shown="101"),
    Mistake(f"{E0}.autoscaling.target_invocations_per_instance", 0, shown="0"),
    Mistake(f"{E0}.autoscaling.scale_in_cooldown_seconds", -5, shown="-5"),
    Mistake(f"{E0}.autoscaling.scale_out_cooldown_seconds", 86_401, shown="86401"),
    Mistake(f"{E0}.autoscaling.scheduled_floors", [{"name": f"f{i}", "schedule": "rate(1 day)", "min_instances": 2}
                                                   for i in range(11)], shown="at most 10 items"),
    Mistake(f"{E0}.autoscaling.scheduled_floors.0.name", "Business Hours"),
    Mistake(f"{E0}.autoscaling.scheduled_floors.0.schedule", "cron(0 7 * * MON-FRI)"),
    Mistake(f"{E0}.autoscaling.scheduled_floors.0.min_instances", 0, shown="0"),
    Mistake(f"{E0}.data_capture.sampling_percent", 0, shown="0"),
    Mistake(f"{E0}.monitoring", "daily"),
    Mistake(f"{E0}.monitoring.enabled", "yes"),
    Mistake(f"{E0}.monitoring.schedule", "every day"),
    Mistake(f"{E0}.monitoring.window_hours", 169, shown="169"),
    Mistake(f"{E0}.monitoring.min_rows", 5, shown="5"),
    Mistake(f"{E0}.monitoring.instance_type", "m5.large"),
    Mistake(f"{E0}.monitoring.alarms", 0.5, shown="0.5"),
    Mistake(f"{E0}.monitoring.alarms.drifted_feature_share", 0, shown="0"),
    Mistake(f"{E0}.monitoring.alarms.quality_threshold", "high"),
    Mistake(f"{E0}.alarms.invocation_5xx_errors", 0, shown="0"),
    Mistake(f"{E0}.alarms", "high"),
    Mistake(f"{E0}.data_capture", True, shown="True"),
    Mistake(f"{E0}.deployment", "canary"),
    Mistake(E0, "ml.m5.large"),
    Mistake("teams.0.use_cases.0.problem", "binary"),
    Mistake("teams.0.reaper", "never"),
    Mistake(f"{P1}.quality_gate", "auc"),
    Mistake(f"{P1}.split", "random"),
    Mistake(f"{E0}.alarms.model_latency_ms", 3600001, shown="3600001"),
    # problems
    Mistake(f"{P1}.problem_type", "ranking"),
    Mistake(f"{P1}.target", "churned flag"),
    Mistake(f"{P2}.features", ["price", "price"], shown="duplicate column 'price'"),
    Mistake(f"{P2}.features.0", "1price"),
    Mistake(f"{P1}.exclude", ["bad col"], where=f"{P1}.exclude[0]", shown="'bad col'"),
    Mistake(f"{P1}.exclude", ["plan", "plan"], shown="duplicate column 'plan'"),
    Mistake(f"{P1}.id_column", "row id"),
    Mistake(f"{P1}.time_column", "month!"),
    Mistake(f"{P1}.key_column", ""),
    Mistake(f"{P1}.context", ["region", "region"], shown="duplicate column 'region'"),
    Mistake(f"{P1}.context.0", "re gion"),
    Mistake(f"{P1}.positive_label", "yes, really"),
    Mistake(f"{P1}.classes", ["a,b"], where=f"{P1}.classes[0]", shown="'a,b'"),
    Mistake(f"{P1}.facets.0.name", "re gion"),
    Mistake(f"{P1}.facets.0.values", [], shown="at least 1 item"),
    Mistake(f"{P1}.facets.0.values.0", "a|b"),
    Mistake(f"{P1}.facets", [{"name": "region", "values": [str(i)]} for i in range(11)], shown="at most 10 items"),
    Mistake(f"{P1}.objective", "AUCC"),
    Mistake(f"{P1}.quality_gate.metric", "aucc"),
    Mistake(f"{P1}.quality_gate.threshold", "0.7"),
    Mistake(f"{P1}.quality_gate.threshold", True, shown="True"),
    Mistake(f"{P1}.quality_gate.threshold", DELETE),
    Mistake(f"{P1}.split.mode", "shuffled"),
    Mistake(f"{P2}.split.train_fraction", 1.0, shown="1.0"),
    Mistake(f"{P2}.split.validation_fraction", 0, shown="0"),
    Mistake(f"{P2}.split.test_fraction", "0.15"),
    Mistake(f"{P2}.split.seed", -1, shown="-1"),
    Mistake(f"{P2}.split.seed", "42"),
    Mistake(f"{P1}.input_layout", "rows"),
    Mistake(f"{P1}.data_prefix", "pipeline/data/churn"),
    Mistake(f"{P1}.data_prefix", "/pipeline/data/churn/"),
    Mistake(f"{P1}.algorithm", "xgboost", shown="unknown key"),
    Mistake(f"{P1}.quality_gate.direction", "max", shown="unknown key"),
    Mistake(f"{P1}.facets.0.weight", 1, shown="unknown key"),
    # stages
    Mistake("stages", "staging", shown="valid list"),
    Mistake("stages", {"staging": {}}, shown="valid list", base=MA),
    Mistake("stages", [*MULTI_ACCOUNT["stages"], *({**STAGE, "name": f"extra{i}", "account": f"44444444444{i}"}
                                                  for i in range(4))], shown="at most 5 items", base=MA),
    Mistake("stages.0", "staging", shown="'staging'", base=MA),
    Mistake("stages.0.name", "Staging", base=MA),
    Mistake("stages.0.name", "pre-prod", base=MA),
    Mistake("stages.0.name", "s", base=MA),
    Mistake("stages.1.name", "team", base=MA),
    Mistake("stages.1.name", "platform", base=MA),
    Mistake("stages.1.name", DELETE, base=MA),
    Mistake("stages.1.name", 12, shown="put it in quotes", base=MA),
    Mistake("stages.0.account", 222222222222, shown="put it in quotes", base=MA),
    Mistake("stages.0.account", "22222222222", base=MA),
    Mistake("stages.0.account", DELETE, base=MA),
    Mistake("stages.1.region", "eu-west-9", base=MA),
    Mistake("stages.1.region", DELETE, base=MA),
    Mistake("stages.0.promotion", "manual", base=MA),
    Mistake("stages.0.promotion", "Approved", base=MA),
    Mistake("stages.1.promotion", DELETE, base=MA),
    Mistake("stages.1.reaper", "off", base=MA),
    Mistake("stages.1.reaper.dry_run", "yes", base=MA),
    Mistake("stages.1.reaper.exempt", True, shown="unknown key", base=MA),
    Mistake("stages.0.vpc_id", "vpc-0123456789abcdef0", shown="unknown key", base=MA),
    Mistake("teams.1.stages", "staging", base=MA),
    Mistake("teams.1.stages.0", "Staging", base=MA),
    Mistake("teams.1.stages.0", "team", base=MA),
    Mistake("teams.1.stages", ["staging", "staging"], shown="duplicate stage name 'staging'", base=MA),
    Mistake("teams.0.stages", "staging", shown="valid list"),
    Mistake("approval", "on", shown="valid dictionary"),
    Mistake("approval.reviewers_required", "yes", shown="true or false"),
    Mistake("approval.reviewers", ["carol"], shown="valid dictionary"),
    Mistake("approval.reviewers.users", ["Carol"], where="approval.reviewers.users.0", shown="'Carol'"),
    Mistake("approval.reviewers.users", ["carol", "carol"], shown="duplicate reviewer user 'carol'"),
    Mistake("teams.0.reviewers", "carol", shown="valid dictionary"),
    Mistake("teams.0.reviewers.users", ["carol smith"], where="teams.0.reviewers.users.0", shown="'carol smith'"),
    Mistake("teams.0.reviewers.role_arns", ["arn:aws:iam::123456789012:user/jo"],
            where="teams.0.reviewers.role_arns.0", shown="not a user or an assumed-role session"),
    Mistake("teams.0.reviewers.role_arns", [ARN, ARN], shown="duplicate reviewer role ARN"),
    Mistake("teams.0.reviewers.unknown", [], shown="unknown key"),
    Mistake("teams.0.users.0", "review-alice", shown="never starts with 'review-'"),
]

# (mistake, the rule it breaks): the loader rejects each, the schema accepts it
SEVERAL_FIELDS = [
    (Mistake("teams.0.use_cases.0.name", "x" * 38, shown="makes the registry group name"), "names_fit_after_prefixing"),
    (Mistake("teams.1.name", "fraud", where="teams", shown="duplicate team name 'fraud'"), "unique_team_names"),
    (Mistake("teams.0.use_cases", [{"name": "a"}, {"name": "a"}], shown="duplicate use case name 'a'"),
     "unique_use_case_names"),
    (Mistake("quotas.1.usage", "processing", where="quotas", shown="('ml.m5.4xlarge', 'processing')"), "unique_quotas"),
    (Mistake("studio.max_idle_timeout_minutes", 60, shown="60"), "studio_idle_timeouts"),
    (Mistake("studio.default_mlflow_team", "nobody", shown="'nobody'"), "studio_default_mlflow_team"),
    (Mistake("teams.0.reviewers", {"users": ["zoe"]}, where="teams.0.reviewers.users.0",
             shown="a user of one of the config's teams"), "reviewers_are_users"),
    (Mistake("approval", {"reviewers_required": True, "reviewers": {"users": ["nobody"]}},
             where="approval.reviewers.users.0", shown="'nobody' is not allowed"), "reviewers_are_users"),
    (Mistake("approval", {"reviewers_required": True}, where="teams.0.reviewers",
             shown="team 'fraud' has no reviewers"), "reviewers_when_required"),
    (Mistake(f"{E0}.initial_instance_count", 1, where=E0, shown="initial_instance_count 1"), "fleet_for_shifting"),
    (Mistake(f"{E0}.autoscaling.min_instances", 1, shown="min_instances 1 with deployment.style 'canary'"),
     "fleet_for_shifting"),
    (Mistake(f"{E0}.autoscaling.min_instances", 5, shown="more than max_instances 4"), "autoscaling_limits"),
    (Mistake(f"{E0}.initial_instance_count", 5, shown="between autoscaling.min_instances 2 and max_instances 4"),
     "autoscaling_limits"),
    (Mistake(f"{E0}.autoscaling.scheduled_floors.0.min_instances", 9, shown="more than autoscaling.max_instances 4"),
     "autoscaling_limits"),
    (Mistake(f"{E0}.autoscaling.scheduled_floors.1.name", "business-hours", where=f"{E0}.autoscaling.scheduled_floors",
             shown="duplicate scheduled floor name 'business-hours'"), "autoscaling_limits"),
    (Mistake("quotas.2.desired", 9, shown="less than the 10 instances its use cases can need: 2 x (4 (fraud/fraud-"
             "detection) + 1 (churn/churn-propensity))"), "endpoint_quota_covers_fleets"),
    (Mistake("teams.1.use_cases.0.endpoint.initial_instance_count", 2, where="quotas[2].desired",
             shown="less than the 12 instances"), "endpoint_quota_covers_fleets"),
    (Mistake(f"{E0}.data_capture.enabled", False, where=f"{E0}.monitoring.enabled",
             shown="needs data_capture.enabled true"), "monitoring_needs_capture"),
    (Mistake("region", "eu-north-1", where="teams[0].budget", shown="no AWS::Budgets::Budget in region 'eu-north-1'"),
     "budgets_in_region"),
    (Mistake(f"{P2}.split.train_fraction", 0.8, where="teams[2].use_cases[0].problem.split", shown="is 1.1"),
     "split_fractions"),
    (Mistake(f"{P2}.objective", "AUC"), "problem_objective"),
    (Mistake(f"{P2}.quality_gate.metric", "auc"), "problem_quality_gate"),
    (Mistake(f"{P2}.quality_gate.threshold", 1.5, shown="1.5"), "problem_quality_gate"),
    (Mistake(f"{P1}.classes", ["a", "b", "c"], shown="['a', 'b', 'c']"), "problem_classes"),
    (Mistake(f"{P1}.context", ["region", "customer_id"], where=f"{P1}.context[1]", shown="'customer_id'"),
     "problem_columns"),
    (Mistake(f"{P2}.exclude", ["promo"], shown="['promo']"), "problem_columns"),
    (Mistake(f"{P1}.id_column", "customer_id", where=f"{P1}.key_column", shown="already the id_column"),
     "problem_columns"),
    (Mistake(f"{P2}.facets", [{"name": "region", "values": ["north"]}], where=f"{P2}.facets[0].name",
             shown="'region'"), "problem_facets"),
    (Mistake(f"{P2}.time_column", DELETE, where=f"{P2}.split.mode", shown="'ordered'"), "problem_split_mode"),
    # stages (on config/multi-account.yaml)
    (Mistake("account", DELETE, shown="required when `stages` are set ('staging', 'production')", base=MA),
     "stages_need_account_and_region"),
    (Mistake("region", DELETE, shown="required when `stages` are set ('staging', 'production')", base=MA),
     "stages_need_account_and_region"),
    (Mistake("stages.1.name", "staging", where="stages", shown="duplicate stage name 'staging' at [0] and [1]",
             base=MA), "unique_stage_names"),
    (Mistake("stages.0.account", "111111111111", shown="'111111111111' is not allowed: it is the development "
             "account", base=MA), "stage_accounts"),
    (Mistake("stages.1.account", "222222222222", where="stages", shown="duplicate stage account '222222222222'",
             base=MA), "stage_accounts"),
    (Mistake("stages.1.region", "eu-central-1", shown="'eu-central-1' is not allowed: the platform's region "
             "'eu-west-1' (SageMaker creates a model only", base=MA), "stage_regions"),
    (Mistake("stages.0.promotion", "promoted", shown="'promoted' is not allowed for the first stage: 'approved'",
             base=MA), "stage_promotion"),
    (Mistake("stages.1.promotion", "approved", shown="a reviewer promotes from 'staging' ('promoted')", base=MA),
     "stage_promotion"),
    (Mistake("teams.1.stages", ["production"], shown="['production'] is not allowed: a team serves in the "
             "platform's stages from the first on and in their order", base=MA), "team_stages"),
    (Mistake("teams.1.stages", ["production", "staging"], shown="['staging'] or ['staging', 'production']",
             base=MA), "team_stages"),
    (Mistake("teams.1.stages", ["qa"], where="teams.1.stages.0",
             shown="'qa' is not allowed: one of the platform's stages (staging, production)", base=MA), "team_stages"),
    (Mistake("teams.0.stages", ["staging"], where="teams.0.stages.0", shown="the platform has no `stages`"),
     "team_stages"),
    (Mistake("teams.0.budget", {"monthly_usd": 500}, shown="a team budget is not yet available with stages",
             base=MA), "not_yet_with_stages"),
    (Mistake(f"{E0}.monitoring", {"enabled": True}, where=f"{E0}.monitoring.enabled",
             shown="endpoint monitoring is not yet available with stages", base=MA), "not_yet_with_stages"),
    (Mistake("quotas", [{"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 10}],
             where="quotas.0.usage", shown="an endpoint quota is not yet available with stages", base=MA),
     "not_yet_with_stages"),
]


def _loader_errors(data: dict) -> tuple[list[dict], str]:
    with pytest.raises(ValidationError) as caught:
        PlatformConfig.model_validate(data)
    return caught.value.errors(include_url=False), format_validation_error(caught.value, "platform.yaml")


def _normalized(loc) -> tuple:
    loc = tuple(loc)
    return loc[:1] + loc[2:] if len(loc) > 1 and loc[0] == "network" and loc[1] in ("new", "existing") else loc


def _loader_only(error: dict) -> bool:
    return error["type"] == "cross_field" and error["ctx"]["rule"] in LOADER_ONLY


def _ids(mistakes) -> list[str]:
    return [f"{m.path}={'<deleted>' if m.value is DELETE else repr(m.value)}"[:70] for m in mistakes]


@pytest.mark.parametrize("mistake", SINGLE_FIELD, ids=_ids(SINGLE_FIELD))
def test_every_single_field_mistake_is_rejected_by_both(mistake):
    data = mistake.data()
    errors, message = _loader_errors(data)
    assert mistake.field_path() in message and mistake.value_text() in message, message
    schema_paths = [tuple(e.absolute_path) for e in VALIDATOR.iter_errors(data)]
    assert schema_paths, f"the schema accepts what the loader rejects:\n{message}"
    for error in errors:  # each loader problem has a schema error at its field or above it
        if _loader_only(error):
            continue
        loc = _normalized(error["loc"])
        if loc and loc[-1] == "[key]":
            loc = loc[:-2]
        assert any(loc[: len(path)] == path for path in schema_paths), (loc, schema_paths, message)


@pytest.mark.parametrize(("mistake", "rule"), SEVERAL_FIELDS, ids=_ids(m for m, _ in SEVERAL_FIELDS))
def test_rules_about_several_fields_are_the_loaders(mistake, rule):
    data = mistake.data()
    errors, message = _loader_errors(data)
    assert mistake.field_path() in message and mistake.value_text() in message, message
    assert all(_loader_only(e) for e in errors), message
    assert rule in {e["ctx"]["rule"] for e in errors}, message
    assert VALIDATOR.is_valid(data), "the schema checks this rule now: take it out of LOADER_ONLY"


def test_the_loader_only_rules_are_the_known_ones_and_each_is_exercised():
    assert set(LOADER_ONLY_RULES) == LOADER_ONLY
    assert {rule for _, rule in SEVERAL_FIELDS} == LOADER_ONLY


def _sections_of(annotation) -> list[type[BaseModel]]:
    found = []
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            found.append(candidate)
        elif typing.get_args(candidate):
            found += _sections_of(candidate)
    return found


def _field_of(mistake: Mistake) -> str:
    """`Model.field` the mistake's path ends at (through list items and the network variant in use)."""
    node: Any = Mistake("prefix", BASES[mistake.base]["prefix"], existing=mistake.existing, base=mistake.base).data()
    model, owner = PlatformConfig, ""
    for part in mistake.path.split("."):
        if part.isdigit():
            node = node[int(part)] if isinstance(node, list) else None
            continue
        if part not in model.model_fields:
            return f"{model.__name__}.<unknown>"
        owner = f"{model.__name__}.{part}"
        node = node.get(part) if isinstance(node, dict) else None
        sections = _sections_of(model.model_fields[part].annotation)
        if len(sections) > 1:  # the network union
            mode = (node or {}).get("mode", "new")
            sections = [s for s in sections if mode in typing.get_args(s.model_fields["mode"].annotation)]
        if not sections:
            break
        model = sections[0]
    return owner


def _all_fields() -> set[str]:
    fields, queue, seen = set(), [PlatformConfig], set()
    while queue:
        model = queue.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            fields.add(f"{model.__name__}.{name}")
            queue += _sections_of(field.annotation)
    return fields


def test_the_corpus_covers_every_field_of_the_config():
    covered = {_field_of(m) for m in SINGLE_FIELD}
    missing = _all_fields() - covered
    assert not missing, f"add a single-field mistake for each of {sorted(missing)}"
    assert len(SINGLE_FIELD) >= 40


@pytest.mark.parametrize("name", ["example", "multi-account", *EDGE_CONFIGS])
def test_valid_configs_validate_against_the_schema(name):
    data = {"example": EXAMPLE, "multi-account": MULTI_ACCOUNT}.get(name) or EDGE_CONFIGS[name]
    assert not [e.message for e in VALIDATOR.iter_errors(data)]
    parse_config(copy.deepcopy(data))


def test_the_schema_is_a_valid_draft_2020_12_schema_with_portable_patterns():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(SCHEMA))
    assert len(patterns) >= 20
    for pattern in map(lambda p: json.loads(f'"{p}"'), patterns):
        assert pattern.startswith("^") and pattern.endswith("$"), pattern  # JSON Schema patterns match anywhere
        assert not re.search(r"\(\?P|\(\?[aiLmsux]|\\[AZz]", pattern), f"not an ECMA-262 regex: {pattern}"


def test_strict_types_say_so_in_the_schema():
    reaper = SCHEMA["$defs"]["ReaperSettings"]["properties"]
    assert reaper["dry_run"]["type"] == "boolean" and reaper["idle_window_hours"]["type"] == "integer"
    assert SCHEMA["$defs"]["QualityGate"]["properties"]["threshold"]["type"] == "number"
    for name, definition in [("(top level)", SCHEMA), *SCHEMA["$defs"].items()]:
        if definition.get("type") == "object":
            assert definition.get("additionalProperties") is False, name


# --- the schedule and CIDR regexes against the loader's checks -------------------------------------------------

SCHEDULE = TypeAdapter(config_module.ScheduleExpression)
CIDR = TypeAdapter(config_module.Cidr)


def _loader_accepts(adapter: TypeAdapter, value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


_CRON_TOKENS = ["*", "?", "0", "00", "1", "5", "7", "8", "12", "13", "23", "24", "31", "32", "59", "60", "1970",
                "2199", "2200", "L", "W", "LW", "5L", "15W", "6#3", "MON#2", "6#6", "mon", "JAN", "FOO", "1-5",
                "MON-FRI", "*/5", "0/15", "5/0", "5/", "1,15", "1-5L", "", "-", "#", "L-5", "1-2-3", "١"]


def _random_schedules(count: int) -> list[str]:
    rng = random.Random(20240601)
    schedules = []
    for _ in range(count):
        if rng.random() < 0.2:
            number = rng.choice(["0", "1", "01", "2", "10", "00", "", "١", "-1"])
            unit = rng.choice(["minute", "minutes", "hour", "hours", "day", "days", "Hour", "week"])
            schedules.append(f"rate({number} {unit})")
            continue
        fields = rng.choice([5, 6, 6, 6, 6, 7])
        parts = []
        for _ in range(fields):
            parts.append(",".join(rng.choice(_CRON_TOKENS) for _ in range(rng.choice([1, 1, 1, 2]))))
        schedules.append(f"cron({' '.join(parts)})")
    return schedules


def test_the_schedule_regex_accepts_exactly_what_the_loader_accepts():
    valid = ["rate(1 minute)", "rate(15 minutes)", "rate(1 day)", "cron(0 * * * ? *)", "cron(0/15 8-17 ? * MON-FRI *)",
             "cron(0 12 L * ? *)", "cron(0 10 ? * 6#3 *)", "cron(15 10 ? * 6L 2026-2030)", "cron(0 0 1,15 * ? *)"]
    schedules = valid + _random_schedules(4000)
    regex = re.compile(SCHEDULE_REGEX)
    disagree = [s for s in schedules
                if bool(regex.fullmatch(s)) != _loader_accepts(SCHEDULE, s)]
    assert not disagree, disagree[:10]
    accepted = sum(bool(regex.fullmatch(s)) for s in schedules)
    assert len(valid) < accepted < len(schedules) / 2  # the sample has both kinds


def test_the_cron_number_regexes_match_the_loaders_ranges():
    for name, (low, high, names, _, numbers) in config_module._CRON_FIELD.items():
        compiled = re.compile(numbers)
        for number in range(0, 2300):
            for text in (str(number), f"0{number}"):
                assert bool(compiled.fullmatch(text)) == config_module._cron_value(text, low, high, names), (name, text)


def test_the_cidr_regex_accepts_exactly_what_the_loader_accepts():
    rng = random.Random(7)
    octets = ["0", "10", "80", "128", "192", "255", "256", "01", "7", "64", "96", "254", "31"]
    samples = ["10.80.0.0/16", "10.80.128.0/17", "10.80.96.0/19", "192.168.7.0/24", "172.16.254.0/23"]
    for _ in range(3000):
        address = ".".join(rng.choice(octets) for _ in range(rng.choice([4, 4, 4, 3])))
        length = rng.choice(["16", "17", "18", "19", "20", "21", "22", "23", "24", "8", "25", "016", "255.255.0.0"])
        samples.append(f"{address}/{length}")
    regex = re.compile(CIDR_REGEX)
    disagree = [s for s in samples if bool(regex.fullmatch(s)) != _loader_accepts(CIDR, s)]
    assert not disagree, disagree[:10]
    assert 5 < sum(bool(regex.fullmatch(s)) for s in samples) < len(samples) / 2


# --- every problem in one message -------------------------------------------------------------------------------

def test_field_errors_do_not_hide_problems_about_several_fields():
    data = copy.deepcopy(EXAMPLE)
    data["account"] = "abc"  # a field error at the top level
    data["teams"][0]["users"][0] = "Alice!"  # a field error inside teams (pydantic then skips the teams checks)
    data["teams"][1]["name"] = "fraud"  # a duplicate team name: only the several-field checks find it
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "platform.yaml")
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "platform.yaml: invalid platform config (3 problem(s)):", message
    assert lines[1:] == [
        "  - account: 'abc' is not allowed: exactly 12 digits",
        "  - teams[0].users[0]: 'Alice!' is not allowed: 1-40 lowercase letters or digits, with single hyphens "
        "between them",
        "  - teams: duplicate team name 'fraud' at [0] and [1]: each team name must appear once",
    ]


def test_every_section_is_checked_in_the_same_run():
    data = copy.deepcopy(EXAMPLE)
    data["prefix"] = "X"  # bad: the name-length rule (which reads the prefix) is skipped, not guessed
    data["studio"]["max_idle_timeout_minutes"] = 60
    data["teams"][0]["alert_emails"] = ["nobody"]
    data["teams"][0]["use_cases"][0]["endpoint"]["initial_instance_count"] = 1
    data["teams"][0]["use_cases"][0]["endpoint"]["deployment"]["canary_percent"] = 70
    data["teams"][2]["use_cases"][0]["problem"].update(objective="AUC", target="units sold")
    data["teams"][2]["use_cases"][0]["problem"]["split"].update(train_fraction=0.8, seed=-1)
    data["quotas"][1]["usage"] = "processing"
    data["quotas"][1]["desired"] = 0
    errors, message = _loader_errors(data)
    assert f"({len(errors)} problem(s))" in message and len(errors) == 12, message
    for text in (
        "prefix: 'X'", "studio.max_idle_timeout_minutes: 60", "teams[0].alert_emails[0]: 'nobody'",
        "teams[0].use_cases[0].endpoint: deployment.style 'canary' with initial_instance_count 1",
        "endpoint.deployment.canary_percent: 70", "problem.objective: 'AUC'", "problem.target: 'units sold'",
        "problem.split: train_fraction + validation_fraction + test_fraction is 1.1", "problem.split.seed: -1",
        "quotas: duplicate quota", "quotas[1].desired: 0",
        "initial_instance_count: initial_instance_count 1 is not allowed with autoscaling",
    ):
        assert message.count(text) == 1, (text, message)


def test_a_rule_whose_input_is_bad_itself_is_not_reported_again():
    data = Mistake("teams.0.use_cases.0.name", "a" * 41).data()  # too long a name, and too long a group name
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "platform.yaml")
    assert "(1 problem(s))" in str(caught.value) and "registry group name" not in str(caught.value)


def test_a_section_validated_on_its_own_checks_its_rules_too():
    with pytest.raises(ValidationError) as caught:
        Team.model_validate({"name": "fraud", "cost_center": "CC-1", "users": ["a", "a"],
                             "use_cases": [{"name": "x"}, {"name": "x"}]})
    assert [(e["loc"], e["ctx"]["rule"]) for e in caught.value.errors()] == [
        (("users",), "unique_items"), (("use_cases",), "unique_use_case_names"),
    ]
