"""Synthesis cost: an empty CDK app (the jsii start-up floor) against the example and generated platforms.

Each case runs in a fresh Python process, as `cdk synth` does, with the cdk-nag plugin on. Prints a
Markdown table: wall time, ratio to the empty app measured in the same run, stack count, the largest
stack's resource count and the largest template size.

    .venv/bin/python bench/synth.py [--repeat 3]
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App(outdir={outdir!r})
cdk.Stack(app, "Empty")
app.synth()
"""

PLATFORM_APP = """
import aws_cdk as cdk
from stacks.app_builder import build_platform
from stacks.config import load_config
from tests.conftest import cdk_context
app = cdk.App(outdir={outdir!r}, context=cdk_context())
build_platform(load_config({config!r}), app, teams={teams!r})
app.synth()
"""


def generated_config(teams: int) -> dict:
    data = yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())
    template = data["teams"][0]
    data["teams"] = [
        {**template, "name": f"team{i:03d}", "cost_center": f"CC-{i:04d}", "users": [f"user{j}" for j in range(3)]}
        for i in range(teams)
    ]
    return data


def case_env() -> dict[str, str]:
    """The environment of a case: the project's Node.js first on PATH unless --system-node."""
    project_bin = str(ROOT / "node_modules" / ".bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != project_bin)
    if not SYSTEM_NODE[0]:
        path = f"{project_bin}{os.pathsep}{path}"
    env = {**os.environ, "PATH": path, "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}"}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")  # an end-of-life system node
    return env


def run_case(code: str) -> tuple[float, Path]:
    outdir = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    env = case_env()
    start = time.perf_counter()
    source = code.format(outdir=str(outdir), config=CONFIG_PATH[0], teams=TEAMS[0])
    subprocess.run([sys.executable, "-c", source], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start, outdir


CONFIG_PATH = [""]
TEAMS: list[list[str] | None] = [None]  # the -c teams selection of the current case
SYSTEM_NODE = [False]  # run on the system's `node` instead of the project's Node.js LTS


def measure(code: str, repeat: int) -> tuple[float, Path]:
    times, outdir = [], None
    for _ in range(repeat):
        elapsed, outdir = run_case(code)
        times.append(elapsed)
    return statistics.median(times), outdir


def assembly_stats(outdir: Path) -> tuple[int, int, float]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    counts, sizes = [], []
    for artifact in stacks:
        path = outdir / artifact["properties"]["templateFile"]
        counts.append(len(json.loads(path.read_text()).get("Resources", {})))
        sizes.append(path.stat().st_size / 1024)
    return len(stacks), max(counts), max(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--system-node", action="store_true",
                        help="run on the system's node instead of node_modules/.bin/node (for comparison)")
    args = parser.parse_args()
    SYSTEM_NODE[0] = args.system_node

    rows = []
    empty_time, empty_out = measure(EMPTY_APP, args.repeat)
    rows.append(("empty CDK app (floor)", empty_time, *assembly_stats(empty_out)))
    cases = [("example config (3 teams)", ROOT / "config" / "platform.yaml", None)]
    scratch = Path(tempfile.mkdtemp(prefix="bench-configs-"))
    for teams in (1, 10, 50, 100):
        path = scratch / f"teams-{teams}.yaml"
        path.write_text(yaml.safe_dump(generated_config(teams)))
        cases.append((f"generated, {teams} teams", path, None))
    cases.append(("generated, 100 teams, `-c teams=team042` (one team's stacks)", scratch / "teams-100.yaml", ["team042"]))
    for label, path, selection in cases:
        CONFIG_PATH[0], TEAMS[0] = str(path), selection
        elapsed, outdir = measure(PLATFORM_APP, args.repeat)
        rows.append((label, elapsed, *assembly_stats(outdir)))

    node = subprocess.run(["node", "--version"], capture_output=True, text=True, env=case_env(), check=True)
    print(f"median of {args.repeat} runs, each a fresh process, cdk-nag plugin on, Node.js {node.stdout.strip()}\n")
    print("| case | synth time (s) | × empty app | stacks | largest stack (resources) | largest template (KB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, elapsed, stacks, largest, size in rows:
        print(f"| {label} | {elapsed:.2f} | {elapsed / empty_time:.2f} | {stacks} | {largest} | {size:.1f} |")


if __name__ == "__main__":
    main()
