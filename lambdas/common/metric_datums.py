"""CloudWatch datums that PutMetricData accepts, and their publishing in requests it accepts.

CloudWatch rejects a whole PutMetricData request when one datum in it is out of bounds, so every datum is made
valid (or left out, with the reason) before it is sent. The bounds, from the CloudWatch API reference:

- MetricDatum (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html):
  ``Value``, each of ``Values`` and of ``StatisticValues`` must be 0 or of magnitude between 2^-360 and 2^360;
  NaN, +Infinity and -Infinity are not supported; ``Counts`` pairs one to one with ``Values``; ``MetricName``
  1-255 characters; at most 30 ``Dimensions``.
- Dimension (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html): name 1-255
  characters, value 1-1,024 characters, both ASCII with a non-whitespace character and no control characters,
  the name not starting with ``:``. CloudFormation alarm dimensions (AWS::CloudWatch::Alarm Dimension) take
  values of 1-255 characters only, so 255 is the bound here: every published series stays alarmable.
- PutMetricData (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html): at
  most 1,000 metrics and 1 MB per request; ``Namespace`` 1-255 characters, not starting with ``:``, and not
  starting with ``AWS/`` (reserved).

``pipeline_code/monitor.py`` holds the same rules for the monitoring job (its container has no ``lambdas/``);
``tests/pipeline/test_metric_ranges.py`` checks that both give the same datums.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any
from urllib.parse import quote

SMALLEST = 2.0 ** -360
"""The smallest magnitude of a nonzero value CloudWatch accepts."""
LARGEST = 2.0 ** 360
"""The largest magnitude of a value CloudWatch accepts."""
MAX_DIMENSIONS = 30
MAX_NAME = 255
"""Characters of a metric name and of a dimension name."""
MAX_DIMENSION_VALUE = 255
MAX_DATUMS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 900_000
"""Estimated request size per PutMetricData call, below the 1 MB limit."""
HASH_CHARACTERS = 16

logger = logging.getLogger(__name__)


def metric_value(value: Any) -> float | None:
    """``value`` as CloudWatch accepts it, or None for NaN and infinities (which have no faithful stand-in).

    A nonzero magnitude below 2^-360 becomes 2^-360 with its sign, one above 2^360 becomes 2^360 with its sign,
    and -0.0 becomes 0.0. A p-value of 1e-232 thus stays a positive value far below any drift threshold (a
    distance or a cost that small reads as zero on any graph); rounding it to 0 would claim an impossible
    certainty, and leaving it out would hide the most drifted features.
    """
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0.0:
        return 0.0
    return math.copysign(min(max(abs(number), SMALLEST), LARGEST), number)


def _printable_ascii(text: str) -> bool:
    return all(32 <= ord(character) < 127 for character in text)


def dimension_value(value: str) -> str:
    """``value`` when CloudWatch accepts it as it is; otherwise a stable stand-in it accepts.

    A value longer than 255 characters, or with characters other than printable ASCII, keeps its first
    characters (others replaced by ``?``) and ends in ``~`` and 16 hex digits of the SHA-256 of the whole value:
    the same value gives the same stand-in in every run, so a dashboard's series of it stays one series, and two
    values that share a long prefix stay two series. (Refusing such a value would lose the datum every run.)
    """
    text = str(value)
    if len(text) <= MAX_DIMENSION_VALUE and _printable_ascii(text) and text.strip():
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARACTERS]
    kept = "".join(c if 32 <= ord(c) < 127 else "?" for c in text[:MAX_DIMENSION_VALUE - HASH_CHARACTERS - 1])
    return f"{kept}~{digest}"


def _label(datum: dict) -> str:
    dimensions = ",".join(f"{d.get('Name')}={d.get('Value')}" for d in datum.get("Dimensions") or [])
    return f"{datum.get('MetricName')}[{dimensions}]"


def valid_datum(datum: dict) -> tuple:
    """(a copy of ``datum`` CloudWatch accepts, None), or (None, why it cannot be sent).

    Values follow ``metric_value``; dimension values follow ``dimension_value``. A datum is left out when its
    ``Value`` or a ``StatisticValues`` field is NaN or infinite, when all its ``Values`` are, when it has more
    than 30 dimensions, or when its metric name or a dimension name is not 1-255 characters or a dimension
    value is empty: those names are what dashboards and alarms refer to, so a changed name would publish a
    metric nothing reads. A NaN or infinite entry of ``Values`` is left out with its ``Counts`` entry.
    """
    label = _label(datum)
    name = str(datum.get("MetricName", ""))
    if not 1 <= len(name) <= MAX_NAME:
        return None, f"{label[:300]}: metric name of {len(name)} characters, not 1-{MAX_NAME}"
    result = dict(datum)
    dimensions = list(datum.get("Dimensions") or [])
    if len(dimensions) > MAX_DIMENSIONS:
        return None, f"{label[:300]}: {len(dimensions)} dimensions, more than {MAX_DIMENSIONS}"
    fixed = []
    for dimension in dimensions:
        dimension_name, value = str(dimension["Name"]), str(dimension["Value"])
        if not 1 <= len(dimension_name) <= MAX_NAME:
            return None, f"{label[:300]}: dimension name of {len(dimension_name)} characters, not 1-{MAX_NAME}"
        if not value:
            return None, f"{label[:300]}: empty value of dimension {dimension_name!r}"
        fixed.append({"Name": dimension_name, "Value": dimension_value(value)})
    if "Dimensions" in datum:
        result["Dimensions"] = fixed
    if "Value" in datum:
        value = metric_value(datum["Value"])
        if value is None:
            return None, f"{label[:300]}: value {datum['Value']!r} is not finite"
        result["Value"] = value
    if "StatisticValues" in datum:
        statistics = {}
        for key, raw in datum["StatisticValues"].items():
            value = metric_value(raw)
            if value is None:
                return None, f"{label[:300]}: StatisticValues {key} {raw!r} is not finite"
            statistics[key] = value
        result["StatisticValues"] = statistics
    if "Values" in datum:
        counts = datum.get("Counts")
        pairs = [(metric_value(v), c) for v, c in zip(datum["Values"], counts or [1.0] * len(datum["Values"]))]
        pairs = [(v, c) for v, c in pairs if v is not None]
        if not pairs:
            return None, f"{label[:300]}: no finite entry in Values"
        result["Values"] = [v for v, _ in pairs]
        if counts is not None:
            result["Counts"] = [c for _, c in pairs]
    return result, None


def valid_data(data: list) -> tuple:
    """(the datums CloudWatch accepts, in order, made valid by ``valid_datum``; the reasons of those left out)."""
    kept, dropped = [], []
    for datum in data:
        valid, reason = valid_datum(datum)
        if valid is None:
            dropped.append(reason)
        else:
            kept.append(valid)
    return kept, dropped


def _leaves(value) -> list:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _size(datum: dict) -> int:
    """An upper estimate of the bytes ``datum`` takes in a request: in the query protocol, the most verbose of
    CloudWatch's, each field is ``MetricData.member.<n>.<path>=<URL-encoded value>&`` (at most 64 bytes and the
    value)."""
    return sum(64 + len(quote(str(leaf), safe="-_.~")) for leaf in _leaves(datum))


def requests_of(data: list) -> list:
    """``data`` in consecutive requests of at most 1,000 datums and about 900 KB each."""
    requests: list = []
    size = 0
    for datum in data:
        datum_size = _size(datum)
        if not requests or len(requests[-1]) >= MAX_DATUMS_PER_REQUEST or size + datum_size > MAX_REQUEST_BYTES:
            requests.append([])
            size = 0
        requests[-1].append(datum)
        size += datum_size
    return requests


def check_namespace(namespace: str) -> None:
    """Raises ValueError for a namespace CloudWatch rejects (1-255 characters, not ``:``, not ``AWS/``)."""
    if not 1 <= len(namespace) <= MAX_NAME or namespace.startswith(":") or namespace.startswith("AWS/"):
        raise ValueError(f"CloudWatch namespace {namespace!r} must be 1-{MAX_NAME} characters and start with "
                         "neither ':' nor 'AWS/'")


def put_metric_data(cloudwatch: Any, namespace: str, data: list) -> tuple:
    """Publish ``data`` as ``valid_data`` makes it, in ``requests_of`` requests; logs each datum left out.

    Returns (requests made, reasons of the datums left out).
    """
    check_namespace(namespace)
    kept, dropped = valid_data(data)
    for reason in dropped:
        logger.warning("metric datum not published: %s", reason)
    batches = requests_of(kept)
    for batch in batches:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
    return len(batches), dropped
