"""The DeployOnApproval construct, synthesized once for three teams (one without use cases) in a test app
shaped like the real one: the platform key in its own stack, each team's construct in the team's stack.

The synthesized rule patterns and input transformers are exercised with documented events, and the
resulting messages go through a moto FIFO queue into the real deploy handler.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdas.common import naming
from stacks.config import Team
from stacks.nag_acknowledgments import construct_acknowledgments
from tests.sagemaker_events import endpoint_state_change, model_package_state_change

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "mlp"
REGION, ACCOUNT = "eu-west-1", "111111111111"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
TEAMS = [
    Team.model_validate(
        {
            "name": "fraud",
            "cost_center": "CC-1001",
            "use_cases": [
                {
                    "name": "fraud-detection",
                    "endpoint": {
                        "initial_instance_count": 2,
                        "deployment": {"style": "canary", "canary_percent": 50},
                        "data_capture": {"enabled": True},
                        "alarms": {"invocation_5xx_errors": 3, "model_latency_ms": 250},
                    },
                },
                {
                    "name": "churn-propensity",
                    "endpoint": {"initial_instance_count": 2, "deployment": {"style": "linear", "maximum_execution_timeout_seconds": 14400}},
                },
            ],
        }
    ),
    Team.model_validate({"name": "pricing", "cost_center": "CC-3003", "use_cases": [{"name": "price-elasticity"}]}),
    Team.model_validate({"name": "empty", "cost_center": "CC-0000", "users": ["dave"]}),
]
FRAUD, PRICING, EMPTY = (f"{PREFIX}-team-{t.name}" for t in TEAMS)
PLATFORM = f"{PREFIX}-platform"


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    constructs: dict[str, Any]
    acknowledged: set[tuple[str, str]]

    def resources(self, stack: str, resource_type: str) -> dict[str, dict]:
        return {k: r for k, r in self.templates[stack]["Resources"].items() if r["Type"] == resource_type}


def cdk_context() -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if k != "config"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Synth:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns
    from cdk_nag import AwsSolutionsChecks

    from stacks.constructs.deploy_on_approval import DeployOnApproval

    outdir = tmp_path_factory.mktemp("deploy-on-approval-cdk-out")
    app = cdk.App(outdir=str(outdir), context=cdk_context())
    platform = cdk.Stack(app, PLATFORM)
    key = kms.Key(platform, "PlatformKey", enable_key_rotation=True)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(s) for s in ("cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": platform.account}},
        )
    )
    constructs, acknowledged = {}, set()
    for team in TEAMS:
        stack = cdk.Stack(app, f"{PREFIX}-team-{team.name}")
        stack.add_stack_dependency(platform)
        construct = DeployOnApproval(
            stack,
            "DeployOnApproval",
            prefix=PREFIX,
            team=team,
            model_execution_role=iam.Role(
                stack, "ModelExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
            ),
            kms_key=key,
            alert_topic=sns.Topic(stack, "Alerts", master_key=key, enforce_ssl=True),
            data_bucket=s3.Bucket.from_bucket_name(stack, "DataBucket", f"{PREFIX}-{team.name}-data"),
        )
        constructs[team.name] = construct
        for path, finding, reason in construct_acknowledgments(construct):
            target = next(c for c in stack.node.find_all() if c.node.path == f"{stack.node.path}/{path}")
            cdk.Validations.of(target).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))
            acknowledged.add((f"{stack.stack_name}/{path}", finding))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    templates = {s.stack_name: s.template for s in assembly.stacks}
    return Synth(outdir, templates, constructs, acknowledged)


# --- template helpers -------------------------------------------------------------------------------


def resolve(value: Any, stack: str) -> Any:
    """Render intrinsic functions to text; a stack's own references are qualified by the stack name."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v, stack) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return PSEUDO.get(arg, f"<{stack}:{arg}>")
        if fn == "Fn::GetAtt":
            return f"<{stack}:{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            return arg[0].join(resolve(p, stack) for p in arg[1])
        if fn == "Fn::ImportValue":
            return f"<import:{arg}>"
    if isinstance(value, dict):
        return {k: resolve(v, stack) for k, v in value.items()}
    raise AssertionError(f"unexpected value {value!r}")


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def function_statements(synth: Synth, stack: str) -> list[dict]:
    """Every identity-policy statement of the construct's Lambda roles, resolved."""
    statements = []
    for policy in synth.resources(stack, "AWS::IAM::Policy").values():
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            statements.append(resolve(statement, stack))
    return statements


def allows(statements: list[dict], action: str, arn: str) -> bool:
    return any(
        s["Effect"] == "Allow"
        and action in as_list(s["Action"])
        and any(fnmatch.fnmatchcase(arn, pattern) for pattern in as_list(s["Resource"]))
        for s in statements
    )


def sagemaker_arn(resource: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}"


def logical_id(synth: Synth, stack: str, resource_type: str, contains: str) -> str:
    [found] = [k for k in synth.resources(stack, resource_type) if contains in k]
    return found


# --- EventBridge: a matcher for the pattern subset used, an input transformer ----------------------


def pattern_matches(pattern: dict, event: Any) -> bool:
    """EventBridge matching for patterns made of nested objects and lists of exact values."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, dict):
            if not pattern_matches(expected, actual):
                return False
        elif not any(value in expected for value in as_list(actual)):
            return False
    return True


def json_path(event: dict, path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def transform(transformer: dict, event: dict) -> str:
    """An EventBridge input transformer: quoted placeholders take the raw text, bare ones the JSON value."""
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        try:
            values[name] = json_path(event, path)
        except KeyError:
            continue

    def substitute(match: re.Match) -> str:
        before, name, after = match.group(1), match.group(2), match.group(3)
        if name not in values:
            return match.group(0)
        if before == '"' and after == '"':
            return f'"{values[name]}"'
        return before + json.dumps(values[name]) + after

    return re.sub(r'(.?)<([\w.-]+)>(.?)', substitute, transformer["InputTemplate"])


def model_package_event(group: str, version: int, status: str, event_id: str = "844e2571-85d4-695f-b930-0153b71dcb42") -> dict:
    return model_package_state_change(group, version, status, region=REGION, account=ACCOUNT, event_id=event_id)


def endpoint_event(endpoint: str, status: str) -> dict:
    return endpoint_state_change(endpoint, status, region=REGION, account=ACCOUNT)


def routed(synth: Synth, stack: str, event: dict) -> list[tuple[str, str, str]]:
    """(target ARN, message group, body) for every rule target of `stack` that `event` reaches."""
    out = []
    for rule in synth.resources(stack, "AWS::Events::Rule").values():
        props = rule["Properties"]
        if not pattern_matches(props["EventPattern"], event):
            continue
        for target in props["Targets"]:
            body = transform(target["InputTransformer"], event) if "InputTransformer" in target else json.dumps(event)
            group = target.get("SqsParameters", {}).get("MessageGroupId")
            out.append((resolve(target["Arn"], stack), group, body))
    return out


GROUP = naming.model_package_group_name(PREFIX, "fraud", "fraud-detection")
ENDPOINT = naming.endpoint_name(PREFIX, "fraud", "fraud-detection")
DEPLOY_EVENTS = {
    "approved": (model_package_event(GROUP, 3, "Approved"), True),
    "rejected": (model_package_event(GROUP, 3, "Rejected"), True),
    "pending registration": (model_package_event(GROUP, 3, "PendingManualApproval"), False),
    "other team's group": (model_package_event("mlp-pricing-price-elasticity", 3, "Approved"), False),
    "other group prefix": (model_package_event(GROUP + "-v2", 3, "Approved"), False),
    "other detail-type": ({**model_package_event(GROUP, 3, "Approved"), "detail-type": "SageMaker Model State Change"}, False),
    "other source": ({**model_package_event(GROUP, 3, "Approved"), "source": "aws.ec2"}, False),
    "missing status": (
        {**model_package_event(GROUP, 3, "Approved"), "detail": {"ModelPackageGroupName": GROUP}},
        False,
    ),
}


# --- rules and patterns -------------------------------------------------------------------------------


def test_one_approval_rule_per_group_with_the_exact_pattern(synth):
    rules = [r["Properties"] for r in synth.resources(FRAUD, "AWS::Events::Rule").values()]
    approval = [r for r in rules if r["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]]
    groups = sorted(r["EventPattern"]["detail"]["ModelPackageGroupName"][0] for r in approval)
    assert groups == ["mlp-fraud-churn-propensity", "mlp-fraud-fraud-detection"]
    for rule in approval:
        group = rule["EventPattern"]["detail"]["ModelPackageGroupName"][0]
        assert rule["EventPattern"] == {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved", "Rejected"]},
        }
        [target] = rule["Targets"]
        assert target["SqsParameters"] == {"MessageGroupId": group}
        queue = logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployQueue")
        assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
        failed = logical_id(synth, FRAUD, "AWS::SQS::Queue", "FailedEvents")
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [failed, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


@pytest.mark.parametrize(("event", "reaches"), DEPLOY_EVENTS.values(), ids=DEPLOY_EVENTS.keys())
def test_synthesized_pattern_lets_only_approvals_and_rejections_of_own_groups_through(synth, event, reaches):
    targets = routed(synth, FRAUD, event)
    assert bool(targets) is reaches
    if reaches:
        [(arn, group, _)] = targets
        assert group == GROUP
        assert arn.startswith(f"<{FRAUD}:") and "DeployQueue" in arn


@pytest.mark.parametrize(("event", "reaches"), DEPLOY_EVENTS.values(), ids=DEPLOY_EVENTS.keys())
def test_own_matcher_agrees_with_motos_event_pattern_matcher(synth, event, reaches):
    from moto.events.models import EventPattern

    for rule in synth.resources(FRAUD, "AWS::Events::Rule").values():
        pattern = rule["Properties"]["EventPattern"]
        assert EventPattern(json.dumps(pattern), pattern).matches_event(event) == pattern_matches(pattern, event)


def test_transformed_message_holds_only_stable_fields(synth):
    [(_, _, body)] = routed(synth, FRAUD, model_package_event(GROUP, 3, "Approved"))
    assert json.loads(body) == {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "group": GROUP,
        "version": 3,
        "status": "Approved",
        "arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/3",
    }
    twin = model_package_event(GROUP, 3, "Approved", event_id="0d4f3c21-0000-4000-8000-000000000001")
    twin["time"] = "2021-02-24T17:00:16Z"
    [(_, _, twin_body)] = routed(synth, FRAUD, twin)
    assert twin_body == body, "duplicate events must give byte-identical bodies for content-based dedup"


def test_endpoint_rule_feeds_the_verifier_for_the_teams_endpoints(synth):
    rules = [r["Properties"] for r in synth.resources(FRAUD, "AWS::Events::Rule").values()]
    [rule] = [r for r in rules if r["EventPattern"]["detail-type"] == ["SageMaker Endpoint State Change"]]
    assert rule["EventPattern"]["source"] == ["aws.sagemaker"]
    assert sorted(rule["EventPattern"]["detail"]["EndpointName"]) == [
        "mlp-fraud-churn-propensity", "mlp-fraud-fraud-detection"
    ]
    [target] = rule["Targets"]
    verifier = logical_id(synth, FRAUD, "AWS::Lambda::Function", "Verifier")
    assert target["Arn"] == {"Fn::GetAtt": [verifier, "Arn"]}
    assert "DeadLetterConfig" in target
    assert routed(synth, FRAUD, endpoint_event(ENDPOINT, "IN_SERVICE"))
    assert routed(synth, FRAUD, endpoint_event(ENDPOINT, "FAILED"))
    assert not routed(synth, FRAUD, endpoint_event(ENDPOINT, "UPDATING"))
    assert not routed(synth, FRAUD, endpoint_event("mlp-pricing-price-elasticity", "IN_SERVICE"))


# --- end to end: documented event -> rule -> FIFO queue (moto) -> deploy handler (moto) --------------


def test_documented_events_flow_through_the_fifo_queue_into_the_handler(synth):
    import boto3
    from deploy_on_approval import handler
    from deploy_on_approval.settings import DeploySettings
    from moto import mock_aws

    queue_props = synth.resources(FRAUD, "AWS::SQS::Queue")[logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployQueue")][
        "Properties"
    ]
    [deploy_fn] = [
        r["Properties"] for k, r in synth.resources(FRAUD, "AWS::Lambda::Function").items() if "DeployFunction" in k
    ]
    env = resolve(deploy_fn["Environment"]["Variables"], FRAUD)
    with mock_aws():
        region = "us-east-1"
        sqs = boto3.client("sqs", region_name=region)
        sagemaker = boto3.client("sagemaker", region_name=region)
        sns = boto3.client("sns", region_name=region)
        queue = sqs.create_queue(
            QueueName="deploy.fifo",
            Attributes={
                "FifoQueue": str(queue_props["FifoQueue"]).lower(),
                "ContentBasedDeduplication": str(queue_props["ContentBasedDeduplication"]).lower(),
            },
        )["QueueUrl"]
        env["ALERT_TOPIC_ARN"] = sns.create_topic(Name="alerts")["TopicArn"]
        env["KMS_KEY_ARN"] = f"arn:aws:kms:{region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        settings = DeploySettings.from_env(env)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        arn = sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")["ModelPackageArn"]

        events = [
            model_package_event(GROUP, 1, "PendingManualApproval"),
            model_package_event(GROUP, 1, "Approved"),
            model_package_event(GROUP, 1, "Approved", event_id="0d4f3c21-0000-4000-8000-000000000002"),
        ]
        for event in events:
            for _, group, body in routed(synth, FRAUD, event):
                sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=group)
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in received]

        response = handler.process_batch(records, sagemaker, sns, settings)

        assert len(records) == 1, "the Pending event must be filtered and the duplicate deduplicated"
        assert response == {"batchItemFailures": []}
        endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        model = sagemaker.describe_model(ModelName=f"{GROUP}-v1")
        assert model["Containers"] == [{"ModelPackageName": arn}]
        assert endpoint["EndpointConfigName"].startswith(f"{GROUP}-v1-")


# --- queues, alarms, functions ----------------------------------------------------------------------


def test_deploy_queue_is_fifo_deduplicated_encrypted_with_a_bounded_redrive(synth):
    from stacks.constructs.deploy_on_approval import max_receive_count

    queues = synth.resources(FRAUD, "AWS::SQS::Queue")
    deploy = queues[logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployQueue")]["Properties"]
    dlq_id = logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployDeadLetterQueue")
    dlq = queues[dlq_id]["Properties"]
    key = resolve(deploy["KmsMasterKeyId"], FRAUD)
    assert key.startswith(f"<import:{PLATFORM}:") and "PlatformKey" in key
    assert deploy["FifoQueue"] is True and deploy["ContentBasedDeduplication"] is True
    assert dlq["FifoQueue"] is True and resolve(dlq["KmsMasterKeyId"], FRAUD) == key
    assert deploy["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    receives = deploy["RedrivePolicy"]["maxReceiveCount"]
    assert receives == max_receive_count(TEAMS[0].use_cases)
    # Retries must outlast the longest blue/green update of the team (here 4 h plus termination wait).
    assert receives * deploy["VisibilityTimeout"] >= 14400 + 120
    assert receives <= 100
    failed = queues[logical_id(synth, FRAUD, "AWS::SQS::Queue", "FailedEvents")]["Properties"]
    assert resolve(failed["KmsMasterKeyId"], FRAUD) == key


def test_queue_policies_enforce_tls_and_admit_only_this_teams_rules(synth):
    rules = {f"<{FRAUD}:{k}.Arn>" for k, r in synth.resources(FRAUD, "AWS::Events::Rule").items()
             if r["Properties"]["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]}
    policies = synth.resources(FRAUD, "AWS::SQS::QueuePolicy")
    assert len(policies) == 3
    for policy in policies.values():
        statements = resolve(policy["Properties"]["PolicyDocument"]["Statement"], FRAUD)
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
        for s in statements:
            if s["Effect"] == "Allow":
                assert s["Principal"] == {"Service": "events.amazonaws.com"}
                assert s["Action"] == "sqs:SendMessage"
                sources = set(as_list(s["Condition"]["ArnEquals"]["aws:SourceArn"]))
                assert sources <= rules | {f"<{FRAUD}:{logical_id(synth, FRAUD, 'AWS::Events::Rule', 'EndpointStateChanges')}.Arn>"}


def test_dead_letter_queues_are_alarmed_to_the_team_topic(synth):
    alarms = synth.resources(FRAUD, "AWS::CloudWatch::Alarm")
    topic = f"<{FRAUD}:{logical_id(synth, FRAUD, 'AWS::SNS::Topic', 'Alerts')}>"
    for queue in ("DeployDeadLetterQueue", "FailedEventsQueue"):
        queue_name = f"<{FRAUD}:{logical_id(synth, FRAUD, 'AWS::SQS::Queue', queue)}.QueueName>"
        [alarm] = [
            a["Properties"] for a in alarms.values()
            if a["Properties"].get("Namespace") == "AWS/SQS"
            and resolve(a["Properties"]["Dimensions"], FRAUD) == [{"Name": "QueueName", "Value": queue_name}]
        ]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert resolve(alarm["AlarmActions"], FRAUD) == [topic]


def test_two_rollback_alarms_per_endpoint_with_the_names_the_lambda_uses(synth):
    alarms = [a["Properties"] for a in synth.resources(FRAUD, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Namespace") == "AWS/SageMaker"]
    assert len(alarms) == 4
    by_name = {a["AlarmName"]: a for a in alarms}
    [deploy_fn] = [r["Properties"] for k, r in synth.resources(FRAUD, "AWS::Lambda::Function").items() if "DeployFunction" in k]
    use_cases = json.loads(deploy_fn["Environment"]["Variables"]["USE_CASES"])
    assert sorted(by_name) == sorted(name for u in use_cases for name in u["alarms"])
    errors = by_name[f"{ENDPOINT}-invocation-5xx-errors"]
    latency = by_name[f"{ENDPOINT}-model-latency"]
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Invocation5XXErrors", "Sum", 3)
    assert (latency["MetricName"], latency["Statistic"]) == ("ModelLatency", "Average")
    assert latency["Threshold"] == 250 * 1000, "ModelLatency is in microseconds"
    for alarm in (errors, latency):
        assert alarm["Dimensions"] == dimensions
        assert alarm["TreatMissingData"] == "notBreaching"
        assert len(alarm["AlarmActions"]) == 1


def test_deploy_function_reads_the_queue_with_partial_batch_responses(synth):
    [mapping] = synth.resources(FRAUD, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 1
    assert props["EventSourceArn"] == {"Fn::GetAtt": [logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployQueue"), "Arn"]}
    queue = synth.resources(FRAUD, "AWS::SQS::Queue")[logical_id(synth, FRAUD, "AWS::SQS::Queue", "DeployQueue")]
    [deploy_fn] = [r["Properties"] for k, r in synth.resources(FRAUD, "AWS::Lambda::Function").items() if "DeployFunction" in k]
    assert queue["Properties"]["VisibilityTimeout"] >= deploy_fn["Timeout"]


def test_function_environment_is_what_the_handlers_parse(synth):
    from deploy_on_approval.settings import DeploySettings
    from endpoint_verifier.settings import VerifierSettings

    from stacks.constructs.deploy_on_approval import use_cases_environment

    functions = {k: r["Properties"] for k, r in synth.resources(FRAUD, "AWS::Lambda::Function").items()}
    [deploy_fn] = [p for k, p in functions.items() if "DeployFunction" in k]
    [verifier_fn] = [p for k, p in functions.items() if "VerifierFunction" in k]
    assert deploy_fn["Handler"] == "deploy_on_approval.handler.handler"
    assert verifier_fn["Handler"] == "endpoint_verifier.handler.handler"
    deploy_env = resolve(deploy_fn["Environment"]["Variables"], FRAUD)
    assert deploy_env["USE_CASES"] == use_cases_environment(PREFIX, TEAMS[0])
    assert deploy_env["DATA_CAPTURE_S3_URI"] == "s3://mlp-fraud-data/data-capture"
    settings = DeploySettings.from_env(deploy_env)
    assert settings.for_group(GROUP).endpoint == ENDPOINT
    assert settings.for_group(GROUP).endpoint_settings["deployment"]["canary_percent"] == 50
    verifier = VerifierSettings.from_env(resolve(verifier_fn["Environment"]["Variables"], FRAUD))
    assert verifier.for_endpoint(ENDPOINT).group == GROUP
    assert len(json.dumps(deploy_env)) < 4096


def test_team_without_use_cases_gets_nothing(synth):
    assert synth.constructs["empty"].enabled is False
    types = {r["Type"] for r in synth.templates[EMPTY]["Resources"].values()}
    assert types <= {"AWS::IAM::Role", "AWS::SNS::Topic", "AWS::SNS::TopicPolicy"}


def test_construct_leaves_the_platform_key_policy_alone(synth):
    [key] = synth.resources(PLATFORM, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert len(statements) == 2, "a team construct added a statement to the platform key's policy"


def test_alarms_may_publish_to_the_encrypted_alert_topic(synth):
    [policy] = synth.resources(FRAUD, "AWS::SNS::TopicPolicy").values()
    statements = resolve(policy["Properties"]["PolicyDocument"]["Statement"], FRAUD)
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:mlp-fraud-*"


# --- IAM -------------------------------------------------------------------------------------------


def own_arns(team: str, use_case: str) -> dict[str, str]:
    group = naming.model_package_group_name(PREFIX, team, use_case)
    return {
        "endpoint": sagemaker_arn(f"endpoint/{group}"),
        "model": sagemaker_arn(f"model/{group}-v3"),
        "config": sagemaker_arn(f"endpoint-config/{group}-v3-0123abcd"),
        "group": sagemaker_arn(f"model-package-group/{group}"),
        "package": sagemaker_arn(f"model-package/{group}/3"),
        "alarm 5xx": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{group}-invocation-5xx-errors",
        "alarm latency": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{group}-model-latency",
    }


def stack_arns(synth: Synth, stack: str) -> dict[str, str]:
    """ARNs of the stack's own role, topic and queues, as `resolve` renders them."""
    return {
        "model execution role": f"<{stack}:{logical_id(synth, stack, 'AWS::IAM::Role', 'ModelExecutionRole')}.Arn>",
        "alert topic": f"<{stack}:{logical_id(synth, stack, 'AWS::SNS::Topic', 'Alerts')}>",
        "deploy queue": f"<{stack}:{logical_id(synth, stack, 'AWS::SQS::Queue', 'DeployQueue')}.Arn>",
        "failed events queue": f"<{stack}:{logical_id(synth, stack, 'AWS::SQS::Queue', 'FailedEvents')}.Arn>",
    }


def test_no_policy_statement_of_one_team_matches_another_teams_resources(synth):
    from tools.iam.reference import action_facts

    other = {**own_arns("pricing", "price-elasticity"), **stack_arns(synth, PRICING)}
    for stack, foreign in ((FRAUD, other), (PRICING, {**own_arns("fraud", "fraud-detection"), **stack_arns(synth, FRAUD)})):
        for statement in function_statements(synth, stack):
            actions = as_list(statement["Action"])
            assert not any("*" in a for a in actions), statement
            resources = as_list(statement["Resource"])
            if resources == ["*"]:
                assert all(action_facts(a).authorized_on_star for a in actions), statement
                continue
            for pattern in resources:
                for kind, arn in foreign.items():
                    assert not fnmatch.fnmatchcase(arn, pattern), f"{stack}: {pattern} matches the other team's {kind}"
                    assert not fnmatch.fnmatchcase(arn.lower(), pattern.lower()), f"{stack}: {pattern} ~ {kind}"


def test_the_functions_may_do_what_they_need_on_their_own_team(synth):
    own = {**own_arns("fraud", "fraud-detection"), **stack_arns(synth, FRAUD)}
    statements = function_statements(synth, FRAUD)
    needed = [
        ("sagemaker:ListModelPackages", "*"),
        ("sagemaker:DescribeModelPackage", own["package"]),
        ("sagemaker:CreateModel", own["model"]),
        ("sagemaker:CreateEndpointConfig", own["config"]),
        ("sagemaker:CreateEndpoint", own["endpoint"]),
        ("sagemaker:CreateEndpoint", own["config"]),
        ("sagemaker:UpdateEndpoint", own["endpoint"]),
        ("sagemaker:UpdateEndpoint", own["config"]),
        ("sagemaker:DescribeEndpoint", own["endpoint"]),
        ("sagemaker:ListTags", own["endpoint"]),
        ("sagemaker:DeleteEndpoint", own["endpoint"]),
        ("sagemaker:DescribeEndpointConfig", own["config"]),
        ("sagemaker:DeleteEndpointConfig", own["config"]),
        ("sagemaker:DeleteModel", own["model"]),
        ("cloudwatch:DescribeAlarms", own["alarm 5xx"]),
        ("cloudwatch:DescribeAlarms", own["alarm latency"]),
        ("iam:PassRole", own["model execution role"]),
        ("sns:Publish", own["alert topic"]),
        ("sqs:ReceiveMessage", own["deploy queue"]),
        ("sqs:SendMessage", own["failed events queue"]),
        ("sagemaker:ListEndpoints", "*"),
    ]
    for kind in ("endpoint", "model", "config"):
        needed.append(("sagemaker:AddTags", own[kind]))
    for action, arn in needed:
        assert allows(statements, action, arn), f"{action} on {arn} is not allowed"


def test_pass_role_and_deletes_are_conditioned(synth):
    statements = function_statements(synth, FRAUD)
    [pass_role] = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert as_list(pass_role["Resource"]) == [stack_arns(synth, FRAUD)["model execution role"]]
    for s in statements:
        if any(a.startswith("sagemaker:Delete") for a in as_list(s["Action"])):
            assert s["Condition"]["StringEquals"]["aws:ResourceTag/mlops:managed-by"] == "sagemaker-mlops-platform"


def test_function_roles_carry_no_managed_policies(synth):
    for stack in (FRAUD, PRICING):
        for key, role in synth.resources(stack, "AWS::IAM::Role").items():
            if "Function" in key:
                assert role["Properties"].get("ManagedPolicyArns", []) == []


# --- gates: cdk-nag acknowledgments are exact, cfn-lint is clean ----------------------------------


def test_nag_acknowledgments_are_exactly_the_findings(synth):
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    open_findings, suppressed = [], set()
    for plugin in report["pluginReports"]:
        open_findings += plugin["violations"]
        for violation in plugin["suppressedViolations"]:
            for construct in violation["violatingConstructs"]:
                suppressed.add((construct["constructPath"], violation["ruleName"]))
    assert open_findings == []
    assert suppressed == synth.acknowledged


def test_acknowledgment_ids_follow_the_stack_environment():
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.constructs.deploy_on_approval import DeployOnApproval

    stack = cdk.Stack(cdk.App(), "pinned", env=cdk.Environment(account=ACCOUNT, region=REGION))
    construct = DeployOnApproval(
        stack, "DeployOnApproval", prefix=PREFIX, team=TEAMS[1],
        model_execution_role=iam.Role.from_role_arn(stack, "Role", f"arn:aws:iam::{ACCOUNT}:role/r"),
        kms_key=kms.Key.from_key_arn(stack, "Key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"),
        alert_topic=sns.Topic.from_topic_arn(stack, "Topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:t"),
        data_bucket=s3.Bucket.from_bucket_name(stack, "Bucket", "team-bucket"),
    )
    findings = [f for _, f, _ in construct_acknowledgments(construct)]
    assert f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:{REGION}:{ACCOUNT}:model/mlp-pricing-*]" in findings


def test_too_many_use_cases_for_one_lambda_environment_is_a_clear_error():
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.config import UseCase
    from stacks.constructs.deploy_on_approval import DeployOnApproval

    # The config allows at most 4 use cases per team; the construct still guards its own limit.
    crowded = Team.model_construct(
        name="crowded",
        cost_center="CC",
        users=[],
        alert_emails=[],
        use_cases=[UseCase(name=f"use-case-{i:02d}") for i in range(12)],
    )
    stack = cdk.Stack(cdk.App(), "crowded")
    with pytest.raises(ValueError, match="more than fit in a Lambda environment"):
        DeployOnApproval(
            stack, "DeployOnApproval", prefix=PREFIX, team=crowded,
            model_execution_role=iam.Role.from_role_arn(stack, "Role", f"arn:aws:iam::{ACCOUNT}:role/r"),
            kms_key=kms.Key.from_key_arn(stack, "Key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"),
            alert_topic=sns.Topic.from_topic_arn(stack, "Topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:t"),
            data_bucket=s3.Bucket.from_bucket_name(stack, "Bucket", "team-bucket"),
        )


def test_cfn_lint_reports_nothing(synth):
    import yaml
    from cfnlint.api import ManualArgs, lint

    ignored = yaml.safe_load((ROOT / ".cfnlintrc.yaml").read_text()).get("ignore_checks") or []
    config = ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=ignored)
    problems = []
    for name, template in synth.templates.items():
        problems += [f"{name}: {m.rule.id} {m.message}" for m in lint(json.dumps(template), config=config)]
    assert problems == []
