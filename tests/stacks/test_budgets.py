"""Team budgets and cost tracking as synthesized for the example (fraud and pricing have budgets, churn has none):
the budget's filter and notifications, their delivery through the topic and key policies (evaluated as IAM
would for budgets.amazonaws.com), and the cost tracking function's reach."""

from __future__ import annotations

import json

import pytest

from stacks.constructs.budgets import platform_budget_name, team_budget_name
from stacks.constructs.cost_tracking import cost_namespace
from tests.stacks.test_alarm_delivery import _topic_key
from tools.iam.evaluate import Request, evaluate, evaluate_access
from tools.iam.template import World

ACCOUNT, REGION, PREFIX = "123456789012", "us-east-1", "mlp"
BUDGETS = "budgets.amazonaws.com"


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates, account=ACCOUNT, region=REGION)


def budgets_by_team(world: World) -> dict:
    return {r.stack.rsplit("-", 1)[-1]: r for r in world.resources("AWS::Budgets::Budget") if "-team-" in r.stack}


def team_topic(world: World, stack: str) -> str:
    (topic,) = [r for r in world.resources("AWS::SNS::Topic") if r.stack == stack]
    return world.arn(stack, topic.logical_id)


def test_teams_with_a_budget_get_a_monthly_cost_budget_on_their_tag(world, example_config):
    found = budgets_by_team(world)
    assert set(found) == {t.name for t in example_config.teams if t.budget is not None} == {"fraud", "pricing"}
    for team in example_config.teams:
        if team.budget is None:
            continue
        budget = found[team.name]
        data = budget.properties["Budget"]
        assert data["BudgetName"] == team_budget_name(PREFIX, team.name)
        assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
        assert data["BudgetLimit"] == {"Amount": team.budget.monthly_usd, "Unit": "USD"}
        assert data["CostFilters"] == {"TagKeyValue": [f"user:mlops:team${team.name}"]}
        topic = team_topic(world, budget.stack)
        notifications = [(n["Notification"]["NotificationType"], n["Notification"]["Threshold"],
                          [world.resolve(budget.stack, s["Address"]) for s in n["Subscribers"]])
                         for n in budget.properties["NotificationsWithSubscribers"]]
        expected = [("ACTUAL", p, [topic]) for p in sorted(team.budget.alert_thresholds_percent)]
        assert notifications == expected + [("FORECASTED", 100, [topic])]


def test_a_region_agnostic_template_skips_the_budget_where_cloudformation_has_none(example):
    template = example.template("mlp-team-fraud")
    (logical_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Budgets::Budget"]
    condition = template["Resources"][logical_id]["Condition"]
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-north-1"]}]}


def test_budget_notifications_reach_the_team_topic_and_only_its_own(world):
    for team, budget in budgets_by_team(world).items():
        topic = team_topic(world, budget.stack)
        policy = world.resource_statements(topic)
        own = f"arn:aws:budgets::{ACCOUNT}:budget/{team_budget_name(PREFIX, team)}"
        other = f"arn:aws:budgets::{ACCOUNT}:budget/{team_budget_name(PREFIX, 'churn')}"

        def publish(source: str, account: str = ACCOUNT) -> Request:
            return Request("sns:Publish", topic, context={"aws:SourceArn": source, "aws:SourceAccount": account},
                           principal_service=BUDGETS)

        assert evaluate(policy, publish(own), resource_policy=True).allowed, team
        assert not evaluate(policy, publish(other), resource_policy=True).allowed, team
        assert not evaluate(policy, publish(own, "999999999999"), resource_policy=True).allowed, team
        key = _topic_key(world, topic)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            request = Request(action, key, context={"aws:SourceArn": own, "aws:SourceAccount": ACCOUNT},
                              principal_service=BUDGETS)
            assert evaluate(world.resource_statements(key), request, resource_policy=True).allowed, (team, action)


def test_cost_tracking_reads_exactly_the_team_budgets_and_publishes_to_its_namespace(world, example_config):
    (function,) = [r for r in world.resources("AWS::Lambda::Function")
                   if r.properties.get("Handler") == "cost_tracking.handler.handler"]
    environment = world.resolve(function.stack, function.properties["Environment"]["Variables"])
    assert json.loads(environment["TEAM_BUDGETS"]) == [
        {"team": "fraud", "budget_name": "mlp-fraud"}, {"team": "platform", "budget_name": "mlp-platform"},
        {"team": "pricing", "budget_name": "mlp-pricing"}]
    assert environment["ACTIVATE_TAG_KEYS"] == "mlops:team,mlops:platform"
    (role,) = [r.logical_id for r in world.resources("AWS::IAM::Role")
               if r.stack == function.stack and r.logical_id.startswith("CostTrackingFunctionRole")]
    identity = world.role_statements(function.stack, role)
    for team in ("fraud", "pricing", "platform"):
        budget = f"arn:aws:budgets::{ACCOUNT}:budget/mlp-{team}"
        assert evaluate_access(identity, [], Request("budgets:ViewBudget", budget, {})).allowed
        assert not evaluate_access(identity, [], Request("budgets:ModifyBudget", budget, {})).allowed
    assert not evaluate_access(identity, [], Request("budgets:ViewBudget",
                                                     f"arn:aws:budgets::{ACCOUNT}:budget/someone-else", {})).allowed
    put = "cloudwatch:PutMetricData"
    assert evaluate_access(identity, [], Request(put, "*", {"cloudwatch:namespace": cost_namespace(PREFIX)})).allowed
    assert not evaluate_access(identity, [], Request(put, "*", {"cloudwatch:namespace": "mlp/fraud/x"})).allowed


def test_the_platform_dashboard_shows_each_teams_cost_against_its_budget(world, example_config):
    (dashboard,) = [r for r in world.resources("AWS::CloudWatch::Dashboard")
                    if r.properties["DashboardName"] == "mlp-platform"]
    body = json.loads(world.resolve(dashboard.stack, dashboard.properties["DashboardBody"]))
    widgets = {w["properties"]["title"]: w["properties"] for w in body["widgets"]}
    assert [(a["label"], a["value"]) for a in widgets["platform: cost this month (USD)"]["annotations"]["horizontal"]
            ] == [("monthly budget", example_config.budget.monthly_usd)]
    for team in example_config.teams:
        title = f"{team.name}: cost this month (USD)"
        if team.budget is None:
            assert title not in widgets
            continue
        metrics = [(row[0], row[1], row[2:4]) for row in widgets[title]["metrics"]]
        assert metrics == [(cost_namespace(PREFIX), name, ["Team", team.name])
                           for name in ("MonthToDateCost", "ForecastedCost")]
        assert [(a["label"], a["value"]) for a in widgets[title]["annotations"]["horizontal"]] == [
            ("monthly budget", team.budget.monthly_usd)]


def test_the_platform_budget_caps_the_whole_platform_and_alerts_the_platform_topic(world, example_config):
    (budget,) = [r for r in world.resources("AWS::Budgets::Budget") if r.stack == "mlp-platform"]
    data = budget.properties["Budget"]
    assert data["BudgetName"] == platform_budget_name(PREFIX)
    assert data["BudgetLimit"] == {"Amount": example_config.budget.monthly_usd, "Unit": "USD"}
    assert data["CostFilters"] == {"TagKeyValue": [f"user:mlops:platform${PREFIX}"]}
    topic = team_topic(world, "mlp-platform")
    assert {world.resolve("mlp-platform", s["Address"]) for n in budget.properties["NotificationsWithSubscribers"]
            for s in n["Subscribers"]} == {topic}
    own = f"arn:aws:budgets::{ACCOUNT}:budget/{platform_budget_name(PREFIX)}"
    publish = Request("sns:Publish", topic, context={"aws:SourceArn": own, "aws:SourceAccount": ACCOUNT},
                      principal_service=BUDGETS)
    assert evaluate(world.resource_statements(topic), publish, resource_policy=True).allowed
