"""One run of the reaper: list, decide, tear down, report.

An endpoint is deleted only when all of these hold: it carries this platform's managed tags, its name
starts with the platform prefix, its team is not exempt, it is not opted out by tag, it is not
serverless, it is InService, its last create/update is older than the grace period, and its traffic
over the idle window is zero (Invocations over all variants; for asynchronous endpoints the processed
invocations and the backlog). Idle endpoints are taken oldest-modified first, up to the per-run cap;
in dry-run mode they are reported as "would be deleted" against a separate cap of the same size, so a
dry run previews exactly what a real run would do. Each deleted (or would-be-deleted) endpoint carries its
estimated on-demand cost per hour (``pricing``), which the platform dashboard sums.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from idle_endpoint_reaper import activity, decisions, inventory, pricing, report, teardown
from idle_endpoint_reaper.settings import ReaperConfig, TeamPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clients:
    """The boto3 clients one run uses."""

    sagemaker: Any
    cloudwatch: Any
    autoscaling: Any
    ssm: Any
    scheduler: Any = None
    pricing: Any = None
    region: str = ""


@dataclass(frozen=True)
class _Idle:
    endpoint: inventory.ManagedEndpoint
    policy: TeamPolicy
    reason: str


def reap(clients: Clients, config: ReaperConfig, now: datetime, *, force_dry_run: bool = False) -> report.RunReport:
    """Decide every managed endpoint of ``config.prefix`` at time ``now`` and act on the idle ones."""
    if force_dry_run:
        config = config.forcing_dry_run()
    run = report.RunReport(prefix=config.prefix, dry_run_forced=force_dry_run)
    try:
        endpoints = inventory.list_managed_endpoints(clients.sagemaker, config.prefix)
    except (BotoCoreError, ClientError) as exc:
        run.run_errors.append(f"listing managed endpoints failed, nothing was decided: {exc}")
        return run

    candidates: list[tuple[inventory.ManagedEndpoint, TeamPolicy]] = []
    for endpoint in endpoints:
        policy = config.policy_for(endpoint.team)
        reason = decisions.keep_reason(endpoint, policy, config.prefix, now)
        if reason is None:
            candidates.append((endpoint, policy))
        else:
            run.add(_outcome(endpoint, policy, report.KEPT, reason))

    requests = [activity.ActivityRequest(e.name, e.variants, p.idle_window_hours) for e, p in candidates]
    activities, metric_errors = activity.measure_activity(clients.cloudwatch, requests, now)
    idle: list[_Idle] = []
    for endpoint, policy in candidates:
        if endpoint.name in metric_errors:
            run.add(_outcome(endpoint, policy, report.ERROR, f"kept, traffic unknown: {metric_errors[endpoint.name]}"))
            continue
        traffic = activities[endpoint.name]
        described = traffic.describe(policy.idle_window_hours)
        if traffic.idle:
            idle.append(_Idle(endpoint, policy, described))
        else:
            run.add(_outcome(endpoint, policy, report.KEPT, described))

    _act_on_idle(clients, config, idle, run, now)
    return run


def _hourly_cost(clients: Clients, book: pricing.PriceBook | None, endpoint: inventory.ManagedEndpoint) -> float | None:
    """The endpoint's estimated hourly cost, when a price list client is there to ask."""
    if book is None:
        return None
    cost, why = pricing.endpoint_hourly_cost(clients.sagemaker, book, endpoint)
    if cost is None:
        logger.warning("idle endpoint not priced", extra={"endpoint": endpoint.name, "reason": why})
    return cost


def _act_on_idle(
    clients: Clients, config: ReaperConfig, idle: list[_Idle], run: report.RunReport, now: datetime
) -> None:
    book = pricing.PriceBook(clients.pricing, clients.region) if clients.pricing is not None else None
    idle.sort(key=lambda i: (i.endpoint.last_modified_time, i.endpoint.name))
    cap = config.max_deletions_per_run
    cap_reason = f"idle, but the deletion cap was reached (max {cap} per run)"
    to_delete: list[_Idle] = []
    previewed = 0
    for item in idle:
        if item.policy.dry_run:
            if previewed < cap:
                previewed += 1
                run.add(_outcome(item.endpoint, item.policy, report.WOULD_DELETE, item.reason,
                                 hourly_cost_usd=_hourly_cost(clients, book, item.endpoint)))
            else:
                run.add(_outcome(item.endpoint, item.policy, report.KEPT, cap_reason))
        elif len(to_delete) < cap:
            to_delete.append(item)
        else:
            run.add(_outcome(item.endpoint, item.policy, report.KEPT, cap_reason))
    if not to_delete:
        return

    targets, target_errors = teardown.find_scalable_targets(clients.autoscaling, [i.endpoint for i in to_delete])
    # Priced before the teardown: the endpoint config is kept, but the count is the one Search saw.
    costs = {item.endpoint.name: _hourly_cost(clients, book, item.endpoint) for item in to_delete}
    for item in to_delete:
        endpoint = item.endpoint
        if endpoint.name in target_errors:
            run.add(_outcome(endpoint, item.policy, report.ERROR, f"not deleted: {target_errors[endpoint.name]}"))
            continue
        result = teardown.tear_down(
            endpoint,
            targets[endpoint.name],
            sagemaker=clients.sagemaker,
            autoscaling=clients.autoscaling,
            ssm=clients.ssm,
            now=now,
            scheduler=clients.scheduler,
        )
        if result.error is None:
            reason = item.reason + (f"; {result.schedule_error}" if result.schedule_error else "")
            run.add(_outcome(endpoint, item.policy, report.DELETED, reason, result.deregistered,
                             monitoring_schedule_deleted=result.schedule_deleted,
                             hourly_cost_usd=costs[endpoint.name]))
        else:
            run.add(_outcome(endpoint, item.policy, report.ERROR, result.error, result.deregistered))


def _outcome(
    endpoint: inventory.ManagedEndpoint,
    policy: TeamPolicy,
    action: str,
    reason: str,
    deregistered: tuple[str, ...] = (),
    **extra: Any,
) -> report.Outcome:
    return report.Outcome(
        endpoint=endpoint.name,
        team=endpoint.team,
        action=action,
        reason=reason,
        dry_run=policy.dry_run,
        endpoint_config=endpoint.config_name or None,
        deregistered_targets=deregistered,
        **extra,
    )
