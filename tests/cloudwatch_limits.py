"""What CloudWatch's PutMetricData accepts, written from its API reference (MetricDatum, Dimension,
PutMetricData), independently of the publishers under test; and a recorder of the requests a client sends."""

from __future__ import annotations

import copy
import math

SMALLEST = 2.0 ** -360
LARGEST = 2.0 ** 360
EXTREMES = [1.15e-232, 0.0, -0.0, 5e-324, 1e300, -1e300, math.nan, math.inf, -math.inf]


def acceptable(value) -> bool:
    """0, or a finite float whose magnitude lies between 2^-360 and 2^360."""
    return isinstance(value, float) and math.isfinite(value) and (value == 0.0 or SMALLEST <= abs(value) <= LARGEST)


def problems_of(requests: list) -> list:
    """What, in the recorded requests, CloudWatch would reject."""
    problems = []
    for request in requests:
        if not 1 <= len(request["MetricData"]) <= 1000:
            problems.append(f"{len(request['MetricData'])} datums in one request")
        for datum in request["MetricData"]:
            name = datum["MetricName"]
            if not 1 <= len(name) <= 255:
                problems.append(f"metric name of {len(name)} characters")
            if not acceptable(datum["Value"]):
                problems.append(f"{name}={datum['Value']!r}")
            dimensions = datum.get("Dimensions", [])
            if len(dimensions) > 30:
                problems.append(f"{name}: {len(dimensions)} dimensions")
            for dimension in dimensions:
                if not (1 <= len(dimension["Name"]) <= 255 and 1 <= len(dimension["Value"]) <= 255):
                    problems.append(f"{name}: dimension {dimension['Name'][:20]!r} of {len(dimension['Value'])} "
                                    "characters")
    return problems


def recorded(client) -> list:
    """The parameters of every PutMetricData `client` sends from now on, in order."""
    requests: list = []
    client.meta.events.register("before-parameter-build.cloudwatch.PutMetricData",
                                lambda params, **_: requests.append(copy.deepcopy(params)))
    return requests
