"""Benchmark: the monitoring job on 10^5 and 10^6 captured requests, against reading the same records with pandas.

The captured records are the fraud example's rows (``pipeline_code.generate``), one request each, in
SageMaker's data-capture format, laid out in hour folders of a local directory (the job reads local folders
the way it reads S3 prefixes, so no network time is in the figures). Each case runs in a fresh Python process
(``python -m pipeline_code.monitor`` with ``--no-metrics``) and so does its baseline,
``pandas.read_json(<file>, lines=True)`` over every capture file followed by parsing the request column as
CSV, which is the least any job that reads the capture must do. Time is wall time; peak memory is the
process's maximum resident set size (``ru_maxrss`` of the child). Medians of ``--repeat`` runs; the ratio
compares the two in the same run.

Usage: ``.venv/bin/python bench/drift.py [--sizes 100000 1000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from pipeline_code import baseline, examples, split  # noqa: E402
from pipeline_code.problem import FRAUD  # noqa: E402
from tools import capture_records  # noqa: E402

END = datetime(2026, 12, 4, tzinfo=timezone.utc)
PANDAS_READ = """
import glob, io, sys
import pandas as pd
frames = [pd.read_json(path, lines=True) for path in sorted(glob.glob(sys.argv[1] + "/**/*.jsonl", recursive=True))]
records = pd.concat(frames, ignore_index=True)
bodies = records["captureData"].map(lambda c: c["endpointInput"]["data"])
table = pd.read_csv(io.StringIO("\\n".join(bodies)), header=None)
print(len(table))
"""


def timed(command: list) -> tuple:
    """(wall seconds, peak RSS in MB, stdout) of one child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{command[:4]} failed: {err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def prepare(folder: Path, size: int) -> tuple:
    """A baseline from a split of generated data, and ``size`` capture records of the same kind of rows."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    for name, text in examples.tables("fraud-detection", 5000, seed=1).items():
        (raw / name).write_text(text)
    split.run(raw, folder / "split", FRAUD, "stratified", (0.7, 0.15, 0.15), 42)
    evaluation = {"binary_classification_metrics": {"auc": {"value": 0.9}}}
    train = pd.read_csv(folder / "split/train/train.csv")
    summary = json.loads((folder / "split/summary/split_summary.json").read_text())
    document, reference = baseline.build(train, summary, evaluation, FRAUD, "probability", "auc", 0.5)
    path = baseline.write(folder / "baseline", document, reference)
    features = summary["features"]
    table = pd.read_csv(folder / "split/train/train.csv")[features]
    table = pd.concat([table] * (size // len(table) + 1), ignore_index=True).iloc[:size]
    rows = table.astype(str).agg(",".join, axis=1).tolist()
    lines = capture_records.capture_lines(rows, ["0.1"] * size, END - timedelta(hours=24), timedelta(hours=23))
    capture_records.write_hours(folder / "capture", lines)
    return path, folder / "capture"


def one_case(size: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline_path, capture = prepare(folder, size)
        monitor = [sys.executable, "-m", "pipeline_code.monitor", "--baseline-uri", str(baseline_path),
                   "--capture-uri", str(capture), "--ground-truth-uri", str(folder / "none"),
                   "--endpoint-name", "bench", "--model-package-arn", "arn:aws:sagemaker:x:1:model-package/g/1",
                   "--window-end", END.isoformat(), "--window-hours", "24", "--output-dir", str(folder / "out"),
                   "--metric-namespace", "bench", "--no-metrics"]
        read = [sys.executable, "-c", PANDAS_READ, str(capture)]
        jobs, reads = [], []
        for _ in range(repeat):
            reads.append(timed(read))
            jobs.append(timed(monitor))
        report = json.loads((folder / "out/report.json").read_text())
        assert report["rows"] == size, report["rows"]
        assert int(reads[0][2].strip()) == size
        megabytes = sum(p.stat().st_size for p in capture.rglob("*.jsonl")) / 1e6
    job_s = statistics.median(s for s, _, _ in jobs)
    read_s = statistics.median(s for s, _, _ in reads)
    return {"size": size, "capture_mb": megabytes, "job_s": job_s, "read_s": read_s, "ratio": job_s / read_s,
            "job_mb": max(m for _, m, _ in jobs), "read_mb": max(m for _, m, _ in reads)}


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"median of {args.repeat} runs, each a fresh process; Python {sys.version.split()[0]}, pandas "
          f"{pd.__version__}")
    print()
    print("| captured requests | capture (MB) | monitoring job (s) | pandas read (s) | × pandas read | "
          "job peak RSS (MB) | read peak RSS (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sorted(args.sizes):
        case = one_case(size, args.repeat)
        print(f"| {size:,} | {case['capture_mb']:.0f} | {case['job_s']:.2f} | {case['read_s']:.2f} | "
              f"{case['ratio']:.2f} | {case['job_mb']:.0f} | {case['read_mb']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
