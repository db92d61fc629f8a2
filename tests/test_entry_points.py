"""Every documented entry point runs as a new user runs it: in a clean environment, on the project's Node.js.

The `python -m <module>` commands are read from the README and docs/, so a newly documented one is covered
the day it is written. Each runs with `--help` from the project's virtualenv, with a PATH whose first `node`
is the system's (here an end-of-life Node.js, when the machine has one) and without node_modules/.bin, and
must print its usage without a traceback, a bytes repr or the jsii end-of-life banner. The `cdk` options the
Makefile passes must be options of the pinned CLI's subcommand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"python -m ([a-z_]+(?:\.[a-z_]+)*)")
NOISE = re.compile(r"Traceback \(most recent call last\)|b'|end-of-life|ModuleNotFoundError")


def documented_modules() -> list[str]:
    return sorted({m for path in DOCUMENTS for m in COMMAND.findall(path.read_text())})


def clean_environment() -> dict[str, str]:
    """What a fresh shell has: the system's PATH (no node_modules/.bin, no virtualenv), no AWS settings."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and "node_modules" not in p and ".venv" not in p]
    env = {"PATH": os.pathsep.join(path or ["/usr/bin", "/bin"]), "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8"}
    return env


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=clean_environment(), capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_docs_name_the_entry_points():
    modules = documented_modules()
    assert {"pipeline_code.cli", "tools.local_run", "tools.restore_endpoint", "stacks.config"} <= set(modules)


def test_every_documented_python_entry_point_prints_its_usage_cleanly():
    modules = documented_modules()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(modules, pool.map(lambda m: run([sys.executable, "-m", m, "--help"]), modules)))
    for module, result in results.items():
        output = result.stdout + result.stderr
        assert result.returncode in (0, 2), f"{module}: exit {result.returncode}\n{output}"
        assert "usage" in output.lower(), f"{module} printed no usage:\n{output}"
        assert not NOISE.search(output), f"{module}:\n{output}"


def test_importing_aws_cdk_through_the_project_uses_its_node_and_the_check_can_fail():
    node = ROOT / "node_modules" / ".bin" / "node"
    if not node.exists():
        pytest.fail("node_modules/ is not installed: run `make install`")
    through_project = run([sys.executable, "-c", "import stacks, aws_cdk, shutil; print(shutil.which('node'))"])
    assert through_project.stdout.strip() == str(node), through_project.stdout + through_project.stderr
    assert not NOISE.search(through_project.stdout + through_project.stderr)
    system_node = shutil.which("node", path=clean_environment()["PATH"])
    system = run([system_node, "--version"]) if system_node else None
    if system is not None and system.returncode == 0 and int(system.stdout.strip().lstrip("v").split(".")[0]) <= 20:
        bare = run([sys.executable, "-c", "import aws_cdk"])
        assert NOISE.search(bare.stdout + bare.stderr), "the banner check would not see an end-of-life Node.js"


def _cdk_commands() -> list[tuple[str, list[str]]]:
    found = []
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"\t\$\(CDK\) (\w+)(.*)", line)
        if match:
            found.append((match.group(1), re.findall(r"(?<!\S)(--?[a-z][\w-]*)", match.group(2))))
    return found


def test_every_cdk_option_of_the_makefile_is_one_the_pinned_cli_has():
    commands = _cdk_commands()
    assert {name for name, _ in commands} >= {"synth", "deploy", "diff"}
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    for name, options in commands:
        env = dict(clean_environment(), PATH=f"{cdk.parent}{os.pathsep}{clean_environment()['PATH']}")
        helped = subprocess.run([str(cdk), name, "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        text = helped.stdout + helped.stderr
        for option in options:
            assert _offers(text, option), f"cdk {name} has no {option}"


def _offers(help_text: str, option: str) -> bool:
    """Whether the CLI's help lists `option` (a boolean `--x` also takes `--no-x`)."""
    names = [option, f"--{option[5:]}"] if option.startswith("--no-") else [option]
    return any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", help_text) for name in names)


def test_an_option_the_cli_lacks_is_caught():
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    env = dict(clean_environment(), PATH=f"{cdk.parent}{os.pathsep}{clean_environment()['PATH']}")
    helped = subprocess.run([str(cdk), "diff", "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert _offers(helped.stdout, "--context") and _offers(helped.stdout, "--no-change-set")
    assert not _offers(helped.stdout, "--all")
