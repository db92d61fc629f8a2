"""The idle endpoint reaper on paths only AWS produces and at its boundaries, with botocore Stubber (fast,
and checks each request against the API model): a second GetMetricData page, a query missing from the
response, a failed DescribeScalableTargets, empty pages; a keep-until exactly now; exactly the caps of
the summary; a restore record of exactly 4 KB; and the settings, report and log lines people read."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber
from common import tags
from idle_endpoint_reaper import (
    activity,
    decisions,
    handler,
    inventory,
    reaper,
    report,
    restore_record,
    settings,
    teardown,
)
from idle_endpoint_reaper.inventory import ManagedEndpoint

PREFIX = "mlp"
REGION = "us-east-1"
ACCOUNT = "123456789012"
NOW = datetime(2026, 3, 10, 12, 34, 56, 789000, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=3)
OWNED = {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX, tags.TEAM: "fraud"}
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def policy(dry_run: bool = False, window: int = 24, grace: int = 24) -> settings.TeamPolicy:
    return settings.TeamPolicy(window, grace, dry_run)


def reaper_config(cap: int = 10, dry_run: bool = False, overrides=None) -> settings.ReaperConfig:
    return settings.ReaperConfig(PREFIX, policy(dry_run), cap, overrides or {})


def managed(
    name: str,
    *,
    variants=("AllTraffic",),
    shadow=(),
    status="InService",
    modified=OLD,
    extra_tags=None,
    config: str | None = None,
) -> ManagedEndpoint:
    return ManagedEndpoint(
        name,
        {**OWNED, **(extra_tags or {})},
        config if config is not None else f"{name}-config",
        tuple(variants),
        tuple(shadow),
        False,
        status,
        modified,
    )


@pytest.fixture
def stubs():
    made = {
        name: boto3.client(name, region_name=REGION)
        for name in ("sagemaker", "cloudwatch", "application-autoscaling", "ssm")
    }
    stubbers = {name: Stubber(client) for name, client in made.items()}
    for stub in stubbers.values():
        stub.activate()
    yield made, stubbers
    for stub in stubbers.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def clients_of(made) -> reaper.Clients:
    return reaper.Clients(made["sagemaker"], made["cloudwatch"], made["application-autoscaling"], made["ssm"])


def metric_results(values_by_id: dict[str, list[float]], **extra) -> dict:
    return {
        "MetricDataResults": [
            {"Id": qid, "Values": values, "StatusCode": "Complete"} for qid, values in values_by_id.items()
        ],
        **extra,
    }


# --- GetMetricData: pages, missing queries, windows ----------------------------------------------------


def test_values_on_a_second_get_metric_data_page_count(stubs):
    made, stub = stubs
    cloudwatch = stub["cloudwatch"]
    cloudwatch.add_response(
        "get_metric_data",
        metric_results({"q0": [], "q1": [], "q2": []}, NextToken="more"),
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
    )
    cloudwatch.add_response(
        "get_metric_data",
        metric_results({"q0": [3.0]}),
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "NextToken": "more"},
    )

    activities, errors = activity.measure_activity(
        made["cloudwatch"], [activity.ActivityRequest("mlp-a", ("AllTraffic",), 24)], NOW
    )

    assert errors == {}
    assert activities == {"mlp-a": activity.Activity(invocations=3.0)}


def test_a_query_missing_from_the_response_keeps_its_endpoint_with_an_error_and_spares_the_others(stubs):
    made, stub = stubs
    # q0..q2 are mlp-a's queries, q3..q5 mlp-b's; CloudWatch answers all but q0.
    stub["cloudwatch"].add_response(
        "get_metric_data", metric_results({"q1": [], "q2": [], "q3": [5.0], "q4": [], "q5": []})
    )
    requests = [activity.ActivityRequest(name, ("AllTraffic",), 24) for name in ("mlp-a", "mlp-b")]

    activities, errors = activity.measure_activity(made["cloudwatch"], requests, NOW)

    assert errors == {"mlp-a": "CloudWatch could not return Invocations"}
    assert activities == {"mlp-b": activity.Activity(invocations=5.0)}


def test_a_response_without_results_or_values_counts_nothing_and_fails_every_query(stubs):
    made, stub = stubs
    stub["cloudwatch"].add_response("get_metric_data", {})
    stub["cloudwatch"].add_response(
        "get_metric_data", {"MetricDataResults": [{"Id": "q0"}, {"Id": "q1"}, {"Id": "q2"}]}
    )

    _, errors = activity.measure_activity(made["cloudwatch"], [activity.ActivityRequest("mlp-a", ("v",), 24)], NOW)
    activities, none = activity.measure_activity(
        made["cloudwatch"], [activity.ActivityRequest("mlp-a", ("v",), 24)], NOW
    )

    assert list(errors) == ["mlp-a"] and errors["mlp-a"].startswith("CloudWatch could not return ")
    assert (activities, none) == ({"mlp-a": activity.Activity()}, {})


def test_each_metric_adds_to_its_own_figure(stubs):
    made, stub = stubs
    # Per variant: Invocations, InvocationsProcessed; then the endpoint's backlog (Maximum).
    stub["cloudwatch"].add_response(
        "get_metric_data", metric_results({"q0": [1.0, 2.0], "q1": [4.0], "q2": [0.0], "q3": [8.0], "q4": [3.0, 7.0]})
    )

    activities, _ = activity.measure_activity(
        made["cloudwatch"], [activity.ActivityRequest("mlp-a", ("blue", "green"), 24)], NOW
    )

    assert activities == {"mlp-a": activity.Activity(invocations=3.0, invocations_processed=12.0, max_backlog=7.0)}
    assert activities["mlp-a"].describe(24) == (
        "busy: 3 invocations, 12 async invocations processed, async backlog up to 7 in the last 24h"
    )


def test_the_window_ends_at_the_last_full_minute_and_each_query_covers_it_in_one_period(stubs):
    made, stub = stubs
    end = datetime(2026, 3, 10, 12, 34, tzinfo=timezone.utc)
    expected_queries = [
        {
            "Id": f"q{i}",
            "ReturnData": True,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims},
                "Period": 6 * 3600,
                "Stat": stat,
            },
        }
        for i, (metric, stat, dims) in enumerate(
            [
                (
                    "Invocations",
                    "Sum",
                    [{"Name": "EndpointName", "Value": "mlp-a"}, {"Name": "VariantName", "Value": "v"}],
                ),
                (
                    "InvocationsProcessed",
                    "Sum",
                    [{"Name": "EndpointName", "Value": "mlp-a"}, {"Name": "VariantName", "Value": "v"}],
                ),
                ("ApproximateBacklogSize", "Maximum", [{"Name": "EndpointName", "Value": "mlp-a"}]),
            ]
        )
    ]
    stub["cloudwatch"].add_response(
        "get_metric_data",
        metric_results({"q0": [], "q1": [], "q2": []}),
        {"MetricDataQueries": expected_queries, "StartTime": end - timedelta(hours=6), "EndTime": end},
    )

    activity.measure_activity(made["cloudwatch"], [activity.ActivityRequest("mlp-a", ("v",), 6)], NOW)


def test_a_failed_call_for_one_window_does_not_stop_the_other_window(stubs):
    made, stub = stubs
    stub["cloudwatch"].add_client_error("get_metric_data", "InternalServiceFault", "try later", http_status_code=500)
    stub["cloudwatch"].add_response("get_metric_data", metric_results({"q0": [2.0], "q1": [], "q2": []}))
    requests = [activity.ActivityRequest("mlp-short", ("v",), 6), activity.ActivityRequest("mlp-long", ("v",), 48)]

    activities, errors = activity.measure_activity(made["cloudwatch"], requests, NOW)

    assert list(errors) == ["mlp-short"] and errors["mlp-short"].startswith("GetMetricData failed: ")
    assert activities == {"mlp-long": activity.Activity(invocations=2.0)}


# --- the run: a failed DescribeScalableTargets, reasons in the report ------------------------------


def expect_inventory(stub, endpoints: list[dict]) -> None:
    stub.add_response(
        "list_endpoints",
        {
            "Endpoints": [
                {
                    "EndpointName": e["EndpointName"],
                    "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{e['EndpointName']}",
                    "CreationTime": OLD,
                    "LastModifiedTime": e.pop("_modified", OLD),
                    "EndpointStatus": "InService",
                }
                for e in endpoints
            ]
        },
        {"NameContains": "mlp-", "MaxResults": 100},
    )
    stub.add_response(
        "search",
        {"Results": [{"Endpoint": e} for e in endpoints]},
        {
            "Resource": "Endpoint",
            "MaxResults": 100,
            "SearchExpression": {
                "Filters": [
                    {"Name": "Tags.mlops:managed-by", "Operator": "Equals", "Value": "sagemaker-mlops-platform"},
                    {"Name": "Tags.mlops:platform", "Operator": "Equals", "Value": "mlp"},
                ],
                "Operator": "And",
            },
        },
    )


def search_record(name: str, *, variants=("AllTraffic",), shadow=(), endpoint_tags=None, **variant) -> dict:
    record = {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        "EndpointStatus": "InService",
        "CreationTime": OLD,
        "LastModifiedTime": OLD,
        "Tags": [{"Key": k, "Value": v} for k, v in (endpoint_tags if endpoint_tags is not None else OWNED).items()],
        "ProductionVariants": [{"VariantName": v, **variant} for v in variants],
    }
    if shadow:
        record["ShadowProductionVariants"] = [{"VariantName": v} for v in shadow]
    record["EndpointConfigName"] = f"{name}-config"
    return record


def test_endpoints_whose_autoscaling_cannot_be_read_are_not_deleted_and_reported(stubs):
    made, stub = stubs
    expect_inventory(stub["sagemaker"], [search_record("mlp-fraud-a"), search_record("mlp-fraud-b")])
    stub["cloudwatch"].add_response("get_metric_data", metric_results({f"q{i}": [] for i in range(6)}))
    stub["application-autoscaling"].add_client_error(
        "describe_scalable_targets",
        "ValidationException",
        "throttled",
        expected_params={"ServiceNamespace": "sagemaker", "ScalableDimension": DIMENSION, "ResourceIds": ANY},
    )

    run = reaper.reap(clients_of(made), reaper_config(), NOW)

    assert [
        (o.endpoint, o.action, o.reason, o.endpoint_config, o.deregistered_targets, o.dry_run) for o in run.outcomes
    ] == [
        (
            name,
            report.ERROR,
            "not deleted: DescribeScalableTargets failed: An error occurred (ValidationException) when calling the "
            "DescribeScalableTargets operation: throttled",
            f"{name}-config",
            (),
            False,
        )
        for name in ("mlp-fraud-a", "mlp-fraud-b")
    ]


def test_every_outcome_carries_its_reason_and_the_preview_cap_counts_one_by_one(stubs):
    made, stub = stubs
    names = [f"mlp-fraud-{i}" for i in range(3)]
    records = [search_record(n) for n in names]
    for i, record in enumerate(records):
        record["_modified"] = OLD - timedelta(hours=3 - i)
    expect_inventory(stub["sagemaker"], records)
    stub["cloudwatch"].add_response("get_metric_data", metric_results({f"q{i}": [] for i in range(9)}))

    run = reaper.reap(clients_of(made), reaper_config(cap=2), NOW, force_dry_run=True)

    assert run.dry_run_forced is True
    assert [(o.endpoint, o.action, o.reason) for o in run.outcomes] == [
        ("mlp-fraud-0", report.WOULD_DELETE, "no invocations and no async backlog in the last 24h"),
        ("mlp-fraud-1", report.WOULD_DELETE, "no invocations and no async backlog in the last 24h"),
        ("mlp-fraud-2", report.KEPT, "idle, but the deletion cap was reached (max 2 per run)"),
    ]


def test_an_endpoint_search_returns_without_tags_is_not_ours(stubs):
    made, stub = stubs
    untagged = search_record("mlp-fraud-untagged")
    del untagged["Tags"]
    expect_inventory(stub["sagemaker"], [untagged, search_record("mlp-fraud-ours")])

    found = inventory.list_managed_endpoints(made["sagemaker"], PREFIX)

    assert [(e.name, e.config_name) for e in found] == [("mlp-fraud-ours", "mlp-fraud-ours-config")]


@pytest.mark.parametrize("field", ["CurrentServerlessConfig", "DesiredServerlessConfig"])
def test_a_variant_serverless_now_or_about_to_be_makes_the_endpoint_serverless(stubs, field):
    made, stub = stubs
    expect_inventory(
        stub["sagemaker"], [search_record("mlp-fraud-s", **{field: {"MemorySizeInMB": 2048, "MaxConcurrency": 1}})]
    )

    [found] = inventory.list_managed_endpoints(made["sagemaker"], PREFIX)

    assert found.serverless is True
    assert decisions.keep_reason(found, policy(), PREFIX, NOW) == "serverless endpoint (costs nothing when idle)"


def test_shadow_variants_are_listed_and_their_autoscaling_targets_looked_up(stubs):
    made, stub = stubs
    expect_inventory(stub["sagemaker"], [search_record("mlp-fraud-a", shadow=("shadow",))])
    [found] = inventory.list_managed_endpoints(made["sagemaker"], PREFIX)
    stub["application-autoscaling"].add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": "endpoint/mlp-fraud-a/variant/shadow",
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 3,
                    "RoleARN": "arn:aws:iam::1:role/x",
                    "CreationTime": OLD,
                },
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": "endpoint/mlp-fraud-a/variant/AllTraffic",
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 0,
                    "MaxCapacity": 0,
                    "RoleARN": "arn:aws:iam::1:role/x",
                    "CreationTime": OLD,
                },
            ]
        },
        {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": DIMENSION,
            "ResourceIds": ["endpoint/mlp-fraud-a/variant/AllTraffic", "endpoint/mlp-fraud-a/variant/shadow"],
        },
    )

    targets, errors = teardown.find_scalable_targets(made["application-autoscaling"], [found])

    assert found.shadow_variants == ("shadow",)
    assert errors == {}
    assert targets == {
        "mlp-fraud-a": [
            restore_record.ScalableTargetRecord("endpoint/mlp-fraud-a/variant/shadow", 1, 3),
            restore_record.ScalableTargetRecord("endpoint/mlp-fraud-a/variant/AllTraffic", 0, 0),
        ]
    }


def test_empty_listing_pages_find_nothing(stubs):
    made, stub = stubs
    stub["sagemaker"].add_response("list_endpoints", {"Endpoints": []})
    stub["sagemaker"].add_response("search", {})
    stub["application-autoscaling"].add_response("describe_scalable_targets", {})

    assert inventory.list_managed_endpoints(made["sagemaker"], PREFIX) == []
    assert teardown.find_scalable_targets(made["application-autoscaling"], [managed("mlp-fraud-a")]) == (
        {"mlp-fraud-a": []},
        {},
    )


# --- teardown: the restore record and the error messages ----------------------------------------------


def test_a_record_left_by_an_earlier_teardown_is_overwritten_as_a_described_string(stubs):
    made, stub = stubs
    endpoint = managed("mlp-fraud-a", extra_tags={"owner": "alice"})
    name = "/mlops/reaped-endpoints/mlp-fraud-a"
    description = "How to restore SageMaker endpoint mlp-fraud-a (deleted while idle)"
    stub["ssm"].add_client_error(
        "put_parameter",
        "ParameterAlreadyExists",
        "exists",
        expected_params={
            "Name": name,
            "Value": ANY,
            "Type": "String",
            "Description": description,
            "Tags": [
                {"Key": tags.MANAGED_BY, "Value": tags.MANAGED_BY_VALUE},
                {"Key": tags.PLATFORM, "Value": PREFIX},
                {"Key": tags.TEAM, "Value": "fraud"},
            ],
        },
    )
    stub["ssm"].add_response(
        "put_parameter",
        {"Version": 2},
        {"Name": name, "Value": ANY, "Type": "String", "Description": description, "Overwrite": True},
    )

    assert teardown.write_restore_record(made["ssm"], endpoint, [], NOW) == name


def test_only_the_ownership_tags_the_endpoint_has_go_on_its_record(stubs):
    made, stub = stubs
    endpoint = ManagedEndpoint(
        "mlp-x-a",
        {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX},
        "c",
        ("v",),
        (),
        False,
        "InService",
        OLD,
    )
    stub["ssm"].add_response(
        "put_parameter",
        {"Version": 1},
        {
            "Name": "/mlops/reaped-endpoints/mlp-x-a",
            "Value": ANY,
            "Type": "String",
            "Description": ANY,
            "Tags": [{"Key": tags.MANAGED_BY, "Value": tags.MANAGED_BY_VALUE}, {"Key": tags.PLATFORM, "Value": PREFIX}],
        },
    )

    teardown.write_restore_record(made["ssm"], endpoint, [], NOW)


TARGETS = [restore_record.ScalableTargetRecord(f"endpoint/mlp-fraud-a/variant/{v}", 1, 2) for v in ("a", "b")]


def listed_endpoint(made, stub) -> ManagedEndpoint:
    """mlp-fraud-a as the run lists it first (Search, which also shows its tags)."""
    expect_inventory(stub["sagemaker"], [search_record("mlp-fraud-a", variants=("a", "b"))])
    [endpoint] = inventory.list_managed_endpoints(made["sagemaker"], PREFIX)
    return endpoint


def found_targets(made, stub) -> list[restore_record.ScalableTargetRecord]:
    """TARGETS as the run finds them first (DescribeScalableTargets, which also gives their ARNs)."""
    stub["application-autoscaling"].add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": t.resource_id,
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                    "RoleARN": "arn:aws:iam::123456789012:role/x",
                    "CreationTime": OLD,
                    "ScalableTargetARN": f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0a1b{i}",
                }
                for i, t in enumerate(TARGETS)
            ]
        },
    )
    targets, _ = teardown.find_scalable_targets(
        made["application-autoscaling"], [managed("mlp-fraud-a", variants=("a", "b"))]
    )
    assert targets["mlp-fraud-a"] == TARGETS
    return targets["mlp-fraud-a"]


def test_a_failed_record_leaves_the_endpoint_alone_and_says_so(stubs):
    made, stub = stubs
    stub["ssm"].add_client_error("put_parameter", "AccessDeniedException", "no")

    result = teardown.tear_down(
        managed("mlp-fraud-a"),
        TARGETS,
        sagemaker=made["sagemaker"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
        now=NOW,
    )

    assert result == teardown.TeardownResult(
        "mlp-fraud-a",
        (),
        "restore record not written, endpoint left alone: "
        "An error occurred (AccessDeniedException) when calling the PutParameter operation: no",
    )


def test_a_failed_deregistration_names_the_targets_already_deregistered(stubs):
    made, stub = stubs
    targets = found_targets(made, stub)
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["application-autoscaling"].add_client_error("deregister_scalable_target", "ConcurrentUpdateException", "busy")

    result = teardown.tear_down(
        managed("mlp-fraud-a"),
        targets,
        sagemaker=made["sagemaker"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
        now=NOW,
    )

    assert result == teardown.TeardownResult(
        "mlp-fraud-a",
        ("endpoint/mlp-fraud-a/variant/a",),
        "deregistering endpoint/mlp-fraud-a/variant/b failed, endpoint not deleted (already deregistered: "
        "endpoint/mlp-fraud-a/variant/a): An error occurred (ConcurrentUpdateException) when calling the "
        "DeregisterScalableTarget operation: busy",
    )


def test_a_first_failed_deregistration_mentions_no_earlier_one(stubs):
    made, stub = stubs
    targets = found_targets(made, stub)
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_client_error("deregister_scalable_target", "ConcurrentUpdateException", "busy")

    result = teardown.tear_down(
        managed("mlp-fraud-a"),
        targets,
        sagemaker=made["sagemaker"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
        now=NOW,
    )

    assert result.error == (
        "deregistering endpoint/mlp-fraud-a/variant/a failed, endpoint not deleted: An error "
        "occurred (ConcurrentUpdateException) when calling the DeregisterScalableTarget operation: busy"
    )
    assert result.deregistered == ()


def test_a_failed_delete_after_deregistering_says_to_register_the_targets_again(stubs):
    made, stub = stubs
    endpoint = listed_endpoint(made, stub)
    targets = found_targets(made, stub)
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["sagemaker"].add_client_error("delete_endpoint", "ValidationException", "in use")

    result = teardown.tear_down(
        endpoint,
        targets,
        sagemaker=made["sagemaker"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
        now=NOW,
    )

    assert result == teardown.TeardownResult(
        "mlp-fraud-a",
        tuple(t.resource_id for t in TARGETS),
        "DeleteEndpoint failed; its autoscaling targets were already deregistered (endpoint/mlp-fraud-a/variant/a, "
        "endpoint/mlp-fraud-a/variant/b): register them again: An error occurred (ValidationException) when calling "
        "the DeleteEndpoint operation: in use",
    )


def test_a_failed_delete_without_targets_says_only_that(stubs):
    made, stub = stubs
    endpoint = listed_endpoint(made, stub)
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["sagemaker"].add_client_error("delete_endpoint", "ValidationException", "in use")

    result = teardown.tear_down(
        endpoint, [], sagemaker=made["sagemaker"], autoscaling=made["application-autoscaling"], ssm=made["ssm"], now=NOW
    )

    assert result == teardown.TeardownResult(
        "mlp-fraud-a",
        (),
        "DeleteEndpoint failed: An error occurred "
        "(ValidationException) when calling the DeleteEndpoint operation: in use",
    )


def test_a_successful_teardown_reports_the_endpoint_and_its_targets(stubs):
    made, stub = stubs
    endpoint = listed_endpoint(made, stub)
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["sagemaker"].add_response("delete_endpoint", {}, {"EndpointName": "mlp-fraud-a"})

    result = teardown.tear_down(
        endpoint, [], sagemaker=made["sagemaker"], autoscaling=made["application-autoscaling"], ssm=made["ssm"], now=NOW
    )

    assert result == teardown.TeardownResult("mlp-fraud-a", (), None)


# --- keep-until and the grace period at their boundaries ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "now", "kept"),
    [
        ("2026-03-10T12:00:00+00:00", datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc), False),
        ("2026-03-10T12:00:00+00:00", datetime(2026, 3, 10, 11, 59, 59, 999999, tzinfo=timezone.utc), True),
        ("2026-03-10", datetime(2026, 3, 10, 23, 59, 59, tzinfo=timezone.utc), True),
        ("2026-03-10", datetime(2026, 3, 11, 0, 0, tzinfo=timezone.utc), False),
        ("2026-03-10T12:00:00+02:00", datetime(2026, 3, 10, 11, 0, tzinfo=timezone.utc), False),
        ("2026-03-10T12:00:00", datetime(2026, 3, 10, 11, 0, tzinfo=timezone.utc), True),
        ("2026-03-10T12:00:00", datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc), False),
    ],
    ids=[
        "exactly now",
        "a microsecond before",
        "through the day",
        "the day after",
        "other time zone",
        "naive means UTC",
        "naive exactly now",
    ],
)
def test_keep_until_protects_until_that_moment_and_not_at_it(value, now, kept):
    reason = decisions.opt_out_reason({tags.KEEP_UNTIL: value}, now)
    assert reason == (f"opted out: {tags.KEEP_UNTIL}={value}" if kept else None)


def test_the_grace_period_reason_gives_the_age_in_hours():
    endpoint = managed("mlp-fraud-a", modified=NOW - timedelta(hours=2))
    assert decisions.keep_reason(endpoint, policy(grace=24), PREFIX, NOW) == (
        "within grace period: created or updated 2.0h ago (grace 24h)"
    )


def test_an_endpoint_with_a_status_but_no_modification_time_is_kept_as_unlisted():
    endpoint = managed("mlp-fraud-a", modified=None)
    assert decisions.keep_reason(endpoint, policy(), PREFIX, NOW) == (
        "not returned by ListEndpoints (deleted or renamed since it was indexed)"
    )


# --- the summary people read ------------------------------------------------------------------------


def outcome(name, action, reason, *, team="fraud", dry_run=False, config="cfg", targets=()):
    return report.Outcome(name, team, action, reason, dry_run, config, tuple(targets))


def test_the_summary_lists_each_kind_of_outcome_with_restore_commands_and_kept_groups():
    run = report.RunReport(prefix="mlp", dry_run_forced=True)
    for o in [
        outcome(
            "mlp-fraud-gone",
            report.DELETED,
            "no invocations and no async backlog in the last 24h",
            targets=("endpoint/mlp-fraud-gone/variant/a", "endpoint/mlp-fraud-gone/variant/b"),
        ),
        outcome("mlp-fraud-plain", report.DELETED, "idle", config="plain-cfg"),
        outcome("mlp-fraud-next", report.WOULD_DELETE, "idle"),
        outcome("mlp-fraud-broken", report.ERROR, "DeleteEndpoint failed: x"),
        outcome("mlp-fraud-new1", report.KEPT, "within grace period: created or updated 1.0h ago (grace 24h)"),
        outcome("mlp-fraud-new2", report.KEPT, "within grace period: created or updated 2.0h ago (grace 24h)"),
        outcome("mlp-fraud-sls", report.KEPT, "serverless endpoint (costs nothing when idle)"),
        outcome("mlp-fraud-zz-busy", report.KEPT, "busy: 7 invocations in the last 24h"),
        outcome("mlp-fraud-opt", report.KEPT, "opted out: mlops:keep-until=2026-04-01"),
    ]:
        run.add(o)
    run.run_errors.append("listing failed")

    assert run.subject() == "[mlp] idle endpoint reaper: 2 deleted, 1 would be deleted, 5 kept, 2 errors"
    assert (
        run.message()
        == "\n".join(
            [
                "[mlp] idle endpoint reaper: 2 deleted, 1 would be deleted, 5 kept, 2 errors",
                "",
                "This run was a forced dry run: nothing was deleted.",
                "",
                "Deleted (2):",
                "  - mlp-fraud-gone (team fraud, config cfg): no invocations and no async backlog in the last 24h",
                "      autoscaling targets deregistered: endpoint/mlp-fraud-gone/variant/a, endpoint/mlp-fraud-gone/variant/b",
                "      restore: python -m tools.restore_endpoint mlp-fraud-gone (record /mlops/reaped-endpoints/mlp-fraud-gone)",
                "  - mlp-fraud-plain (team fraud, config plain-cfg): idle",
                "      restore: python -m tools.restore_endpoint mlp-fraud-plain (record /mlops/reaped-endpoints/mlp-fraud-plain)",
                "",
                "Would be deleted, dry run (1):",
                "  - mlp-fraud-next (team fraud, config cfg): idle",
                "",
                "Errors (2):",
                "  - mlp-fraud-broken: DeleteEndpoint failed: x",
                "  - listing failed",
                "",
                "Kept (5), by reason:",
                "  - within grace period (2): mlp-fraud-new1, mlp-fraud-new2",
                "  - busy (1): mlp-fraud-zz-busy",
                "  - opted out: mlops:keep-until=2026-04-01 (1): mlp-fraud-opt",
                "  - serverless endpoint (1): mlp-fraud-sls",
            ]
        )
        + "\n"
    )
    assert run.as_result() == {
        "prefix": "mlp",
        "counts": {"deleted": 2, "would_delete": 1, "kept": 5, "error": 1},
        "deleted": ["mlp-fraud-gone", "mlp-fraud-plain"],
        "would_delete": ["mlp-fraud-next"],
        "errors": ["mlp-fraud-broken: DeleteEndpoint failed: x", "listing failed"],
    }


@pytest.mark.parametrize(("count", "more"), [(25, ""), (26, " and 1 more")])
def test_kept_names_are_listed_up_to_25_per_reason(count, more):
    run = report.RunReport(prefix="mlp", dry_run_forced=False)
    for i in range(count):
        run.add(outcome(f"e{i:02d}", report.KEPT, "status Updating"))
    shown = ", ".join(f"e{i:02d}" for i in range(25))
    assert run.message().splitlines()[-1] == f"  - status Updating ({count}): {shown}{more}"


@pytest.mark.parametrize(
    ("count", "last"), [(200, "  - e199: boom"), (201, "  ... and 1 more (see the function's log)")]
)
def test_errors_are_listed_up_to_200(count, last):
    run = report.RunReport(prefix="mlp", dry_run_forced=False)
    for i in range(count):
        run.add(outcome(f"e{i}", report.ERROR, "boom"))
    lines = run.message().splitlines()
    assert lines[lines.index("Kept (0), by reason:") - 2] == last


def test_each_outcome_is_logged_once_errors_as_errors(caplog):
    run = report.RunReport(prefix="mlp", dry_run_forced=False)
    with caplog.at_level(logging.INFO, logger="idle_endpoint_reaper"):
        run.add(outcome("mlp-a", report.ERROR, "boom"))
        run.add(outcome("mlp-b", report.KEPT, "busy"))
    assert [(r.levelname, r.getMessage(), r.reaper["reason"]) for r in caplog.records] == [
        ("ERROR", "endpoint error: mlp-a", "boom"),
        ("INFO", "endpoint kept: mlp-b", "busy"),
    ]


# --- the restore record ------------------------------------------------------------------------------


def record_of(tag_value: str, targets=()) -> restore_record.RestoreRecord:
    return restore_record.RestoreRecord(
        "mlp-fraud-a", "cfg", "2026-03-10T12:00:00+00:00", "fraud", {**OWNED, "note": tag_value}, tuple(targets)
    )


def test_a_record_of_exactly_4_kb_keeps_every_tag_and_one_byte_more_keeps_only_platform_tags():
    padding = 4096 - len(record_of("").to_json().encode())
    exact = record_of("x" * padding).to_json()
    assert len(exact.encode()) == 4096
    assert json.loads(exact)["tags"]["note"] == "x" * padding
    over = json.loads(record_of("x" * (padding + 1)).to_json())
    assert "note" not in over["tags"] and over["tags"] == OWNED


def test_a_record_is_compact_json_in_a_stable_order_with_its_format_version():
    text = record_of("n", [restore_record.ScalableTargetRecord("endpoint/mlp-fraud-a/variant/v", 1, 4)]).to_json()
    assert text == (
        '{"deleted_at":"2026-03-10T12:00:00+00:00","endpoint_config_name":"cfg","endpoint_name":"mlp-fraud-a",'
        '"scalable_targets":[{"max_capacity":4,"min_capacity":1,"resource_id":"endpoint/mlp-fraud-a/variant/v"}],'
        '"tags":{"mlops:managed-by":"sagemaker-mlops-platform","mlops:platform":"mlp","mlops:team":"fraud","note":"n"},'
        '"team":"fraud","version":1}'
    )


def test_a_record_reads_back_as_written_and_old_records_without_optional_fields_read_too():
    record = record_of("n", [restore_record.ScalableTargetRecord("endpoint/mlp-fraud-a/variant/v", 1, 4)])
    assert restore_record.RestoreRecord.from_json(record.to_json()) == record
    minimal = restore_record.RestoreRecord.from_json(
        '{"endpoint_name": "e", "endpoint_config_name": "c", "deleted_at": "d"}'
    )
    assert minimal == restore_record.RestoreRecord("e", "c", "d", None, {}, ())


def test_a_record_too_big_even_with_platform_tags_only_is_refused_naming_the_endpoint():
    huge = restore_record.RestoreRecord("mlp-fraud-a", "c", "d", "fraud", {"mlops:x": "y" * 5000})
    with pytest.raises(ValueError) as error:
        huge.to_json()
    assert str(error.value) == "restore record of 'mlp-fraud-a' exceeds 4096 bytes even with only platform tags"


# --- settings ------------------------------------------------------------------------------------------


ENVIRONMENT = {
    "PLATFORM_PREFIX": "mlp",
    "IDLE_WINDOW_HOURS": "24",
    "GRACE_PERIOD_HOURS": "24",
    "DRY_RUN": "true",
    "MAX_DELETIONS_PER_RUN": "10",
}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        (" Yes ", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_dry_run_accepts_the_usual_spellings(raw, value):
    assert settings.from_environment({**ENVIRONMENT, "DRY_RUN": raw}).defaults.dry_run is value


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"DRY_RUN": "maybe"}, "DRY_RUN='maybe' is not a boolean (true or false)"),
        ({"GRACE_PERIOD_HOURS": "-1"}, "GRACE_PERIOD_HOURS=-1 must be at least 0"),
        ({"MAX_DELETIONS_PER_RUN": "x"}, "MAX_DELETIONS_PER_RUN='x' is not an integer"),
        ({"TEAM_OVERRIDES": "[]"}, "TEAM_OVERRIDES must be a JSON object of team name to overrides"),
        (
            {"TEAM_OVERRIDES": '{"fraud": {"cap": 1}}'},
            "TEAM_OVERRIDES['fraud'] may only hold idle_window_hours, grace_period_hours, dry_run, exempt",
        ),
    ],
)
def test_bad_settings_name_the_variable_and_the_value(changes, message):
    with pytest.raises(settings.SettingsError) as error:
        settings.from_environment({**ENVIRONMENT, **changes})
    assert str(error.value) == message


def test_overrides_that_are_not_json_and_missing_variables_are_named():
    with pytest.raises(settings.SettingsError, match=r"^TEAM_OVERRIDES is not JSON: "):
        settings.from_environment({**ENVIRONMENT, "TEAM_OVERRIDES": "{"})
    without = {k: v for k, v in ENVIRONMENT.items() if k != "DRY_RUN"}
    with pytest.raises(settings.SettingsError, match=r"^environment variable DRY_RUN is not set$"):
        settings.from_environment(without)


def test_a_cap_of_zero_and_no_overrides_are_accepted():
    config = settings.from_environment({**ENVIRONMENT, "MAX_DELETIONS_PER_RUN": "0"})
    assert (config.max_deletions_per_run, dict(config.team_overrides)) == (0, {})


def test_a_team_override_replaces_only_what_it_sets():
    config = settings.from_environment(
        {
            **ENVIRONMENT,
            "TEAM_OVERRIDES": json.dumps(
                {"fraud": {"idle_window_hours": 6}, "pricing": {"exempt": True, "dry_run": False}}
            ),
        }
    )
    assert config.policy_for("fraud") == settings.TeamPolicy(6, 24, True, False)
    assert config.policy_for("pricing") == settings.TeamPolicy(24, 24, False, True)
    assert config.policy_for(None) == config.defaults


def test_a_forced_dry_run_overrides_a_team_that_is_live():
    config = settings.from_environment(
        {**ENVIRONMENT, "DRY_RUN": "false", "TEAM_OVERRIDES": json.dumps({"fraud": {"dry_run": False}})}
    )
    forced = config.forcing_dry_run()
    assert forced.policy_for("fraud").dry_run is True
    assert forced.policy_for("other").dry_run is True


def test_overrides_are_written_compactly_and_only_where_they_differ():
    encoded = settings.encode_team_overrides(
        {
            "zeta": {"idle_window_hours": 6, "grace_period_hours": None, "dry_run": None, "exempt": False},
            "alpha": {"exempt": True},
            "quiet": {"idle_window_hours": None},
        }
    )
    assert encoded == '{"alpha":{"exempt":true},"zeta":{"idle_window_hours":6}}'


# --- the Lambda's clients --------------------------------------------------------------------------------


def test_the_lambdas_clients_retry_throttled_list_calls_up_to_eight_times():
    built = handler.build_clients()
    for client in (built.sagemaker, built.cloudwatch, built.autoscaling, built.ssm):
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}


# --- more of a run -----------------------------------------------------------------------------------------


def test_an_endpoint_whose_metrics_are_missing_is_reported_and_the_next_one_still_decided(stubs):
    made, stub = stubs
    expect_inventory(stub["sagemaker"], [search_record("mlp-fraud-a"), search_record("mlp-fraud-b")])
    stub["cloudwatch"].add_response(
        "get_metric_data", metric_results({"q1": [], "q2": [], "q3": [], "q4": [], "q5": []})
    )

    run = reaper.reap(clients_of(made), reaper_config(dry_run=True), NOW)

    assert [(o.endpoint, o.action, o.reason) for o in run.outcomes] == [
        ("mlp-fraud-a", report.ERROR, "kept, traffic unknown: CloudWatch could not return Invocations"),
        ("mlp-fraud-b", report.WOULD_DELETE, "no invocations and no async backlog in the last 24h"),
    ]


def test_deleted_and_failed_endpoints_are_reported_with_their_reason_and_deregistered_targets(stubs):
    made, stub = stubs
    expect_inventory(
        stub["sagemaker"], [search_record("mlp-fraud-a", variants=("a", "b")), search_record("mlp-fraud-b")]
    )
    stub["cloudwatch"].add_response("get_metric_data", metric_results({f"q{i}": [] for i in range(8)}))
    stub["application-autoscaling"].add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": resource,
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                    "RoleARN": "arn:aws:iam::123456789012:role/x",
                    "CreationTime": OLD,
                    "ScalableTargetARN": f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0a1b{i}",
                }
                for i, resource in enumerate(
                    ["endpoint/mlp-fraud-a/variant/a", "endpoint/mlp-fraud-b/variant/AllTraffic"]
                )
            ]
        },
    )
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["sagemaker"].add_response("delete_endpoint", {}, {"EndpointName": "mlp-fraud-a"})
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["sagemaker"].add_client_error("delete_endpoint", "ValidationException", "in use")

    run = reaper.reap(clients_of(made), reaper_config(), NOW)

    assert [(o.endpoint, o.action, o.reason, o.deregistered_targets) for o in run.outcomes] == [
        (
            "mlp-fraud-a",
            report.DELETED,
            "no invocations and no async backlog in the last 24h",
            ("endpoint/mlp-fraud-a/variant/a",),
        ),
        (
            "mlp-fraud-b",
            report.ERROR,
            "DeleteEndpoint failed; its autoscaling targets were already deregistered "
            "(endpoint/mlp-fraud-b/variant/AllTraffic): register them again: An error occurred (ValidationException) "
            "when calling the DeleteEndpoint operation: in use",
            ("endpoint/mlp-fraud-b/variant/AllTraffic",),
        ),
    ]


def test_the_restore_record_names_the_endpoint_its_team_and_when_it_was_deleted(stubs):
    made, stub = stubs
    sent = {}
    made["ssm"].meta.events.register("provide-client-params.ssm.PutParameter", lambda params, **_: sent.update(params))
    stub["ssm"].add_response("put_parameter", {"Version": 1})

    teardown.write_restore_record(made["ssm"], managed("mlp-fraud-a"), TARGETS, NOW)

    record = restore_record.RestoreRecord.from_json(sent["Value"])
    assert record == restore_record.RestoreRecord(
        "mlp-fraud-a", "mlp-fraud-a-config", NOW.isoformat(), "fraud", OWNED, tuple(TARGETS)
    )


def test_a_third_failed_deregistration_lists_both_done_before_it(stubs):
    made, stub = stubs
    three = [restore_record.ScalableTargetRecord(f"endpoint/mlp-fraud-a/variant/{v}", 1, 2) for v in ("a", "b", "c")]
    stub["application-autoscaling"].add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": t.resource_id,
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                    "RoleARN": "arn:aws:iam::123456789012:role/x",
                    "CreationTime": OLD,
                    "ScalableTargetARN": f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0c{i}",
                }
                for i, t in enumerate(three)
            ]
        },
    )
    targets, _ = teardown.find_scalable_targets(
        made["application-autoscaling"], [managed("mlp-fraud-a", variants=("a", "b", "c"))]
    )
    stub["ssm"].add_response("put_parameter", {"Version": 1})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["application-autoscaling"].add_response("deregister_scalable_target", {})
    stub["application-autoscaling"].add_client_error("deregister_scalable_target", "ConcurrentUpdateException", "busy")

    result = teardown.tear_down(
        managed("mlp-fraud-a"),
        targets["mlp-fraud-a"],
        sagemaker=made["sagemaker"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
        now=NOW,
    )

    assert "(already deregistered: endpoint/mlp-fraud-a/variant/a, endpoint/mlp-fraud-a/variant/b)" in result.error


def test_more_than_500_queries_go_in_two_calls_and_a_failed_first_call_spares_the_second(stubs):
    made, stub = stubs
    requests = [activity.ActivityRequest(f"mlp-e{i:03d}", ("v",), 24) for i in range(168)]  # 504 queries
    stub["cloudwatch"].add_client_error("get_metric_data", "InternalServiceFault", "try later", http_status_code=500)
    stub["cloudwatch"].add_response("get_metric_data", metric_results({f"q{i}": [] for i in range(4)}))

    activities, errors = activity.measure_activity(made["cloudwatch"], requests, NOW)

    assert len(errors) == 167 and "mlp-e167" not in errors
    assert activities == {"mlp-e167": activity.Activity()}


def test_the_grace_reason_rounds_the_age_to_a_tenth_of_an_hour():
    endpoint = managed("mlp-fraud-a", modified=NOW - timedelta(minutes=63))
    assert decisions.keep_reason(endpoint, policy(grace=24), PREFIX, NOW).startswith(
        "within grace period: created or updated 1.1h ago"
    )


def test_overrides_keep_their_fields_in_a_stable_order_and_an_empty_variable_means_none():
    encoded = settings.encode_team_overrides({"fraud": {"idle_window_hours": 6, "dry_run": False, "exempt": True}})
    assert encoded == '{"fraud":{"dry_run":false,"exempt":true,"idle_window_hours":6}}'
    assert dict(settings.from_environment({**ENVIRONMENT, "TEAM_OVERRIDES": ""}).team_overrides) == {}
