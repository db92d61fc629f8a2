"""The mutation score of the last `make mutation` run, from mutmut's summary; exit 1 below the minimum.

Score = mutants caught / (total - skipped), where a mutant is caught when a test fails on it (killed) or
the tests no longer finish in mutmut's time limit (timeout). Survivors and mutants no test reaches
("no tests") count against it.

    python -m tools.mutation_score [STATS_JSON] [--minimum 85]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_STATS = Path("build/mutation/mutants/mutmut-cicd-stats.json")
DEFAULT_MINIMUM = 85.0


def score(stats: dict[str, int]) -> tuple[float, int, int]:
    """(score in percent, caught, counted) of mutmut's summary counts."""
    caught = stats["killed"] + stats["timeout"]
    counted = stats["total"] - stats["skipped"]
    return (100.0 * caught / counted if counted else 0.0), caught, counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation_score", description=__doc__.splitlines()[0])
    parser.add_argument("stats", nargs="?", type=Path, default=DEFAULT_STATS, help=f"default: {DEFAULT_STATS}")
    parser.add_argument("--minimum", type=float, default=DEFAULT_MINIMUM, help=f"default: {DEFAULT_MINIMUM:g}")
    args = parser.parse_args(argv)
    stats = json.loads(args.stats.read_text())
    percent, caught, counted = score(stats)
    print(
        f"mutation score {percent:.1f} %: {caught} of {counted} mutants caught (killed {stats['killed']}, "
        f"timeout {stats['timeout']}); survived {stats['survived']}, no tests {stats['no_tests']}, "
        f"suspicious {stats['suspicious']}, skipped {stats['skipped']}; minimum {args.minimum:g} %"
    )
    return 0 if percent >= args.minimum else 1


if __name__ == "__main__":
    sys.exit(main())
