"""Policy gates and a summary over a synthesized cloud assembly (``python -m tools.synth_report cdk.out``).

Exits non-zero when cfn-lint reports anything, a security check fails, cdk-nag left a finding
unacknowledged, or checkov failed a check that ``stacks/checkov_skips.py`` does not skip. Prints one line
per stack: resources, template size, acknowledged cdk-nag findings, skipped checkov checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from stacks.policy_checks import run_all
from stacks.regions import SUPPORTED_REGIONS

ROOT = Path(__file__).resolve().parents[1]
CFNLINT_CONFIG = ROOT / ".cfnlintrc.yaml"
# checkov lives in its own virtualenv (it pins an older boto3 than the app); `make install` creates it.
CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"


def load_templates(outdir: Path) -> dict[str, dict]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    templates = {}
    for artifact_id, artifact in sorted(manifest["artifacts"].items()):
        if artifact["type"] == "aws:cloudformation:stack":
            template_file = outdir / artifact["properties"]["templateFile"]
            templates[artifact_id] = json.loads(template_file.read_text())
    return templates


def nag_findings(outdir: Path) -> tuple[list[str], Counter]:
    """(unacknowledged finding lines, acknowledged count per stack)."""
    report_file = outdir / "validation-report.json"
    if not report_file.exists():
        return ["no validation-report.json: was the app synthesized with the cdk-nag plugin?"], Counter()
    report = json.loads(report_file.read_text())
    open_findings, acknowledged = [], Counter()
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation["violatingConstructs"]:
                open_findings.append(f"{construct['constructPath']}: {violation['ruleName']}")
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation["violatingConstructs"]:
                acknowledged[construct["constructPath"].split("/")[0]] += 1
    return open_findings, acknowledged


def deploy_regions(template_file: Path) -> list[str]:
    """The regions a template can be deployed to: its stack's region when the cloud assembly next to it names
    one (a stack with an explicit ``env``), else every supported region."""
    manifest = template_file.parent / "manifest.json"
    if manifest.is_file():
        for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
            properties = artifact.get("properties", {})
            if artifact.get("type") == "aws:cloudformation:stack" and properties.get("templateFile") == template_file.name:
                region = artifact.get("environment", "").rsplit("/", 1)[-1]
                if region in SUPPORTED_REGIONS:
                    return [region]
    return list(SUPPORTED_REGIONS)


def cfn_lint(template_files: list[Path]) -> list[str]:
    """cfn-lint matches on every template, for each region it can be deployed to, with the project's config file."""
    import yaml
    from cfnlint.api import ManualArgs, lint

    ignored = yaml.safe_load(CFNLINT_CONFIG.read_text()).get("ignore_checks") or []
    problems = []
    for path in template_files:
        settings = ManualArgs(regions=deploy_regions(path), ignore_checks=ignored)
        matches = lint(path.read_text(), config=settings)
        problems += [f"{path.name}: {m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]
    return problems


class CheckovError(RuntimeError):
    """checkov is missing or could not check the templates (the message is one line)."""


class CheckovResult(NamedTuple):
    template: Path  # the template file, resolved
    resource: str  # logical id
    check_id: str
    check_name: str
    status: str  # "failed" or "skipped"
    comment: str  # the skip's reason ("" when failed)


def checkov_binary(checkov: Path | None = None) -> Path:
    checkov = CHECKOV if checkov is None else checkov
    if not checkov.exists():
        raise CheckovError(f"{checkov} not found: run `make install` to create the scan virtualenv")
    return checkov


def run_checkov(template_files: list[Path], checkov: Path | None = None) -> list[CheckovResult]:
    """Failed and skipped checkov checks of every template, in one checkov run (passed ones are left out)."""
    binary = checkov_binary(checkov)
    files = [path.resolve() for path in template_files]
    if not files:
        return []
    # Not --quiet: it drops skipped checks from the JSON. Offline: --skip-download (no Prisma Cloud
    # guidelines) and CKV_SKIP_PACKAGE_UPDATE_CHECK (no PyPI query for a newer checkov).
    command = [str(binary), "--framework", "cloudformation", "-o", "json", "--compact", "--skip-download"]
    for path in files:
        command += ["-f", str(path)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] = "true"
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    try:
        output = json.loads(process.stdout) if process.returncode in (0, 1) else None
    except json.JSONDecodeError:
        output = None
    if output is None:
        last = (process.stderr.strip().splitlines() or [process.stdout.strip()[:200]])[-1]
        raise CheckovError(f"checkov exited with {process.returncode}: {last}")
    reports = output if isinstance(output, list) else [output]
    results, seen = [], set()
    for report in reports:
        checks = report.get("results", {})
        if checks.get("parsing_errors"):
            raise CheckovError(f"checkov could not parse {', '.join(checks['parsing_errors'])}")
        for status in ("passed", "failed", "skipped"):
            for check in checks.get(f"{status}_checks", []):
                template = Path(check["file_abs_path"]).resolve()
                seen.add(template)
                if status != "passed":
                    results.append(
                        CheckovResult(
                            template=template,
                            resource=check["resource"].split(".", 1)[1],
                            check_id=check["check_id"],
                            check_name=check["check_name"],
                            status=status,
                            comment=check["check_result"].get("suppress_comment", "") if status == "skipped" else "",
                        )
                    )
    unchecked = [p.name for p in files if p not in seen and json.loads(p.read_text()).get("Resources")]
    if unchecked:
        raise CheckovError(f"checkov checked nothing in {', '.join(unchecked)}")
    return results


def stack_environment(artifact: dict) -> str:
    """``<account>/<region>`` of a stack artifact, ``any`` for the part the app leaves to the CLI."""
    account, region = artifact.get("environment", "aws://unknown-account/unknown-region").split("/")[2:4]
    return f"{'any' if account == 'unknown-account' else account}/{'any' if region == 'unknown-region' else region}"


def _resource_label(stack: str, template: dict, logical_id: str) -> str:
    """``<construct path> (<logical id>)``; the construct path starts with the stack name."""
    path = template.get("Resources", {}).get(logical_id, {}).get("Metadata", {}).get("aws:cdk:path")
    return f"{path} ({logical_id})" if path else f"{stack}/{logical_id}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)
    try:
        checkov_binary()
    except CheckovError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    templates = load_templates(args.outdir)
    manifest = json.loads((args.outdir / "manifest.json").read_text())
    files = [args.outdir / manifest["artifacts"][s]["properties"]["templateFile"] for s in templates]
    open_findings, acknowledged = nag_findings(args.outdir)
    lint_problems = cfn_lint(files)
    policy_problems = run_all(templates)
    try:
        checkov_results = run_checkov(files)
    except CheckovError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stack_of = {path.resolve(): name for name, path in zip(templates, files)}
    checkov_skipped = Counter(stack_of[r.template] for r in checkov_results if r.status == "skipped")
    checkov_open = [
        f"{_resource_label(stack_of[r.template], templates[stack_of[r.template]], r.resource)}: "
        f"{r.check_id} {r.check_name}"
        for r in sorted(checkov_results, key=lambda r: (stack_of[r.template], r.resource, r.check_id))
        if r.status == "failed"
    ]

    width = max([28, *(len(name) + 1 for name in templates)])
    environments = {name: stack_environment(manifest["artifacts"][name]) for name in templates}
    print(
        f"{'stack':<{width}} {'account/region':<27} {'resources':>9} {'template KB':>12} {'nag acknowledged':>17} "
        f"{'checkov acknowledged':>21}"
    )
    for (name, template), path in zip(templates.items(), files):
        size_kb = path.stat().st_size / 1024
        print(
            f"{name:<{width}} {environments[name]:<27} {len(template.get('Resources', {})):>9} {size_kb:>12.1f} "
            f"{acknowledged[name]:>17} {checkov_skipped[name]:>21}"
        )
    print(
        f"\ncdk-nag open findings: {len(open_findings)}   cfn-lint problems: {len(lint_problems)}   "
        f"security check problems: {len(policy_problems)}   checkov open findings: {len(checkov_open)}"
    )
    for line in open_findings + lint_problems + policy_problems + checkov_open:
        print(f"  - {line}")
    return 1 if open_findings or lint_problems or policy_problems or checkov_open else 0


if __name__ == "__main__":
    sys.exit(main())
