"""The idle endpoint reaper against moto: what it deletes, what it keeps and why, in how many calls.

Time is controlled by passing ``now`` to `reaper.reap`: moto stamps endpoints with the real clock, so
``now = real time + 30h`` makes them 30 hours old. Metrics are put with ``put_metric_data`` at times
relative to that ``now``. API calls are observed with botocore's ``before-parameter-build`` event (once
per API call, retries excluded), the same hook the benchmark counts with.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from common import tags
from idle_endpoint_reaper import (
    activity,
    decisions,
    handler,
    reaper,
    report,
    restore_record,
    settings,
    teardown,
)
from idle_endpoint_reaper.inventory import ManagedEndpoint
from moto import mock_aws

PREFIX = "mlp"
REGION = "us-east-1"
MODEL_ROLE = "arn:aws:iam::123456789012:role/model-execution"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass
class Aws:
    """Clients against one moto account, plus every reaper call seen, in order."""

    clients: reaper.Clients
    sagemaker: Any
    cloudwatch: Any
    autoscaling: Any
    ssm: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def operations(self) -> Counter:
        return Counter(name for name, _ in self.calls)

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def aws():
    with mock_aws():
        made = {
            name: boto3.client(name, region_name=REGION)
            for name in ("sagemaker", "cloudwatch", "application-autoscaling", "ssm")
        }
        env = Aws(
            clients=reaper.Clients(
                sagemaker=made["sagemaker"],
                cloudwatch=made["cloudwatch"],
                autoscaling=made["application-autoscaling"],
                ssm=made["ssm"],
            ),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            autoscaling=boto3.client("application-autoscaling", region_name=REGION),
            ssm=boto3.client("ssm", region_name=REGION),
        )

        def record(model, params, **_):
            env.calls.append((model.name, params))

        for client in made.values():
            client.meta.events.register("before-parameter-build.*.*", record)
        yield env


def ownership(team: str = "fraud", **extra: str) -> list[dict[str, str]]:
    values = {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX, tags.TEAM: team, **extra}
    return [{"Key": k, "Value": v} for k, v in values.items()]


def create_endpoint(
    sagemaker: Any,
    name: str,
    *,
    endpoint_tags: list[dict[str, str]] | None = None,
    variants: tuple[str, ...] = ("AllTraffic",),
    serverless: bool = False,
    asynchronous: bool = False,
) -> str:
    """A model, an endpoint config and an endpoint; returns the config name."""
    model = f"{name}-model"
    config = f"{name}-config"
    sagemaker.create_model(ModelName=model, ExecutionRoleArn=MODEL_ROLE, PrimaryContainer={"Image": "image:1"})
    if serverless:
        production = [
            {"VariantName": v, "ModelName": model, "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}
            for v in variants
        ]
    else:
        production = [
            {"VariantName": v, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            for v in variants
        ]
    extra: dict[str, Any] = {}
    if asynchronous:
        extra["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://bucket/async-out"}}
    sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=production, **extra)
    sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=config, Tags=ownership() if endpoint_tags is None else endpoint_tags
    )
    return config


def put_metric(
    cloudwatch: Any, metric: str, endpoint: str, value: float, at: datetime, variant: str | None = None
) -> None:
    dims = [{"Name": "EndpointName", "Value": endpoint}]
    if variant is not None:
        dims.append({"Name": "VariantName", "Value": variant})
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[{"MetricName": metric, "Dimensions": dims, "Value": value, "Timestamp": at}],
    )


def config(
    *,
    dry_run: bool = False,
    idle_window_hours: int = 24,
    grace_period_hours: int = 24,
    cap: int = 10,
    overrides: dict[str, settings.TeamOverride] | None = None,
) -> settings.ReaperConfig:
    return settings.ReaperConfig(
        prefix=PREFIX,
        defaults=settings.TeamPolicy(idle_window_hours, grace_period_hours, dry_run),
        max_deletions_per_run=cap,
        team_overrides=overrides or {},
    )


def hours_from_now(hours: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=hours)


def endpoint_names(sagemaker: Any) -> set[str]:
    return {e["EndpointName"] for e in sagemaker.list_endpoints(MaxResults=100)["Endpoints"]}


def outcome(run: report.RunReport, name: str) -> report.Outcome:
    (found,) = [o for o in run.outcomes if o.endpoint == name]
    return found


# --- the deletion criteria, end to end against moto ------------------------------------------------


def test_idle_endpoint_is_deleted_and_its_model_config_and_restore_record_stay(aws):
    config_name = create_endpoint(aws.sagemaker, "mlp-fraud-idle")

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "mlp-fraud-idle").action == report.DELETED
    assert "mlp-fraud-idle" not in endpoint_names(aws.sagemaker)
    aws.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    aws.sagemaker.describe_model(ModelName="mlp-fraud-idle-model")
    stored = aws.ssm.get_parameter(Name=restore_record.parameter_name("mlp-fraud-idle"))["Parameter"]["Value"]
    record = restore_record.RestoreRecord.from_json(stored)
    assert record.endpoint_config_name == config_name
    assert record.tags[tags.TEAM] == "fraud"
    assert aws.operations()["AddTags"] == aws.operations()["DeleteTags"] == 0


def test_busy_endpoint_is_kept(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-busy")
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "Invocations", "mlp-fraud-busy", 7, now - timedelta(hours=3), "AllTraffic")

    run = reaper.reap(aws.clients, config(), now)

    kept = outcome(run, "mlp-fraud-busy")
    assert (kept.action, kept.reason) == (report.KEPT, "busy: 7 invocations in the last 24h")
    assert "mlp-fraud-busy" in endpoint_names(aws.sagemaker)


def test_traffic_before_the_idle_window_does_not_keep_an_endpoint(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-was-busy")
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "Invocations", "mlp-fraud-was-busy", 50, now - timedelta(hours=26), "AllTraffic")

    run = reaper.reap(aws.clients, config(), now)

    assert outcome(run, "mlp-fraud-was-busy").action == report.DELETED


def test_traffic_on_only_the_second_of_two_variants_keeps_the_endpoint(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-ab", variants=("Blue", "Green"))
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "Invocations", "mlp-fraud-ab", 0, now - timedelta(hours=5), "Blue")
    put_metric(aws.cloudwatch, "Invocations", "mlp-fraud-ab", 2, now - timedelta(hours=5), "Green")

    run = reaper.reap(aws.clients, config(), now)

    assert outcome(run, "mlp-fraud-ab").action == report.KEPT
    asked = {
        tuple(d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"])
        for params in aws.calls_to("GetMetricData")
        for q in params["MetricDataQueries"]
        if q["MetricStat"]["Metric"]["MetricName"] == "Invocations"
    }
    assert asked == {("mlp-fraud-ab", "Blue"), ("mlp-fraud-ab", "Green")}


def test_new_endpoint_inside_the_grace_period_is_kept_without_reading_metrics(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-new")

    run = reaper.reap(aws.clients, config(grace_period_hours=24), hours_from_now(1))

    kept = outcome(run, "mlp-fraud-new")
    assert kept.action == report.KEPT and kept.reason.startswith("within grace period")
    assert aws.operations()["GetMetricData"] == 0


@pytest.mark.parametrize(
    ("extra_tags", "reason"),
    [
        ({tags.KEEP_ALIVE: "true"}, "opted out: mlops:keep-alive=true"),
        ({tags.KEEP_ALIVE: "TRUE"}, "opted out: mlops:keep-alive=true"),
        ({tags.KEEP_UNTIL: "2999-01-31"}, "opted out: mlops:keep-until=2999-01-31"),
        (
            {tags.KEEP_UNTIL: "next friday"},
            "opted out: mlops:keep-until='next friday' is not an ISO date (kept to be safe)",
        ),
    ],
)
def test_opted_out_endpoint_is_kept(aws, extra_tags, reason):
    create_endpoint(aws.sagemaker, "mlp-fraud-keep", endpoint_tags=ownership(**extra_tags))

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert (outcome(run, "mlp-fraud-keep").action, outcome(run, "mlp-fraud-keep").reason) == (report.KEPT, reason)
    assert "mlp-fraud-keep" in endpoint_names(aws.sagemaker)


def test_expired_keep_until_and_keep_alive_false_do_not_protect(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-expired", endpoint_tags=ownership(**{tags.KEEP_UNTIL: "2001-01-01"}))
    create_endpoint(aws.sagemaker, "mlp-fraud-notalive", endpoint_tags=ownership(**{tags.KEEP_ALIVE: "false"}))

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "mlp-fraud-expired").action == report.DELETED
    assert outcome(run, "mlp-fraud-notalive").action == report.DELETED


def test_foreign_endpoints_are_never_touched(aws):
    untagged = []
    other_platform = [
        {"Key": k, "Value": v}
        for k, v in {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: "other", tags.TEAM: "fraud"}.items()
    ]
    other_manager = [
        {"Key": k, "Value": v}
        for k, v in {tags.MANAGED_BY: "someone-else", tags.PLATFORM: PREFIX, tags.TEAM: "fraud"}.items()
    ]
    create_endpoint(aws.sagemaker, "mlp-hand-made", endpoint_tags=untagged)
    create_endpoint(aws.sagemaker, "mlp-other-platform", endpoint_tags=other_platform)
    create_endpoint(aws.sagemaker, "mlp-other-manager", endpoint_tags=other_manager)
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert [o.endpoint for o in run.outcomes] == ["mlp-fraud-idle"]
    assert [p["EndpointName"] for p in aws.calls_to("DeleteEndpoint")] == ["mlp-fraud-idle"]
    assert {"mlp-hand-made", "mlp-other-platform", "mlp-other-manager"} <= endpoint_names(aws.sagemaker)


def test_managed_endpoint_named_outside_the_prefix_is_kept(aws):
    create_endpoint(aws.sagemaker, "legacy-fraud-model")

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "legacy-fraud-model").reason == "name outside the platform prefix 'mlp-'"
    assert aws.operations()["DeleteEndpoint"] == 0


@pytest.mark.parametrize(
    ("metric", "variant", "reason"),
    [
        ("ApproximateBacklogSize", None, "busy: async backlog up to 3 in the last 24h"),
        ("InvocationsProcessed", "AllTraffic", "busy: 3 async invocations processed in the last 24h"),
    ],
)
def test_async_endpoint_with_backlog_or_processed_requests_is_kept(aws, metric, variant, reason):
    create_endpoint(aws.sagemaker, "mlp-fraud-async", asynchronous=True)
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, metric, "mlp-fraud-async", 3, now - timedelta(hours=2), variant)

    run = reaper.reap(aws.clients, config(), now)

    assert (outcome(run, "mlp-fraud-async").action, outcome(run, "mlp-fraud-async").reason) == (report.KEPT, reason)


def test_async_endpoint_with_empty_backlog_and_nothing_processed_is_deleted(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-async", asynchronous=True)
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "ApproximateBacklogSize", "mlp-fraud-async", 0, now - timedelta(hours=2))

    run = reaper.reap(aws.clients, config(), now)

    assert outcome(run, "mlp-fraud-async").action == report.DELETED


def test_serverless_endpoint_is_skipped(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-serverless", serverless=True)

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "mlp-fraud-serverless").reason == "serverless endpoint (costs nothing when idle)"
    assert aws.operations()["GetMetricData"] == aws.operations()["DeleteEndpoint"] == 0


def test_exempt_team_is_kept(aws):
    create_endpoint(aws.sagemaker, "mlp-pricing-idle", endpoint_tags=ownership("pricing"))

    run = reaper.reap(
        aws.clients, config(overrides={"pricing": settings.TeamOverride(exempt=True)}), hours_from_now(30)
    )

    assert outcome(run, "mlp-pricing-idle").reason == "team 'pricing' is exempt"


def test_team_overrides_of_grace_and_window_apply_to_that_team_only(aws):
    create_endpoint(aws.sagemaker, "mlp-pricing-idle", endpoint_tags=ownership("pricing"))
    create_endpoint(aws.sagemaker, "mlp-churn-idle", endpoint_tags=ownership("churn"))
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "Invocations", "mlp-churn-idle", 1, now - timedelta(hours=40), "AllTraffic")
    overrides = {
        "pricing": settings.TeamOverride(grace_period_hours=72),
        "churn": settings.TeamOverride(idle_window_hours=48),
    }

    run = reaper.reap(aws.clients, config(overrides=overrides), now)

    assert outcome(run, "mlp-pricing-idle").reason.endswith("(grace 72h)")
    assert outcome(run, "mlp-churn-idle").reason == "busy: 1 invocations in the last 48h"


# --- dry run, cap, errors, autoscaling ---------------------------------------------------------------


def test_dry_run_deletes_nothing_and_reports_what_it_would_delete(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")

    run = reaper.reap(aws.clients, config(dry_run=True), hours_from_now(30))

    assert outcome(run, "mlp-fraud-idle").action == report.WOULD_DELETE
    assert "mlp-fraud-idle" in endpoint_names(aws.sagemaker)
    written = {"DeleteEndpoint", "DeregisterScalableTarget", "PutParameter", "DescribeScalableTargets"}
    assert written & set(aws.operations()) == set()


def test_team_dry_run_override_and_forced_dry_run(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")
    create_endpoint(aws.sagemaker, "mlp-churn-idle", endpoint_tags=ownership("churn"))
    platform_dry = config(dry_run=True, overrides={"churn": settings.TeamOverride(dry_run=False)})

    preview = reaper.reap(aws.clients, platform_dry, hours_from_now(30), force_dry_run=True)
    assert {o.action for o in preview.outcomes} == {report.WOULD_DELETE}
    assert aws.operations()["DeleteEndpoint"] == 0

    run = reaper.reap(aws.clients, platform_dry, hours_from_now(30))
    assert outcome(run, "mlp-churn-idle").action == report.DELETED
    assert outcome(run, "mlp-fraud-idle").action == report.WOULD_DELETE
    assert endpoint_names(aws.sagemaker) == {"mlp-fraud-idle"}


def test_the_deletion_cap_holds_and_takes_the_oldest_first(aws):
    for i in range(5):
        create_endpoint(aws.sagemaker, f"mlp-fraud-idle-{i}")

    run = reaper.reap(aws.clients, config(cap=2), hours_from_now(30))

    assert len(aws.calls_to("DeleteEndpoint")) == 2
    assert [o.endpoint for o in run.by_action(report.DELETED)] == ["mlp-fraud-idle-0", "mlp-fraud-idle-1"]
    capped = run.by_action(report.KEPT)
    assert len(capped) == 3 and {o.reason for o in capped} == {"idle, but the deletion cap was reached (max 2 per run)"}


def test_the_cap_also_bounds_a_dry_run_preview(aws):
    for i in range(3):
        create_endpoint(aws.sagemaker, f"mlp-fraud-idle-{i}")

    run = reaper.reap(aws.clients, config(dry_run=True, cap=1), hours_from_now(30))

    assert run.counts()[report.WOULD_DELETE] == 1 and run.counts()[report.KEPT] == 2


def test_a_cap_of_zero_deletes_nothing(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")

    reaper.reap(aws.clients, config(cap=0), hours_from_now(30))

    assert aws.operations()["DeleteEndpoint"] == 0


def test_one_failing_delete_does_not_stop_the_others(aws):
    for name in ("mlp-fraud-a", "mlp-fraud-b", "mlp-fraud-c"):
        create_endpoint(aws.sagemaker, name)
    someone_else = boto3.client("sagemaker", region_name=REGION)

    def deleted_meanwhile(params, **_):
        """Another actor deletes mlp-fraud-b between the reaper's listing and its DeleteEndpoint."""
        if params["EndpointName"] == "mlp-fraud-b":
            someone_else.delete_endpoint(EndpointName="mlp-fraud-b")

    aws.clients.sagemaker.meta.events.register("before-parameter-build.sagemaker.DeleteEndpoint", deleted_meanwhile)

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert [p["EndpointName"] for p in aws.calls_to("DeleteEndpoint")] == ["mlp-fraud-a", "mlp-fraud-b", "mlp-fraud-c"]
    assert outcome(run, "mlp-fraud-a").action == outcome(run, "mlp-fraud-c").action == report.DELETED
    failed = outcome(run, "mlp-fraud-b")
    assert failed.action == report.ERROR and failed.reason.startswith("DeleteEndpoint failed")
    assert "Errors (1):" in run.message()


def test_autoscaling_targets_are_deregistered_before_the_delete(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-scaled", variants=("Blue", "Green"))
    create_endpoint(aws.sagemaker, "mlp-fraud-busy")
    for resource_id in (
        "endpoint/mlp-fraud-scaled/variant/Blue",
        "endpoint/mlp-fraud-scaled/variant/Green",
        "endpoint/mlp-fraud-busy/variant/AllTraffic",
    ):
        aws.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource_id,
            ScalableDimension=VARIANT_DIMENSION,
            MinCapacity=1,
            MaxCapacity=4,
        )
    now = hours_from_now(30)
    put_metric(aws.cloudwatch, "Invocations", "mlp-fraud-busy", 1, now - timedelta(hours=1), "AllTraffic")

    run = reaper.reap(aws.clients, config(), now)

    order = [
        (name, p.get("ResourceId") or p.get("EndpointName"))
        for name, p in aws.calls
        if name in ("DeregisterScalableTarget", "DeleteEndpoint")
    ]
    assert order == [
        ("DeregisterScalableTarget", "endpoint/mlp-fraud-scaled/variant/Blue"),
        ("DeregisterScalableTarget", "endpoint/mlp-fraud-scaled/variant/Green"),
        ("DeleteEndpoint", "mlp-fraud-scaled"),
    ]
    remaining = aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [t["ResourceId"] for t in remaining] == ["endpoint/mlp-fraud-busy/variant/AllTraffic"]
    deleted = outcome(run, "mlp-fraud-scaled")
    assert deleted.deregistered_targets == (
        "endpoint/mlp-fraud-scaled/variant/Blue",
        "endpoint/mlp-fraud-scaled/variant/Green",
    )
    record = restore_record.RestoreRecord.from_json(
        aws.ssm.get_parameter(Name=restore_record.parameter_name("mlp-fraud-scaled"))["Parameter"]["Value"]
    )
    assert [(t.resource_id, t.min_capacity, t.max_capacity) for t in record.scalable_targets] == [
        ("endpoint/mlp-fraud-scaled/variant/Blue", 1, 4),
        ("endpoint/mlp-fraud-scaled/variant/Green", 1, 4),
    ]


def test_a_failed_restore_record_leaves_the_endpoint_alone(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-a")
    create_endpoint(aws.sagemaker, "mlp-fraud-b")
    with Stubber(aws.clients.ssm) as ssm_stub:
        ssm_stub.add_client_error("put_parameter", service_error_code="AccessDeniedException", http_status_code=400)
        ssm_stub.add_response("put_parameter", {"Version": 1})

        run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "mlp-fraud-a").reason.startswith("restore record not written, endpoint left alone")
    assert outcome(run, "mlp-fraud-b").action == report.DELETED
    assert endpoint_names(aws.sagemaker) == {"mlp-fraud-a"}


def test_a_repeated_teardown_of_the_same_name_overwrites_its_record(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")
    reaper.reap(aws.clients, config(), hours_from_now(30))
    aws.sagemaker.create_endpoint_config(
        EndpointConfigName="mlp-fraud-idle-config-2",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "mlp-fraud-idle-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    aws.sagemaker.create_endpoint(
        EndpointName="mlp-fraud-idle", EndpointConfigName="mlp-fraud-idle-config-2", Tags=ownership()
    )

    run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert outcome(run, "mlp-fraud-idle").action == report.DELETED
    value = aws.ssm.get_parameter(Name=restore_record.parameter_name("mlp-fraud-idle"))["Parameter"]["Value"]
    assert restore_record.RestoreRecord.from_json(value).endpoint_config_name == "mlp-fraud-idle-config-2"


def test_unreadable_metrics_keep_the_endpoint_and_report_an_error(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")
    with Stubber(aws.clients.cloudwatch) as cloudwatch_stub:
        cloudwatch_stub.add_client_error(
            "get_metric_data", service_error_code="InternalServiceFault", http_status_code=500
        )

        run = reaper.reap(aws.clients, config(), hours_from_now(30))

    failed = outcome(run, "mlp-fraud-idle")
    assert failed.action == report.ERROR and "GetMetricData failed" in failed.reason
    assert aws.operations()["DeleteEndpoint"] == 0


def test_a_forbidden_metric_result_keeps_the_endpoint(aws):
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")
    results = [
        {"Id": "q0", "Label": "Invocations", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
        {"Id": "q1", "Label": "InvocationsProcessed", "Timestamps": [], "Values": [], "StatusCode": "Forbidden"},
        {"Id": "q2", "Label": "ApproximateBacklogSize", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
    ]
    with Stubber(aws.clients.cloudwatch) as cloudwatch_stub:
        cloudwatch_stub.add_response("get_metric_data", {"MetricDataResults": results})

        run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert (
        outcome(run, "mlp-fraud-idle").reason
        == "kept, traffic unknown: CloudWatch could not return InvocationsProcessed"
    )


def test_a_failed_listing_decides_nothing_and_is_reported(aws):
    with Stubber(aws.clients.sagemaker) as sagemaker_stub:
        sagemaker_stub.add_client_error(
            "list_endpoints", service_error_code="ThrottlingException", http_status_code=400
        )

        run = reaper.reap(aws.clients, config(), hours_from_now(30))

    assert run.outcomes == [] and run.run_errors[0].startswith("listing managed endpoints failed")


# --- API calls: batched, no per-endpoint calls -------------------------------------------------------


def test_decisions_use_batched_calls_and_no_per_endpoint_describe_or_tag_call(aws):
    for i in range(170):
        create_endpoint(aws.sagemaker, f"mlp-fraud-e{i:03d}")
    now = hours_from_now(30)
    for i in range(0, 170, 2):
        put_metric(aws.cloudwatch, "Invocations", f"mlp-fraud-e{i:03d}", 1, now - timedelta(hours=1), "AllTraffic")

    reaper.reap(aws.clients, config(dry_run=True), now)

    ops = aws.operations()
    assert ops["ListEndpoints"] == 2  # 100 per page
    assert ops["Search"] >= 1  # moto returns every Search result on one page; AWS pages by 100
    queries = [len(p["MetricDataQueries"]) for p in aws.calls_to("GetMetricData")]
    assert queries == [500, 10]  # 170 endpoints x 3 queries in ceil(510 / 500) calls
    per_endpoint = {"DescribeEndpoint", "DescribeEndpointConfig", "ListTags", "ListTagsForResource", "GetResources"}
    assert per_endpoint & set(ops) == set()


# --- pure parts ----------------------------------------------------------------------------------


def managed(status: str | None = "InService", modified_hours_ago: float = 48, **overrides: Any) -> ManagedEndpoint:
    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    values: dict[str, Any] = {
        "name": "mlp-fraud-x",
        "tags": {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX, tags.TEAM: "fraud"},
        "config_name": "mlp-fraud-x-v1-abc",
        "variants": ("AllTraffic",),
        "shadow_variants": (),
        "serverless": False,
        "status": status,
        "last_modified_time": None if status is None else now - timedelta(hours=modified_hours_ago),
    }
    values.update(overrides)
    return ManagedEndpoint(**values)


NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
POLICY = settings.TeamPolicy(idle_window_hours=24, grace_period_hours=24, dry_run=False)


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        (managed("Updating"), "status Updating"),
        (managed("Failed"), "status Failed"),
        (managed(None), "not returned by ListEndpoints (deleted or renamed since it was indexed)"),
        (managed(variants=()), "no production variants listed, so its traffic cannot be read"),
        (managed(modified_hours_ago=23.5), "within grace period: created or updated 23.5h ago (grace 24h)"),
        (managed(modified_hours_ago=24), None),
    ],
)
def test_keep_reason_checks_status_and_grace(endpoint, reason):
    assert decisions.keep_reason(endpoint, POLICY, PREFIX, NOW) == reason


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("2026-11-01", True),  # the whole named day is protected
        ("2026-10-31", False),
        ("2026-11-01T12:30:00+00:00", True),
        ("2026-11-01T11:00:00Z", False),
        ("2026-11-01T13:00:00", True),  # no zone: UTC
    ],
)
def test_keep_until_dates(value, kept):
    assert (decisions.opt_out_reason({tags.KEEP_UNTIL: value}, NOW) is not None) is kept


def test_activity_queries_per_endpoint():
    queries = activity.queries_for(activity.ActivityRequest("mlp-x", ("A", "B"), 24))
    assert sorted((q.metric, q.stat, dict(q.dimensions).get("VariantName")) for q in queries) == [
        ("ApproximateBacklogSize", "Maximum", None),
        ("Invocations", "Sum", "A"),
        ("Invocations", "Sum", "B"),
        ("InvocationsProcessed", "Sum", "A"),
        ("InvocationsProcessed", "Sum", "B"),
    ]


def test_settings_round_trip_through_the_environment():
    overrides = settings.encode_team_overrides(
        {
            "fraud": {"idle_window_hours": None, "grace_period_hours": None, "dry_run": None, "exempt": False},
            "pricing": {"idle_window_hours": None, "grace_period_hours": 72, "dry_run": False, "exempt": False},
            "legal": {"idle_window_hours": None, "grace_period_hours": None, "dry_run": None, "exempt": True},
        }
    )
    assert json.loads(overrides) == {"legal": {"exempt": True}, "pricing": {"dry_run": False, "grace_period_hours": 72}}
    parsed = settings.from_environment(
        {
            "PLATFORM_PREFIX": "mlp",
            "IDLE_WINDOW_HOURS": "24",
            "GRACE_PERIOD_HOURS": "12",
            "DRY_RUN": "true",
            "MAX_DELETIONS_PER_RUN": "3",
            "TEAM_OVERRIDES": overrides,
        }
    )
    assert parsed.policy_for("fraud") == settings.TeamPolicy(24, 12, True, False)
    assert parsed.policy_for("pricing") == settings.TeamPolicy(24, 72, False, False)
    assert parsed.policy_for("legal").exempt and parsed.policy_for(None) == parsed.defaults
    assert parsed.forcing_dry_run().policy_for("pricing").dry_run is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DRY_RUN", "maybe", "DRY_RUN='maybe' is not a boolean"),
        ("IDLE_WINDOW_HOURS", "0", "IDLE_WINDOW_HOURS=0 must be at least 1"),
        ("TEAM_OVERRIDES", '{"fraud": {"window": 3}}', "may only hold"),
    ],
)
def test_bad_settings_are_rejected(name, value, message):
    environ = {
        "PLATFORM_PREFIX": "mlp",
        "IDLE_WINDOW_HOURS": "24",
        "GRACE_PERIOD_HOURS": "24",
        "DRY_RUN": "true",
        "MAX_DELETIONS_PER_RUN": "3",
        name: value,
    }
    with pytest.raises(settings.SettingsError, match=message):
        settings.from_environment(environ)


def test_restore_record_keeps_only_platform_tags_when_all_do_not_fit():
    many = {f"extra-{i}": "x" * 200 for i in range(30)} | {tags.TEAM: "fraud", tags.MANAGED_BY: tags.MANAGED_BY_VALUE}
    record = restore_record.RestoreRecord("mlp-fraud-x", "cfg", "2026-11-01T00:00:00+00:00", "fraud", many)
    parsed = restore_record.RestoreRecord.from_json(record.to_json())
    assert parsed.tags == {tags.TEAM: "fraud", tags.MANAGED_BY: tags.MANAGED_BY_VALUE}
    with pytest.raises(ValueError, match="not a restore record"):
        restore_record.RestoreRecord.from_json('{"endpoint_name": "x"}')


# --- handler: one SNS summary, a structured log line per endpoint ------------------------------------


@pytest.fixture
def topic_queue(aws):
    """An SQS queue subscribed to the alert topic, to read what the reaper published."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-copy")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def messages() -> list[dict[str, Any]]:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in received]

    return topic_arn, messages


def set_handler_environment(monkeypatch, topic_arn: str, *, dry_run: bool) -> None:
    monkeypatch.setenv("PLATFORM_PREFIX", PREFIX)
    monkeypatch.setenv("IDLE_WINDOW_HOURS", "24")
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    monkeypatch.setenv("DRY_RUN", "true" if dry_run else "false")
    monkeypatch.setenv("MAX_DELETIONS_PER_RUN", "10")
    monkeypatch.setenv("TEAM_OVERRIDES", json.dumps({"pricing": {"exempt": True}}))
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic_arn)


def test_handler_sends_one_summary_and_logs_one_structured_line_per_endpoint(aws, topic_queue, monkeypatch, caplog):
    topic_arn, messages = topic_queue
    set_handler_environment(monkeypatch, topic_arn, dry_run=False)
    config_name = create_endpoint(aws.sagemaker, "mlp-fraud-idle")
    create_endpoint(aws.sagemaker, "mlp-pricing-idle", endpoint_tags=ownership("pricing"))
    create_endpoint(aws.sagemaker, "mlp-fraud-keep", endpoint_tags=ownership(**{tags.KEEP_ALIVE: "true"}))
    caplog.set_level(logging.INFO)

    result = handler.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)

    assert result["counts"] == {"deleted": 1, "would_delete": 0, "kept": 2, "error": 0}
    (published,) = messages()
    assert published["Subject"] == "[mlp] idle endpoint reaper: 1 deleted, 0 would be deleted, 2 kept, 0 errors"
    body = published["Message"]
    assert f"mlp-fraud-idle (team fraud, config {config_name})" in body
    assert "restore: python -m tools.restore_endpoint mlp-fraud-idle" in body
    assert "team 'pricing' is exempt (1): mlp-pricing-idle" in body
    assert "opted out: mlops:keep-alive=true (1): mlp-fraud-keep" in body
    lines = [r.reaper for r in caplog.records if hasattr(r, "reaper")]
    assert sorted((line["endpoint"], line["action"]) for line in lines) == [
        ("mlp-fraud-idle", "deleted"),
        ("mlp-fraud-keep", "kept"),
        ("mlp-pricing-idle", "kept"),
    ]
    assert all(set(line) >= {"endpoint", "team", "action", "reason", "dry_run", "endpoint_config"} for line in lines)
    [finished] = [r for r in caplog.records if r.getMessage() == "reaper run finished"]
    assert finished.reaper_run == result, "one line with the run's result closes the run"


def test_handler_event_can_force_a_dry_run_but_never_a_real_one(aws, topic_queue, monkeypatch):
    topic_arn, messages = topic_queue
    create_endpoint(aws.sagemaker, "mlp-fraud-idle")

    set_handler_environment(monkeypatch, topic_arn, dry_run=False)
    assert handler.handler({"dry_run": True}, None)["would_delete"] == ["mlp-fraud-idle"]
    set_handler_environment(monkeypatch, topic_arn, dry_run=True)
    assert handler.handler({"dry_run": False}, None)["would_delete"] == ["mlp-fraud-idle"]

    assert "mlp-fraud-idle" in endpoint_names(aws.sagemaker)
    assert all("forced dry run" in m["Message"] or "Would be deleted, dry run (1)" in m["Message"] for m in messages())


def test_scalable_targets_of_shadow_variants_are_found_in_batches_of_50(aws):
    endpoints = [
        managed(name=f"mlp-fraud-e{i:02d}", variants=("Blue",), shadow_variants=("Shadow",)) for i in range(30)
    ]
    for endpoint in endpoints[:2]:
        for variant in endpoint.all_variants:
            aws.autoscaling.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=f"endpoint/{endpoint.name}/variant/{variant}",
                ScalableDimension=VARIANT_DIMENSION,
                MinCapacity=1,
                MaxCapacity=2,
            )

    targets, errors = teardown.find_scalable_targets(aws.clients.autoscaling, endpoints)

    assert errors == {}
    assert [len(p["ResourceIds"]) for p in aws.calls_to("DescribeScalableTargets")] == [50, 10]
    assert [t.resource_id for t in targets["mlp-fraud-e01"]] == [
        "endpoint/mlp-fraud-e01/variant/Blue",
        "endpoint/mlp-fraud-e01/variant/Shadow",
    ]
    assert targets["mlp-fraud-e05"] == []


def test_the_summary_of_a_large_run_fits_one_sns_message():
    run = report.RunReport(prefix=PREFIX, dry_run_forced=False)
    for i in range(5000):
        run.outcomes.append(report.Outcome(f"mlp-team-uc{i:05d}", "team", report.KEPT, f"busy: {i} invocations", False))
    for i in range(400):
        reason = "DeleteEndpoint failed: " + "x" * 300
        run.outcomes.append(report.Outcome(f"mlp-team-err{i:03d}", "team", report.ERROR, reason, False))

    message = run.message()

    assert len(message.encode("utf-8")) < 256 * 1024
    assert "busy (5000): mlp-team-uc00000" in message and "and 4975 more" in message
    assert "... and 200 more (see the function's log)" in message
    assert len(run.subject()) <= 100
