"""The data scientist's command for the team's experiment pipeline (boto3; credentials from the environment).

Commands:
- ``upload-data --bucket B --use-case NAME [--example NAME] [--rows N]``: generate an example use case's
  data and upload it where that use case's pipeline reads by default (``pipeline/data/<use case>/``);
- ``start --pipeline NAME [--param Name=Value ...] [--follow]``: start an execution; parameter names and
  values are checked against the deployed pipeline's own definition first;
- ``follow --execution ARN``: show the execution's progress until it ends (steps done of its path, running
  steps' elapsed time and job metric; a live table on a terminal, one line per change otherwise);
- ``versions --group NAME``: the group's model versions, newest first, with approval status, test quality,
  who registered each and who approved or rejected it;
- ``approve`` / ``reject --group NAME --version N --comment TEXT``: set a version's approval status; the
  comment (required, not blank) is recorded as its approval description, which the deploy automation requires
  of a reviewer's approval. Where the platform requires reviewers only the team's reviewers may approve; a
  refusal is one line naming the caller (exit 3), see docs/security.md, "Reviewer approval".

``python -m pipeline_code.cli --help`` lists them; every command takes ``--region``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pipeline_code import examples, progress, split
from pipeline_code.definition import DATA_ROOT, PARAMETERS, TRAINING_PATHS

TERMINAL_EXECUTION_STATES = ("Succeeded", "Failed", "Stopped")
DECIDED_STATES = ("Approved", "Rejected")


class CliError(ValueError):
    """A request the command refuses before calling AWS."""


class DecisionDenied(Exception):
    """UpdateModelPackage answered AccessDenied: the caller may not approve (or reject) the version."""

    def __init__(self, group: str, version: int, approved: bool):
        super().__init__(group, version, approved)
        self.group, self.version, self.approved = group, version, approved

    def message(self, caller: str) -> str:
        verb = "approve" if self.approved else "reject"
        who_may = "the team's reviewers" if self.approved else "the team's members and reviewers"
        return (f"{caller} may not {verb} version {self.version} of {self.group}: only {who_may} may {verb} "
                f'(see docs/security.md, "Reviewer approval")')


def _automl_objectives() -> tuple:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for("AutoMLMetricEnum").enum)


def declared_parameters(client, pipeline: str) -> dict:
    """Name -> (type, default) of the parameters the deployed pipeline's definition declares."""
    response = client.describe_pipeline(PipelineName=pipeline)
    definition = json.loads(response["PipelineDefinition"])
    return {p["Name"]: (p.get("Type", "String"), p.get("DefaultValue")) for p in definition.get("Parameters", [])}


FRAUD_PARAMETERS = {name: (kind, default) for name, kind, default, _ in PARAMETERS}


def parse_parameters(pairs: list, declared: dict | None = None) -> dict:
    """``["Name=Value", ...]`` -> dict, checked against the declared parameters and their allowed values."""
    declared = FRAUD_PARAMETERS if declared is None else declared
    values = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator:
            raise CliError(f"parameter {pair!r} is not Name=Value")
        if name not in declared:
            raise CliError(f"unknown parameter {name!r}; the pipeline declares {', '.join(declared)}")
        kind = declared[name][0]
        try:
            if kind == "Integer":
                int(value)
            elif kind == "Float":
                float(value)
        except ValueError:
            raise CliError(f"parameter {name} must be {kind.lower()}, got {value!r}")
        values[name] = value
    if "TrainingPath" in values and values["TrainingPath"] not in TRAINING_PATHS:
        raise CliError(f"TrainingPath must be one of {', '.join(TRAINING_PATHS)}")
    if "SplitMode" in values and values["SplitMode"] not in split.MODES:
        raise CliError(f"SplitMode must be one of {', '.join(split.MODES)}")
    if "AutoMLObjective" in values and values["AutoMLObjective"] not in _automl_objectives():
        raise CliError(f"AutoMLObjective must be one of {', '.join(_automl_objectives())}")
    fraction_names = ("TrainFraction", "ValidationFraction", "TestFraction")
    if any(n in values for n in fraction_names):
        defaults = {name: declared.get(name, (None, None))[1] for name in fraction_names}
        fractions = tuple(float(values.get(n, defaults[n])) for n in fraction_names)
        try:
            split.check_fractions(fractions)
        except split.SplitError as error:
            raise CliError(str(error))
    return values


def start(client, pipeline: str, parameters: dict, display_name: str | None = None) -> str:
    """Start an execution; returns its ARN."""
    request = {
        "PipelineName": pipeline,
        "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
    }
    if display_name:
        request["PipelineExecutionDisplayName"] = display_name
    return client.start_pipeline_execution(**request)["PipelineExecutionArn"]


def follow(client, execution_arn: str, out=sys.stdout, poll_seconds: float = 30.0, sleep=time.sleep,
           cloudwatch=None, console=None, now=progress.utc_now) -> str:
    """Show the execution's progress until it ends; returns its final status.

    A live ``rich`` table when ``console`` is given or ``out`` is a terminal, else plain lines (one per
    change, see ``progress.PlainProgress``); either way the last line is ``[<status>] <done>/<total> steps
    finished``. ``cloudwatch`` (optional) adds the latest and best of a training job's metric series."""
    definition = progress.definition_steps(client, execution_arn)
    if console is None and out.isatty():
        from rich.console import Console

        console = Console(file=out)
    display = progress.RichProgress(console, now) if console is not None else progress.PlainProgress(out, now)
    view = None
    try:
        while True:
            view = progress.read_progress(client, execution_arn, definition, cloudwatch, now)
            display.show(view)
            if view.status in TERMINAL_EXECUTION_STATES:
                return view.status
            sleep(poll_seconds)
    finally:
        display.close(view if view is not None and view.status in TERMINAL_EXECUTION_STATES else None)


def who(user_context: dict | None) -> str:
    """A SageMaker ``UserContext`` (``CreatedBy``, ``LastModifiedBy``) as a short name for display.

    The Studio user profile name when present; else the IAM identity's ``SourceIdentity`` when present; else
    the IAM identity ARN, an assumed-role session ARN shortened to ``RoleName/session``
    (``arn:aws:sts::111122223333:assumed-role/RoleName/session``) and any other ARN shown whole; else
    ``"unknown"`` (``None``, an empty context, empty strings)."""
    context = user_context or {}
    identity = context.get("IamIdentity") or {}
    if context.get("UserProfileName"):
        return context["UserProfileName"]
    if identity.get("SourceIdentity"):
        return identity["SourceIdentity"]
    arn = identity.get("Arn") or ""
    if not arn:
        return "unknown"
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return parts[5][len("assumed-role/"):]
    return arn


def versions(client, group: str) -> list:
    """Model versions of ``group``, newest first, as dicts for display.

    ``registered_by`` is who created the version; ``decided_by`` who last changed it when it is Approved or
    Rejected (the approver or rejecter), else ``"-"`` (see ``who``)."""
    result = []
    paginator = client.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"):
        for summary in page["ModelPackageSummaryList"]:
            detail = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = detail.get("CustomerMetadataProperties", {})
            metrics = detail.get("ModelMetrics", {})
            approval = summary.get("ModelApprovalStatus", "")
            result.append(
                {
                    "version": summary.get("ModelPackageVersion"),
                    "approval": approval,
                    "created": summary.get("CreationTime"),
                    "quality": (f"{metadata['QualityMetric']} {metadata.get('QualityValue', '')}"
                                if "QualityMetric" in metadata else f"auc {metadata.get('TestAUC', '')}"),
                    "path": metadata.get("TrainingPath", ""),
                    "bias_report": bool(metrics.get("Bias")),
                    "explainability_report": bool(metrics.get("Explainability")),
                    "arn": summary["ModelPackageArn"],
                    "comment": detail.get("ApprovalDescription", ""),
                    "registered_by": who(detail.get("CreatedBy")),
                    "decided_by": who(detail.get("LastModifiedBy")) if approval in DECIDED_STATES else "-",
                }
            )
    return result


def format_versions(rows: list) -> str:
    """One line per version; the who-columns are as wide as their longest name, the comment comes last."""
    registered = max([len("registered by")] + [len(row["registered_by"]) for row in rows])
    decided = max([len("decided by")] + [len(row["decided_by"]) for row in rows])
    lines = [f"{'version':>7}  {'approval':<22} {'test quality':<18} {'path':<8} reports  "
             f"{'registered by':<{registered}}  {'decided by':<{decided}}  comment"]
    for row in rows:
        reports = ("B" if row["bias_report"] else "-") + ("E" if row["explainability_report"] else "-")
        lines.append(
            f"{row['version']!s:>7}  {row['approval']:<22} {row['quality']!s:<18} {row['path']:<8} "
            f"{reports:<8} {row['registered_by']:<{registered}}  {row['decided_by']:<{decided}}  {row['comment']}"
            .rstrip()
        )
    return "\n".join(lines)


def set_approval(client, group: str, version: int, approved: bool, comment: str) -> str:
    """Approve or reject version ``version`` of ``group`` with ``comment`` (its ApprovalDescription); returns
    the package ARN. A blank comment is refused before any AWS call; an AccessDenied from UpdateModelPackage
    raises ``DecisionDenied``."""
    from botocore.exceptions import ClientError

    if not comment.strip():
        raise CliError("a comment is required when approving or rejecting")
    arn = None
    for row in versions(client, group):
        if row["version"] == version:
            arn = row["arn"]
    if arn is None:
        raise CliError(f"group {group!r} has no version {version}")
    try:
        client.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus="Approved" if approved else "Rejected",
            ApprovalDescription=comment,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "AccessDeniedException":
            raise DecisionDenied(group, version, approved) from error
        raise
    return arn


def caller_arn(sts_client) -> str:
    """The caller's ARN from ``sts:GetCallerIdentity``, or ``"you"`` when that call fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return sts_client.get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError, KeyError):
        return "you"


def upload_data(s3_client, bucket: str, example: str, rows: int, seed: int, prefix: str) -> list:
    """Generate example ``example``'s input files and upload them under ``prefix``; returns the S3 URIs."""
    try:
        files = examples.tables(example, rows, seed)
    except KeyError as error:
        raise CliError(str(error.args[0]))
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    uris = []
    for name, text in sorted(files.items()):
        key = f"{prefix}{name}"
        s3_client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        uris.append(f"s3://{bucket}/{key}")
    return uris


def region_option(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--region`` before or after the subcommand; the later one wins."""
    parser.add_argument("--region", default=None if top else argparse.SUPPRESS,
                        help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION / the AWS config)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it has one (not for required options or a ``None`` default)."""

    def _get_help_string(self, action):
        if action.required or action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.cli", description=__doc__.split("\n")[0])
    region_option(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text,
                                  formatter_class=HelpFormatter)
        region_option(sub, top=False)
        return sub

    upload = command("upload-data", "generate an example's data and upload it to the team bucket")
    upload.add_argument("--bucket", required=True, help="the team's data bucket")
    upload.add_argument("--use-case", required=True, help="use case whose pipeline reads the data")
    upload.add_argument("--example", default=None,
                        help=f"example data to generate (default: the use case's name; one of {', '.join(examples.EXAMPLES)})")
    upload.add_argument("--prefix", default=None, help=f"key prefix (default: {DATA_ROOT}/<use case>/)")
    upload.add_argument("--rows", type=int, default=200_000, help="model rows")
    upload.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")

    start_parser = command("start", "start a pipeline execution")
    start_parser.add_argument("--pipeline", required=True, help="pipeline name (<prefix>-<team>-<use case>)")
    start_parser.add_argument("--param", action="append", default=[], metavar="Name=Value",
                              help="parameter value, repeatable; `parameters --pipeline P` lists them")
    start_parser.add_argument("--display-name", default=None, help="execution display name")
    start_parser.add_argument("--follow", action="store_true", help="follow the execution until it ends")

    parameters_parser = command("parameters", "list the deployed pipeline's parameters with types and defaults")
    parameters_parser.add_argument("--pipeline", required=True, help="pipeline name")

    follow_parser = command("follow", "follow an execution's steps until it ends")
    follow_parser.add_argument("--execution", required=True, help="pipeline execution ARN")
    follow_parser.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between polls")

    versions_parser = command("versions", "list the group's model versions, newest first: approval status, test "
                                           "quality, reports, who registered each and who approved or "
                                           "rejected it, and the approval comment")
    versions_parser.add_argument("--group", required=True, help="model package group name")

    for name, text in (("approve", "approve a model version (its endpoint deploys)"),
                       ("reject", "reject a model version (a serving endpoint rolls back)")):
        decision = command(name, text)
        decision.add_argument("--group", required=True, help="model package group name")
        decision.add_argument("--version", type=int, required=True, help="version number (see `versions`)")
        decision.add_argument("--comment", required=True,
                              help="why (not blank), recorded as the version's approval description; "
                                   "the deploy automation requires it of reviewers")
    return parser


def format_parameters(declared: dict) -> str:
    rows = [f"{'parameter':<28} {'type':<8} default"]
    rows += [f"{name:<28} {kind:<8} {default}" for name, (kind, default) in declared.items()]
    return "\n".join(rows)


def region_of(args: argparse.Namespace) -> str | None:
    """``--region``, else ``AWS_REGION``; None lets boto3 read AWS_DEFAULT_REGION and the AWS config."""
    return args.region or os.environ.get("AWS_REGION") or None


def follow_until_interrupted(client, arn: str, poll_seconds: float = 30.0, cloudwatch=None) -> int:
    """0 if the execution succeeded, 1 if it failed or stopped, 130 on Ctrl-C (the execution goes on)."""
    try:
        return 0 if follow(client, arn, poll_seconds=poll_seconds, cloudwatch=cloudwatch) == "Succeeded" else 1
    except KeyboardInterrupt:
        print(f"\nstopped following; the execution goes on in AWS: {arn}\n"
              f"follow it again: python -m pipeline_code.cli follow --execution {arn}", file=sys.stderr)
        return 130


def run_command(args: argparse.Namespace, session) -> int:
    if args.command == "upload-data":
        prefix = args.prefix or f"{DATA_ROOT}/{args.use_case}/"
        example = args.example or args.use_case
        for uri in upload_data(session.client("s3"), args.bucket, example, args.rows, args.seed, prefix):
            print(uri)
        return 0
    client = session.client("sagemaker")
    if args.command == "parameters":
        print(format_parameters(declared_parameters(client, args.pipeline)))
        return 0
    if args.command == "start":
        declared = declared_parameters(client, args.pipeline)
        arn = start(client, args.pipeline, parse_parameters(args.param, declared), args.display_name)
        print(arn)
        return follow_until_interrupted(client, arn, cloudwatch=session.client("cloudwatch")) if args.follow else 0
    if args.command == "follow":
        return follow_until_interrupted(client, args.execution, args.poll_seconds, session.client("cloudwatch"))
    if args.command == "versions":
        print(format_versions(versions(client, args.group)))
        return 0
    try:
        arn = set_approval(client, args.group, args.version, args.command == "approve", args.comment)
    except DecisionDenied as denied:
        print(f"error: {denied.message(caller_arn(session.client('sts')))}", file=sys.stderr)
        return 3
    print(f"{'approved' if args.command == 'approve' else 'rejected'} {arn}")
    return 0


def main(argv: list | None = None, session=None) -> int:
    """Exit status: 0 done, 1 the followed execution did not succeed, 2 bad input, 3 AWS refused or failed,
    130 interrupted while following (the execution continues)."""
    from botocore.exceptions import BotoCoreError, ClientError

    args = build_parser().parse_args(argv)
    try:
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=region_of(args))
        return run_command(args, session)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
