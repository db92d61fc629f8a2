"""Read an endpoint's data capture and the team's ground truth for one time window.

Locations are ``s3://bucket/prefix/`` URIs or local folders (the same layout under the folder), so the
monitoring job runs the same here as in its processing container.

Data capture (SageMaker writes it): ``<capture prefix>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl`` under
``s3://<team bucket>/data-capture/<endpoint>/<variant>/``, one JSON record per request::

    {"captureData": {"endpointInput": {"data": "34,1200.5,web", "encoding": "CSV", ...},
                     "endpointOutput": {"data": "0.93", "encoding": "CSV", ...}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-12-04T10:15:02Z"}, "eventVersion": "0"}

``data`` is the request (response) body: text for ``CSV`` and ``JSON`` encodings, base64 for ``BASE64``. A
body may hold several CSV rows, each with one response line. A file's hour folder is when SageMaker wrote
it, which can be after the request, so the hours from the window's start to one hour past its end are
listed and records are kept by their ``inferenceTime``.

Ground truth (the team uploads it): ``s3://<team bucket>/monitoring/ground-truth/<endpoint>/<yyyy>/<mm>/<dd>/
<hh>/<any name>.jsonl``, Model Monitor's format, one record per captured request (matched by ``eventId``;
pass your own id as the request's ``InferenceId`` and SageMaker records it as ``inferenceId``, which is
matched first)::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "..."}, "eventVersion": "0"}

``data`` holds one label per row of the request. Labels are read from the hour folders of the window
(upload the labels of a request under the hour it was made in, or later within the window).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from pipeline_code import drift

HOUR_FORMAT = "%Y/%m/%d/%H"


class CaptureError(ValueError):
    """Raised for an unusable window or S3 location."""


ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z``, an offset, or none for UTC; any number of fraction digits) in UTC."""
    match = ISO_TIME.match(text.strip())
    if not match:
        raise CaptureError(f"{text!r} is not an ISO 8601 time such as 2026-12-04T10:00:00Z")
    day, clock, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone in (None, "Z") else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    value = datetime.fromisoformat(f"{day}T{clock if clock.count(':') == 2 else clock + ':00'}.{micros}{zone}")
    return value.astimezone(timezone.utc)


def window_end(text: str, now: datetime | None = None) -> datetime:
    """``now`` (the start of the current UTC hour) or an ISO time."""
    if text.strip().lower() == "now":
        current = now or datetime.now(timezone.utc)
        return current.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return parse_time(text)


class S3Store:
    """Objects of one bucket."""

    def __init__(self, s3, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def keys(self, prefix: str) -> list:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [item["Key"] for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", [])]

    def read(self, key: str) -> str:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
        except self.s3.exceptions.NoSuchKey:
            raise CaptureError(f"s3://{self.bucket}/{key} does not exist") from None


class FolderStore:
    """Files under a local folder, keyed by their path relative to it (``/``-separated)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def keys(self, prefix: str) -> list:
        start = self.root / prefix
        folder = start if prefix.endswith("/") or not prefix else start.parent
        if not folder.is_dir():
            return []
        found = (path.relative_to(self.root).as_posix() for path in folder.rglob("*") if path.is_file())
        return sorted(key for key in found if key.startswith(prefix))

    def read(self, key: str) -> str:
        path = self.root / key
        if not path.is_file():
            raise CaptureError(f"{path} does not exist")
        return path.read_text()


def location(uri: str, s3=None) -> tuple:
    """(store, key prefix) of ``s3://bucket/prefix`` (needs ``s3``, a boto3 client) or of a local path."""
    if uri.startswith("s3://"):
        if "/" not in uri[5:] or not uri[5:].split("/", 1)[0]:
            raise CaptureError(f"{uri!r} is not an s3://bucket/prefix URI")
        if s3 is None:
            raise CaptureError(f"{uri} is in S3, but no S3 client was given")
        bucket, prefix = uri[5:].split("/", 1)
        return S3Store(s3, bucket), prefix
    path = Path(uri)
    if uri.endswith("/") or path.is_dir():
        return FolderStore(path), ""
    return FolderStore(path.parent), path.name


def read_text(uri: str, s3=None) -> str:
    """The text of one object or file."""
    store, key = location(uri, s3)
    return store.read(key)


def folder_of(uri: str) -> str:
    """``uri`` as a folder: ends in ``/``."""
    return uri if uri.endswith("/") else uri + "/"


def hour_prefixes(prefix: str, start: datetime, end: datetime, extra_hours: int = 0) -> list:
    """``<prefix>yyyy/mm/dd/hh/`` for every hour from ``start``'s to ``extra_hours`` past ``end``'s."""
    if end <= start:
        raise CaptureError(f"window end {end.isoformat()} is not after its start {start.isoformat()}")
    hour = start.replace(minute=0, second=0, microsecond=0)
    last = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=extra_hours)
    found = []
    while hour <= last:
        found.append(f"{prefix}{hour.strftime(HOUR_FORMAT)}/")
        hour += timedelta(hours=1)
    return found


def object_lines(store, prefixes: list) -> list:
    """Every non-empty line of every object under ``prefixes``, prefix by prefix in key order."""
    lines = []
    for prefix in prefixes:
        for key in sorted(store.keys(prefix)):
            lines.extend(line for line in store.read(key).splitlines() if line.strip())
    return lines


def body_text(part: dict) -> str:
    data = part.get("data", "")
    if part.get("encoding", "CSV").upper() == "BASE64":
        return base64.b64decode(data).decode("utf-8")
    return data


def _rows(text: str) -> list:
    return [row for row in text.splitlines() if row.strip()]


def _field_count(row: str) -> int:
    if '"' not in row:
        return row.count(",") + 1
    return len(next(csv.reader([row])))


@dataclass
class Window:
    """The captured rows of one window: features (one row per CSV row), their response lines and ids."""

    features: pd.DataFrame
    responses: list
    event_ids: list
    requests: int
    skipped: dict = field(default_factory=dict)


def read_window(records: list, features: list, kinds: dict, start: datetime, end: datetime,
                not_before: datetime | None = None) -> Window:
    """The rows of capture ``records`` (JSON lines) made in ``[start, end)`` and not before ``not_before``.

    Rows whose field count differs from the model's features, requests whose response has another number
    of lines, and records that are not capture records are skipped and counted by reason.
    """
    skipped = {}
    rows, responses, ids = [], [], []
    requests = 0
    lower = max(start, not_before) if not_before else start

    def skip(reason: str, count: int = 1) -> None:
        skipped[reason] = skipped.get(reason, 0) + count

    for line in records:
        try:
            record = json.loads(line)
            metadata = record["eventMetadata"]
            made = parse_time(metadata["inferenceTime"])
            capture = record["captureData"]
            request_rows = _rows(body_text(capture["endpointInput"]))
            response_rows = _rows(body_text(capture.get("endpointOutput", {})))
        except (ValueError, KeyError, TypeError, AttributeError):
            skip("not_a_capture_record")
            continue
        if not lower <= made < end:
            continue
        requests += 1
        if len(response_rows) != len(request_rows):
            skip("response_rows_differ", len(request_rows))
            continue
        identity = metadata.get("inferenceId") or metadata.get("eventId")
        for index, (row, response) in enumerate(zip(request_rows, response_rows)):
            if _field_count(row) != len(features):
                skip("wrong_field_count")
                continue
            rows.append(row)
            responses.append(response)
            ids.append((identity, index))
    frame = parse_rows(rows, features, kinds)
    return Window(frame, responses, ids, requests, skipped)


def parse_rows(rows: list, features: list, kinds: dict) -> pd.DataFrame:
    """CSV rows (no header) as a frame of ``features``, each column typed as its baseline kind."""
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=float if kinds[name] == drift.NUMERICAL else object)
                             for name in features})
    frame = pd.read_csv(io.StringIO("\n".join(rows)), header=None, names=features, dtype=str,
                        keep_default_na=True, skip_blank_lines=False)
    return typed(frame, kinds)


def typed(frame: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """Numerical columns as numbers (unparsable values become missing), categorical ones as text."""
    columns = {}
    for name, kind in kinds.items():
        values = frame[name]
        if kind == drift.NUMERICAL:
            columns[name] = pd.to_numeric(values, errors="coerce")
        else:
            columns[name] = values.where(values.isna(), values.astype(str))
    return pd.DataFrame(columns)


def ground_truth(records: list) -> dict:
    """``eventId`` (or ``inferenceId``) -> label lines, from ground-truth JSON lines; later records win."""
    labels = {}
    for line in records:
        try:
            record = json.loads(line)
            metadata = record["eventMetadata"]
            identity = metadata.get("inferenceId") or metadata["eventId"]
            labels[identity] = _rows(body_text(record["groundTruthData"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return labels


def labelled(window: Window, labels: dict) -> tuple:
    """(label per row, response line per row) for the window's rows that have a label."""
    found, responses = [], []
    for (identity, index), response in zip(window.event_ids, window.responses):
        rows = labels.get(identity)
        if rows is not None and index < len(rows):
            found.append(rows[index].strip())
            responses.append(response)
    return found, responses
