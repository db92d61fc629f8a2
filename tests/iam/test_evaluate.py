"""The policy evaluator follows IAM's documented evaluation rules, case by case."""

from __future__ import annotations

import pytest

from tools.iam.evaluate import Request, evaluate, evaluate_access, resource_matches

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/team"
ENDPOINT = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlp-fraud-x"


def allow(action, resource, condition=None, **extra):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(action, resource, condition=None, **extra):
    return {**allow(action, resource, condition, **extra), "Effect": "Deny"}


def test_nothing_allowed_is_an_implicit_deny_and_an_explicit_deny_wins():
    request = Request("sagemaker:DeleteEndpoint", ENDPOINT)
    assert not evaluate([], request).allowed
    assert evaluate([allow("sagemaker:*", "*")], request).allowed
    decision = evaluate([allow("sagemaker:*", "*"), deny("sagemaker:DeleteEndpoint", ENDPOINT)], request)
    assert not decision.allowed and decision.denies


def test_actions_match_case_insensitively_with_wildcards_and_not_action():
    request = Request("sagemaker:DescribeEndpoint", ENDPOINT)
    assert evaluate([allow("SageMaker:describe*", "*")], request).allowed
    assert not evaluate([allow("sagemaker:Delete*", "*")], request).allowed
    assert evaluate([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], request).allowed
    assert not evaluate([{"Effect": "Allow", "NotAction": "sagemaker:*", "Resource": "*"}], request).allowed


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("*", ENDPOINT, True),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlp-fraud-*", ENDPOINT, True),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlp-fraudx-*", ENDPOINT, False),
        ("arn:aws:sagemaker:*:*:endpoint/*", ENDPOINT, True),
        # a pattern with all six segments matches segment by segment; a shorter one's wildcard covers the rest
        (f"arn:aws:sagemaker:*:{ACCOUNT}:endpoint/mlp-fraud-x", ENDPOINT, True),
        ("arn:aws:sagemaker:*:111122223333:endpoint/*", ENDPOINT, False),
        ("arn:aws:sagemaker:us-*", ENDPOINT, True),
        ("arn:aws:sns:*", ENDPOINT, False),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlp-fraud-?", ENDPOINT, True),
        (ENDPOINT, "*", False),
    ],
)
def test_resource_patterns_match_per_arn_segment(pattern, arn, matches):
    assert resource_matches(pattern, arn) is matches


def test_not_resource_excludes_what_it_names():
    statement = {"Effect": "Allow", "Action": "sagemaker:*", "NotResource": ENDPOINT}
    assert not evaluate([statement], Request("sagemaker:DeleteEndpoint", ENDPOINT)).allowed
    assert evaluate([statement], Request("sagemaker:DeleteEndpoint", ENDPOINT + "2")).allowed


def test_a_missing_key_fails_positive_operators_and_passes_negated_and_if_exists_ones():
    tagged = {"aws:ResourceTag/mlops:team": "fraud"}
    untagged: dict = {}
    equals = allow("sagemaker:*", "*", {"StringEquals": {"aws:ResourceTag/mlops:team": "fraud"}})
    not_equals = allow("sagemaker:*", "*", {"StringNotEquals": {"aws:ResourceTag/mlops:team": "churn"}})
    if_exists = allow("sagemaker:*", "*", {"StringEqualsIfExists": {"aws:ResourceTag/mlops:team": "fraud"}})
    for statement, with_tag, without_tag in ((equals, True, False), (not_equals, True, True), (if_exists, True, True)):
        assert evaluate([statement], Request("sagemaker:DeleteEndpoint", ENDPOINT, tagged)).allowed is with_tag
        assert evaluate([statement], Request("sagemaker:DeleteEndpoint", ENDPOINT, untagged)).allowed is without_tag
    other = {"aws:ResourceTag/mlops:team": "churn"}
    assert not evaluate([if_exists], Request("sagemaker:DeleteEndpoint", ENDPOINT, other)).allowed
    assert not evaluate([not_equals], Request("sagemaker:DeleteEndpoint", ENDPOINT, other)).allowed


def test_context_keys_are_case_insensitive_and_values_are_not_unless_ignore_case():
    request = Request("sagemaker:DeleteEndpoint", ENDPOINT, {"AWS:ResourceTag/mlops:keep-alive": "TRUE"})
    assert not evaluate([allow("sagemaker:*", "*", {"StringEquals": {"aws:resourcetag/mlops:keep-alive": "true"}})],
                        request).allowed
    assert evaluate([allow("sagemaker:*", "*", {"StringEqualsIgnoreCase": {"aws:ResourceTag/mlops:keep-alive": "true"}})],
                    request).allowed


def test_set_operators_and_like_and_null():
    keys = {"aws:TagKeys": ["mlops:team", "owner"]}
    for_all = allow("sagemaker:AddTags", "*", {"ForAllValues:StringEquals": {"aws:TagKeys": ["mlops:team", "owner"]}})
    for_any = allow("sagemaker:AddTags", "*", {"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}})
    assert evaluate([for_all], Request("sagemaker:AddTags", "*", keys)).allowed
    assert not evaluate([for_all], Request("sagemaker:AddTags", "*", {"aws:TagKeys": ["mlops:team", "x"]})).allowed
    assert evaluate([for_all], Request("sagemaker:AddTags", "*")).allowed  # no tag keys at all
    assert evaluate([for_any], Request("sagemaker:AddTags", "*", keys)).allowed
    like = allow("sns:Publish", "*", {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:*:{ACCOUNT}:alarm:mlp-fraud-*"}})
    alarm = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:mlp-fraud-deploy-dead-letters"
    assert evaluate([like], Request("sns:Publish", "*", {"aws:SourceArn": alarm})).allowed
    assert not evaluate([like], Request("sns:Publish", "*", {"aws:SourceArn": alarm.replace("fraud", "churn")})).allowed
    null = allow("sagemaker:*", "*", {"Null": {"aws:RequestTag/mlops:team": "false"}})
    assert evaluate([null], Request("sagemaker:CreateEndpoint", ENDPOINT, {"aws:RequestTag/mlops:team": "fraud"})).allowed
    assert not evaluate([null], Request("sagemaker:CreateEndpoint", ENDPOINT)).allowed


def test_the_principal_counts_only_in_resource_policies():
    statement = allow("sns:Publish", "*", Principal={"Service": "cloudwatch.amazonaws.com"})
    request = Request("sns:Publish", "*", principal_service="cloudwatch.amazonaws.com")
    assert evaluate([statement], request, resource_policy=True).allowed
    other = Request("sns:Publish", "*", principal_service="events.amazonaws.com")
    assert not evaluate([statement], other, resource_policy=True).allowed


def test_an_account_principal_delegates_to_identity_policies():
    root_grant = allow("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    request = Request("kms:GenerateDataKey", "arn:aws:kms:us-east-1:123456789012:key/k", principal_arn=ROLE)
    # the key policy alone grants a role of the account nothing ...
    assert not evaluate([root_grant], request, resource_policy=True).allowed
    assert not evaluate_access([], [root_grant], request, key_policy=True).allowed
    # ... it lets the role's own policy decide
    assert evaluate_access([allow("kms:GenerateDataKey", "*")], [root_grant], request, key_policy=True).allowed
    # a key policy that does not delegate ignores the identity policy
    assert not evaluate_access([allow("kms:GenerateDataKey", "*")], [], request, key_policy=True).allowed


def test_a_resource_policy_deny_wins_over_an_identity_allow():
    bucket = "arn:aws:s3:::team-bucket"
    only_team = deny("s3:GetObject*", f"{bucket}/*", {"ArnNotEquals": {"aws:PrincipalArn": ROLE}}, Principal={"AWS": "*"})
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    request = Request("s3:GetObject", f"{bucket}/data.csv", principal_arn=admin)
    assert not evaluate_access([allow("s3:*", "*")], [only_team], request).allowed
    own = Request("s3:GetObject", f"{bucket}/data.csv", principal_arn=ROLE)
    assert evaluate_access([allow("s3:*", "*")], [only_team], own).allowed


def test_a_key_the_reference_does_not_list_for_the_action_is_absent_whatever_the_context_says():
    """A condition key counts only where the Service Authorization Reference lists it for the action or
    for the resource type it acts on; a request context carrying it anyway is read without it."""
    quota = {"servicequotas:service": "sagemaker"}
    scoped = allow("servicequotas:*", "*", {"StringEquals": {"servicequotas:service": "sagemaker"}})
    # listed for RequestServiceQuotaIncrease, not (in AWS's published reference) for GetServiceQuota
    assert evaluate([scoped], Request("servicequotas:RequestServiceQuotaIncrease", "*", quota)).allowed
    assert not evaluate([scoped], Request("servicequotas:GetServiceQuota", "*", quota)).allowed
    # the scalable-target keys of Application Auto Scaling are not listed for TagResource
    target = f"arn:aws:application-autoscaling:us-east-1:{ACCOUNT}:scalable-target/056ff2f5d8ba4a2e90b1f5e3c4ac7c4e"
    dimension = {"application-autoscaling:service-namespace": "sagemaker", "aws:RequestTag/mlops:team": "fraud"}
    namespaced = allow("application-autoscaling:*", "*",
                       {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}})
    assert evaluate([namespaced], Request("application-autoscaling:RegisterScalableTarget", target, dimension)).allowed
    assert not evaluate([namespaced], Request("application-autoscaling:TagResource", target, dimension)).allowed
    # tags: aws:RequestTag where the action lists it, aws:ResourceTag where the resource type does
    tagged = allow("application-autoscaling:*", "*", {"StringEquals": {"aws:RequestTag/mlops:team": "fraud"}})
    assert evaluate([tagged], Request("application-autoscaling:TagResource", target, dimension)).allowed
    assert not evaluate([tagged], Request("application-autoscaling:PutScalingPolicy", target, dimension)).allowed
    owned = allow("application-autoscaling:*", "*", {"StringEquals": {"aws:ResourceTag/mlops:team": "fraud"}})
    resource_tag = {"aws:ResourceTag/mlops:team": "fraud"}
    assert evaluate([owned], Request("application-autoscaling:PutScalingPolicy", target, resource_tag)).allowed
    assert not evaluate([owned], Request("application-autoscaling:DescribeScalableTargets", "*", resource_tag)).allowed
    # global keys other than the tag keys are set on every request
    transport = allow("servicequotas:*", "*", {"Bool": {"aws:SecureTransport": "true"}})
    assert evaluate([transport], Request("servicequotas:GetServiceQuota", "*")).allowed
    # a key no reference entry lists at all (a typo, a made-up key) never matches
    typo = allow("sagemaker:*", "*", {"StringEquals": {"sagemaker:ResourceTeam": "fraud"}})
    assert not evaluate([typo], Request("sagemaker:DeleteEndpoint", ENDPOINT, {"sagemaker:ResourceTeam": "fraud"})).allowed
