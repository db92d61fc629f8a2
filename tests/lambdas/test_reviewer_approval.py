"""Reviewer approval in the deploy Lambda: only a version approved, with a description, by a configured reviewer
who did not build it is deployed; any other approval alerts and changes nothing; rejections always roll back.

botocore Stubber (moto records no `CreatedBy`/`LastModifiedBy`): the registry, the pipeline execution and the
endpoint answer in the service model's shapes; the calls the real `deploy.reconcile` makes are the expectations.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY
from deploy_on_approval import deploy, handler
from deploy_on_approval.approval import ApprovalRules, check_approval, identities, pipeline_starter, who
from deploy_on_approval.deploy import Action
from deploy_on_approval.messages import parse_message
from deploy_on_approval.settings import DeploySettings

from common.environment import SettingsError
from tests.lambdas.test_deploy_on_approval import (
    ACCOUNT,
    ENDPOINT,
    GROUP,
    REGION,
    compact_body,
    config_name,
    endpoint_response,
    expect_update_to,
    make_settings,
    package_arn,
    sqs_record,
    stubbed,
)

RULES_ENV = json.dumps({"reviewer_role": "mlp-fraud-model-reviewer", "users": ["carol"],
                        "role_arns": [f"arn:aws:iam::{ACCOUNT}:role/risk/ModelRisk"]})
RULES = ApprovalRules.from_env({"APPROVAL_RULES": RULES_ENV})
TEAM_ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-team-fraud-ExecutionRole-ABC/SageMaker"
REVIEWER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlp-fraud-model-reviewer/SageMaker"
RISK_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/ModelRisk/rita"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{GROUP}/execution/abc123"
LIST_REQUEST = {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
                "SortOrder": "Descending"}


def context(arn: str, profile: str | None = None, source: str | None = None) -> dict:
    identity = {"Arn": arn, "PrincipalId": "AROAEXAMPLE:session"}
    if source:
        identity["SourceIdentity"] = source
    result = {"IamIdentity": identity}
    if profile:
        result.update(UserProfileName=profile, UserProfileArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:user-profile/"
                      f"d-abc/{profile}", DomainId="d-abc")
    return result


CAROL_REVIEWS = context(REVIEWER_SESSION, profile="fraud-review-carol")
PIPELINE = context(TEAM_ROLE_SESSION)
ALICE_STARTS = context(TEAM_ROLE_SESSION, profile="fraud-alice")


def package(version: int, approver: dict | None, *, description: str = "checked the AUC and the bias report",
            creator: dict | None = None, status: str = "Approved", execution: str | None = EXECUTION) -> dict:
    response = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageArn": package_arn(version),
        "CreationTime": datetime(2026, 1, version, tzinfo=timezone.utc),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "ModelApprovalStatus": status,
        "CreatedBy": creator if creator is not None else PIPELINE,
        "CustomerMetadataProperties": {"PipelineExecutionArn": execution} if execution else {},
    }
    if approver is not None:
        response["LastModifiedBy"] = approver
    if description:
        response["ApprovalDescription"] = description
    return response


def summaries(*versions: int) -> dict:
    return {"ModelPackageSummaryList": [
        {"ModelPackageGroupName": GROUP, "ModelPackageVersion": v, "ModelPackageArn": package_arn(v),
         "CreationTime": datetime(2026, 1, v, tzinfo=timezone.utc), "ModelPackageStatus": "Completed",
         "ModelApprovalStatus": "Approved"} for v in versions]}


def expect_judged(stub, version: int, approver: dict | None, starter: dict | None = ALICE_STARTS, **fields) -> None:
    stub.add_response("describe_model_package", package(version, approver, **fields),
                      {"ModelPackageName": package_arn(version)})
    if fields.get("execution", EXECUTION):
        stub.add_response("describe_pipeline_execution", {"CreatedBy": starter} if starter else {},
                          {"PipelineExecutionArn": fields.get("execution", EXECUTION)})


def reviewed_settings(topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts") -> DeploySettings:
    settings = make_settings(topic_arn)
    return DeploySettings(**{**settings.__dict__, "approval_rules": RULES})


def reconcile(sagemaker, sns, version: int, status: str = "Approved"):
    settings = reviewed_settings()
    change = parse_message(compact_body(GROUP, version, status))
    return deploy.reconcile(sagemaker, sns, settings, settings.for_group(GROUP), change)


def expect_alert(sns_stub, version: int, approver: str, rule_words: str) -> None:
    def matches(message: str) -> bool:
        body = json.loads(message)
        return (body["version"] == version and body["approved_by"] == approver and rule_words in body["rule_broken"]
                and body["model_package_arn"] == package_arn(version))

    class Message:
        def __eq__(self, other):
            return matches(other)

    sns_stub.add_response("publish", {"MessageId": "1"}, {
        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts",
        "Subject": f"{GROUP} v{version}: approval not deployed", "Message": Message()})


# --- the rule itself ------------------------------------------------------------------------------------------


def test_a_reviewer_profile_that_did_not_build_the_version_may_deploy_it():
    verdict = check_approval(package(2, CAROL_REVIEWS), RULES, ALICE_STARTS)
    assert (verdict.allowed, verdict.approver, verdict.description) == (
        True, "fraud-review-carol", "checked the AUC and the bias report")


def test_a_listed_role_with_a_path_approves_by_its_name():
    verdict = check_approval(package(2, context(RISK_SESSION, source="rita@example.com")), RULES, ALICE_STARTS)
    assert (verdict.allowed, verdict.approver) == (True, "rita@example.com")


@pytest.mark.parametrize(("approver", "creator", "starter", "rule"), [
    # the builder: same Studio user as the pipeline's starter, member and reviewer profiles of one person
    (CAROL_REVIEWS, PIPELINE, context(TEAM_ROLE_SESSION, profile="fraud-carol"), "the person who built it (carol)"),
    # the builder: same Studio user as the version's creator
    (CAROL_REVIEWS, context(TEAM_ROLE_SESSION, profile="fraud-carol"), None, "the person who built it (carol)"),
    # the builder: the same source identity behind a listed role and the starter
    (context(RISK_SESSION, source="rita@example.com"), PIPELINE, context(TEAM_ROLE_SESSION, source="rita@example.com"),
     "the person who built it (rita@example.com)"),
    # not a reviewer: the team's own role (which IAM forbids to approve), an administrator, another account's role
    (context(TEAM_ROLE_SESSION, profile="fraud-bob"), PIPELINE, ALICE_STARTS, "not the team's reviewer role"),
    (context(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jo"), PIPELINE, ALICE_STARTS, "not the team's reviewer role"),
    (context("arn:aws:sts::999988887777:assumed-role/mlp-fraud-model-reviewer/x"), PIPELINE, ALICE_STARTS,
     "not the team's reviewer role"),
    # a reviewer-role profile of a user the config does not list
    (context(REVIEWER_SESSION, profile="fraud-review-zoe"), PIPELINE, ALICE_STARTS, "fraud-review-zoe is not"),
    # no IAM session recorded: the approver is unknown
    ({}, PIPELINE, ALICE_STARTS, "not recorded as a role session"),
    (context(f"arn:aws:iam::{ACCOUNT}:user/jo"), PIPELINE, ALICE_STARTS, "not recorded as a role session"),
])
def test_approvals_against_the_rules_are_refused_with_the_rule(approver, creator, starter, rule):
    verdict = check_approval(package(2, approver, creator=creator), RULES, starter)
    assert not verdict.allowed
    assert rule in verdict.rule


@pytest.mark.parametrize("description", ["", "   "])
def test_a_reviewers_approval_without_a_description_is_refused(description):
    verdict = check_approval(package(2, CAROL_REVIEWS, description=description), RULES, ALICE_STARTS)
    assert (verdict.allowed, verdict.rule) == (False, "a reviewer's approval needs an ApprovalDescription")


def test_who_and_identities_name_the_person():
    assert who(CAROL_REVIEWS) == "fraud-review-carol"
    assert who(context(RISK_SESSION, source="rita")) == "rita"
    assert who(context(RISK_SESSION)) == RISK_SESSION
    assert who({}) == "unknown"
    assert identities(CAROL_REVIEWS) == {"studio:carol", f"iam:{REVIEWER_SESSION}"}
    assert identities(context(TEAM_ROLE_SESSION, profile="churn-carol")) & identities(CAROL_REVIEWS) == {"studio:carol"}


def test_the_rules_come_from_the_environment_or_are_refused():
    assert ApprovalRules.from_env({}) is None
    assert RULES.reviewer_roles(ACCOUNT) == {(ACCOUNT, "mlp-fraud-model-reviewer"), (ACCOUNT, "ModelRisk")}
    with pytest.raises(SettingsError, match="APPROVAL_RULES is not the JSON object"):
        ApprovalRules.from_env({"APPROVAL_RULES": '{"users": []}'})
    with pytest.raises(SettingsError, match="not an IAM role ARN"):
        ApprovalRules.from_env({"APPROVAL_RULES": json.dumps(
            {"reviewer_role": "r", "users": [], "role_arns": ["arn:aws:iam::123456789012:user/x"]})})


# --- the pipeline execution's starter --------------------------------------------------------------------------


def test_the_starter_of_another_accounts_execution_is_not_asked():
    other = package(2, CAROL_REVIEWS, execution=EXECUTION.replace(ACCOUNT, "999988887777"))
    with stubbed() as (sagemaker, _stub, _sns, _):
        assert pipeline_starter(sagemaker, other) is None


def test_a_deleted_execution_has_no_starter_but_other_errors_fail_loudly():
    with stubbed() as (sagemaker, stub, _sns, _):
        stub.add_client_error("describe_pipeline_execution", "ResourceNotFound", "gone",
                              expected_params={"PipelineExecutionArn": EXECUTION})
        assert pipeline_starter(sagemaker, package(2, CAROL_REVIEWS)) is None
        stub.add_client_error("describe_pipeline_execution", "AccessDeniedException", "no",
                              expected_params={"PipelineExecutionArn": EXECUTION})
        with pytest.raises(ClientError):
            pipeline_starter(sagemaker, package(2, CAROL_REVIEWS))


# --- through the real reconcile ----------------------------------------------------------------------------------


def test_a_reviewers_approval_deploys_as_before_and_names_the_reviewer():
    with stubbed() as (sagemaker, stub, sns, _):
        expect_judged(stub, 2, CAROL_REVIEWS)
        stub.add_response("list_model_packages", summaries(2, 1), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(1)), {"EndpointName": ENDPOINT})
        expect_update_to(stub, 2, ANY)

        outcome = reconcile(sagemaker, sns, 2)

    assert (outcome.action, outcome.version, outcome.approved_by, outcome.approval_description,
            outcome.approval_refused) == (Action.UPDATED, 2, "fraud-review-carol", "checked the AUC and the bias report",
                                          None)


@pytest.mark.parametrize(("approver", "starter", "shown", "rule"), [
    (CAROL_REVIEWS, context(TEAM_ROLE_SESSION, profile="fraud-carol"), "fraud-review-carol", "built it"),
    (context(TEAM_ROLE_SESSION, profile="fraud-bob"), ALICE_STARTS, "fraud-bob", "not the team's reviewer role"),
])
def test_an_approval_by_its_builder_or_a_non_reviewer_alerts_and_the_endpoint_keeps_the_reviewed_version(
        approver, starter, shown, rule):
    with stubbed() as (sagemaker, stub, sns, sns_stub):
        expect_judged(stub, 3, approver, starter=starter)
        expect_alert(sns_stub, 3, shown, rule)
        stub.add_response("list_model_packages", summaries(3, 2), LIST_REQUEST)
        expect_judged(stub, 2, CAROL_REVIEWS)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response("list_tags", {"Tags": [{"Key": "mlops:intended-endpoint-config", "Value": config_name(2)}]},
                          {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"})

        outcome = reconcile(sagemaker, sns, 3)

    # No update_model_package: the refused version is never changed back; no endpoint write either.
    assert (outcome.action, outcome.version, outcome.approved_by) == (Action.ALREADY_SERVING, 2, "fraud-review-carol")
    assert rule in outcome.approval_refused


def test_a_refused_first_approval_creates_no_endpoint():
    with stubbed() as (sagemaker, stub, sns, sns_stub):
        expect_judged(stub, 1, CAROL_REVIEWS, description="")
        expect_alert(sns_stub, 1, "fraud-review-carol", "ApprovalDescription")
        stub.add_response("list_model_packages", summaries(1), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", "x"), {"EndpointName": ENDPOINT})

        outcome = reconcile(sagemaker, sns, 1)

    assert (outcome.action, outcome.version) == (Action.NO_APPROVED_VERSION, None)


def test_a_rejection_by_a_team_member_rolls_back_to_the_newest_reviewed_version():
    with stubbed() as (sagemaker, stub, sns, _):
        stub.add_response("list_model_packages", summaries(2, 1), LIST_REQUEST)
        expect_judged(stub, 2, CAROL_REVIEWS)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(3)), {"EndpointName": ENDPOINT})
        expect_update_to(stub, 2, ANY)

        outcome = reconcile(sagemaker, sns, 3, "Rejected")

    assert (outcome.action, outcome.version, outcome.approval_refused) == (Action.UPDATED, 2, None)


def test_the_outcome_log_line_names_the_reviewer_and_the_description(caplog):
    settings = reviewed_settings()
    with stubbed() as (sagemaker, stub, sns, _), caplog.at_level(logging.INFO):
        expect_judged(stub, 2, CAROL_REVIEWS)
        stub.add_response("list_model_packages", summaries(2), LIST_REQUEST)
        stub.add_response("describe_endpoint", endpoint_response("InService", config_name(2)), {"EndpointName": ENDPOINT})
        stub.add_response("list_tags", {"Tags": [{"Key": "mlops:intended-endpoint-config", "Value": config_name(2)}]},
                          {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"})
        result = handler.process_batch([sqs_record(compact_body(GROUP, 2, "Approved"))], sagemaker, sns, settings)

    assert result == {"batchItemFailures": []}
    (line,) = [r for r in caplog.records if r.getMessage().startswith("deploy ")]
    assert (line.approved_by, line.approval_description, line.approval_refused) == (
        "fraud-review-carol", "checked the AUC and the bias report", None)
