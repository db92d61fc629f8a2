"""The endpoint verifier on paths only AWS produces (second pages, an endpoint mid-update with a pending
config, one deleted between two calls, errors that are not "not found"), on the alerts and reports it
hands to people, and on malformed events. moto where it has the API, botocore Stubber where it does not."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from common import clients, naming, tags
from deploy_on_approval import endpoint_spec
from endpoint_verifier import handler, verify
from endpoint_verifier.settings import EndpointTarget, VerifierSettings
from moto import mock_aws

from stacks.config import Team
from stacks.constructs.deploy_on_approval import use_cases_environment
from tests.sagemaker_events import endpoint_state_change

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "mlp"
TEAM = Team.model_validate(
    {"name": "fraud", "cost_center": "CC-1001", "use_cases": [{"name": "fraud-detection"}, {"name": "churn"}]}
)
GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts"
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def settings(topic_arn: str = TOPIC, keep: int = 0) -> VerifierSettings:
    base = VerifierSettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": "fraud",
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )
    endpoints = dict(base.endpoints)
    endpoints[ENDPOINT] = EndpointTarget(ENDPOINT, GROUP, keep)
    return VerifierSettings(base.prefix, base.team, base.alert_topic_arn, endpoints)


def state_change(endpoint, status: str, **extra) -> dict:
    return endpoint_state_change(endpoint, status, region=REGION, account=ACCOUNT, **extra)


def package(version: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def owned_tags(version: int, group: str = GROUP) -> list[dict[str, str]]:
    return [
        {"Key": tags.MANAGED_BY, "Value": tags.MANAGED_BY_VALUE},
        {"Key": tags.PLATFORM, "Value": PREFIX},
        {"Key": tags.TEAM, "Value": "fraud"},
        {"Key": tags.MODEL_PACKAGE_ARN, "Value": package(version, group)},
    ]


def config_name(version: int) -> str:
    return f"{ENDPOINT}-v{version}-0123abcd"


def config_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name}"


def model_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name}"


def described_endpoint(name: str, config: str, status: str = "InService", pending: str | None = None) -> dict:
    response = {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": T0,
        "LastModifiedTime": T0,
    }
    if pending:
        response["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    return response


def not_found(operation: str) -> tuple[str, str]:
    return "ValidationException", f'Could not find {operation} "x".'


@pytest.fixture
def sagemaker() -> Iterator[tuple]:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


# --- listings of more than one page ----------------------------------------------------------------


def test_tags_on_a_second_page_are_read(sagemaker):
    client, stub = sagemaker
    stub.add_response(
        "list_tags", {"Tags": [{"Key": "a", "Value": "1"}], "NextToken": "t1"}, {"ResourceArn": ENDPOINT_ARN}
    )
    stub.add_response(
        "list_tags", {"Tags": [{"Key": "b", "Value": "2"}]}, {"ResourceArn": ENDPOINT_ARN, "NextToken": "t1"}
    )

    assert verify.tag_map(client, ENDPOINT_ARN) == {"a": "1", "b": "2"}


def test_a_listing_without_its_items_key_counts_as_empty(sagemaker):
    client, stub = sagemaker
    stub.add_response("list_tags", {}, {"ResourceArn": ENDPOINT_ARN})

    assert verify.tag_map(client, ENDPOINT_ARN) == {}


def test_configs_referenced_by_any_team_endpoint_include_pending_ones_across_pages(sagemaker):
    """Every endpoint of the team counts, on every page: its current config, and the pending one of an
    endpoint in the middle of an update. A look-alike outside the team prefix, and an endpoint deleted
    between the listing and its description, count for nothing."""
    client, stub = sagemaker
    team_prefix = "mlp-fraud-"
    summary = {"EndpointArn": ENDPOINT_ARN, "CreationTime": T0, "LastModifiedTime": T0, "EndpointStatus": "InService"}
    stub.add_response(
        "list_endpoints",
        {
            "Endpoints": [
                {**summary, "EndpointName": "xmlp-fraud-lookalike"},
                {**summary, "EndpointName": "mlp-fraud-gone"},
                {**summary, "EndpointName": "mlp-fraud-churn"},
            ],
            "NextToken": "p2",
        },
        {"NameContains": team_prefix},
    )
    stub.add_client_error(
        "describe_endpoint", *not_found("endpoint"), expected_params={"EndpointName": "mlp-fraud-gone"}
    )
    stub.add_response(
        "describe_endpoint",
        described_endpoint("mlp-fraud-churn", "churn-v1", "Updating", pending="churn-v2"),
        {"EndpointName": "mlp-fraud-churn"},
    )
    stub.add_response(
        "list_endpoints",
        {"Endpoints": [{**summary, "EndpointName": ENDPOINT}]},
        {"NameContains": team_prefix, "NextToken": "p2"},
    )
    stub.add_response("describe_endpoint", described_endpoint(ENDPOINT, config_name(3)), {"EndpointName": ENDPOINT})

    assert verify.referenced_configs(client, settings()) == {"churn-v1", "churn-v2", config_name(3)}


def test_candidates_are_listed_by_name_prefix_and_kept_only_when_ours_newest_first(sagemaker):
    client, stub = sagemaker
    prefix = f"{ENDPOINT}-v"
    item = {"CreationTime": T0}
    stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {**item, "EndpointConfigName": f"x{ENDPOINT}-v1", "EndpointConfigArn": config_arn(f"x{ENDPOINT}-v1")},
                {**item, "EndpointConfigName": config_name(1), "EndpointConfigArn": config_arn(config_name(1))},
                {
                    "EndpointConfigName": config_name(2),
                    "EndpointConfigArn": config_arn(config_name(2)),
                    "CreationTime": T0 + timedelta(hours=1),
                },
            ],
            "NextToken": "n",
        },
        {"NameContains": prefix},
    )
    stub.add_response("list_tags", {"Tags": owned_tags(1)}, {"ResourceArn": config_arn(config_name(1))})
    stub.add_response("list_tags", {"Tags": owned_tags(2)}, {"ResourceArn": config_arn(config_name(2))})
    stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": config_name(3),
                    "EndpointConfigArn": config_arn(config_name(3)),
                    "CreationTime": T0 + timedelta(hours=2),
                }
            ]
        },
        {"NameContains": prefix, "NextToken": "n"},
    )
    stub.add_response("list_tags", {"Tags": owned_tags(3)}, {"ResourceArn": config_arn(config_name(3))})

    found = verify.managed_candidates(
        client,
        settings(),
        settings().for_endpoint(ENDPOINT),
        list_call=client.list_endpoint_configs,
        list_key="EndpointConfigs",
        name_key="EndpointConfigName",
        arn_key="EndpointConfigArn",
    )

    assert [c.name for c in found] == [config_name(3), config_name(2), config_name(1)]


# --- pruning around the serving config's creation time ---------------------------------------------


def expect_prune_listing(stub, configs: list[tuple[int, datetime]]) -> None:
    """The listing half of a prune: our configs (tagged as ours), then the team's one endpoint serving the
    last of them."""
    stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": config_name(v),
                    "EndpointConfigArn": config_arn(config_name(v)),
                    "CreationTime": at,
                }
                for v, at in configs
            ]
        },
        {"NameContains": f"{ENDPOINT}-v"},
    )
    for version, _ in configs:
        stub.add_response("list_tags", {"Tags": owned_tags(version)}, {"ResourceArn": config_arn(config_name(version))})
    stub.add_response(
        "list_endpoints",
        {
            "Endpoints": [
                {
                    "EndpointName": ENDPOINT,
                    "EndpointArn": ENDPOINT_ARN,
                    "CreationTime": T0,
                    "LastModifiedTime": T0,
                    "EndpointStatus": "InService",
                }
            ]
        },
        {"NameContains": "mlp-fraud-"},
    )
    stub.add_response(
        "describe_endpoint", described_endpoint(ENDPOINT, config_name(configs[-1][0])), {"EndpointName": ENDPOINT}
    )


def test_a_config_made_in_the_same_instant_as_the_serving_one_is_not_older_and_stays(sagemaker):
    client, stub = sagemaker
    serving = config_name(3)
    # v1 is older than v3; v2 was created in the same instant as v3 (one deploy making both): only v1 goes.
    expect_prune_listing(stub, [(1, T0), (2, T0 + timedelta(hours=1)), (3, T0 + timedelta(hours=1))])
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": config_name(1)})
    # Surviving configs (v2 and v3) are described for their models; set order, so one at a time is stubbed
    # by answering both with the same variants.
    for _ in range(2):
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "any",
                "EndpointConfigArn": config_arn("any"),
                "CreationTime": T0,
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"{ENDPOINT}-v3"}],
            },
        )
    stub.add_response(
        "list_models",
        {
            "Models": [
                {"ModelName": f"{ENDPOINT}-v{v}", "ModelArn": model_arn(f"{ENDPOINT}-v{v}"), "CreationTime": at}
                for v, at in ((1, T0), (2, T0 + timedelta(hours=1)), (3, T0 + timedelta(hours=1)))
            ]
        },
        {"NameContains": f"{ENDPOINT}-v"},
    )
    for version in (1, 2, 3):
        stub.add_response(
            "list_tags", {"Tags": owned_tags(version)}, {"ResourceArn": model_arn(f"{ENDPOINT}-v{version}")}
        )
    stub.add_response("delete_model", {}, {"ModelName": f"{ENDPOINT}-v1"})

    report = verify.prune(client, settings(keep=0), settings().for_endpoint(ENDPOINT), serving)

    assert report == verify.Report("verified", ENDPOINT, serving, serving, [config_name(1)], [f"{ENDPOINT}-v1"])


def test_a_config_deleted_by_someone_else_meanwhile_is_not_an_error(sagemaker):
    client, stub = sagemaker
    serving = config_name(2)
    expect_prune_listing(stub, [(1, T0), (2, T0 + timedelta(hours=1))])
    stub.add_client_error(
        "delete_endpoint_config",
        *not_found("endpoint configuration"),
        expected_params={"EndpointConfigName": config_name(1)},
    )
    stub.add_client_error(
        "describe_endpoint_config",
        *not_found("endpoint configuration"),
        expected_params={"EndpointConfigName": serving},
    )
    stub.add_response("list_models", {"Models": []}, {"NameContains": f"{ENDPOINT}-v"})

    report = verify.prune(client, settings(keep=0), settings().for_endpoint(ENDPOINT), serving)

    assert report.deleted_configs == [config_name(1)]


def test_a_delete_refused_for_another_reason_fails_the_run(sagemaker):
    client, stub = sagemaker
    serving = config_name(2)
    expect_prune_listing(stub, [(1, T0), (2, T0 + timedelta(hours=1))])
    stub.add_client_error(
        "delete_endpoint_config",
        "AccessDeniedException",
        "not authorized",
        expected_params={"EndpointConfigName": config_name(1)},
    )

    with pytest.raises(ClientError, match="AccessDeniedException"):
        verify.prune(client, settings(keep=0), settings().for_endpoint(ENDPOINT), serving)


def test_serving_config_that_is_not_ours_prunes_nothing_and_says_so(sagemaker, caplog):
    client, stub = sagemaker
    stub.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": f"{ENDPOINT}-v"})

    with caplog.at_level(logging.WARNING, logger="endpoint_verifier"):
        report = verify.prune(client, settings(), settings().for_endpoint(ENDPOINT), "hand-made-config")

    assert report == verify.Report("verified", ENDPOINT, "hand-made-config", "hand-made-config")
    [record] = [r for r in caplog.records if r.name.startswith("endpoint_verifier")]
    assert (record.getMessage(), record.endpoint) == ("serving config is not one of ours, nothing pruned", ENDPOINT)


def test_models_of_configs_skip_configs_that_are_gone():
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        for version in (1, 2):
            client.create_model(
                ModelName=f"{ENDPOINT}-v{version}", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", Containers=[]
            )
            client.create_endpoint_config(
                EndpointConfigName=config_name(version),
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": f"{ENDPOINT}-v{version}",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                    }
                ],
            )
        names = {config_name(v) for v in range(1, 8)}  # 3 to 7 are gone

        assert verify.models_of_configs(client, names) == {f"{ENDPOINT}-v1", f"{ENDPOINT}-v2"}


def test_describe_errors_other_than_not_found_are_raised(sagemaker):
    client, stub = sagemaker
    stub.add_client_error("describe_endpoint", "AccessDeniedException", "resource not found in your permissions")
    stub.add_client_error("describe_endpoint", "ValidationException", "Endpoint name is too long")
    stub.add_client_error("describe_endpoint", "ValidationException", "Endpoint mlp-fraud-x not found.")

    for _ in range(2):
        with pytest.raises(ClientError):
            verify.describe_endpoint(client, ENDPOINT)
    assert verify.describe_endpoint(client, ENDPOINT) is None


# --- what people read: alerts, reports, logs -----------------------------------------------------------


class Aws:
    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic_arn = self.sns.create_topic(Name="mlp-fraud-alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn)
        self.settings = settings(self.topic_arn, keep=2)

    def alerts(self) -> list[tuple[str, dict]]:
        """(subject, details) of every alert, from the SNS envelope."""
        messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        envelopes = [json.loads(m["Body"]) for m in messages]
        return [(e["Subject"], json.loads(e["Message"])) for e in envelopes]

    def endpoint(self, config: str, endpoint_tags: list[dict[str, str]] | None = None) -> None:
        self.sagemaker.create_model(
            ModelName=f"{config}-model", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", Containers=[]
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{config}-model",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        self.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config, Tags=endpoint_tags or [])

    def verify(self, event) -> verify.Report:
        return verify.handle_state_change(self.sagemaker, self.sns, self.settings, event)


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


def test_a_failed_endpoint_alert_tells_the_team_what_failed_and_what_happens_next(aws):
    report = aws.verify(state_change(ENDPOINT, "FAILED", FailureReason="container did not pass the ping check"))

    assert report == verify.Report("alerted_failed", ENDPOINT, None)
    assert aws.alerts() == [
        (
            f"{ENDPOINT}: endpoint FAILED",
            {
                "team": "fraud",
                "endpoint": ENDPOINT,
                "model_package_group": GROUP,
                "endpoint_config": None,
                "failure_reason": "container did not pass the ping check",
                "what_happens_next": "The next approval or rejection in the group deletes and recreates the endpoint.",
            },
        )
    ]


def test_a_failed_alert_prefers_the_reason_sagemaker_reports_now(sagemaker):
    client, stub = sagemaker
    sns = boto3.client("sns", region_name=REGION)
    failed = {**described_endpoint(ENDPOINT, config_name(4), "Failed"), "FailureReason": "out of capacity"}
    stub.add_response("describe_endpoint", failed, {"EndpointName": ENDPOINT})
    with Stubber(sns) as sns_stub:
        published = {}

        def capture(params, **_):
            published.update(params)

        sns.meta.events.register("provide-client-params.sns.Publish", capture)
        sns_stub.add_response("publish", {"MessageId": "1"})
        report = verify.handle_state_change(
            client, sns, settings(), state_change(ENDPOINT, "FAILED", FailureReason="stale reason")
        )

    assert report == verify.Report("alerted_failed", ENDPOINT, config_name(4))
    details = json.loads(published["Message"])
    assert (details["failure_reason"], details["endpoint_config"]) == ("out of capacity", config_name(4))


def test_a_failure_reason_that_is_not_text_is_left_out(aws):
    aws.verify(state_change(ENDPOINT, "FAILED", FailureReason={"code": 7}))

    [(_, details)] = aws.alerts()
    assert details["failure_reason"] is None


def test_a_rolled_back_update_alert_names_both_configs_and_the_package(aws):
    intended = config_name(5)
    aws.endpoint(config_name(4), owned_tags(5) + [{"Key": tags.INTENDED_ENDPOINT_CONFIG, "Value": intended}])

    report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report == verify.Report("alerted_rolled_back", ENDPOINT, config_name(4), intended)
    assert aws.alerts() == [
        (
            f"{ENDPOINT}: update rolled back",
            {
                "team": "fraud",
                "endpoint": ENDPOINT,
                "model_package_group": GROUP,
                "serving_config": config_name(4),
                "intended_config": intended,
                "intended_model_package_arn": package(5),
                "meaning": "SageMaker rolled the update back (an alarm fired or the new fleet failed); "
                "the endpoint serves the previous config.",
            },
        )
    ]


def test_an_endpoint_without_intended_config_reports_what_it_serves_and_warns(aws, caplog):
    aws.endpoint(config_name(4), owned_tags(4))

    with caplog.at_level(logging.WARNING, logger="endpoint_verifier"):
        report = aws.verify(state_change(ENDPOINT, "IN_SERVICE"))

    assert report == verify.Report("skipped_no_intended_config", ENDPOINT, config_name(4))
    [record] = [r for r in caplog.records if r.name.startswith("endpoint_verifier")]
    assert (record.getMessage(), record.endpoint) == ("endpoint records no intended config, nothing pruned", ENDPOINT)


def test_an_unmanaged_endpoint_is_reported_with_what_it_serves(aws):
    aws.endpoint(config_name(4))

    assert aws.verify(state_change(ENDPOINT, "IN_SERVICE")) == verify.Report(
        "ignored_unmanaged_endpoint", ENDPOINT, config_name(4)
    )


def test_an_endpoint_deleted_since_the_event_is_skipped(aws):
    assert aws.verify(state_change(ENDPOINT, "IN_SERVICE")) == verify.Report(
        "skipped_not_in_service_any_more", ENDPOINT
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            state_change("mlp-pricing-price-elasticity", "IN_SERVICE"),
            verify.Report("ignored_foreign_endpoint", "mlp-pricing-price-elasticity"),
        ),
        (state_change(ENDPOINT, "UPDATING"), verify.Report("ignored_status", ENDPOINT)),
    ],
    ids=["foreign endpoint", "status that needs nothing"],
)
def test_ignored_events_report_the_endpoint(event, expected):
    with Stubber(boto3.client("sagemaker", region_name=REGION)) as stub:
        report = verify.handle_state_change(stub.client, None, settings(), event)
    assert report == expected


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (["x"], "event must be an object, got list"),
        (
            {**state_change(ENDPOINT, "IN_SERVICE"), "source": "aws.ec2"},
            "not an endpoint state change (source 'aws.ec2', detail-type 'SageMaker Endpoint State Change')",
        ),
        (
            {**state_change(ENDPOINT, "IN_SERVICE"), "detail-type": "Other"},
            "not an endpoint state change (source 'aws.sagemaker', detail-type 'Other')",
        ),
        ({**state_change(ENDPOINT, "IN_SERVICE"), "detail": "text"}, "field 'detail' is missing or not an object"),
        (state_change("", "IN_SERVICE"), "detail.EndpointName and detail.EndpointStatus must be non-empty strings"),
        (state_change(7, "IN_SERVICE"), "detail.EndpointName and detail.EndpointStatus must be non-empty strings"),
        (state_change(ENDPOINT, ""), "detail.EndpointName and detail.EndpointStatus must be non-empty strings"),
        (state_change(ENDPOINT, None), "detail.EndpointName and detail.EndpointStatus must be non-empty strings"),
    ],
    ids=[
        "not an object",
        "other source",
        "other detail-type",
        "detail not an object",
        "empty name",
        "name not text",
        "empty status",
        "no status",
    ],
)
def test_unusable_events_are_logged_once_with_the_reason_and_make_no_call(event, reason, caplog):
    with Stubber(boto3.client("sagemaker", region_name=REGION)) as stub, caplog.at_level(logging.INFO):
        report = verify.handle_state_change(stub.client, None, settings(), event)

    assert report == verify.Report("ignored")
    [record] = [r for r in caplog.records if r.name.startswith("endpoint_verifier")]
    assert (record.levelname, record.getMessage(), record.action, record.reason) == (
        "WARNING",
        "ignored unusable event",
        "ignored",
        reason,
    )


def test_the_handler_alerts_through_its_own_clients_and_logs_the_action(aws, monkeypatch, caplog):
    for key, value in {
        "PLATFORM_PREFIX": PREFIX,
        "TEAM_NAME": "fraud",
        "ALERT_TOPIC_ARN": aws.topic_arn,
        "USE_CASES": use_cases_environment(PREFIX, TEAM),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(handler, "_settings", None)
    monkeypatch.setattr(clients, "CLIENTS", {})

    with caplog.at_level(logging.INFO, logger="endpoint_verifier"):
        summary = handler.handler(state_change(ENDPOINT, "FAILED", FailureReason="ping"), None)

    assert summary["action"] == "alerted_failed"
    assert [subject for subject, _ in aws.alerts()] == [f"{ENDPOINT}: endpoint FAILED"]
    [record] = [r for r in caplog.records if r.name == "endpoint_verifier.handler"]
    assert record.getMessage() == "verifier alerted_failed"


def test_a_use_cases_variable_that_is_not_the_constructs_list_is_named():
    from common.environment import SettingsError

    with pytest.raises(SettingsError, match=r"^USE_CASES is not the JSON list the construct writes: "):
        VerifierSettings.from_env(
            {
                "PLATFORM_PREFIX": PREFIX,
                "TEAM_NAME": "fraud",
                "ALERT_TOPIC_ARN": TOPIC,
                "USE_CASES": '[{"endpoint": 1}]',
            }
        )


def test_ownership_needs_all_three_tags_of_this_platform_and_team():
    owned = {tags.MANAGED_BY: tags.MANAGED_BY_VALUE, tags.PLATFORM: PREFIX, tags.TEAM: "fraud"}
    config = settings()
    assert verify.is_owned(owned, config)
    for key, other in ((tags.MANAGED_BY, "someone-else"), (tags.PLATFORM, "other"), (tags.TEAM, "pricing")):
        assert not verify.is_owned({**owned, key: other}, config), key


def test_endpoint_spec_configs_are_found_by_the_verifier_prefix():
    """The deploy Lambda's config names start with what the verifier lists by (endpoint name + '-v')."""
    from deploy_on_approval.settings import DeploySettings

    deploy = DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": PREFIX,
            "TEAM_NAME": "fraud",
            "MODEL_EXECUTION_ROLE_ARN": "arn:aws:iam::1:role/x",
            "KMS_KEY_ARN": "arn:aws:kms:us-east-1:1:key/k",
            "DATA_CAPTURE_S3_URI": "s3://b/c",
            "ALERT_TOPIC_ARN": TOPIC,
            "USE_CASES": use_cases_environment(PREFIX, TEAM),
        }
    )
    name = endpoint_spec.endpoint_config_name(deploy, deploy.for_group(GROUP), 12)
    assert name.startswith(f"{ENDPOINT}-v12-")


def test_a_config_of_ours_without_a_model_package_tag_is_not_a_candidate(sagemaker):
    client, stub = sagemaker
    stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": config_name(1),
                    "EndpointConfigArn": config_arn(config_name(1)),
                    "CreationTime": T0,
                }
            ]
        },
        {"NameContains": f"{ENDPOINT}-v"},
    )
    stub.add_response("list_tags", {"Tags": owned_tags(1)[:3]}, {"ResourceArn": config_arn(config_name(1))})

    found = verify.managed_candidates(
        client,
        settings(),
        settings().for_endpoint(ENDPOINT),
        list_call=client.list_endpoint_configs,
        list_key="EndpointConfigs",
        name_key="EndpointConfigName",
        arn_key="EndpointConfigArn",
    )

    assert found == []
