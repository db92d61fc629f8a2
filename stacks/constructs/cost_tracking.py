"""The platform's cost tracking: every 6 hours a function keeps the team and platform tags active for cost
allocation (``cost_allocation.activate_tag``) and publishes each budget's spend (the teams', and the platform's
as ``Team=platform``) to ``<prefix>/Costs`` for the platform dashboard (see lambdas/cost_tracking). Nothing is
built when there is no budget and the tags are not to be activated here.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common import tags
from stacks.config import PlatformConfig
from stacks.constructs.budgets import PLATFORM_SCOPE, platform_budget_name, team_budget_name
from stacks.constructs.lambda_function import platform_function
from stacks.constructs.resource_policies import budget_arn

HANDLER = "cost_tracking.handler.handler"
SCHEDULE = "rate(6 hours)"


def cost_namespace(prefix: str) -> str:
    return f"{prefix}/Costs"


class CostTracking(Construct):
    """``function`` and ``schedule`` (None when there is nothing to track); ``budgets``: team -> budget name."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, kms_key: kms.IKey,
                 alert_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.prefix = config.prefix
        self.namespace = cost_namespace(config.prefix)
        self.budgets = {t.name: team_budget_name(config.prefix, t.name) for t in config.teams if t.budget is not None}
        self.limits = {t.name: t.budget.monthly_usd for t in config.teams if t.budget is not None}
        if config.budget is not None:  # "platform" is no team's name (reserved)
            self.budgets[PLATFORM_SCOPE] = platform_budget_name(config.prefix)
            self.limits[PLATFORM_SCOPE] = config.budget.monthly_usd
        self.activate_tag = config.cost_allocation.activate_tag
        self.function = self.schedule = None
        if not self.budgets and not self.activate_tag:
            return
        stack = Stack.of(self)
        self.function = platform_function(
            self,
            "Function",
            handler=HANDLER,
            description=f"Keeps the {config.prefix} team tag active for cost allocation and publishes team budget spend",
            kms_key=kms_key,
            environment={
                "ACCOUNT_ID": stack.account,
                "COST_NAMESPACE": self.namespace,
                "TEAM_BUDGETS": json.dumps([{"team": t, "budget_name": b} for t, b in sorted(self.budgets.items())],
                                           separators=(",", ":")),
                "ACTIVATE_TAG_KEYS": f"{tags.TEAM},{tags.PLATFORM}" if self.activate_tag else "",
            },
            dead_letter_topic=alert_topic,
        )
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=Duration.hours(1))
        self.schedule = events.Rule(self, "Schedule", description=f"Runs the {config.prefix} cost tracking",
                                    schedule=events.Schedule.expression(SCHEDULE),
                                    targets=[targets.LambdaFunction(self.function)])
        if self.activate_tag:
            self.function.add_to_role_policy(iam.PolicyStatement(
                sid="CostAllocationTagsHaveNoResourceLevelPermissions",
                actions=["ce:ListCostAllocationTags", "ce:UpdateCostAllocationTagsStatus"],
                resources=["*"],
            ))
        if self.budgets:
            self.function.add_to_role_policy(iam.PolicyStatement(
                sid="ReadTheTeamBudgets",
                actions=["budgets:ViewBudget"],
                resources=[budget_arn(stack, name) for name in sorted(self.budgets.values())],
            ))
        self.function.add_to_role_policy(iam.PolicyStatement(
            sid="PublishCostMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
        ))
        # Its dead-letter topic is encrypted with the platform key.
        self.function.add_to_role_policy(iam.PolicyStatement(
            sid="UsePlatformKeyForTopic", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[kms_key.key_arn]))
