"""Record the settings fixed by a successful deploy (``python -m tools.record_deployment CONFIG``).

`make deploy` runs this after `cdk deploy` succeeds; commit the lock file with the config.

The lock is written only once CloudFormation confirms the config is live: the platform stack and every
team stack exist in the account and region of the credentials (or the config's region) in a state where
their last create or update succeeded, and each Studio domain, user profile and registry group this config
synthesizes is in the deployed template with the same create-only properties (the values the lock
records feed those properties). Read-only calls: DescribeStacks and GetTemplate per stack.

Exit status: 0 recorded; 1 not recorded, the deployed stacks do not hold this config (each mismatch is
named); 2 not recorded, the deploy could not be checked (no credentials, region or permission) or the
config is unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from stacks.app_builder import platform_stack_name, team_stack_name
from stacks.config import ConfigError, PlatformConfig, load_config
from stacks.replacement_guard import GUARDED_TYPES, lock_path_for, replacements, write_lock

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = "config/platform.yaml"
# States whose last operation put the stack's current template in place. UPDATE_ROLLBACK_COMPLETE and
# IMPORT_ROLLBACK_COMPLETE leave the previous template live; ROLLBACK_COMPLETE leaves an empty stack.
DEPLOYED_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
STATE_MEANING = {
    "UPDATE_ROLLBACK_COMPLETE": "the last update failed and was rolled back: the previous template is live",
    "IMPORT_ROLLBACK_COMPLETE": "the last import failed and was rolled back: the previous template is live",
    "ROLLBACK_COMPLETE": "its creation failed and its resources were deleted",
}


class CannotVerify(Exception):
    """CloudFormation could not be read (credentials, permission, network): nothing is known."""


class NotDeployed(Exception):
    """The deployed stacks do not hold the config; ``problems`` names each stack and setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def checked_stacks(config: PlatformConfig) -> list[str]:
    """The stacks holding what the lock records: ``<prefix>-platform`` and every ``<prefix>-team-<name>``."""
    return [platform_stack_name(config), *(team_stack_name(config, team.name) for team in config.teams)]


def _not_found(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(error)


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """The DescribeStacks entry of stack ``name``, None if no such stack; CannotVerify on any other error."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise CannotVerify(f"DescribeStacks {name}: {exc}") from exc
    except BotoCoreError as exc:
        raise CannotVerify(f"DescribeStacks {name}: {exc}") from exc


def state_problems(cfn: Any, names: list[str], account: str | None = None) -> list[str]:
    """One line per stack that is missing, not in a DEPLOYED_STATES state, or in another account than ``account``."""
    where = f"region {cfn.meta.region_name}"
    problems = []
    for name in names:
        stack = describe_stack(cfn, name)
        if stack is None:
            problems.append(f"{name}: not deployed (no such stack in {where})")
            continue
        status = stack["StackStatus"]
        if status not in DEPLOYED_STATES:
            meaning = STATE_MEANING.get(status, "its last create or update did not complete")
            problems.append(f"{name}: status {status}: {meaning}")
        stack_account = stack["StackId"].split(":")[4]
        if account is not None and stack_account != account:
            problems.append(f"{name}: deployed in account {stack_account}, the config's account is {account}")
    return problems


def deployed_template(cfn: Any, name: str) -> dict[str, Any]:
    """The current template of stack ``name`` (GetTemplate, Original stage); CannotVerify if unreadable."""
    try:
        body = cfn.get_template(StackName=name)["TemplateBody"]
    except (ClientError, BotoCoreError) as exc:
        raise CannotVerify(f"GetTemplate {name}: {exc}") from exc
    # botocore decodes a JSON body into a dict; any other body is a string.
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise CannotVerify(f"GetTemplate {name}: the template is not JSON, as CDK deploys it") from exc
    return body


def setting_problems(deployed: dict[str, dict], synthesized: dict[str, dict]) -> list[str]:
    """One line per guarded resource of ``synthesized`` that ``deployed`` lacks or would replace on deploy."""
    problems = []
    for stack, template in synthesized.items():
        deployed_resources = deployed.get(stack, {}).get("Resources", {})
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] not in GUARDED_TYPES:
                continue
            live = deployed_resources.get(logical_id)
            if live is None or live.get("Type") != resource["Type"]:
                problems.append(f"{stack}/{logical_id} ({resource['Type']}): not in the deployed template")
    problems += [
        f"{change} between the deployed template and this config"
        for change in replacements(deployed, {name: synthesized[name] for name in deployed if name in synthesized})
    ]
    return problems


def synthesized_templates(config: PlatformConfig) -> dict[str, dict]:
    """The templates ``cdk synth`` makes of ``config`` (cdk.json's context), by stack name."""
    import aws_cdk as cdk

    from stacks.app_builder import build_platform

    context = {k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items() if k != "config"}
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir, context=context)
        platform = build_platform(config, app, policy_gates=False)
        assembly = app.synth()
        return {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in platform.stacks}


def record_deployment(
    cfn: Any,
    config: PlatformConfig,
    config_path: str | Path,
    synthesize: Callable[[PlatformConfig], dict[str, dict]] = synthesized_templates,
) -> Path:
    """Write the lock of ``config_path`` once ``cfn`` confirms the config is deployed; return its path.

    Raises NotDeployed (listing every mismatch) or CannotVerify, and then writes nothing: a lock records
    the whole config's fixed settings or none of them.
    """
    names = checked_stacks(config)
    problems = state_problems(cfn, names, config.account)
    if not problems:
        synthesized = synthesize(config)
        deployed = {name: deployed_template(cfn, name) for name in names}
        problems = setting_problems(deployed, {name: synthesized[name] for name in names})
    if problems:
        raise NotDeployed(problems)
    return write_lock(config, config_path)


def cloudformation_client(config: PlatformConfig) -> Any:
    """A CloudFormation client for the config's region, else the region of the usual AWS settings."""
    import boto3

    return boto3.client("cloudformation", region_name=config.region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    lock = lock_path_for(args.config)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = record_deployment(cloudformation_client(config), config, args.config)
    except (CannotVerify, BotoCoreError) as exc:
        print(
            f"error: cannot confirm that {args.config} is deployed, so {lock.name} was not written: {exc}\n"
            f"  Run `python -m tools.record_deployment {args.config}` with credentials for the target account "
            f"and region (CloudFormation DescribeStacks and GetTemplate), or deploy with "
            f"`make deploy CONFIG={args.config}`, which records the deploy itself.",
            file=sys.stderr,
        )
        return 2
    except NotDeployed as exc:
        print(
            f"error: the deployed stacks do not hold {args.config}, so {lock.name} was not written:\n"
            + "\n".join(f"  - {problem}" for problem in exc.problems)
            + f"\n  Deploy this config (`make deploy CONFIG={args.config}`), then record it again.",
            file=sys.stderr,
        )
        return 1
    print(f"recorded fixed settings in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
