"""A direct `npx cdk synth` says only what matters: no Node banner, construct INFO or feature-flag notice."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"
# The lines a synth of the example may print: the CLI's own result lines and the replacement guard's
# warning, which stays until the first deploy is recorded.
EXPECTED_LINES = (
    re.compile(r"warning: replacement guard off for config/platform\.yaml: .*"),
    re.compile(r"Successfully synthesized to .*"),
    re.compile(r"Supply a stack id \(mlp-network, mlp-platform, mlp-team-fraud\) to display its template\."),
)

# Flags deliberately kept off their recommended value, each with its reason.
DELIBERATE = {
    "@aws-cdk/core:defaultCrossStackReferences": (
        "strong: team stacks import the network's and platform's outputs with Fn::ImportValue, so CloudFormation "
        "refuses to delete the network or platform stack while a team stack still uses them"
    ),
}


@pytest.fixture(scope="module")
def direct_synth(tmp_path_factory) -> tuple[str, Path]:
    """The README's `npx cdk synth`, run as a user runs it: PATH as the shell has it, no silencing variables.

    One team (``-c teams=fraud``) is enough: every team stack is built by the same code, and the network and
    platform stacks are built in full.
    """
    if not CDK.exists():
        pytest.fail("node_modules/ is not installed: run `make install`")
    outdir = tmp_path_factory.mktemp("npx-synth")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "node_modules" not in p)
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "-c", "teams=fraud", "-o", str(outdir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr, outdir


def test_direct_synth_prints_nothing_but_its_result_and_the_guard_warning(direct_synth):
    output, _ = direct_synth
    unexpected = [line for line in output.splitlines()
                  if line.strip() and not any(pattern.fullmatch(line) for pattern in EXPECTED_LINES)]
    assert unexpected == []
    assert "Successfully synthesized" in output


def test_the_app_runs_on_a_maintained_node_lts():
    node = ROOT / "node_modules" / ".bin" / "node"
    version = subprocess.run([str(node) if node.exists() else "node", "--version"],
                             capture_output=True, text=True, check=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    assert major >= 22 and major % 2 == 0, version
    engines = json.loads((ROOT / "package.json").read_text())["engines"]["node"]
    assert f"^{major}." in engines


def test_every_feature_flag_is_set_to_its_recommended_value(direct_synth):
    _, outdir = direct_synth
    manifest = json.loads((outdir / "manifest.json").read_text())
    (report,) = [a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"]
    flags = report["properties"]["flags"]
    assert len(flags) > 50
    unset = sorted(name for name, flag in flags.items() if "userValue" not in flag)
    assert unset == []
    off = sorted(name for name, flag in flags.items()
                 if "recommendedValue" in flag and flag["userValue"] != flag["recommendedValue"])
    assert off == sorted(DELIBERATE)
    assert flags["@aws-cdk/core:defaultCrossStackReferences"]["userValue"] == "strong"
