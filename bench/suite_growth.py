"""The test suite's wall time against an earlier commit's, measured in the same run on the same machine.

The earlier commit is checked out into a temporary git worktree that shares this checkout's virtualenv,
Node.js and wheelhouse; the two suites run one after the other, alternating when repeated, each as
`make test` runs it (pytest.ini's `-n auto --dist loadfile`). Prints a Markdown table: tests, wall time per
run, the median, and the ratio of the medians (current / base).

    .venv/bin/python bench/suite_growth.py --base db829e6 [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Installed, not tracked: the worktree links to this checkout's.
SHARED = (".venv", ".venv-scan", "node_modules", "build")


def run_suite(checkout: Path) -> tuple[float, str]:
    """Wall seconds and pytest's last line for the suite of `checkout`."""
    env = dict(os.environ, PATH=f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=checkout,
                             env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    last = (process.stdout.strip().splitlines() or ["(no output)"])[-1]
    if process.returncode != 0:
        failures = [line for line in process.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        raise SystemExit("\n".join([f"the suite of {checkout} failed: {last}", *failures]))
    return seconds, last


def passed(summary: str) -> str:
    found = re.search(r"(\d+) passed", summary)
    return found.group(1) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="suite-base-") as scratch:
        base = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            for name in SHARED:
                if (ROOT / name).exists() and not (base / name).exists():
                    (base / name).symlink_to(ROOT / name)
            times: dict[str, list[float]] = {"base": [], "current": []}
            summaries = {}
            for _ in range(args.repeat):
                for label, checkout in (("base", base), ("current", ROOT)):
                    seconds, summaries[label] = run_suite(checkout)
                    times[label].append(seconds)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"| suite | tests passed | wall s per run | median s |\n| --- | ---: | --- | ---: |")
    for label, rev in (("base", args.base), ("current", "working tree")):
        runs = ", ".join(f"{t:.1f}" for t in times[label])
        print(f"| {label} ({rev}) | {passed(summaries[label])} | {runs} | {medians[label]:.1f} |")
    print(f"\ncurrent / base: {medians['current'] / medians['base']:.3f}")


if __name__ == "__main__":
    main()
