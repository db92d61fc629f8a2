"""Session fixtures: the example platform is synthesized once per test session, with the policy gates on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# No test may reach AWS: fake credentials and a fixed region for boto3 and moto.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "config" / "platform.yaml"
MULTI_ACCOUNT_CONFIG = ROOT / "config" / "multi-account.yaml"
# The jsii runtime starts `node` from PATH: the project's pinned Node.js LTS, as under `make` and `npx cdk`.
if (ROOT / "node_modules" / ".bin" / "node").exists():
    os.environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"


def cdk_context() -> dict[str, Any]:
    """The feature flags of cdk.json, so tests synthesize exactly what the CLI does."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if k != "config"}


@dataclass
class Synthesized:
    """A synthesized platform: its builder result, cloud assembly folder and templates by stack name."""

    platform: Any
    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template(self, stack_name: str) -> dict[str, Any]:
        return self.templates[stack_name]


def synthesize(config, outdir: Path, *, policy_gates: bool = True, teams: list[str] | None = None) -> Synthesized:
    """Synthesize ``config`` into ``outdir`` as the CLI does; ``teams`` as ``-c teams=`` (None: every team)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_platform

    app = cdk.App(outdir=str(outdir), context=cdk_context())
    platform = build_platform(config, app, policy_gates=policy_gates, teams=teams)
    assembly = app.synth()
    templates = {stack.stack_name: assembly.get_stack_by_name(stack.stack_name).template for stack in platform.stacks}
    return Synthesized(platform=platform, outdir=outdir, templates=templates)


# Configs at the edges of what the config model allows; every gate must hold for them too.
EDGE_CONFIGS = {
    "minimal": {"prefix": "edge", "teams": [{"name": "solo", "cost_center": "CC-1"}]},
    "everything switched": {
        "prefix": "edge",
        "account": "210987654321",
        "region": "ap-southeast-2",
        "studio": {"home_efs_on_delete": "delete", "idle_timeout_minutes": 60, "max_idle_timeout_minutes": 60},
        "reaper": {"enabled": False, "dry_run": False},
        "explainability": "clarify",
        "quotas": [{"instance_type": "ml.g5.xlarge", "usage": "spot-training", "desired": 2}],
        "teams": [
            {
                "name": "alpha",
                "cost_center": "CC-1",
                "users": ["u1"],
                "reaper": {"exempt": True},
                "use_cases": [
                    {"name": f"case-{i}", "endpoint": {"data_capture": {"enabled": True}}} for i in range(4)
                ],
            },
            {"name": "beta", "cost_center": "CC-2", "users": ["u1"], "use_cases": []},
        ],
    },
    "reviewers": {
        "prefix": "edge",
        "account": "210987654321",
        "region": "eu-west-1",
        "approval": {"reviewers_required": True,
                     "reviewers": {"role_arns": ["arn:aws:iam::210987654321:role/governance/ModelRisk"]}},
        "teams": [
            {"name": "alpha", "cost_center": "CC-1", "users": ["u1", "u2"],
             "reviewers": {"users": ["r1", "u2"]},
             "use_cases": [{"name": "score"}, {"name": "rank", "endpoint": {"data_capture": {"enabled": True}}}]},
            {"name": "risk", "cost_center": "CC-2", "users": ["r1"]},
            {"name": "beta", "cost_center": "CC-3", "users": ["b1"], "use_cases": [{"name": "score"}]},
        ],
    },
    "one stage": {
        "prefix": "edge",
        "account": "210987654321",
        "region": "us-east-1",
        "network": {"mode": "existing", "vpc_id": "vpc-0123456789abcdef0",
                    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
                    "security_group_ids": ["sg-0123456789abcdef0"]},
        "stages": [{"name": "qa", "account": "210987654322", "region": "us-east-1", "promotion": "approved"}],
        "teams": [
            {"name": "solo", "cost_center": "CC-1"},
            {"name": "duo", "cost_center": "CC-2", "stages": [], "budget": {"monthly_usd": 10},
             "use_cases": [{"name": "kept", "endpoint": {"data_capture": {"enabled": True},
                                                        "monitoring": {"enabled": True}}}]},
        ],
    },
}


@pytest.fixture(scope="session")
def edge(tmp_path_factory):
    """``edge(name)``: the edge config `name` synthesized once per session, with the policy gates on."""
    from stacks.config import parse_config

    built: dict[str, Synthesized] = {}

    def synthesized(name: str) -> Synthesized:
        if name not in built:
            built[name] = synthesize(parse_config(EDGE_CONFIGS[name]), tmp_path_factory.mktemp("edge"))
        return built[name]

    return synthesized


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    """No test may reach AWS, whatever the environment holds: fake keys and a fixed region for boto3 and moto."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def example_config():
    from stacks.config import load_config

    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def example(example_config, tmp_path_factory) -> Synthesized:
    """The example platform, synthesized once with cdk-nag as a validation plugin (raises on open findings)."""
    return synthesize(example_config, tmp_path_factory.mktemp("example-cdk-out"))


@pytest.fixture(scope="session")
def multi_account(tmp_path_factory) -> Synthesized:
    """config/multi-account.yaml (a development and two stage accounts), synthesized once with the policy gates on."""
    from stacks.config import load_config

    return synthesize(load_config(MULTI_ACCOUNT_CONFIG), tmp_path_factory.mktemp("multi-account-cdk-out"))
