"""API calls and handler time of the idle endpoint reaper for N managed endpoints, against moto.

For each N: one moto account holds N managed endpoints, each with its own endpoint config (a mix of
busy, idle, asynchronous with a backlog, opted-out and serverless endpoints; one in ten with two
variants, every other idle one with an autoscaling target), N/10 foreign endpoints, and CloudWatch
datapoints for the busy ones. Setup is timed on its own. Then one reaper run (``reaper.reap`` and the
SNS summary, exactly what the handler does, with the default cap of 10 deletions, not a dry run) is
measured:

- calls per API operation, counted with botocore's ``before-parameter-build`` event (once per call,
  retries excluded) on the reaper's clients;
- handler wall time, the part of it spent inside moto (``before-parameter-build`` to ``after-call``;
  mostly moto's GetMetricData, which scans every stored datapoint for every query) and the rest, the
  handler's own work;
- the baseline, measured in the same run on the same data: a per-endpoint reaper (paginated
  ListEndpoints, then per endpoint ListTags, DescribeEndpoint and one GetMetricData), deciding only.
  Its time normalises for the machine; the ratio is handler time / baseline time.

moto returns every SageMaker ``Search`` match in one page; AWS returns at most 100 per page, so the
tables show both and judge the targets with the AWS page count.

Targets checked: GetMetricData calls <= ceil(metric queries / 500); every call other than DeleteEndpoint
and DeregisterScalableTarget <= N/10 + 10; N=5,000 decided in under 60 s of handler time.

    .venv/bin/python bench/reaper.py [--sizes 10 100 1000 5000]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_key] = _value

import boto3  # noqa: E402
from common import tags  # noqa: E402
from idle_endpoint_reaper import report, settings  # noqa: E402
from idle_endpoint_reaper.reaper import Clients, reap  # noqa: E402
from moto import mock_aws  # noqa: E402

PREFIX = "mlp"
REGION = "us-east-1"
MODEL_ROLE = "arn:aws:iam::123456789012:role/model-execution"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SEARCH_PAGE = 100
MAX_QUERIES = 500
NOT_CALL_BUDGET = {"DeleteEndpoint", "DeregisterScalableTarget"}
DEFAULT_SIZES = (10, 100, 1000, 5000)
# Share of the N managed endpoints, by kind, in this order; the rest are idle.
MIX = (("busy", 0.60), ("async_backlog", 0.05), ("keep_alive", 0.05), ("serverless", 0.05))


@dataclass
class CallLog:
    """Calls per operation and the time spent inside them."""

    counts: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)
    queries: int = 0
    _started: list[tuple[str, float]] = field(default_factory=list)

    @property
    def seconds_in_calls(self) -> float:
        return sum(self.seconds.values())

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        client.meta.events.register("after-call-error.*.*", self._after)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.counts[model.name] += 1
        if model.name == "GetMetricData":
            self.queries += len(params.get("MetricDataQueries", []))
        self._started.append((model.name, time.perf_counter()))

    def _after(self, **_: Any) -> None:
        if self._started:
            name, started = self._started.pop()
            self.seconds[name] += time.perf_counter() - started


def kinds(n: int) -> list[str]:
    """The kind of each managed endpoint, deterministic for a given N."""
    plan: list[str] = []
    for kind, share in MIX:
        plan += [kind] * int(n * share)
    plan += ["idle"] * (n - len(plan))
    # Interleave so every kind spreads over names and pages.
    return [plan[(i * 7919) % n] for i in range(n)] if math.gcd(7919, n) == 1 else plan


def ownership(team: str, **extra: str) -> list[dict[str, str]]:
    values = {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX, tags.TEAM: team, **extra}
    return [{"Key": k, "Value": v} for k, v in values.items()]


def populate(n: int, now: datetime) -> dict[str, int]:
    """Create N managed and N/10 foreign endpoints with their metrics; returns the count per kind."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    sagemaker.create_model(ModelName="bench-model", ExecutionRoleArn=MODEL_ROLE, PrimaryContainer={"Image": "image:1"})
    datapoints: list[dict[str, Any]] = []
    plan = kinds(n)
    idle_seen = 0
    for i, kind in enumerate(plan):
        name = f"{PREFIX}-team{i % 7}-uc{i:05d}"
        variants = ("Blue", "Green") if i % 10 == 3 else ("AllTraffic",)
        if kind == "serverless":
            production = [
                {
                    "VariantName": v,
                    "ModelName": "bench-model",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                }
                for v in variants
            ]
        else:
            production = [
                {"VariantName": v, "ModelName": "bench-model", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
                for v in variants
            ]
        extra: dict[str, Any] = {}
        if kind == "async_backlog":
            extra["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://bench/async"}}
        sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-v1-cfg", ProductionVariants=production, **extra)
        endpoint_tags = ownership(f"team{i % 7}", **({tags.KEEP_ALIVE: "true"} if kind == "keep_alive" else {}))
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v1-cfg", Tags=endpoint_tags)
        if kind == "idle":
            idle_seen += 1
        if kind == "idle" and idle_seen % 2 == 1:
            for variant in variants:
                autoscaling.register_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=f"endpoint/{name}/variant/{variant}",
                    ScalableDimension=VARIANT_DIMENSION,
                    MinCapacity=1,
                    MaxCapacity=2,
                )
        if kind == "busy":
            dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variants[-1]}]
            datapoints.append(
                {"MetricName": "Invocations", "Dimensions": dims, "Value": 5, "Timestamp": now - timedelta(hours=3)}
            )
        if kind == "async_backlog":
            dims = [{"Name": "EndpointName", "Value": name}]
            datapoints.append(
                {
                    "MetricName": "ApproximateBacklogSize",
                    "Dimensions": dims,
                    "Value": 2,
                    "Timestamp": now - timedelta(hours=3),
                }
            )
    for j in range(max(1, n // 10)):
        name = f"{PREFIX}-handmade-{j:05d}"
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-cfg",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "bench-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-cfg")
    for start in range(0, len(datapoints), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=datapoints[start : start + 1000])
    return dict(Counter(plan))


def reaper_clients(log: CallLog) -> tuple[Clients, Any]:
    made = {
        name: boto3.client(name, region_name=REGION)
        for name in ("sagemaker", "cloudwatch", "application-autoscaling", "ssm", "sns")
    }
    for client in made.values():
        log.attach(client)
    clients = Clients(
        sagemaker=made["sagemaker"],
        cloudwatch=made["cloudwatch"],
        autoscaling=made["application-autoscaling"],
        ssm=made["ssm"],
    )
    return clients, made["sns"]


def per_endpoint_baseline(now: datetime, log: CallLog) -> int:
    """Decide every endpoint the naive way (no deletion); returns how many it found idle."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    log.attach(sagemaker)
    log.attach(cloudwatch)
    idle = 0
    end = now.replace(second=0, microsecond=0)
    for page in sagemaker.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 100}):
        for summary in page["Endpoints"]:
            endpoint_tags = {
                t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=summary["EndpointArn"])["Tags"]
            }
            if (
                endpoint_tags.get(tags.MANAGED_BY) != tags.MANAGED_BY_VALUE
                or endpoint_tags.get(tags.KEEP_ALIVE) == "true"
            ):
                continue
            described = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
            variants = [v["VariantName"] for v in described["ProductionVariants"]]
            queries = [
                {
                    "Id": f"q{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "Invocations",
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": summary["EndpointName"]},
                                {"Name": "VariantName", "Value": v},
                            ],
                        },
                        "Period": 86400,
                        "Stat": "Sum",
                    },
                }
                for i, v in enumerate(variants)
            ]
            result = cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=end - timedelta(hours=24), EndTime=end
            )
            if not any(v for r in result["MetricDataResults"] for v in r["Values"]):
                idle += 1
    return idle


@dataclass
class Measurement:
    n: int
    mix: dict[str, int]
    setup_seconds: float
    handler_seconds: float
    handler: CallLog
    baseline_seconds: float
    baseline: CallLog
    counts: dict[str, int]
    search_matches: int

    @property
    def search_pages_aws(self) -> int:
        return max(1, math.ceil(self.search_matches / SEARCH_PAGE))

    @property
    def calls_outside_budget_exemption(self) -> int:
        """Every call except DeleteEndpoint and DeregisterScalableTarget, with Search as AWS would page it."""
        others = sum(c for op, c in self.handler.counts.items() if op not in NOT_CALL_BUDGET and op != "Search")
        return others + self.search_pages_aws

    @property
    def call_limit(self) -> float:
        return self.n / 10 + 10

    @property
    def metric_call_limit(self) -> int:
        return math.ceil(self.handler.queries / MAX_QUERIES)


def measure(n: int) -> Measurement:
    now = datetime.now(timezone.utc) + timedelta(hours=30)
    with mock_aws():
        started = time.perf_counter()
        mix = populate(n, now)
        setup_seconds = time.perf_counter() - started
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]

        baseline = CallLog()
        started = time.perf_counter()
        per_endpoint_baseline(now, baseline)
        baseline_seconds = time.perf_counter() - started

        handler = CallLog()
        clients, sns = reaper_clients(handler)
        config = settings.ReaperConfig(PREFIX, settings.TeamPolicy(24, 24, False), max_deletions_per_run=10)
        started = time.perf_counter()
        run = reap(clients, config, now)
        report.publish(sns, topic_arn, run)
        handler_seconds = time.perf_counter() - started
    return Measurement(
        n=n,
        mix=mix,
        setup_seconds=setup_seconds,
        handler_seconds=handler_seconds,
        handler=handler,
        baseline_seconds=baseline_seconds,
        baseline=baseline,
        counts=run.counts(),
        search_matches=len(run.outcomes),
    )


OPERATIONS = (
    "Search",
    "ListEndpoints",
    "GetMetricData",
    "DescribeScalableTargets",
    "PutParameter",
    "DeregisterScalableTarget",
    "DeleteEndpoint",
    "Publish",
)


def calls_table(rows: list[Measurement]) -> str:
    head = [
        "N managed",
        *OPERATIONS,
        "metric queries",
        "GetMetricData limit ceil(q/500)",
        "calls except deletes+deregistrations (AWS paging)",
        "limit N/10+10",
        "targets",
        "baseline calls",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        cells = [f"{m.n:,}"]
        for op in OPERATIONS:
            count = m.handler.counts.get(op, 0)
            cells.append(f"{count} (AWS: {m.search_pages_aws})" if op == "Search" else str(count))
        ok = (
            m.handler.counts.get("GetMetricData", 0) <= m.metric_call_limit
            and m.calls_outside_budget_exemption <= m.call_limit
        )
        cells += [
            f"{m.handler.queries:,}",
            str(m.metric_call_limit),
            str(m.calls_outside_budget_exemption),
            f"{m.call_limit:g}",
            "met" if ok else "MISSED",
            f"{sum(m.baseline.counts.values()):,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def time_table(rows: list[Measurement]) -> str:
    head = [
        "N managed",
        "setup s (moto)",
        "handler s",
        "inside moto s (GetMetricData s)",
        "handler's own s",
        "baseline s (per-endpoint)",
        "handler / baseline",
        "decided in < 60 s",
        "deleted",
        "kept",
        "errors",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{m.n:,}",
                    f"{m.setup_seconds:.1f}",
                    f"{m.handler_seconds:.2f}",
                    f"{m.handler.seconds_in_calls:.2f} ({m.handler.seconds['GetMetricData']:.2f})",
                    f"{m.handler_seconds - m.handler.seconds_in_calls:.2f}",
                    f"{m.baseline_seconds:.2f}",
                    f"{m.handler_seconds / m.baseline_seconds:.3f}",
                    "yes" if m.handler_seconds < 60 else "NO",
                    str(m.counts[report.DELETED]),
                    str(m.counts[report.KEPT]),
                    str(m.counts[report.ERROR]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        rows.append(measure(n))
        print(f"measured N={n}", file=sys.stderr, flush=True)
    mix = ", ".join(f"{k} {v}" for k, v in sorted(rows[-1].mix.items()))
    machine = f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    print(f"{machine}; mix at N={rows[-1].n}: {mix}\n")
    print(calls_table(rows))
    print()
    print(time_table(rows))
    missed = [
        m.n
        for m in rows
        if not (
            m.handler.counts.get("GetMetricData", 0) <= m.metric_call_limit
            and m.calls_outside_budget_exemption <= m.call_limit
            and m.handler_seconds < 60
        )
    ]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
