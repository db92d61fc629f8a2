"""Data-capture and ground-truth records in SageMaker's formats, made from feature rows and responses.

The monitoring job's local proof and its benchmark use them: ``capture_lines`` gives one capture record
per request (one CSV row each), spread evenly over a time span; ``write_hours`` lays JSON lines out in the
``yyyy/mm/dd/hh/`` folders SageMaker writes; ``ground_truth_lines`` gives the matching labels.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from pipeline_code.capture import HOUR_FORMAT


def capture_lines(rows: list, responses: list, start: datetime, span: timedelta, id_prefix: str = "event") -> list:
    """(inference time, JSON line) per request: ``rows[i]`` answered with ``responses[i]``."""
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses")
    step = span / max(len(rows), 1)
    made = []
    for index, (row, response) in enumerate(zip(rows, responses)):
        time = start + step * index
        record = {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": row, "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                                   "data": response, "encoding": "CSV"},
            },
            "eventMetadata": {"eventId": f"{id_prefix}-{index}",
                              "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"},
            "eventVersion": "0",
        }
        made.append((time, json.dumps(record, separators=(",", ":"))))
    return made


def ground_truth_lines(labels: list, times: list, id_prefix: str = "event") -> list:
    """(time, JSON line) per labelled request, in Model Monitor's ground-truth format."""
    return [(time, json.dumps({"groundTruthData": {"data": str(label), "encoding": "CSV"},
                               "eventMetadata": {"eventId": f"{id_prefix}-{index}"}, "eventVersion": "0"},
                              separators=(",", ":")))
            for index, (label, time) in enumerate(zip(labels, times))]


def by_hour(lines: list, name: str = "capture.jsonl") -> dict:
    """``yyyy/mm/dd/hh/<name>`` -> file text, for (time, line) pairs."""
    files = {}
    for time, line in lines:
        files.setdefault(f"{time.strftime(HOUR_FORMAT)}/{name}", []).append(line)
    return {key: "\n".join(parts) + "\n" for key, parts in files.items()}


def write_hours(folder: Path, lines: list, name: str = "capture.jsonl") -> list:
    """Write ``by_hour`` files under ``folder``; returns their paths."""
    written = []
    for relative, text in by_hour(lines, name).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def upload_hours(s3, bucket: str, prefix: str, lines: list, name: str = "capture.jsonl") -> list:
    """Put ``by_hour`` files under ``s3://bucket/prefix``; returns their keys."""
    keys = []
    for relative, text in by_hour(lines, name).items():
        key = f"{prefix}{relative}"
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        keys.append(key)
    return keys
