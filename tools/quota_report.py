"""Print the SageMaker instance-quota table of a deployed account: desired, applied, open request, status.

    python -m tools.quota_report [-c config/platform.yaml] [--region REGION]

Reads only (no request is made), with the same logic as the deploy-time custom resource
(`lambdas/instance_quotas/logic.py`), so the status column says what the next deploy would do:
BELOW_DESIRED means it would request an increase. Credentials and region come from the usual AWS
settings; ``--region`` (or the config's ``region``) overrides the region.

Exit status: 0 table printed; 1 a configured quota does not exist in the region; 2 the config is
unusable; 3 AWS could not be read (credentials, permissions, network).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from lambdas.instance_quotas import logic
from stacks.config import ConfigError, QuotaRequest, load_config

DEFAULT_CONFIG = "config/platform.yaml"
UNKNOWN_QUOTA = "UNKNOWN_QUOTA"
HEADERS = ("instance type", "usage", "quota code", "desired", "applied", "open request", "status", "detail")


@dataclass(frozen=True)
class QuotaRow:
    """One line of the report."""

    instance_type: str
    usage: str
    quota_code: str
    desired: str
    applied: str
    open_request: str
    status: str
    detail: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.instance_type,
            self.usage,
            self.quota_code,
            self.desired,
            self.applied,
            self.open_request,
            self.status,
            self.detail,
        )


def quota_rows(client: Any, quotas: Sequence[QuotaRequest]) -> list[QuotaRow]:
    """Read every configured quota (one listing pass resolves all names) and assess it."""
    names = [logic.quota_name(q.instance_type, q.usage.value) for q in quotas]
    found = logic.resolve_quotas(client, names)
    rows = []
    for quota, name in zip(quotas, names):
        info = found.get(name)
        if info is None:
            rows.append(
                QuotaRow(quota.instance_type, quota.usage.value, "-", str(quota.desired), "-", "-", UNKNOWN_QUOTA,
                         f"no SageMaker quota named {name!r} in this region")
            )
            continue
        state = logic.read_state(client, info, quota.desired)
        outcome = logic.assess(state)
        open_request = state.open_request
        rows.append(
            QuotaRow(
                instance_type=quota.instance_type,
                usage=quota.usage.value,
                quota_code=info.code,
                desired=str(quota.desired),
                applied=logic.format_value(state.applied),
                open_request=f"{open_request.request_id} ({open_request.status})" if open_request else logic.NONE,
                status=outcome.status,
                detail=outcome.message,
            )
        )
    return rows


def render(rows: Sequence[QuotaRow]) -> str:
    """A fixed-width text table; the last column is not padded."""
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS) - 1)]
    lines = []
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line, widths)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def service_quotas_client(region: str | None) -> Any:
    """A Service Quotas client for ``region`` (None: the AWS settings' region) with the Lambda's retry config."""
    import boto3

    return boto3.client("service-quotas", region_name=region, config=logic.client_config())


def region_for(args: argparse.Namespace, config: Any) -> str | None:
    """``--region``, else the config's ``region``, else ``AWS_REGION``, else None (the AWS settings decide)."""
    return args.region or config.region or os.environ.get("AWS_REGION") or None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.quota_report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c", "--config", default=DEFAULT_CONFIG, help=f"platform config file (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--region", help="AWS region to read (default: the config's region, then the AWS settings)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, client: Any = None) -> int:
    """Run the report; ``client`` replaces the Service Quotas client (tests)."""
    args = parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if not config.quotas:
        print(f"{args.config}: no quotas configured")
        return 0
    try:
        client = client or service_quotas_client(region_for(args, config))
        rows = quota_rows(client, config.quotas)
    except NoRegionError:
        print("could not read the quotas from AWS: no region; pass --region (make quotas REGION=eu-west-1), "
              "set `region` in the config, or set AWS_REGION", file=sys.stderr)
        return 3
    except (BotoCoreError, ClientError) as error:
        print(f"could not read the quotas from AWS: {error}", file=sys.stderr)
        return 3
    print(render(rows))
    return 1 if any(row.status == UNKNOWN_QUOTA for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
