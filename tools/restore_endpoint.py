"""Bring back an endpoint that the idle endpoint reaper deleted, from nothing but its name.

    python -m tools.restore_endpoint ENDPOINT_NAME [--region REGION] [--keep-until YYYY-MM-DD] [--dry-run]

Reads the reaper's restore record (SSM parameter ``/mlops/reaped-endpoints/<name>``), checks that the
endpoint does not exist and that its endpoint config and models are still there, then calls
CreateEndpoint with the recorded config and tags and removes the record. The new endpoint starts a new
grace period; ``--keep-until`` adds the ``mlops:keep-until`` opt-out tag so the reaper keeps it until
that date.

Autoscaling from the use case's config (``endpoint.autoscaling``) comes back by itself: when the
restored endpoint reaches InService, the endpoint verifier registers its target, policy and scheduled
floors again. Scaling registered by hand the platform does not register: the record holds the
autoscaling targets the reaper deregistered (resource id, min and max capacity); this command prints
them, with the ``aws application-autoscaling register-scalable-target`` command that registers each one
again with its recorded values, and the shape of the ``put-scaling-policy`` command for its policy. The
record is removed by the restore, so keep the printed values (or print them first with ``--dry-run``).

Credentials and region come from the usual AWS settings. Needed permissions: ssm:GetParameter and
ssm:DeleteParameter on the record; sagemaker:DescribeEndpoint, DescribeEndpointConfig, DescribeModel,
CreateEndpoint and AddTags. The printed autoscaling commands need
application-autoscaling:RegisterScalableTarget and application-autoscaling:PutScalingPolicy.

Exit status: 0 restored (or would be, with ``--dry-run``); 1 nothing to restore or it cannot be
restored (no record, endpoint exists, config or model missing); 3 AWS could not be read or written.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import autoscaling as autoscaling_target
from lambdas.common import tags
from lambdas.idle_endpoint_reaper.restore_record import (
    RestoreRecord,
    ScalableTargetRecord,
    parameter_name,
)

# The only targets the reaper deregisters.
AUTOSCALING_NAMESPACE = autoscaling_target.NAMESPACE
VARIANT_DIMENSION = autoscaling_target.DIMENSION


class CannotRestore(Exception):
    """The endpoint cannot be restored; the message says why and what to do."""


@dataclass(frozen=True)
class RestorePlan:
    """What a restore does (or did): the endpoint, its config, its tags and the targets to re-create."""

    record: RestoreRecord
    tags: dict[str, str]

    def describe(self, region: str | None = None) -> str:
        """The plan, and for each recorded autoscaling target the commands that set it up again by hand."""
        lines = [
            f"endpoint {self.record.endpoint_name} (team {self.record.team}, deleted {self.record.deleted_at})",
            f"  endpoint config: {self.record.endpoint_config_name}",
            f"  tags: {', '.join(f'{k}={v}' for k, v in sorted(self.tags.items()))}",
        ]
        targets = self.record.scalable_targets
        for target in targets:
            lines.append(
                f"  autoscaling target deregistered at deletion: {target.resource_id} "
                f"(min {target.min_capacity}, max {target.max_capacity}); not registered again by this command"
            )
        if targets:
            lines += [
                "  if the use case configures endpoint.autoscaling, the endpoint verifier registers it again once the",
                "  endpoint is InService; scaling registered by hand the platform does not register: once the endpoint",
                f"  is InService (aws sagemaker wait endpoint-in-service --endpoint-name {self.record.endpoint_name}),",
                "  register each target again by hand, then give it a scaling policy of your own (the policies were",
                "  deleted with the targets and are not recorded):",
            ]
            for target in targets:
                lines += [f"    {register_command(target, region)}", f"    {put_policy_command(target, region)}"]
        return "\n".join(lines)


def _target_words(resource_id: str, region: str | None) -> list[str]:
    words = ["--region", region] if region else []
    return words + [
        "--service-namespace", AUTOSCALING_NAMESPACE,
        "--resource-id", resource_id,
        "--scalable-dimension", VARIANT_DIMENSION,
    ]


def register_command(target: ScalableTargetRecord, region: str | None = None) -> str:
    """The AWS CLI command that registers a deregistered target again, with its recorded capacities."""
    return shlex.join(
        ["aws", "application-autoscaling", "register-scalable-target", *_target_words(target.resource_id, region),
         "--min-capacity", str(target.min_capacity), "--max-capacity", str(target.max_capacity)]
    )


def put_policy_command(target: ScalableTargetRecord, region: str | None = None) -> str:
    """The shape of the command that gives the target a policy; the policy itself is the operator's choice."""
    return shlex.join(
        ["aws", "application-autoscaling", "put-scaling-policy", *_target_words(target.resource_id, region),
         "--policy-name", "YOUR_POLICY_NAME", "--policy-type", "TargetTrackingScaling",
         "--target-tracking-scaling-policy-configuration", "file://YOUR_POLICY.json"]
    )


def _is_missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in ("ParameterNotFound", "ResourceNotFound") or (
        code == "ValidationException" and "Could not find" in message
    )


def read_record(ssm: Any, endpoint_name: str) -> RestoreRecord:
    """The reaper's record for ``endpoint_name``; raises `CannotRestore` when there is none."""
    try:
        value = ssm.get_parameter(Name=parameter_name(endpoint_name))["Parameter"]["Value"]
    except ClientError as error:
        if _is_missing(error):
            raise CannotRestore(
                f"no restore record for {endpoint_name!r} ({parameter_name(endpoint_name)}): the reaper did not "
                "delete an endpoint of that name, or it was restored already"
            ) from None
        raise
    try:
        return RestoreRecord.from_json(value)
    except ValueError as error:
        raise CannotRestore(f"{parameter_name(endpoint_name)} holds no usable restore record: {error}") from None


def plan_restore(sagemaker: Any, ssm: Any, endpoint_name: str, keep_until: date | None = None) -> RestorePlan:
    """Check everything a restore needs; raises `CannotRestore` with the reason when it cannot work."""
    record = read_record(ssm, endpoint_name)
    try:
        status = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
    except ClientError as error:
        if not _is_missing(error):
            raise
    else:
        raise CannotRestore(f"endpoint {endpoint_name!r} exists already (status {status}); nothing to restore")
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=record.endpoint_config_name)
    except ClientError as error:
        if not _is_missing(error):
            raise
        raise CannotRestore(
            f"endpoint config {record.endpoint_config_name!r} no longer exists; redeploy the model version instead"
        ) from None
    for variant in config.get("ProductionVariants", []) + config.get("ShadowProductionVariants", []):
        model = variant.get("ModelName")
        if not model:
            continue
        try:
            sagemaker.describe_model(ModelName=model)
        except ClientError as error:
            if not _is_missing(error):
                raise
            raise CannotRestore(f"model {model!r} of config {record.endpoint_config_name!r} no longer exists") from None
    restored_tags = {k: v for k, v in record.tags.items() if not k.startswith("aws:")}
    if keep_until is not None:
        restored_tags[tags.KEEP_UNTIL] = keep_until.isoformat()
    return RestorePlan(record=record, tags=restored_tags)


def restore(sagemaker: Any, ssm: Any, plan: RestorePlan) -> None:
    """Create the endpoint from the recorded config with its tags, then remove the record."""
    sagemaker.create_endpoint(
        EndpointName=plan.record.endpoint_name,
        EndpointConfigName=plan.record.endpoint_config_name,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(plan.tags.items())],
    )
    ssm.delete_parameter(Name=parameter_name(plan.record.endpoint_name))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.restore_endpoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint_name", metavar="ENDPOINT_NAME", help="name of the endpoint the reaper deleted")
    parser.add_argument("--region", help="AWS region (default: from the AWS settings)")
    parser.add_argument(
        "--keep-until",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="tag the endpoint so the reaper keeps it until then",
    )
    parser.add_argument("--dry-run", action="store_true", help="check and print the plan, change nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, sagemaker: Any = None, ssm: Any = None) -> int:
    """Run the command; ``sagemaker`` and ``ssm`` replace the clients built from the AWS settings (tests)."""
    args = parse_args(argv)
    try:
        sagemaker = sagemaker or boto3.client("sagemaker", region_name=args.region)
        ssm = ssm or boto3.client("ssm", region_name=args.region)
        plan = plan_restore(sagemaker, ssm, args.endpoint_name, args.keep_until)
        print(plan.describe(sagemaker.meta.region_name))
        if args.dry_run:
            print("dry run: nothing was changed")
            return 0
        restore(sagemaker, ssm, plan)
    except CannotRestore as reason:
        print(f"cannot restore: {reason}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"AWS call failed: {error}", file=sys.stderr)
        return 3
    print(f"CreateEndpoint accepted: {args.endpoint_name} is being created (usually about 10 minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
