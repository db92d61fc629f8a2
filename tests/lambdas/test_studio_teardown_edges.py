"""The Studio teardown's reports, word for word where an operator reads them (the timeout message that
CloudFormation shows, each pass's actions and what remains), and the paths only AWS produces: empty
listing pages, profiles already going, a failed domain without a reason, a group with no rules.
botocore Stubber: moto lacks Studio apps, spaces and profiles."""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import Stubber
from studio_teardown import handler, logic

REGION = "us-east-1"
DOMAIN = "d-abc123def456"
VPC = "vpc-0123456789abcdef0"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/mlp-team-fraud/abc"
STARTED = 1_000_000
TEAM = ("fraud-alice", "fraud-bob")
LISTING = {"DomainIdEquals": DOMAIN, "MaxResults": 100}


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name=REGION, config=logic.client_config())
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name=REGION, config=logic.client_config())
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def app(owner, app_type, name, status, space=False):
    entry = {"DomainId": DOMAIN, "AppType": app_type, "AppName": name, "Status": status}
    entry["SpaceName" if space else "UserProfileName"] = owner
    return entry


def expect_empty_apps_and_spaces(stub):
    # AWS leaves the list out of an empty page.
    stub.add_response("list_apps", {}, LISTING)
    stub.add_response("list_spaces", {}, LISTING)


def team_properties():
    return {"DomainId": DOMAIN, "Scope": "user-profiles", "UserProfileNames": list(TEAM), "HomeEfsOnDelete": "retain"}


def cfn_event(request_type, properties=None, **extra):
    body = {
        "RequestType": request_type,
        "RequestId": "req-1",
        "LogicalResourceId": "StudioTeardownResource",
        "StackId": STACK_ID,
        "ResourceType": "Custom::StudioTeardown",
    }
    if properties is not None:
        body["ResourceProperties"] = properties
    if request_type != "Create":
        body["PhysicalResourceId"] = f"studio-teardown/{DOMAIN}/StudioTeardownResource"
    body.update(extra)
    return body


DOMAIN_WITH_VOLUME = logic.TeardownTarget(DOMAIN, None, delete_home_efs=True, vpc_id=VPC)


# --- the timeout message CloudFormation shows --------------------------------------------------------


def test_the_timeout_message_names_the_target_what_is_left_and_what_to_do(sagemaker):
    client, stub = sagemaker
    stub.add_response("list_apps", {"Apps": [app("fraud-alice", "JupyterServer", "default", "Deleting")]}, LISTING)
    stub.add_response(
        "list_spaces",
        {
            "Spaces": [
                {
                    "DomainId": DOMAIN,
                    "SpaceName": "bob-editor",
                    "Status": "Deleting",
                    "OwnershipSettingsSummary": {"OwnerUserProfileName": "fraud-bob"},
                }
            ]
        },
        LISTING,
    )

    with pytest.raises(handler.TeardownTimedOut) as error:
        handler.check(
            cfn_event("Delete", team_properties(), Data={"Teardown": "run", "StartedAt": str(STARTED)}),
            sagemaker_factory=lambda: client,
            now=lambda: STARTED + 600,
            deadline=600,
        )

    assert str(error.value) == (
        "teardown of user profiles fraud-alice, fraud-bob of domain d-abc123def456 did not finish within 10 minutes; "
        "still there: app JupyterServer/default of user profile fraud-alice (Deleting); space bob-editor (Deleting). "
        "Delete these in the SageMaker console (or wait until they are gone), then delete the stack again."
    )


def test_one_second_before_the_deadline_the_teardown_goes_on(sagemaker):
    client, stub = sagemaker
    stub.add_response("list_apps", {"Apps": [app("fraud-alice", "JupyterServer", "default", "Deleting")]}, LISTING)
    stub.add_response("list_spaces", {}, LISTING)

    result = handler.check(
        cfn_event("Delete", team_properties(), Data={"Teardown": "run", "StartedAt": str(STARTED)}),
        sagemaker_factory=lambda: client,
        now=lambda: STARTED + 599,
        deadline=600,
    )

    assert result == {"IsComplete": False}


def test_without_a_recorded_start_the_pass_counts_as_the_first(sagemaker, monkeypatch):
    client, stub = sagemaker
    monkeypatch.setenv(handler.DEADLINE_ENV, "60")
    stub.add_response("list_apps", {"Apps": [app("fraud-alice", "JupyterServer", "default", "Deleting")]}, LISTING)
    stub.add_response("list_spaces", {}, LISTING)

    assert handler.check(
        cfn_event("Delete", team_properties(), Data={"Teardown": "run"}),
        sagemaker_factory=lambda: client,
        now=lambda: STARTED,
    ) == {"IsComplete": False}


def test_the_deadline_is_forty_minutes_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv(handler.DEADLINE_ENV, raising=False)
    assert handler.deadline_seconds() == 2400


# --- what a pass reports -------------------------------------------------------------------------------


def test_leftover_profiles_are_deleted_unless_already_going_and_each_is_reported(sagemaker):
    client, stub = sagemaker
    expect_empty_apps_and_spaces(stub)
    stub.add_response(
        "list_user_profiles",
        {
            "UserProfiles": [
                {"DomainId": DOMAIN, "UserProfileName": "going", "Status": "Deleting"},
                {"DomainId": DOMAIN, "UserProfileName": "stray", "Status": "InService"},
                {"DomainId": DOMAIN, "UserProfileName": "vanished", "Status": "InService"},
                {"DomainId": DOMAIN, "UserProfileName": "busy", "Status": "InService"},
            ]
        },
        LISTING,
    )
    stub.add_response("delete_user_profile", {}, {"DomainId": DOMAIN, "UserProfileName": "stray"})
    stub.add_client_error(
        "delete_user_profile",
        "ResourceNotFound",
        "gone",
        expected_params={"DomainId": DOMAIN, "UserProfileName": "vanished"},
    )
    stub.add_client_error(
        "delete_user_profile",
        "ResourceInUse",
        "has apps",
        expected_params={"DomainId": DOMAIN, "UserProfileName": "busy"},
    )

    result = logic.teardown_step(client, None, logic.TeardownTarget(DOMAIN, None))

    assert result.actions == [
        "deleting user profile stray (InService)",
        "user profile vanished (InService): already gone",
    ]
    assert result.remaining == [
        "user profile going (Deleting)",
        "user profile stray (delete requested)",
        "user profile busy (InService): ResourceInUse (has apps), retried on the next check",
    ]


def test_apps_and_spaces_are_reported_with_their_owner_and_status(sagemaker):
    client, stub = sagemaker
    nameless = {"DomainId": DOMAIN, "AppType": "JupyterServer", "AppName": "default", "Status": "Deleting"}
    stub.add_response(
        "list_apps",
        {
            "Apps": [
                app("fraud-alice", "JupyterServer", "old", "Deleted"),
                nameless,
                app("lab", "JupyterLab", "default", "InService", space=True),
            ]
        },
        LISTING,
    )
    stub.add_response(
        "list_spaces", {"Spaces": [{"DomainId": DOMAIN, "SpaceName": "lab", "Status": "InService"}]}, LISTING
    )
    stub.add_response(
        "delete_app", {}, {"DomainId": DOMAIN, "AppType": "JupyterLab", "AppName": "default", "SpaceName": "lab"}
    )

    result = logic.teardown_step(client, None, logic.TeardownTarget(DOMAIN, None))

    assert result.actions == ["deleting app JupyterLab/default of space lab (InService)"]
    assert result.remaining == [
        "app JupyterServer/default of user profile ? (Deleting)",
        "app JupyterLab/default of space lab (delete requested)",
        "space lab (InService): waiting for its apps",
    ]


def test_deleting_the_domain_is_reported_and_a_failure_without_reason_says_so(sagemaker):
    client, stub = sagemaker
    expect_empty_apps_and_spaces(stub)
    stub.add_response("list_user_profiles", {}, LISTING)
    stub.add_response("describe_domain", {"DomainId": DOMAIN, "Status": "Delete_Failed"}, {"DomainId": DOMAIN})
    stub.add_response("delete_domain", {}, {"DomainId": DOMAIN, "RetentionPolicy": {"HomeEfsFileSystem": "Delete"}})

    result = logic.teardown_step(client, None, DOMAIN_WITH_VOLUME)

    assert result.actions == [f"deleting (home EFS volume too) domain {DOMAIN} (Delete_Failed): no reason given"]
    assert result.remaining == [f"domain {DOMAIN} (delete requested)"]


def test_nfs_groups_are_revoked_then_deleted_and_each_step_is_reported(sagemaker, ec2):
    client, stub = sagemaker
    net, net_stub = ec2
    expect_empty_apps_and_spaces(stub)
    stub.add_response("list_user_profiles", {}, LISTING)
    stub.add_client_error("describe_domain", "ResourceNotFound", "gone", expected_params={"DomainId": DOMAIN})
    rule = {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-0b"}]}
    groups = [
        {
            "GroupId": "sg-0a",
            "GroupName": f"security-group-for-inbound-nfs-{DOMAIN}",
            "VpcId": VPC,
            "IpPermissions": [rule],
            "IpPermissionsEgress": [rule],
        },
        {"GroupId": "sg-0b", "GroupName": f"security-group-for-outbound-nfs-{DOMAIN}", "VpcId": VPC},
    ]
    net_stub.add_response("describe_security_groups", {"SecurityGroups": groups})
    net_stub.add_response("revoke_security_group_ingress", {}, {"GroupId": "sg-0a", "IpPermissions": [rule]})
    net_stub.add_client_error("revoke_security_group_egress", "InvalidPermission.NotFound", "no such rule")
    net_stub.add_response("delete_security_group", {}, {"GroupId": "sg-0a"})
    net_stub.add_client_error("delete_security_group", "DependencyViolation", "in use by an interface")

    result = logic.teardown_step(client, net, DOMAIN_WITH_VOLUME)

    label = f"security group sg-0a (security-group-for-inbound-nfs-{DOMAIN})"
    assert result.actions == [
        f"revoking {label} inbound rules",
        f"{label} outbound rules: already gone",
        f"deleted {label}",
    ]
    assert result.remaining == [
        f"security group sg-0b (security-group-for-outbound-nfs-{DOMAIN}): DependencyViolation (in use by an "
        "interface), retried on the next check"
    ]


def test_no_nfs_group_left_means_done(sagemaker, ec2):
    client, stub = sagemaker
    net, net_stub = ec2
    expect_empty_apps_and_spaces(stub)
    stub.add_response("list_user_profiles", {}, LISTING)
    stub.add_client_error("describe_domain", "ResourceNotFound", "gone", expected_params={"DomainId": DOMAIN})
    net_stub.add_response("describe_security_groups", {})

    assert logic.teardown_step(client, net, DOMAIN_WITH_VOLUME).done


def test_a_pass_is_logged_with_the_target_its_actions_and_what_remains(sagemaker, caplog):
    client, stub = sagemaker
    stub.add_response("list_apps", {"Apps": [app("fraud-alice", "JupyterServer", "default", "Deleting")]}, LISTING)
    stub.add_response("list_spaces", {}, LISTING)

    with caplog.at_level(logging.INFO):
        handler.check(
            cfn_event("Delete", team_properties(), Data={"Teardown": "run", "StartedAt": str(STARTED)}),
            sagemaker_factory=lambda: client,
            now=lambda: STARTED,
            deadline=600,
        )

    [record] = [r for r in caplog.records if r.getMessage() == "teardown pass"]
    assert (record.target, record.actions, record.remaining) == (
        f"user profiles fraud-alice, fraud-bob of domain {DOMAIN}",
        [],
        ["app JupyterServer/default of user profile fraud-alice (Deleting)"],
    )


# --- onEvent, the decision and the entry points ----------------------------------------------------


def test_the_delete_decision_is_logged_with_the_stack_status(caplog):
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cloudformation) as stub, caplog.at_level(logging.INFO):
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "mlp-team-fraud",
                        "StackStatus": "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                        "CreationTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            {"StackName": STACK_ID},
        )
        result = handler.decide(cfn_event("Delete", team_properties()), lambda: cloudformation, now=lambda: 5.0)

    assert result["Data"] == {
        "Teardown": "skip",
        "StackStatus": "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "StartedAt": "5",
    }
    [record] = [r for r in caplog.records if r.getMessage() == "teardown decision"]
    assert (record.teardown, record.stack_status) == ("skip", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")


def test_an_event_without_properties_is_refused_naming_the_domain_id():
    with pytest.raises(ValueError, match=r"^resource property DomainId is required$"):
        handler.decide(cfn_event("Create"), cloudformation_factory=lambda: None)


def test_an_unknown_request_type_is_refused():
    with pytest.raises(ValueError, match=r"^unknown RequestType 'Replace'$"):
        handler.decide(cfn_event("Replace", team_properties()), cloudformation_factory=lambda: None)


def test_the_physical_id_is_stable_even_without_a_domain():
    assert handler.physical_resource_id({"LogicalResourceId": "Teardown"}) == "studio-teardown/unknown-domain/Teardown"


def test_the_lambda_entry_points_answer_create_without_any_call():
    assert handler.on_event(cfn_event("Create", team_properties()), None) == {
        "PhysicalResourceId": f"studio-teardown/{DOMAIN}/StudioTeardownResource"
    }
    assert handler.is_complete(cfn_event("Create", team_properties()), None) == {"IsComplete": True}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            dict(user_profiles=("fraud-alice",), delete_home_efs=True, vpc_id=VPC),
            "deleting the home EFS volume needs the domain scope (user_profiles None)",
        ),
        (
            dict(user_profiles=None, delete_home_efs=True),
            "deleting the home EFS volume needs the domain's VPC id (for its NFS security groups)",
        ),
    ],
)
def test_impossible_targets_are_refused_with_the_reason(target, message):
    with pytest.raises(ValueError) as error:
        logic.TeardownTarget(DOMAIN, **target)
    assert str(error.value) == message


def test_a_team_without_profiles_is_described_as_such():
    assert logic.TeardownTarget(DOMAIN, ()).describe() == f"user profiles (none) of domain {DOMAIN}"


def test_a_domain_already_being_deleted_is_waited_for(sagemaker):
    client, stub = sagemaker
    expect_empty_apps_and_spaces(stub)
    stub.add_response("list_user_profiles", {}, LISTING)
    stub.add_response("describe_domain", {"DomainId": DOMAIN, "Status": "Deleting"}, {"DomainId": DOMAIN})

    result = logic.teardown_step(client, None, DOMAIN_WITH_VOLUME)

    assert (result.actions, result.remaining) == ([], [f"domain {DOMAIN} (Deleting)"])


def test_outbound_nfs_rules_are_revoked_and_reported(sagemaker, ec2):
    client, stub = sagemaker
    net, net_stub = ec2
    expect_empty_apps_and_spaces(stub)
    stub.add_response("list_user_profiles", {}, LISTING)
    stub.add_client_error("describe_domain", "ResourceNotFound", "gone", expected_params={"DomainId": DOMAIN})
    rule = {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-0a"}]}
    name = f"security-group-for-outbound-nfs-{DOMAIN}"
    net_stub.add_response(
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": "sg-0b", "GroupName": name, "VpcId": VPC, "IpPermissionsEgress": [rule]}]},
    )
    net_stub.add_response("revoke_security_group_egress", {}, {"GroupId": "sg-0b", "IpPermissions": [rule]})
    net_stub.add_response("delete_security_group", {}, {"GroupId": "sg-0b"})

    result = logic.teardown_step(client, net, DOMAIN_WITH_VOLUME)

    assert result.actions == [
        f"revoking security group sg-0b ({name}) outbound rules",
        f"deleted security group sg-0b ({name})",
    ]
    assert result.done
