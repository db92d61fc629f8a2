"""Stages: the accounts that serve the teams' models, and the rules that tie them to the platform and the teams.

Each bad input stops with messages naming the field path, the offending value and what is allowed; every problem
is listed in one run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stacks.config import ConfigError, PlatformConfig, load_config, parse_config
from tests.config_edits import DELETE, set_path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_FILE = ROOT / "config" / "platform.yaml"
MULTI_ACCOUNT_FILE = ROOT / "config" / "multi-account.yaml"
EXAMPLE = yaml.safe_load(PLATFORM_FILE.read_text())
MULTI_ACCOUNT = yaml.safe_load(MULTI_ACCOUNT_FILE.read_text())
FRAUD, CHURN = 0, 1  # the teams of config/multi-account.yaml: fraud serves in every stage, churn in staging
ENDPOINT_QUOTA = {"instance_type": "ml.m5.large", "usage": "endpoint", "desired": 10}


def multi_account() -> dict:
    return copy.deepcopy(MULTI_ACCOUNT)


def problems(data: dict) -> list[str]:
    """The problem lines of the loader's message for `data` (which must be rejected)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "multi-account.yaml")
    header, *lines = str(caught.value).splitlines()
    assert header == f"multi-account.yaml: invalid platform config ({len(lines)} problem(s)):", caught.value
    assert all(line.startswith("  - ") for line in lines), caught.value
    return [line[4:] for line in lines]


def the_problem(data: dict) -> str:
    (line,) = problems(data)
    return line


def names(items) -> list[str]:
    return [item.name for item in items]


# --- valid configs ----------------------------------------------------------------------------------------------

def test_without_stages_the_platform_is_todays_every_team_serving_in_the_development_account():
    config = load_config(PLATFORM_FILE)
    assert config.stages == []
    assert [team.stages for team in config.teams] == [None, None, None]
    for team in config.teams:
        assert config.serves_in_development(team) and config.stages_of(team) == []


def test_a_team_may_say_stages_empty_on_a_platform_without_stages():
    data = copy.deepcopy(EXAMPLE)
    data["teams"][0]["stages"] = []
    config = parse_config(data)
    assert config.team("fraud").stages == [] and config.serves_in_development(config.team("fraud"))


def test_the_multi_account_example():
    config = load_config(MULTI_ACCOUNT_FILE)
    assert config.account == "111111111111" and config.region == "eu-west-1"
    assert [(s.name, s.account, s.region, s.promotion) for s in config.stages] == [
        ("staging", "222222222222", "eu-west-1", "approved"),
        ("production", "333333333333", "eu-west-1", "promoted"),
    ]
    staging, production = config.stages
    assert staging.reaper is None  # the platform's reaper
    assert production.reaper.dry_run is True and production.reaper.idle_window_hours == 168
    fraud, churn = config.team("fraud"), config.team("churn")
    assert fraud.stages is None and churn.stages == ["staging"]
    assert names(config.stages_of(fraud)) == ["staging", "production"]
    assert names(config.stages_of(churn)) == ["staging"]
    assert names(config.teams_in(staging)) == ["fraud", "churn"]
    assert names(config.teams_in(production)) == ["fraud"]
    assert not config.serves_in_development(fraud) and not config.serves_in_development(churn)


def test_a_team_with_stages_empty_serves_in_the_development_account():
    data = multi_account()
    data["teams"][CHURN]["stages"] = []
    config = parse_config(data)
    churn = config.team("churn")
    assert config.serves_in_development(churn) and config.stages_of(churn) == []
    assert [names(config.teams_in(stage)) for stage in config.stages] == [["fraud"], ["fraud"]]


def test_a_team_serving_in_development_may_have_a_budget_and_monitoring():
    data = multi_account()
    churn = data["teams"][CHURN]
    churn["stages"] = []
    churn["budget"] = {"monthly_usd": 500}
    churn["use_cases"][0]["endpoint"] = {"data_capture": {"enabled": True}, "monitoring": {"enabled": True}}
    config = parse_config(data)
    team = config.team("churn")
    assert team.budget.monthly_usd == 500 and team.use_cases[0].endpoint.monitoring.enabled


def test_an_endpoint_quota_counts_only_the_fleets_of_teams_serving_in_development():
    data = multi_account()
    data["teams"][CHURN]["stages"] = []  # churn's endpoint: one ml.m5.large; fraud's (up to 4) runs in the stages
    data["quotas"].append({**ENDPOINT_QUOTA, "desired": 2})
    assert parse_config(data).quotas[1].desired == 2  # fraud's fleet would need 8 more

    data["quotas"][1]["desired"] = 1
    line = the_problem(data)
    assert line.startswith("quotas[1].desired: quota ml.m5.large for endpoint usage asks for 1, less than the 2 "
                           "instances its use cases can need: 2 x (1 (churn/churn-propensity))"), line
    assert "fraud" not in line

    data["teams"][CHURN]["use_cases"][0]["endpoint"] = {"initial_instance_count": 3}  # a development team's fleet
    data["quotas"][1]["desired"] = 5
    line = the_problem(data)
    assert line.startswith("quotas[1].desired: quota ml.m5.large for endpoint usage asks for 5, less than the 6 "
                           "instances"), line
    assert "2 x (3 (churn/churn-propensity))" in line and "ask for at least 6" in line


def test_an_endpoint_quota_counts_every_team_without_stages():
    data = copy.deepcopy(EXAMPLE)  # the example's endpoint quota: 10 = 2 x (4 fraud + 1 churn)
    data["teams"][0]["stages"] = []
    data["quotas"][2]["desired"] = 9
    assert "2 x (4 (fraud/fraud-detection) + 1 (churn/churn-propensity))" in the_problem(data)


# --- each rule, with its message --------------------------------------------------------------------------------

def _set(path: str, value):
    """A change of the multi-account config: the value at dotted `path` set, or deleted when None."""
    return lambda data: set_path(data, path, DELETE if value is None else value)


def _add_endpoint_quota(data: dict) -> None:
    data["quotas"].append(dict(ENDPOINT_QUOTA))


# (change to config/multi-account.yaml, the field path the message starts with, text it must contain)
RULES = [
    ("stages_need_account_and_region", _set("account", None), "account",
     ["required when `stages` are set ('staging', 'production')", "the development account (12 digits, quoted)"]),
    ("stages_need_account_and_region", _set("region", None), "region",
     ["required when `stages` are set ('staging', 'production')",
      "the region of the development account and of every stage"]),
    ("unique_stage_names", _set("stages.1.name", "staging"), "stages",
     ["duplicate stage name 'staging' at [0] and [1]", "each stage name must appear once"]),
    ("stage_accounts", _set("stages.1.account", "111111111111"), "stages[1].account",
     ["'111111111111' is not allowed", "it is the development account (the platform's `account`)",
      "an account of its own"]),
    ("stage_accounts", _set("stages.1.account", "222222222222"), "stages",
     ["duplicate stage account '222222222222' at [0] and [1]", "must appear once"]),
    ("stage_regions", _set("stages.1.region", "eu-central-1"), "stages[1].region",
     ["'eu-central-1' is not allowed", "the platform's region 'eu-west-1'",
      "SageMaker creates a model only from a model package of its own region"]),
    ("stage_promotion", _set("stages.0.promotion", "promoted"), "stages[0].promotion",
     ["'promoted' is not allowed for the first stage", "'approved'", "no earlier stage to promote it from"]),
    ("stage_promotion", _set("stages.1.promotion", "approved"), "stages[1].promotion",
     ["'approved' is not allowed", "only the first stage promotes on 'approved'",
      "stage 'production' serves the versions a reviewer promotes from 'staging' ('promoted')"]),
    ("team_stages", _set("teams.1.stages", ["production"]), "teams[1].stages",
     ["['production'] is not allowed", "from the first on and in their order",
      "[] or ['staging'] or ['staging', 'production']"]),
    ("team_stages", _set("teams.1.stages", ["production", "staging"]), "teams[1].stages",
     ["['production', 'staging'] is not allowed", "in their order"]),
    ("team_stages", _set("teams.1.stages", ["qa"]), "teams[1].stages[0]",
     ["'qa' is not allowed: one of the platform's stages (staging, production)"]),
    ("unique_items", _set("teams.1.stages", ["staging", "staging"]), "teams[1].stages",
     ["duplicate stage name 'staging' at [0] and [1]"]),
    ("not_yet_with_stages", _set("teams.0.budget", {"monthly_usd": 500}), "teams[0].budget",
     ["team 'fraud' serves in stages (staging, production)", "a team budget is not yet available with stages",
      "leave budget out, or set the team's `stages: []`"]),
    ("not_yet_with_stages", _set("teams.1.budget", {"monthly_usd": 500}), "teams[1].budget",
     ["team 'churn' serves in stages (staging)", "not yet available with stages"]),
    ("not_yet_with_stages", _set("teams.0.use_cases.0.endpoint.monitoring", {"enabled": True}),
     "teams[0].use_cases[0].endpoint.monitoring.enabled",
     ["team 'fraud' serves in stages (staging, production)", "endpoint monitoring is not yet available with stages",
      "set it false, or set the team's `stages: []`"]),
    ("not_yet_with_stages", _add_endpoint_quota, "quotas[1].usage",
     ["'endpoint' is not allowed here", "an endpoint quota is not yet available with stages",
      "every team serves in stages", "leave it out"]),
]


@pytest.mark.parametrize(("rule", "change", "where", "expected"), RULES,
                         ids=[f"{rule}-{where}-{i}" for i, (rule, _, where, _) in enumerate(RULES)])
def test_each_stage_rule_names_the_field_the_value_and_what_is_allowed(rule, change, where, expected):
    data = multi_account()
    change(data)
    line = the_problem(data)
    assert line.startswith(f"{where}: "), line
    for text in expected:
        assert text in line, f"{text!r} missing from:\n{line}"


def test_the_rules_come_from_the_loader_alone():
    data = multi_account()
    data["stages"][1]["region"] = "eu-central-1"
    with pytest.raises(Exception) as caught:
        PlatformConfig.model_validate(data)
    assert [(e["loc"], e["ctx"]["rule"]) for e in caught.value.errors()] == [
        (("stages", 1, "region"), "stage_regions"),
    ]


def test_a_team_naming_stages_on_a_platform_without_stages():
    data = copy.deepcopy(EXAMPLE)
    data["teams"][1]["stages"] = ["staging", "production"]
    assert problems(data) == [
        "teams[1].stages[0]: 'staging' is not allowed: nothing: the platform has no `stages` (leave the team's "
        "`stages` out)",
        "teams[1].stages[1]: 'production' is not allowed: nothing: the platform has no `stages` (leave the team's "
        "`stages` out)",
    ]


def test_a_monitored_team_passes_while_monitoring_needs_capture_stays_its_own_rule():
    data = multi_account()
    data["teams"][FRAUD]["stages"] = []
    data["teams"][FRAUD]["use_cases"][0]["endpoint"]["monitoring"] = {"enabled": True}
    assert parse_config(data).team("fraud").use_cases[0].endpoint.monitoring.enabled
    data["teams"][FRAUD]["use_cases"][0]["endpoint"]["data_capture"]["enabled"] = False
    line = the_problem(data)
    assert line.startswith("teams[0].use_cases[0].endpoint.monitoring.enabled: ") and "data_capture" in line, line


# --- what is not reported twice, and what is reported at once ---------------------------------------------------

def test_a_bad_stage_name_is_the_only_problem_reported():
    data = multi_account()
    data["stages"][0]["name"] = "team"  # churn's `stages: [staging]` names no stage now, but the name is bad itself
    assert problems(data) == [
        "stages[0].name: 'team' is not allowed: reserved for the platform's own stacks (<prefix>-team-...); choose "
        "another name than network, platform, team",
    ]


def test_a_stage_name_with_a_hyphen_is_refused_for_the_stack_names():
    data = multi_account()
    data["stages"][1]["name"] = "pre-prod"
    line = the_problem(data)
    assert line.startswith("stages[1].name: 'pre-prod' is not allowed") and "no hyphens" in line, line


def test_a_stage_without_a_name_is_reported_not_a_crash():
    data = multi_account()
    del data["stages"][1]["name"]
    data["teams"][FRAUD]["budget"] = {"monthly_usd": 500}
    lines = problems(data)
    assert lines[0] == "stages[1].name: required field is missing", lines
    assert len(lines) == 2 and lines[1].startswith("teams[0].budget: team 'fraud' serves in stages"), lines


def test_a_stage_that_is_no_mapping_does_not_shift_the_others():
    data = multi_account()
    data["stages"].insert(0, "development")
    assert problems(data) == [
        "stages[0]: 'development' is not allowed: Input should be a valid dictionary or instance of Stage",
        "stages[1].promotion: 'approved' is not allowed: only the first stage promotes on 'approved'; stage "
        "'staging' serves the versions a reviewer promotes from the stage before it ('promoted')",
    ]


def test_every_stage_problem_is_listed_in_one_run():
    data = multi_account()
    data["stages"][1]["region"] = "us-east-1"
    data["teams"][CHURN]["stages"] = ["qa"]
    data["teams"][FRAUD]["budget"] = {"monthly_usd": 500}
    data["stages"][0]["account"] = "22222222222"  # a field error: the account rules skip that stage's account
    lines = problems(data)
    assert len(lines) == 4, lines
    for start in ("stages[0].account: '22222222222' is not allowed: exactly 12 digits",
                  "stages[1].region: 'us-east-1' is not allowed: the platform's region 'eu-west-1' (SageMaker creates",
                  "teams[1].stages[0]: 'qa' is not allowed: one of the platform's stages (staging, production)",
                  "teams[0].budget: team 'fraud' serves in stages (staging, production)"):
        assert sum(line.startswith(start) for line in lines) == 1, (start, lines)


def test_two_promotion_mistakes_are_both_reported():
    data = multi_account()
    data["stages"][0]["promotion"], data["stages"][1]["promotion"] = "promoted", "approved"
    lines = problems(data)
    assert [line.split(":")[0] for line in lines] == ["stages[0].promotion", "stages[1].promotion"], lines


def test_at_most_five_stages():
    data = multi_account()
    data["stages"] += [{"name": f"extra{i}", "account": f"44444444444{i}", "region": "eu-west-1",
                        "promotion": "promoted"} for i in range(4)]
    line = the_problem(data)
    assert line.startswith("stages: ") and "at most 5 items" in line, line


def test_a_mistake_in_the_file_is_reported_with_the_file_name(tmp_path):
    text = MULTI_ACCOUNT_FILE.read_text().replace('account: "333333333333"', 'account: 333333333333')
    path = tmp_path / "stages.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()[1:]
    assert str(caught.value).startswith(f"{path}: invalid platform config")
    assert line.startswith("  - stages[1].account: 333333333333 is not allowed: text; put it in quotes"), line
