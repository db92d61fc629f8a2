"""The Studio teardown custom resource: botocore Stubber (moto lacks Studio apps, spaces and profiles)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from common import clients
from studio_teardown import handler, logic

REGION = "us-east-1"
DOMAIN = "d-abc123def456"
VPC = "vpc-0123456789abcdef0"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/mlp-team-fraud/abc"
STARTED = 1_000_000
TEAM = ["fraud-alice", "fraud-bob"]


@pytest.fixture
def sagemaker():
    return boto3.client("sagemaker", region_name=REGION, config=logic.client_config())


@pytest.fixture
def ec2():
    return boto3.client("ec2", region_name=REGION, config=logic.client_config())


@pytest.fixture
def cloudformation():
    return boto3.client("cloudformation", region_name=REGION)


def team_properties():
    return {"DomainId": DOMAIN, "Scope": "user-profiles", "UserProfileNames": TEAM, "HomeEfsOnDelete": "retain"}


def domain_properties(home_efs="retain"):
    properties = {"DomainId": DOMAIN, "Scope": "domain", "HomeEfsOnDelete": home_efs}
    if home_efs == "delete":
        properties["VpcId"] = VPC
    return properties


def cfn_event(request_type, properties, **extra):
    body = {
        "RequestType": request_type,
        "RequestId": "req-1",
        "LogicalResourceId": "StudioTeardownResource",
        "StackId": STACK_ID,
        "ResourceType": "Custom::StudioTeardown",
        "ResourceProperties": properties,
    }
    if request_type != "Create":
        body["PhysicalResourceId"] = f"studio-teardown/{DOMAIN}/StudioTeardownResource"
    body.update(extra)
    return body


def delete_event(properties, started=STARTED, teardown="run"):
    return cfn_event(
        "Delete", properties, Data={"Teardown": teardown, "StackStatus": "DELETE_IN_PROGRESS", "StartedAt": str(started)}
    )


def app(owner, app_type, name, status, space=False):
    entry = {"DomainId": DOMAIN, "AppType": app_type, "AppName": name, "Status": status}
    entry["SpaceName" if space else "UserProfileName"] = owner
    return entry


def space(name, owner, status="InService"):
    return {"DomainId": DOMAIN, "SpaceName": name, "Status": status, "OwnershipSettingsSummary": {"OwnerUserProfileName": owner}}


def expect_listing(stubber, operation, key, items):
    stubber.add_response(operation, {key: items}, {"DomainIdEquals": DOMAIN, "MaxResults": 100})


def expect_apps_and_spaces(stubber, apps, spaces):
    expect_listing(stubber, "list_apps", "Apps", apps)
    expect_listing(stubber, "list_spaces", "Spaces", spaces)


def expect_delete_app(stubber, entry):
    owner_key = "SpaceName" if "SpaceName" in entry else "UserProfileName"
    stubber.add_response(
        "delete_app",
        {},
        {"DomainId": DOMAIN, "AppType": entry["AppType"], "AppName": entry["AppName"], owner_key: entry[owner_key]},
    )


def no_client():
    raise AssertionError("no AWS client may be built here")


def check(event, sagemaker, ec2=None, now=STARTED + 60, deadline=2640):
    return handler.check(
        event,
        sagemaker_factory=lambda: sagemaker,
        ec2_factory=(lambda: ec2) if ec2 else no_client,
        now=lambda: now,
        deadline=deadline,
    )


# onEvent


def test_create_returns_a_stable_physical_id_and_calls_nothing():
    first = handler.decide(cfn_event("Create", team_properties()), cloudformation_factory=no_client)
    again = handler.decide(cfn_event("Create", team_properties(), RequestId="req-2"), cloudformation_factory=no_client)
    assert first == again == {"PhysicalResourceId": f"studio-teardown/{DOMAIN}/StudioTeardownResource"}


def test_update_keeps_the_physical_id_and_calls_nothing():
    body = cfn_event("Update", team_properties(), PhysicalResourceId="studio-teardown/x/y")
    assert handler.decide(body, cloudformation_factory=no_client) == {"PhysicalResourceId": "studio-teardown/x/y"}


@pytest.mark.parametrize("status", ["DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"])
def test_delete_during_stack_deletion_starts_the_teardown(cloudformation, status):
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stacks",
        {"Stacks": [{"StackName": "mlp-team-fraud", "StackStatus": status, "CreationTime": "2026-01-01T00:00:00Z"}]},
        {"StackName": STACK_ID},
    )
    with stubber:
        result = handler.decide(cfn_event("Delete", team_properties()), lambda: cloudformation, now=lambda: 1234.5)
    assert result["Data"] == {"Teardown": "run", "StackStatus": status, "StartedAt": "1234"}
    assert result["PhysicalResourceId"] == f"studio-teardown/{DOMAIN}/StudioTeardownResource"


def test_delete_when_only_the_resource_leaves_the_template_skips_the_teardown(cloudformation, sagemaker):
    stubber = Stubber(cloudformation)
    stubber.add_response(
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
    with stubber:
        decided = handler.decide(cfn_event("Delete", domain_properties("delete")), lambda: cloudformation)
    assert decided["Data"]["Teardown"] == "skip"
    with Stubber(sagemaker):
        assert check({**cfn_event("Delete", domain_properties("delete")), **decided}, sagemaker) == {"IsComplete": True}


@pytest.mark.parametrize(
    "properties, message",
    [
        ({"Scope": "domain"}, "DomainId is required"),
        ({"DomainId": DOMAIN, "Scope": "team"}, "Scope must be"),
        ({"DomainId": DOMAIN, "Scope": "domain", "HomeEfsOnDelete": "delete"}, "VPC id"),
    ],
)
def test_bad_properties_fail_with_a_clear_message(properties, message):
    with pytest.raises(ValueError, match=message):
        handler.decide(cfn_event("Create", properties), cloudformation_factory=no_client)


# isComplete


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_are_complete_at_once_without_calls(request_type, sagemaker):
    with Stubber(sagemaker):
        assert check(cfn_event(request_type, team_properties()), sagemaker) == {"IsComplete": True}


def test_team_teardown_deletes_only_what_needs_deleting(sagemaker):
    """Apps in every state; only the team's live, not-yet-deleting apps are deleted, spaces once empty."""
    alice_server = app("fraud-alice", "JupyterServer", "default", "InService")
    alice_failed = app("fraud-alice", "KernelGateway", "datascience-1", "Failed")
    bob_gone = app("fraud-bob", "JupyterServer", "default", "Deleted")
    bob_deleting = app("fraud-bob", "KernelGateway", "k1", "Deleting")
    lab_pending = app("alice-lab", "JupyterLab", "default", "Pending", space=True)
    other_team = app("churn-carol", "JupyterServer", "default", "InService")
    other_space_app = app("carol-lab", "JupyterLab", "default", "InService", space=True)
    spaces = [
        space("alice-lab", "fraud-alice"),  # has a live app: waits
        space("bob-editor", "fraud-bob"),  # empty: deleted
        space("bob-old", "fraud-bob", status="Deleting"),  # already going: not deleted again
        space("carol-lab", "churn-carol"),  # another team's: untouched
    ]
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(
        stubber,
        [alice_server, alice_failed, bob_gone, bob_deleting, lab_pending, other_team, other_space_app],
        spaces,
    )
    expect_delete_app(stubber, alice_server)
    expect_delete_app(stubber, alice_failed)
    expect_delete_app(stubber, lab_pending)
    stubber.add_response("delete_space", {}, {"DomainId": DOMAIN, "SpaceName": "bob-editor"})
    with stubber:
        result = logic.teardown_step(sagemaker, None, logic.TeardownTarget(DOMAIN, tuple(TEAM)))
    stubber.assert_no_pending_responses()
    assert sorted(result.remaining) == sorted(
        [
            "app JupyterServer/default of user profile fraud-alice (delete requested)",
            "app KernelGateway/datascience-1 of user profile fraud-alice (delete requested)",
            "app KernelGateway/k1 of user profile fraud-bob (Deleting)",
            "app JupyterLab/default of space alice-lab (delete requested)",
            "space alice-lab (InService): waiting for its apps",
            "space bob-editor (delete requested)",
            "space bob-old (Deleting)",
        ]
    )
    assert not any("carol" in line for line in result.remaining + result.actions)
    assert not result.done


def test_team_teardown_is_complete_when_only_deleted_apps_remain(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(
        stubber,
        [
            app("fraud-alice", "JupyterServer", "default", "Deleted"),
            app("alice-lab", "JupyterLab", "default", "Deleted", space=True),
            app("churn-carol", "JupyterServer", "default", "InService"),
        ],
        [space("carol-lab", "churn-carol")],
    )
    with stubber:
        assert check(delete_event(team_properties()), sagemaker) == {"IsComplete": True}
    stubber.assert_no_pending_responses()


def test_team_teardown_waits_while_anything_is_still_deleting(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(
        stubber,
        [app("fraud-alice", "JupyterServer", "default", "Deleting")],
        [space("bob-editor", "fraud-bob", status="Deleting")],
    )
    with stubber:
        assert check(delete_event(team_properties()), sagemaker) == {"IsComplete": False}
    stubber.assert_no_pending_responses()


def test_a_delete_refused_now_is_retried_on_the_next_check(sagemaker):
    pending = app("fraud-alice", "JupyterServer", "default", "Pending")
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [pending], [])
    stubber.add_client_error("delete_app", service_error_code="ResourceInUse", service_message="App is not ready")
    expect_apps_and_spaces(stubber, [pending], [])
    expect_delete_app(stubber, pending)
    expect_apps_and_spaces(stubber, [{**pending, "Status": "Deleted"}], [])
    with stubber:
        assert check(delete_event(team_properties()), sagemaker) == {"IsComplete": False}
        assert check(delete_event(team_properties()), sagemaker) == {"IsComplete": False}
        assert check(delete_event(team_properties()), sagemaker) == {"IsComplete": True}
    stubber.assert_no_pending_responses()


def test_an_app_already_gone_counts_as_deleted(sagemaker):
    lab = app("alice-lab", "JupyterLab", "default", "InService", space=True)
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [lab], [space("alice-lab", "fraud-alice")])
    stubber.add_client_error("delete_app", service_error_code="ResourceNotFound")
    stubber.add_response("delete_space", {}, {"DomainId": DOMAIN, "SpaceName": "alice-lab"})
    with stubber:
        result = logic.teardown_step(sagemaker, None, logic.TeardownTarget(DOMAIN, tuple(TEAM)))
    stubber.assert_no_pending_responses()
    assert result.remaining == ["space alice-lab (delete requested)"]
    assert result.actions == [
        "app JupyterLab/default of space alice-lab (InService): already gone",
        "deleting space alice-lab (InService)",
    ]


def test_unexpected_errors_are_raised(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [app("fraud-alice", "JupyterServer", "default", "InService")], [])
    stubber.add_client_error("delete_app", service_error_code="AccessDeniedException", service_message="not allowed")
    with stubber, pytest.raises(Exception, match="AccessDeniedException"):
        check(delete_event(team_properties()), sagemaker)


def test_timeout_names_what_is_still_there(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(
        stubber,
        [app("fraud-alice", "JupyterServer", "default", "Deleting")],
        [space("bob-editor", "fraud-bob", status="Deleting")],
    )
    with stubber, pytest.raises(handler.TeardownTimedOut) as error:
        check(delete_event(team_properties()), sagemaker, now=STARTED + 2640, deadline=2640)
    message = str(error.value)
    assert "did not finish within 44 minutes" in message
    assert "app JupyterServer/default of user profile fraud-alice (Deleting)" in message
    assert "space bob-editor (Deleting)" in message
    assert "user profiles fraud-alice, fraud-bob of domain d-abc123def456" in message


def test_deadline_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(handler.DEADLINE_ENV, "120")
    assert handler.deadline_seconds() == 120


def test_domain_teardown_with_retained_volume_deletes_leftover_profiles_and_leaves_the_domain(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [app("fraud-alice", "JupyterServer", "default", "Deleted")], [])
    expect_listing(
        stubber,
        "list_user_profiles",
        "UserProfiles",
        [{"DomainId": DOMAIN, "UserProfileName": "stray", "Status": "InService"}],
    )
    stubber.add_response("delete_user_profile", {}, {"DomainId": DOMAIN, "UserProfileName": "stray"})
    expect_apps_and_spaces(stubber, [], [])
    expect_listing(stubber, "list_user_profiles", "UserProfiles", [])
    with stubber:
        assert check(delete_event(domain_properties("retain")), sagemaker) == {"IsComplete": False}
        assert check(delete_event(domain_properties("retain")), sagemaker) == {"IsComplete": True}
    stubber.assert_no_pending_responses()


def test_domain_teardown_deletes_spaces_of_every_owner(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [], [space("alice-lab", "fraud-alice"), space("carol-lab", "churn-carol")])
    stubber.add_response("delete_space", {}, {"DomainId": DOMAIN, "SpaceName": "alice-lab"})
    stubber.add_response("delete_space", {}, {"DomainId": DOMAIN, "SpaceName": "carol-lab"})
    with stubber:
        assert check(delete_event(domain_properties("retain")), sagemaker) == {"IsComplete": False}
    stubber.assert_no_pending_responses()


def nfs_group(direction, group_id, other_id):
    rule = {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": other_id}]}
    return {
        "GroupId": group_id,
        "GroupName": f"security-group-for-{direction}-nfs-{DOMAIN}",
        "VpcId": VPC,
        "IpPermissions": [rule] if direction == "inbound" else [],
        "IpPermissionsEgress": [rule] if direction == "outbound" else [],
    }


def test_domain_teardown_with_deleted_volume_removes_domain_then_nfs_groups(sagemaker, ec2):
    inbound = nfs_group("inbound", "sg-0000000000000000a", "sg-0000000000000000b")
    outbound = nfs_group("outbound", "sg-0000000000000000b", "sg-0000000000000000a")
    sm = Stubber(sagemaker)
    net = Stubber(ec2)

    def empty_domain():
        expect_apps_and_spaces(sm, [], [])
        expect_listing(sm, "list_user_profiles", "UserProfiles", [])

    # Check 1: nothing left inside; the domain is deleted with its home EFS volume.
    empty_domain()
    sm.add_response("describe_domain", {"DomainId": DOMAIN, "Status": "InService"}, {"DomainId": DOMAIN})
    sm.add_response("delete_domain", {}, {"DomainId": DOMAIN, "RetentionPolicy": {"HomeEfsFileSystem": "Delete"}})
    # Check 2: still deleting.
    empty_domain()
    sm.add_response("describe_domain", {"DomainId": DOMAIN, "Status": "Deleting"}, {"DomainId": DOMAIN})
    # Check 3: gone; the NFS groups' rules are revoked, one group is still held by an EFS network interface.
    empty_domain()
    sm.add_client_error("describe_domain", service_error_code="ResourceNotFound", expected_params={"DomainId": DOMAIN})
    filters = {
        "Filters": [
            {"Name": "vpc-id", "Values": [VPC]},
            {"Name": "group-name", "Values": logic.nfs_security_group_names(DOMAIN)},
        ]
    }
    net.add_response("describe_security_groups", {"SecurityGroups": [inbound, outbound]}, filters)
    net.add_response(
        "revoke_security_group_ingress", {}, {"GroupId": inbound["GroupId"], "IpPermissions": inbound["IpPermissions"]}
    )
    net.add_response(
        "revoke_security_group_egress",
        {},
        {"GroupId": outbound["GroupId"], "IpPermissions": outbound["IpPermissionsEgress"]},
    )
    net.add_client_error("delete_security_group", service_error_code="DependencyViolation",
                         service_message="resource has a dependent object")
    net.add_response("delete_security_group", {}, {"GroupId": outbound["GroupId"]})
    # Check 4: the remaining group goes; done.
    empty_domain()
    sm.add_client_error("describe_domain", service_error_code="ResourceNotFound", expected_params={"DomainId": DOMAIN})
    bare_inbound = {**inbound, "IpPermissions": []}
    net.add_response("describe_security_groups", {"SecurityGroups": [bare_inbound]}, filters)
    net.add_response("delete_security_group", {}, {"GroupId": inbound["GroupId"]})

    properties = domain_properties("delete")
    with sm, net:
        assert check(delete_event(properties), sagemaker, ec2) == {"IsComplete": False}
        assert check(delete_event(properties), sagemaker, ec2) == {"IsComplete": False}
        assert check(delete_event(properties), sagemaker, ec2) == {"IsComplete": False}
        assert check(delete_event(properties), sagemaker, ec2) == {"IsComplete": True}
    sm.assert_no_pending_responses()
    net.assert_no_pending_responses()


def test_domain_is_not_deleted_while_anything_inside_remains(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [app("fraud-alice", "JupyterServer", "default", "Deleting")], [])
    with stubber:
        result = logic.teardown_step(
            sagemaker, None, logic.TeardownTarget(DOMAIN, None, delete_home_efs=True, vpc_id=VPC)
        )
    stubber.assert_no_pending_responses()
    assert result.remaining == ["app JupyterServer/default of user profile fraud-alice (Deleting)"]


def test_failed_domain_deletion_is_retried_and_its_reason_reported(sagemaker):
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, [], [])
    expect_listing(stubber, "list_user_profiles", "UserProfiles", [])
    stubber.add_response(
        "describe_domain",
        {"DomainId": DOMAIN, "Status": "Delete_Failed", "FailureReason": "EFS still mounted"},
        {"DomainId": DOMAIN},
    )
    stubber.add_client_error("delete_domain", service_error_code="ResourceInUse", service_message="busy")
    with stubber:
        result = logic.teardown_step(
            sagemaker, None, logic.TeardownTarget(DOMAIN, None, delete_home_efs=True, vpc_id=VPC)
        )
    assert any("Delete_Failed" in r and "EFS still mounted" in r for r in result.remaining)


def test_team_scope_cannot_delete_the_home_volume():
    with pytest.raises(ValueError, match="domain scope"):
        logic.TeardownTarget(DOMAIN, ("fraud-alice",), delete_home_efs=True, vpc_id=VPC)


def test_lambda_clients_use_the_standard_retry_config(monkeypatch):
    monkeypatch.setattr(clients, "CLIENTS", {})
    client = handler._client("sagemaker")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}, "the first call and 8 retries"
    assert handler._client("sagemaker") is client


def test_timeout_message_stays_short_when_much_is_left(sagemaker):
    many = [app("fraud-alice", "KernelGateway", f"k{i}", "Deleting") for i in range(30)]
    stubber = Stubber(sagemaker)
    expect_apps_and_spaces(stubber, many, [])
    with stubber, pytest.raises(handler.TeardownTimedOut) as error:
        check(delete_event(team_properties()), sagemaker, now=STARTED + 3000, deadline=2640)
    message = str(error.value)
    assert "k9 of" in message and "k10 of" not in message and "and 20 more" in message
    assert len(message) < 2000
