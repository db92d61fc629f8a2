"""Traffic of many endpoints over their idle windows, in batched GetMetricData calls.

For each endpoint the reaper asks for, per variant, ``Invocations`` (Sum) and
``InvocationsProcessed`` (Sum), and per endpoint ``ApproximateBacklogSize`` (Maximum). Real-time
endpoints publish only ``Invocations``; asynchronous endpoints publish only the other two (they do not
publish ``Invocations`` at all), so asking for all three judges each kind by its own metrics without
first finding out which kind the endpoint is (that would take a DescribeEndpointConfig per endpoint).
A metric with no datapoints counts as zero; the caller only asks about endpoints past their grace
period.

Each query's period is the whole window, so it returns at most one or two datapoints. Queries are
grouped by window length (teams can override it) and sent 500 to a call, the GetMetricData maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

NAMESPACE = "AWS/SageMaker"
MAX_QUERIES_PER_CALL = 500
INVOCATIONS = "Invocations"
INVOCATIONS_PROCESSED = "InvocationsProcessed"
BACKLOG = "ApproximateBacklogSize"
FAILED_STATUS_CODES = ("InternalError", "Forbidden")


@dataclass(frozen=True)
class ActivityRequest:
    """One endpoint whose traffic is wanted over the last ``window_hours``."""

    endpoint_name: str
    variants: tuple[str, ...]
    window_hours: int


@dataclass(frozen=True)
class Activity:
    """An endpoint's traffic over its window; all zero means idle."""

    invocations: float = 0.0
    invocations_processed: float = 0.0
    max_backlog: float = 0.0

    @property
    def idle(self) -> bool:
        return self.invocations == 0 and self.invocations_processed == 0 and self.max_backlog == 0

    def describe(self, window_hours: int) -> str:
        """Why the endpoint counts as busy (or that it is idle), for reports."""
        if self.idle:
            return f"no invocations and no async backlog in the last {window_hours}h"
        parts = []
        if self.invocations:
            parts.append(f"{self.invocations:g} invocations")
        if self.invocations_processed:
            parts.append(f"{self.invocations_processed:g} async invocations processed")
        if self.max_backlog:
            parts.append(f"async backlog up to {self.max_backlog:g}")
        return f"busy: {', '.join(parts)} in the last {window_hours}h"


@dataclass(frozen=True)
class _Query:
    endpoint_name: str
    metric: str
    stat: str
    dimensions: tuple[tuple[str, str], ...]


def queries_for(request: ActivityRequest) -> list[_Query]:
    """The metric queries that decide whether one endpoint is idle."""
    endpoint = request.endpoint_name
    queries = []
    for variant in request.variants:
        dims = (("EndpointName", endpoint), ("VariantName", variant))
        queries.append(_Query(endpoint, INVOCATIONS, "Sum", dims))
        queries.append(_Query(endpoint, INVOCATIONS_PROCESSED, "Sum", dims))
    queries.append(_Query(endpoint, BACKLOG, "Maximum", (("EndpointName", endpoint),)))
    return queries


def _metric_data_query(query_id: str, query: _Query, period_seconds: int) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": query.metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in query.dimensions],
            },
            "Period": period_seconds,
            "Stat": query.stat,
        },
        "ReturnData": True,
    }


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fetch_batch(
    cloudwatch: Any, batch: Sequence[_Query], start: datetime, end: datetime, period_seconds: int
) -> dict[int, list[float] | None]:
    """Values per query index in ``batch``; ``None`` for a query CloudWatch could not answer."""
    request = [_metric_data_query(f"q{i}", q, period_seconds) for i, q in enumerate(batch)]
    values: dict[int, list[float] | None] = {}
    failed: set[int] = set()
    kwargs: dict[str, Any] = {"MetricDataQueries": request, "StartTime": start, "EndTime": end}
    while True:
        response = cloudwatch.get_metric_data(**kwargs)
        for result in response.get("MetricDataResults", []):
            index = int(result["Id"][1:])
            if result.get("StatusCode") in FAILED_STATUS_CODES:
                failed.add(index)
            values.setdefault(index, [])
            existing = values[index]
            if existing is not None:
                existing.extend(float(v) for v in result.get("Values", []))
        token = response.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    for index in range(len(batch)):
        if index in failed or index not in values:
            values[index] = None
    return values


def _combine(activity: Activity, query: _Query, values: list[float]) -> Activity:
    if not values:
        return activity
    if query.metric == INVOCATIONS:
        return Activity(activity.invocations + sum(values), activity.invocations_processed, activity.max_backlog)
    if query.metric == INVOCATIONS_PROCESSED:
        return Activity(activity.invocations, activity.invocations_processed + sum(values), activity.max_backlog)
    return Activity(activity.invocations, activity.invocations_processed, max(activity.max_backlog, max(values)))


def measure_activity(
    cloudwatch: Any, requests: Sequence[ActivityRequest], now: datetime
) -> tuple[dict[str, Activity], dict[str, str]]:
    """Traffic per endpoint name, and an error message per endpoint whose metrics could not be read.

    A failed GetMetricData call only affects the endpoints whose queries it carried.
    """
    end = now.replace(second=0, microsecond=0)
    activities: dict[str, Activity] = {}
    errors: dict[str, str] = {}
    by_window: dict[int, list[_Query]] = {}
    for request in requests:
        activities[request.endpoint_name] = Activity()
        by_window.setdefault(request.window_hours, []).extend(queries_for(request))
    for window_hours, queries in sorted(by_window.items()):
        start = end - timedelta(hours=window_hours)
        for batch in _chunks(queries, MAX_QUERIES_PER_CALL):
            try:
                batch_values = _fetch_batch(cloudwatch, batch, start, end, window_hours * 3600)
            except (BotoCoreError, ClientError) as exc:
                for query in batch:
                    errors[query.endpoint_name] = f"GetMetricData failed: {exc}"
                continue
            for index, query in enumerate(batch):
                values = batch_values[index]
                if values is None:
                    errors[query.endpoint_name] = f"CloudWatch could not return {query.metric}"
                    continue
                activities[query.endpoint_name] = _combine(activities[query.endpoint_name], query, values)
    for name in errors:
        activities.pop(name, None)
    return activities, errors
