"""Policy gates and a summary over a synthesized cloud assembly (``python -m tools.synth_report cdk.out``).

Exits non-zero when cfn-lint reports anything, a security check fails, or cdk-nag left a finding
unacknowledged. Prints one line per stack: resources, template size, acknowledged findings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from stacks.policy_checks import run_all
from stacks.regions import SUPPORTED_REGIONS

CFNLINT_CONFIG = Path(__file__).resolve().parents[1] / ".cfnlintrc.yaml"


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


def cfn_lint(template_files: list[Path]) -> list[str]:
    """cfn-lint matches on every template, for every supported region, with the project's one config file."""
    import yaml
    from cfnlint.api import ManualArgs, lint

    ignored = yaml.safe_load(CFNLINT_CONFIG.read_text()).get("ignore_checks") or []
    settings = ManualArgs(regions=list(SUPPORTED_REGIONS), ignore_checks=ignored)
    problems = []
    for path in template_files:
        matches = lint(path.read_text(), config=settings)
        problems += [f"{path.name}: {m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)

    templates = load_templates(args.outdir)
    manifest = json.loads((args.outdir / "manifest.json").read_text())
    files = [args.outdir / manifest["artifacts"][s]["properties"]["templateFile"] for s in templates]
    open_findings, acknowledged = nag_findings(args.outdir)
    lint_problems = cfn_lint(files)
    policy_problems = run_all(templates)

    print(f"{'stack':<28} {'resources':>9} {'template KB':>12} {'nag acknowledged':>17}")
    for (name, template), path in zip(templates.items(), files):
        size_kb = path.stat().st_size / 1024
        print(f"{name:<28} {len(template.get('Resources', {})):>9} {size_kb:>12.1f} {acknowledged[name]:>17}")
    print(
        f"\ncdk-nag open findings: {len(open_findings)}   cfn-lint problems: {len(lint_problems)}   "
        f"security check problems: {len(policy_problems)}"
    )
    for line in open_findings + lint_problems + policy_problems:
        print(f"  - {line}")
    return 1 if open_findings or lint_problems or policy_problems else 0


if __name__ == "__main__":
    sys.exit(main())
