"""A team's monthly AWS Budget: its cost, by the team's cost-allocation tag, against `team.budget`.

Notifications go to the team topic: one per actual-cost threshold (percent of the limit) and, with
``forecast_alert``, one when the month's forecast passes the limit. The topic's policy admits AWS Budgets for
this budget only; the platform key's policy lets budgets.amazonaws.com of the account use the key.

CloudFormation has no AWS::Budgets::Budget in ``REGIONS_WITHOUT_BUDGETS``: the config refuses a budget with
such a ``region``, and a template for any region skips the budget there by a condition.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, Fn, Stack, Token
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common import tags
from stacks.config import REGIONS_WITHOUT_BUDGETS, Team
from stacks.constructs.resource_policies import allow_budget_to_publish


def team_budget_name(prefix: str, team: str) -> str:
    return f"{prefix}-{team}"


def cost_filter(team: str) -> dict:
    """Budgets' filter on a user-defined cost-allocation tag: ``user:<key>$<value>``."""
    return {"TagKeyValue": [f"user:{tags.TEAM}${team}"]}


class TeamBudget(Construct):
    """``budget`` is the ``CfnBudget``, or None when the team has no budget in the config."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, team: Team, alert_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.budget = None
        self.name = team_budget_name(prefix, team.name)
        if team.budget is None:
            return
        subscriber = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=alert_topic.topic_arn)]

        def notification(kind: str, percent: float) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                    threshold_type="PERCENTAGE"),
                subscribers=subscriber)

        notifications = [notification("ACTUAL", p) for p in sorted(team.budget.alert_thresholds_percent)]
        if team.budget.forecast_alert:
            notifications.append(notification("FORECASTED", 100))
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=team.budget.monthly_usd, unit="USD"),
                cost_filters=cost_filter(team.name),
            ),
            notifications_with_subscribers=notifications,
        )
        if Token.is_unresolved(Stack.of(self).region):
            excluded = [Fn.condition_equals(Aws.REGION, region) for region in REGIONS_WITHOUT_BUDGETS]
            condition = CfnCondition(self, "BudgetsInRegion", expression=Fn.condition_not(
                excluded[0] if len(excluded) == 1 else Fn.condition_or(*excluded)))
            self.budget.cfn_options.condition = condition
        allow_budget_to_publish(alert_topic, "TeamBudgetNotifications", self.name)
