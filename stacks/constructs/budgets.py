"""Monthly AWS Budgets on cost-allocation tags: a team's (`team.budget`, tag ``mlops:team``, in the team stack)
and the whole platform's (`budget`, tag ``mlops:platform``, in the platform stack).

Notifications go to the owner's topic: one per actual-cost threshold (percent of the limit) and, with
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

from stacks.config import REGIONS_WITHOUT_BUDGETS, Budget
from stacks.constructs.resource_policies import allow_budget_to_publish

PLATFORM_SCOPE = "platform"
"""How the platform budget is named where team names go (the cost metrics' Team dimension): no team has it."""


def team_budget_name(prefix: str, team: str) -> str:
    return f"{prefix}-{team}"


def platform_budget_name(prefix: str) -> str:
    return f"{prefix}-platform"


def cost_filter(tag_key: str, tag_value: str) -> dict:
    """Budgets' filter on a user-defined cost-allocation tag: ``user:<key>$<value>``."""
    return {"TagKeyValue": [f"user:{tag_key}${tag_value}"]}


class CostBudget(Construct):
    """``budget`` is the ``CfnBudget``, or None when ``settings`` is None (no budget in the config)."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str, tag_key: str, tag_value: str,
                 settings: Budget | None, alert_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.budget = None
        self.name = name
        if settings is None:
            return
        subscriber = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=alert_topic.topic_arn)]

        def notification(kind: str, percent: float) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                    threshold_type="PERCENTAGE"),
                subscribers=subscriber)

        notifications = [notification("ACTUAL", p) for p in sorted(settings.alert_thresholds_percent)]
        if settings.forecast_alert:
            notifications.append(notification("FORECASTED", 100))
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=settings.monthly_usd, unit="USD"),
                cost_filters=cost_filter(tag_key, tag_value),
            ),
            notifications_with_subscribers=notifications,
        )
        if Token.is_unresolved(Stack.of(self).region):
            excluded = [Fn.condition_equals(Aws.REGION, region) for region in REGIONS_WITHOUT_BUDGETS]
            condition = CfnCondition(self, "BudgetsInRegion", expression=Fn.condition_not(
                excluded[0] if len(excluded) == 1 else Fn.condition_or(*excluded)))
            self.budget.cfn_options.condition = condition
        allow_budget_to_publish(alert_topic, "BudgetNotifications", self.name)
