"""Throughput and peak memory of the data generator and the split, against a numpy baseline.

For each size N the baseline is ``numpy.random.default_rng().random((N, 7))``: one float64 array as large
as the generated transactions table (7 columns), made in the same run, so the ratios compare like with
like on whatever machine runs this. Stages:
- ``generate``: ``pipeline_code.generate.generate(N)`` (customers and transactions in memory);
- ``features``: ``build_model_table`` (join with customers, derived columns);
- ``split <mode>``: ``split_indices`` on the model table, for every mode.

Time is the best of ``--repeat`` runs without tracing; peak memory is measured in a separate traced run
(``tracemalloc``, which numpy and pandas report their buffers to). Output: a Markdown table on stdout.

Usage: ``python bench/pipeline.py [--sizes 100000 1000000 10000000] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_code.features import build_model_table  # noqa: E402
from pipeline_code.generate import generate  # noqa: E402
from pipeline_code.split import MODES, split_indices  # noqa: E402

FRACTIONS = (0.7, 0.15, 0.15)
TABLE_COLUMNS = 7


def timed(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def peak_bytes(function) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(rows: int, repeat: int) -> list:
    """(stage, seconds, peak bytes) for every stage at ``rows`` rows, baseline first."""
    results = []

    def baseline():
        return np.random.default_rng(0).random((rows, TABLE_COLUMNS))

    results.append(("baseline: numpy random array", timed(baseline, repeat), peak_bytes(baseline)))
    results.append(("generate", timed(lambda: generate(rows, seed=0), repeat), peak_bytes(lambda: generate(rows, seed=0))))
    customers, transactions = generate(rows, seed=0)
    results.append(("features (join + derive)",
                    timed(lambda: build_model_table(transactions, customers), repeat),
                    peak_bytes(lambda: build_model_table(transactions, customers))))
    table = build_model_table(transactions, customers)
    for mode in MODES:
        results.append((f"split {mode}",
                        timed(lambda: split_indices(table, mode, FRACTIONS, seed=0), repeat),
                        peak_bytes(lambda: split_indices(table, mode, FRACTIONS, seed=0))))
    return results


def markdown(all_results: dict) -> str:
    lines = [
        "| rows | stage | seconds | rows/s | time ÷ baseline | peak MiB | peak ÷ baseline |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows, results in all_results.items():
        _, base_seconds, base_peak = results[0]
        for stage, seconds, peak in results:
            lines.append(
                f"| {rows:,} | {stage} | {seconds:.3f} | {rows / seconds:,.0f} | {seconds / base_seconds:.1f} "
                f"| {peak / 2**20:,.1f} | {peak / base_peak:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per stage (best is reported)")
    args = parser.parse_args(argv)
    all_results = {}
    for rows in args.sizes:
        all_results[rows] = measure(rows, args.repeat)
        print(f"measured {rows:,} rows", file=sys.stderr)
    print(f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores\n")
    print(markdown(all_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
