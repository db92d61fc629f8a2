"""The data scientist's command: moto for the registry, pipelines and S3; botocore Stubber for step listing."""

from __future__ import annotations

import datetime
import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipeline_code import cli
from pipeline_code.definition import build_definition, definition_json, render
from pipeline_code.images import region_images
from stacks.config import load_config
from tests.conftest import EXAMPLE_CONFIG

REGION = "eu-west-1"
GROUP = "mlp-fraud-fraud-detection"
ROLE = "arn:aws:iam::123456789012:role/team"
TRACKING = {"PipelineName": "p", "MlflowAppArn": "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-app/app-x",
            "CodeCommit": "0" * 40}


@pytest.fixture
def session(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def register_versions(client, count: int) -> None:
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    for index in range(count):
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/m{index}.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={"Bias": {"Report": {"ContentType": "application/json", "S3Uri": "s3://b/analysis.json"}}},
            CustomerMetadataProperties={"TestAUC": f"0.9{index}", "TrainingPath": "AutoML"},
        )


def test_versions_are_listed_newest_first_with_metrics(session, capsys):
    register_versions(session.client("sagemaker"), 3)
    assert cli.main(["versions", "--group", GROUP], session=session) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["version", "approval", "test"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]
    assert "0.92" in lines[1] and "PendingManualApproval" in lines[1] and "B-" in lines[1]


@pytest.mark.parametrize(("command", "status"), [("approve", "Approved"), ("reject", "Rejected")])
def test_approval_sets_status_and_comment(session, command, status):
    client = session.client("sagemaker")
    register_versions(client, 2)
    code = cli.main([command, "--group", GROUP, "--version", "2", "--comment", "checked bias report"], session=session)
    assert code == 0
    rows = {row["version"]: row for row in cli.versions(client, GROUP)}
    assert rows[2]["approval"] == status and rows[2]["comment"] == "checked bias report"
    assert rows[1]["approval"] == "PendingManualApproval"


def test_approval_of_a_missing_version_is_refused(session, capsys):
    register_versions(session.client("sagemaker"), 1)
    assert cli.main(["approve", "--group", GROUP, "--version", "7", "--comment", "ok"], session=session) == 2
    assert "has no version 7" in capsys.readouterr().err


def test_start_passes_checked_parameters(session):
    client = session.client("sagemaker")
    body = render(definition_json(), {"TeamName": "fraud", "PlatformPrefix": "mlp", "ClarifyEndpointPrefix": "mlp-fraud",
                                      "BucketName": "b", "ExecutionRoleArn": ROLE, "ModelPackageGroupName": GROUP,
                                      "KmsKeyArn": "k", **TRACKING,
        **region_images(REGION)})
    client.create_pipeline(PipelineName="fraud", PipelineDefinition=body, RoleArn=ROLE)
    arn = cli.start(client, "fraud", cli.parse_parameters(["TrainingPath=XGBoost", "SplitMode=by_key"]))
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionArn"] == arn
    assert ":pipeline/fraud/execution/" in arn


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["Nope=1"], "unknown parameter 'Nope'"),
        (["TrainingPath=Linear"], "TrainingPath must be one of AutoML, XGBoost"),
        (["SplitMode=shuffled"], "SplitMode must be one of"),
        (["AutoMLObjective=Speed"], "AutoMLObjective must be one of"),
        (["SplitSeed=1.5"], "SplitSeed must be integer"),
        (["TrainFraction=0.9"], "fractions must sum to 1"),
        (["TrainingPath"], "is not Name=Value"),
    ],
)
def test_bad_parameters_are_refused_before_calling_aws(pairs, message):
    with pytest.raises(cli.CliError, match=message):
        cli.parse_parameters(pairs)


def test_follow_prints_each_status_change_until_the_end():
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/fraud/execution/abc"
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    polls = [
        ("Executing", [("SplitData", "Executing", None)]),
        ("Executing", [("SplitData", "Succeeded", 95), ("AutoMLTrain", "Executing", None)]),
        ("Failed", [("SplitData", "Succeeded", 95), ("AutoMLTrain", "Failed", 30)]),
    ]
    with Stubber(client) as stubber:
        stubber.add_response("describe_pipeline_definition_for_execution", {
            "PipelineDefinition": json.dumps({"Steps": [{"Name": "SplitData", "Type": "Processing"},
                                                        {"Name": "AutoMLTrain", "Type": "AutoML"}]}),
            "CreationTime": start}, {"PipelineExecutionArn": arn})
        for status, steps in polls:
            stubber.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": status},
                                 {"PipelineExecutionArn": arn})
            summaries = []
            for name, step_status, seconds in reversed(steps):
                summary = {"StepName": name, "StepStatus": step_status, "StartTime": start}
                if seconds is not None:
                    summary["EndTime"] = start + datetime.timedelta(seconds=seconds)
                if step_status == "Failed":
                    summary["FailureReason"] = "ResourceLimitExceeded"
                summaries.append(summary)
            stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": summaries[::-1]},
                                 {"PipelineExecutionArn": arn, "SortOrder": "Ascending"})
        out = io.StringIO()
        final = cli.follow(client, arn, out=out, poll_seconds=0, sleep=lambda _: None)
        stubber.assert_no_pending_responses()
    lines = out.getvalue().splitlines()
    assert final == "Failed"
    assert [line.split()[:2] for line in lines if not line.startswith("[")] == [
        ["SplitData", "Executing"], ["SplitData", "Succeeded"], ["AutoMLTrain", "Executing"], ["AutoMLTrain", "Failed"],
    ]
    assert "1m35s" in lines[2] and "ResourceLimitExceeded" in lines[-2]
    assert lines[-1] == "[Failed] 2/2 steps finished"


USE_CASES = [u for t in load_config(EXAMPLE_CONFIG).teams for u in t.use_cases]


@pytest.mark.parametrize("use_case", USE_CASES, ids=lambda u: u.name)
def test_upload_data_puts_the_example_where_its_pipeline_reads(session, use_case):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="team", CreateBucketConfiguration={"LocationConstraint": REGION})
    assert cli.main(["upload-data", "--bucket", "team", "--use-case", use_case.name, "--rows", "300"],
                    session=session) == 0
    default_uri = json.loads(definition_json(build_definition(use_case.pipeline_spec())))["Parameters"][0]["DefaultValue"]
    prefix = default_uri.removeprefix("s3://${BucketName}/")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="team")["Contents"]}
    expected = {"fraud-detection": {"customers.csv", "transactions.csv"}, "churn-propensity": {"churn.csv"},
                "price-elasticity": {"prices.csv"}}[use_case.name]
    assert keys == {f"{prefix}{name}" for name in expected}
    assert prefix == f"pipeline/data/{use_case.name}/"


def test_upload_data_refuses_an_unknown_example(session, capsys):
    session.client("s3").create_bucket(Bucket="team", CreateBucketConfiguration={"LocationConstraint": REGION})
    assert cli.main(["upload-data", "--bucket", "team", "--use-case", "my-model"], session=session) == 2
    assert "no example data for use case 'my-model'" in capsys.readouterr().err


def test_start_checks_parameters_against_the_deployed_definition(session):
    client = session.client("sagemaker")
    price = next(u for u in USE_CASES if u.name == "price-elasticity")
    body = render(definition_json(build_definition(price.pipeline_spec())), {
        "TeamName": "pricing", "PlatformPrefix": "mlp", "ClarifyEndpointPrefix": "mlp-pricing", "BucketName": "b",
        "ExecutionRoleArn": ROLE, "ModelPackageGroupName": GROUP, "KmsKeyArn": "k", **TRACKING,
        **region_images(REGION)})
    client.create_pipeline(PipelineName="prices", PipelineDefinition=body, RoleArn=ROLE)
    declared = cli.declared_parameters(client, "prices")
    assert declared["QualityThreshold"] == ("Float", 0.5)
    assert "DecisionThreshold" not in declared, "a regression pipeline has no decision threshold"
    with pytest.raises(cli.CliError, match="unknown parameter 'DecisionThreshold'"):
        cli.parse_parameters(["DecisionThreshold=0.3"], declared)
    assert cli.parse_parameters(["QualityThreshold=0.7"], declared) == {"QualityThreshold": "0.7"}


def create_price_pipeline(client) -> None:
    price = next(u for u in USE_CASES if u.name == "price-elasticity")
    body = render(definition_json(build_definition(price.pipeline_spec())), {
        "TeamName": "pricing", "PlatformPrefix": "mlp", "ClarifyEndpointPrefix": "mlp-pricing", "BucketName": "b",
        "ExecutionRoleArn": ROLE, "ModelPackageGroupName": GROUP, "KmsKeyArn": "k", **TRACKING,
        **region_images(REGION)})
    client.create_pipeline(PipelineName="prices", PipelineDefinition=body, RoleArn=ROLE)


def test_parameters_lists_the_deployed_pipelines_parameters(session, capsys):
    create_price_pipeline(session.client("sagemaker"))
    assert cli.main(["parameters", "--pipeline", "prices"], session=session) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["QualityThreshold"] == ["Float", "0.5"]
    assert rows["TrainingPath"][0] == "String" and "DecisionThreshold" not in rows


def test_an_aws_error_is_one_line_naming_it(session, capsys):
    assert cli.main(["parameters", "--pipeline", "missing"], session=session) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: AWS: ") and "missing" in err


def test_missing_credentials_are_one_line(monkeypatch, capsys, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["versions", "--group", GROUP, "--region", REGION]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "credentials" in err.lower()


@pytest.mark.parametrize("argv", [["--region", "ap-south-1", "versions", "--group", "g"],
                                  ["versions", "--group", "g", "--region", "ap-south-1"]])
def test_region_is_accepted_before_or_after_the_command(argv):
    assert cli.region_of(cli.build_parser().parse_args(argv)) == "ap-south-1"


def test_region_falls_back_to_aws_region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "sa-east-1")
    assert cli.region_of(cli.build_parser().parse_args(["versions", "--group", "g"])) == "sa-east-1"


def test_every_option_has_help(capsys):
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    for name, sub in subcommands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


def test_ctrl_c_while_following_says_the_execution_goes_on(monkeypatch, capsys):
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/prices/execution/abc"

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "follow", interrupted)
    assert cli.follow_until_interrupted(object(), arn) == 130
    err = capsys.readouterr().err
    assert "goes on in AWS" in err and f"follow --execution {arn}" in err


# Who registered and who decided: botocore Stubber on real clients, response shapes from the service model.

ACCOUNT = "123456789012"
CREATED = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)
EXECUTION_ROLE_SESSION = {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-fraud-execution/SageMaker",
                          "PrincipalId": "AROAEXECUTION:SageMaker"}
STUDIO_REVIEWER = {
    "UserProfileArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:user-profile/d-abc123/fraud-review-alice",
    "UserProfileName": "fraud-review-alice", "DomainId": "d-abc123",
    "IamIdentity": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-fraud-model-reviewer/SageMaker",
                    "PrincipalId": "AROAREVIEWER:SageMaker"},
}
SOURCE_IDENTITY_SESSION = {"IamIdentity": {
    "Arn": "arn:aws:sts::444455556666:assumed-role/mlp-fraud-model-reviewer/bob-session",
    "PrincipalId": "AROAREVIEWER:bob-session", "SourceIdentity": "bob@example.com"}}
PLAIN_ROLE_SESSION = {"IamIdentity": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ReleaseManager/carol",
                                      "PrincipalId": "AROARELEASE:carol"}}
STUDIO_BUILDER = {
    "UserProfileArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:user-profile/d-abc123/fraud-dana",
    "UserProfileName": "fraud-dana", "DomainId": "d-abc123",
    "IamIdentity": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-fraud-execution/SageMaker",
                    "PrincipalId": "AROAEXECUTION:SageMaker"},
}
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-fraud-execution/SageMaker"
# version, status, CreatedBy, LastModifiedBy, ApprovalDescription
DECIDED_VERSIONS = [
    (5, "Approved", {"IamIdentity": EXECUTION_ROLE_SESSION}, STUDIO_REVIEWER, "bias report checked"),
    (4, "Rejected", {"IamIdentity": EXECUTION_ROLE_SESSION}, SOURCE_IDENTITY_SESSION, "drift on amount"),
    (3, "Approved", STUDIO_BUILDER, PLAIN_ROLE_SESSION, "release 3"),
    (2, "Approved", {}, {}, "old approval"),
    (1, "PendingManualApproval", STUDIO_BUILDER, STUDIO_BUILDER, None),
]


def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


def stub_registry(stubber: Stubber, packages: list) -> None:
    """ListModelPackages then one DescribeModelPackage per version, as ``versions()`` calls them."""
    stubber.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [
            {"ModelPackageGroupName": GROUP, "ModelPackageVersion": version, "ModelPackageArn": package_arn(version),
             "CreationTime": CREATED, "ModelPackageStatus": "Completed", "ModelApprovalStatus": status}
            for version, status, *_ in packages]},
        {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"},
    )
    for version, status, created_by, modified_by, description in packages:
        detail = {
            "ModelPackageName": GROUP, "ModelPackageGroupName": GROUP, "ModelPackageVersion": version,
            "ModelPackageArn": package_arn(version), "CreationTime": CREATED, "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": status,
            "CreatedBy": created_by, "LastModifiedBy": modified_by,
            "LastModifiedTime": CREATED + datetime.timedelta(hours=version),
            "CustomerMetadataProperties": {"TestAUC": f"0.8{version}", "TrainingPath": "XGBoost"},
        }
        if description is not None:
            detail["ApprovalDescription"] = description
        stubber.add_response("describe_model_package", detail, {"ModelPackageName": package_arn(version)})


@pytest.fixture
def stubbed(monkeypatch):
    """A real boto3 session whose ``client`` hands out real SageMaker and STS clients under Stubber."""
    real = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    clients = {name: real.client(name) for name in ("sagemaker", "sts")}
    stubbers = {name: Stubber(client) for name, client in clients.items()}
    monkeypatch.setattr(real, "client", lambda name, **_: clients[name])
    for stubber in stubbers.values():
        stubber.activate()
    yield real, stubbers
    for stubber in stubbers.values():
        stubber.deactivate()


EXPECTED_WHO = [  # version, registered by, decided by
    (5, "mlp-fraud-execution/SageMaker", "fraud-review-alice"),
    (4, "mlp-fraud-execution/SageMaker", "bob@example.com"),
    (3, "fraud-dana", "ReleaseManager/carol"),
    (2, "unknown", "unknown"),
    (1, "fraud-dana", "-"),
]


def test_versions_rows_name_who_registered_and_who_decided(stubbed):
    session, stubbers = stubbed
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS)
    rows = cli.versions(session.client("sagemaker"), GROUP)
    stubbers["sagemaker"].assert_no_pending_responses()
    assert [(r["version"], r["registered_by"], r["decided_by"]) for r in rows] == EXPECTED_WHO
    assert [r["comment"] for r in rows] == ["bias report checked", "drift on amount", "release 3", "old approval", ""]


def columns(lines: list) -> list:
    """Each line cut at the header's column starts, as ``{header: cell}``."""
    header = lines[0]
    names = ["version", "approval", "test quality", "path", "reports", "registered by", "decided by", "comment"]
    starts = [header.index(name) for name in names]
    assert starts == sorted(starts), header
    return [{name: line[start:end].strip() for name, start, end in zip(names, [0] + starts[1:], starts[1:] + [None])}
            for line in lines[1:]]


def test_versions_table_shows_registered_by_and_decided_by_before_the_comment(stubbed, capsys):
    session, stubbers = stubbed
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS)
    assert cli.main(["versions", "--group", GROUP], session=session) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.rstrip("\n").split("\n")
    assert lines[0].split()[-5:] == ["registered", "by", "decided", "by", "comment"]
    table = columns(lines)
    assert [(int(c["version"]), c["registered by"], c["decided by"]) for c in table] == EXPECTED_WHO
    assert [(c["approval"], c["comment"]) for c in table] == [
        ("Approved", "bias report checked"), ("Rejected", "drift on amount"), ("Approved", "release 3"),
        ("Approved", "old approval"), ("PendingManualApproval", "")]
    assert table[0]["test quality"] == "auc 0.85" and table[0]["path"] == "XGBoost" and table[0]["reports"] == "--"


def test_moto_versions_show_its_placeholder_profile_and_no_decider_while_pending(session):
    client = session.client("sagemaker")  # moto 5 answers CreatedBy/LastModifiedBy with a placeholder profile
    register_versions(client, 2)
    assert cli.main(["approve", "--group", GROUP, "--version", "2", "--comment", "ok"], session=session) == 0
    rows = {row["version"]: (row["registered_by"], row["decided_by"]) for row in cli.versions(client, GROUP)}
    assert rows == {2: ("fake-user-profile-name", "fake-user-profile-name"), 1: ("fake-user-profile-name", "-")}


@pytest.mark.parametrize(
    ("context", "shown"),
    [
        (STUDIO_REVIEWER, "fraud-review-alice"),  # profile name wins over source identity and ARN
        ({"UserProfileName": "fraud-review-alice",
          "IamIdentity": {"Arn": CALLER, "SourceIdentity": "alice@example.com"}}, "fraud-review-alice"),
        (SOURCE_IDENTITY_SESSION, "bob@example.com"),
        ({"UserProfileName": "", "IamIdentity": {"Arn": CALLER, "SourceIdentity": "bob@example.com"}},
         "bob@example.com"),
        (PLAIN_ROLE_SESSION, "ReleaseManager/carol"),
        ({"IamIdentity": {"Arn": "arn:aws-cn:sts::111122223333:assumed-role/Reviewer/s-1", "SourceIdentity": ""}},
         "Reviewer/s-1"),
        ({"IamIdentity": {"Arn": "arn:aws:iam::111122223333:user/erin"}}, "arn:aws:iam::111122223333:user/erin"),
        ({"IamIdentity": {"Arn": "arn:aws:sts::111122223333:federated-user/frank"}},
         "arn:aws:sts::111122223333:federated-user/frank"),
        ({"IamIdentity": {"PrincipalId": "AROAONLY:session"}}, "unknown"),
        ({"DomainId": "d-abc123", "IamIdentity": {}}, "unknown"),
        ({}, "unknown"),
        (None, "unknown"),
    ],
    ids=["studio-profile", "profile-over-source-identity", "source-identity", "blank-profile-name",
         "assumed-role", "assumed-role-other-partition", "iam-user-whole", "federated-user-whole",
         "principal-id-only", "no-identity", "empty", "none"],
)
def test_who_shows_the_shortest_meaningful_name(context, shown):
    assert cli.who(context) == shown


def test_a_reviewers_approval_sets_status_and_description(stubbed, capsys):
    session, stubbers = stubbed
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS[-2:])
    stubbers["sagemaker"].add_response(
        "update_model_package", {"ModelPackageArn": package_arn(1)},
        {"ModelPackageArn": package_arn(1), "ModelApprovalStatus": "Approved",
         "ApprovalDescription": "bias and drift reports checked"})
    code = cli.main(["approve", "--group", GROUP, "--version", "1", "--comment", "bias and drift reports checked"],
                    session=session)
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (0, f"approved {package_arn(1)}\n", "")
    stubbers["sagemaker"].assert_no_pending_responses()


DENIED = {
    "approve": ("Approved", f"error: {CALLER} may not approve version 1 of {GROUP}: only the team's reviewers may "
                            'approve (see docs/security.md, "Reviewer approval")\n'),
    "reject": ("Rejected", f"error: {CALLER} may not reject version 1 of {GROUP}: only the team's members and "
                           'reviewers may reject (see docs/security.md, "Reviewer approval")\n'),
}


def stub_denied_update(stubber: Stubber, status: str) -> None:
    stubber.add_client_error(
        "update_model_package", service_error_code="AccessDeniedException", http_status_code=400,
        service_message=f"User: {CALLER} is not authorized to perform: sagemaker:UpdateModelPackage on resource: "
                        f"{package_arn(1)} because no identity-based policy allows the action",
        expected_params={"ModelPackageArn": package_arn(1), "ModelApprovalStatus": status,
                         "ApprovalDescription": "looks fine"})


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_a_non_reviewers_decision_is_one_line_naming_the_caller(stubbed, capsys, command):
    session, stubbers = stubbed
    status, line = DENIED[command]
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS[-1:])
    stub_denied_update(stubbers["sagemaker"], status)
    stubbers["sts"].add_response("get_caller_identity",
                                 {"UserId": "AROAEXECUTION:SageMaker", "Account": ACCOUNT, "Arn": CALLER}, {})
    code = cli.main([command, "--group", GROUP, "--version", "1", "--comment", "looks fine"], session=session)
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (3, "", line)
    assert "reviewers" in captured.err and "Traceback" not in captured.err
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_a_denied_decision_says_you_when_the_caller_is_unknown(stubbed, capsys, command):
    session, stubbers = stubbed
    status, line = DENIED[command]
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS[-1:])
    stub_denied_update(stubbers["sagemaker"], status)
    stubbers["sts"].add_client_error("get_caller_identity", service_error_code="ExpiredToken", http_status_code=403,
                                     service_message="The security token included in the request is expired")
    code = cli.main([command, "--group", GROUP, "--version", "1", "--comment", "looks fine"], session=session)
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (3, "", line.replace(f"error: {CALLER} ", "error: you ", 1))
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


def test_another_update_error_stays_an_aws_error(stubbed, capsys):
    session, stubbers = stubbed
    stub_registry(stubbers["sagemaker"], DECIDED_VERSIONS[-1:])
    stubbers["sagemaker"].add_client_error("update_model_package", service_error_code="ValidationException",
                                           service_message="version is being deleted", http_status_code=400)
    assert cli.main(["approve", "--group", GROUP, "--version", "1", "--comment", "ok"], session=session) == 3
    err = capsys.readouterr().err
    assert err == ("error: AWS: An error occurred (ValidationException) when calling the UpdateModelPackage "
                   "operation: version is being deleted\n")
    stubbers["sts"].assert_no_pending_responses()


def test_access_denied_reading_the_registry_is_not_a_reviewer_refusal(stubbed, capsys):
    session, stubbers = stubbed
    stubbers["sagemaker"].add_client_error("list_model_packages", service_error_code="AccessDeniedException",
                                           service_message="not authorized", http_status_code=400)
    assert cli.main(["approve", "--group", GROUP, "--version", "1", "--comment", "ok"], session=session) == 3
    assert capsys.readouterr().err == ("error: AWS: An error occurred (AccessDeniedException) when calling the "
                                       "ListModelPackages operation: not authorized\n")


@pytest.mark.parametrize("command", ["approve", "reject"])
@pytest.mark.parametrize("comment", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
def test_a_blank_comment_is_refused_before_any_aws_call(stubbed, capsys, command, comment):
    session, stubbers = stubbed  # no stubbed responses: any AWS call fails the command with exit 3
    assert cli.main([command, "--group", GROUP, "--version", "1", "--comment", comment], session=session) == 2
    assert capsys.readouterr().err == "error: a comment is required when approving or rejecting\n"
