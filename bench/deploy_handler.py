"""Benchmark of the deploy-on-approval Lambda: API calls per event, handler time, import time.

    .venv/bin/python bench/deploy_handler.py [--repeat N]

Calls are counted with botocore event hooks on the handler's own clients. Times are taken against moto
(offline), so only their ratio to a baseline measured in the same run means anything: the baseline is
one moto ``ListModelPackages`` call. moto has no UpdateEndpoint, so the update row runs against a
botocore Stubber (calls are exact, its time is not comparable and is not shown). Import time is
measured in a fresh interpreter with ``-X importtime``. Prints a Markdown table; exits 1 if a target
is missed (duplicate or filtered event: 0 writes; first deploy: at most 4 writes; import under 0.3 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(name, value)

import boto3  # noqa: E402
from botocore.stub import Stubber  # noqa: E402
from common import naming  # noqa: E402
from deploy_on_approval import endpoint_spec, handler  # noqa: E402
from deploy_on_approval.settings import DeploySettings  # noqa: E402
from moto import mock_aws  # noqa: E402

from stacks.config import Team  # noqa: E402
from stacks.constructs.deploy_on_approval import use_cases_environment  # noqa: E402

REGION, ACCOUNT, PREFIX = "us-east-1", "123456789012", "mlp"
TEAM = Team.model_validate(
    {
        "name": "fraud",
        "cost_center": "CC-1001",
        "use_cases": [{"name": "fraud-detection", "endpoint": {"initial_instance_count": 2}}],
    }
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
WRITES = {"CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint", "AddTags", "Publish"}
IMPORT_TARGET_SECONDS = 0.3
FIRST_DEPLOY_MAX_WRITES = 4


def settings(topic_arn: str) -> DeploySettings:
    return DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": "fraud",
            "COST_CENTER": "CC-1001",
            "MODEL_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/model-execution",
            "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "DATA_CAPTURE_S3_URI": "s3://mlp-fraud-data/data-capture",
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )


def body(version: int, status: str, group: str = GROUP) -> str:
    return json.dumps(
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Model Package State Change",
            "group": group,
            "version": version,
            "status": status,
            "arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}",
        }
    )


class Counter:
    """API calls made by a set of clients, from botocore's provide-client-params hook."""

    def __init__(self, *clients) -> None:
        self.names: list[str] = []
        for client in clients:
            client.meta.events.register("provide-client-params.*.*", self._count)

    def _count(self, model, **_) -> None:
        self.names.append(model.name)

    def take(self) -> tuple[int, int, list[str]]:
        names, self.names = self.names, []
        return len(names), sum(n in WRITES for n in names), names


def timed_ratio(function, baseline, repeat: int, reset=None) -> tuple[float, float]:
    """(median time of `function` / median time of `baseline`, median baseline seconds).

    The two are timed alternately in one loop, so a machine that gets busier or quieter during the run
    shifts both alike. `reset` (not timed) restores the starting state after each run of `function`.
    """
    ours, base = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        baseline()
        base.append(time.perf_counter() - start)
        start = time.perf_counter()
        function()
        ours.append(time.perf_counter() - start)
        if reset is not None:
            reset()
    return statistics.median(ours) / statistics.median(base), statistics.median(base)


def moto_rows(repeat: int) -> tuple[list[dict], float]:
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        config = settings(sns.create_topic(Name="alerts")["TopicArn"])
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")
        counter = Counter(sagemaker, sns)

        def deliver(message: str) -> dict:
            return handler.process_batch([{"messageId": "m", "body": message}], sagemaker, sns, config)

        def baseline() -> None:
            sagemaker.list_model_packages(ModelPackageGroupName=GROUP, SortOrder="Descending")


        rows = []
        deliver(body(1, "Approved"))
        rows.append(("first deploy (Approved, no endpoint)", counter.take()))
        rows.append(("duplicate (same Approved event again)", None))
        deliver(body(1, "Approved"))
        rows[-1] = (rows[-1][0], counter.take())
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
        counter.take()
        first_time, base_seconds = timed_ratio(
            lambda: deliver(body(1, "Approved")),
            baseline,
            repeat,
            reset=lambda: sagemaker.delete_endpoint(EndpointName=ENDPOINT),
        )
        deliver(body(1, "Approved"))
        counter.take()
        duplicate_time, _ = timed_ratio(lambda: deliver(body(1, "Approved")), baseline, repeat)
        counter.take()

        deliver(body(1, "PendingManualApproval"))
        filtered_pending = counter.take()
        deliver(body(1, "Approved", group="mlp-pricing-price-elasticity"))
        filtered_foreign = counter.take()
        filtered_time, _ = timed_ratio(lambda: deliver(body(1, "PendingManualApproval")), baseline, repeat)
        counter.take()

        sagemaker.update_model_package(
            ModelPackageArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1", ModelApprovalStatus="Rejected"
        )
        counter.take()
        deliver(body(1, "Rejected"))
        rejected = counter.take()
        rejected_time, _ = timed_ratio(lambda: deliver(body(1, "Rejected")), baseline, repeat)
        counter.take()

    table = [
        {"event": rows[0][0], "calls": rows[0][1], "ratio": first_time, "backend": "moto"},
        {"event": rows[1][0], "calls": rows[1][1], "ratio": duplicate_time, "backend": "moto"},
        {"event": "filtered: PendingManualApproval reaching the handler", "calls": filtered_pending,
         "ratio": filtered_time, "backend": "moto"},
        {"event": "filtered: another team's group", "calls": filtered_foreign, "ratio": None, "backend": "moto"},
        {"event": "Rejected, no Approved version left (alert)", "calls": rejected, "ratio": rejected_time,
         "backend": "moto"},
    ]
    return table, base_seconds


def update_row() -> dict:
    """Second approval on an InService endpoint: blue/green UpdateEndpoint (Stubber; moto lacks it)."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    config = settings(f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts")
    target = config.for_group(GROUP)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2"
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    counter = Counter(sagemaker, sns)
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": [{
                "ModelPackageGroupName": GROUP, "ModelPackageVersion": 2, "ModelPackageArn": arn,
                "CreationTime": datetime(2026, 1, 2, tzinfo=timezone.utc), "ModelPackageStatus": "Completed",
            }]},
        )
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT, "EndpointArn": endpoint_arn, "EndpointStatus": "InService",
                "EndpointConfigName": endpoint_spec.endpoint_config_name(config, target, 1),
                "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
                "LastModifiedTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
            },
        )
        stub.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/c"})
        stub.add_response("add_tags", {})
        stub.add_response("update_endpoint", {"EndpointArn": endpoint_arn})
        handler.process_batch([{"messageId": "m", "body": body(2, "Approved")}], sagemaker, sns, config)
        stub.assert_no_pending_responses()
    return {"event": "update (second Approved, endpoint InService)", "calls": counter.take(), "ratio": None,
            "backend": "Stubber"}


def import_seconds(module: str) -> float:
    """Cumulative import time of `module` in a fresh interpreter (median of 5), from -X importtime."""
    samples = []
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=ROOT / "lambdas", capture_output=True, text=True, check=True,
        )
        line = next(l for l in result.stderr.splitlines() if l.rstrip().endswith(f"| {module}"))
        samples.append(int(re.split(r"\|", line)[1].strip()) / 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="timed repetitions per event (median is shown)")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the handler's "ignored" lines are expected here

    rows, baseline = moto_rows(args.repeat)
    rows.insert(1, update_row())
    handler_import = import_seconds("deploy_on_approval.handler")
    verifier_import = import_seconds("endpoint_verifier.handler")
    boto3_import = import_seconds("boto3")

    failures = []
    print(f"Baseline: one moto ListModelPackages call, median of {args.repeat} (timed alternately with each event): "
          f"{baseline * 1000:.2f} ms\n")
    print("| event | API calls | write calls | calls made | handler time (x baseline) | backend |")
    print("| --- | ---: | ---: | --- | ---: | --- |")
    for row in rows:
        total, writes, names = row["calls"]
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "n/a"
        print(f"| {row['event']} | {total} | {writes} | {', '.join(names) or '-'} | {ratio} | {row['backend']} |")
        if (row["event"].startswith(("duplicate", "filtered"))) and writes:
            failures.append(f"{row['event']}: {writes} write calls (target 0)")
        if row["event"].startswith("first deploy") and writes > FIRST_DEPLOY_MAX_WRITES:
            failures.append(f"first deploy: {writes} write calls (target <= {FIRST_DEPLOY_MAX_WRITES})")
    print()
    print("| module | import time (s) | target |")
    print("| --- | ---: | --- |")
    print(f"| deploy_on_approval.handler | {handler_import:.3f} | < {IMPORT_TARGET_SECONDS} |")
    print(f"| endpoint_verifier.handler | {verifier_import:.3f} | < {IMPORT_TARGET_SECONDS} |")
    print(f"| boto3 (imported on first invocation, when clients are built) | {boto3_import:.3f} | - |")
    for module, seconds in (("deploy_on_approval.handler", handler_import), ("endpoint_verifier.handler", verifier_import)):
        if seconds >= IMPORT_TARGET_SECONDS:
            failures.append(f"{module}: import {seconds:.3f} s (target < {IMPORT_TARGET_SECONDS} s)")
    for failure in failures:
        print(f"TARGET MISSED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
