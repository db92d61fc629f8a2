"""The network, platform and team stacks of the example config, synthesized once per session."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from lambdas.common import tags
from stacks.network_stack import INTERFACE_ENDPOINTS

EXPECTED_STACKS = ["mlp-network", "mlp-platform", "mlp-team-fraud", "mlp-team-churn", "mlp-team-pricing"]


def resources_of(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def test_one_stack_per_team_plus_network_and_platform(example):
    assert list(example.templates) == EXPECTED_STACKS


class TestNetwork:
    def test_two_isolated_subnets_without_internet_route(self, example):
        template = example.template("mlp-network")
        subnets = resources_of(template, "AWS::EC2::Subnet")
        assert len(subnets) == 2
        assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
        assert not resources_of(template, "AWS::EC2::InternetGateway")
        assert not resources_of(template, "AWS::EC2::NatGateway")
        zones = [s["Properties"]["AvailabilityZone"] for s in subnets.values()]
        assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]

    def test_private_dns_interface_endpoints_and_s3_gateway(self, example):
        template = example.template("mlp-network")
        endpoints = resources_of(template, "AWS::EC2::VPCEndpoint").values()
        interface_services = sorted(
            e["Properties"]["ServiceName"]["Fn::Join"][1][-1].lstrip(".")
            for e in endpoints
            if e["Properties"].get("VpcEndpointType") == "Interface"
        )
        assert interface_services == sorted(
            ["sagemaker.api", "sagemaker.runtime", "experiments", "sts", "logs", "ecr.api", "ecr.dkr"]
        )
        assert len(INTERFACE_ENDPOINTS) == 7
        assert all(
            e["Properties"]["PrivateDnsEnabled"] is True
            for e in endpoints
            if e["Properties"].get("VpcEndpointType") == "Interface"
        )
        gateways = [e for e in endpoints if e["Properties"].get("VpcEndpointType") == "Gateway"]
        assert len(gateways) == 1 and ".s3" in str(gateways[0]["Properties"]["ServiceName"])

    def test_endpoints_accept_https_only_from_studio(self, example):
        template = Template.from_json(example.template("mlp-network"))
        template.has_resource_properties(
            "AWS::EC2::SecurityGroupIngress",
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": Match.any_value()},
        )
        for group in resources_of(example.template("mlp-network"), "AWS::EC2::SecurityGroup").values():
            assert "SecurityGroupIngress" not in group["Properties"] or all(
                rule.get("CidrIp") != "0.0.0.0/0" for rule in group["Properties"]["SecurityGroupIngress"]
            )

    def test_flow_logs_on(self, example):
        Template.from_json(example.template("mlp-network")).resource_count_is("AWS::EC2::FlowLog", 1)

    def test_default_security_group_is_emptied_and_its_cleanup_logs_to_a_kms_log_group(self, example):
        template = example.template("mlp-network")
        (vpc_id,) = resources_of(template, "AWS::EC2::VPC")
        (cleanup,) = resources_of(template, "Custom::VpcRestrictDefaultSG").values()
        assert cleanup["Properties"]["DefaultSecurityGroupId"] == {"Fn::GetAtt": [vpc_id, "DefaultSecurityGroup"]}
        handler_id = cleanup["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
        handler = template["Resources"][handler_id]
        log_group_id = handler["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_group_id in handler["DependsOn"]
        log_group = template["Resources"][log_group_id]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["KmsKeyId"]["Fn::GetAtt"][1] == "Arn"
        assert template["Resources"][log_group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]]["Type"] == "AWS::KMS::Key"


class TestPlatform:
    def test_domain_posture(self, example):
        domain = next(iter(resources_of(example.template("mlp-platform"), "AWS::SageMaker::Domain").values()))
        props = domain["Properties"]
        assert props["AppNetworkAccessType"] == "VpcOnly"
        assert props["AuthMode"] == "IAM"
        assert "KmsKeyId" in props
        settings = props["DefaultUserSettings"]
        assert settings["SecurityGroups"], "security groups must be in the default user settings"
        assert settings["StudioWebPortal"] == "ENABLED"
        assert settings["DefaultLandingUri"] == "studio::"
        for app in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
            idle = settings[app]["AppLifecycleManagement"]["IdleSettings"]
            assert idle == {
                "LifecycleManagement": "ENABLED",
                "IdleTimeoutInMinutes": 120,
                "MinIdleTimeoutInMinutes": 60,
                "MaxIdleTimeoutInMinutes": 480,
            }
        assert props["DomainSettings"]["DockerSettings"]["EnableDockerAccess"] == "DISABLED"

    def test_domain_carries_only_lifetime_fixed_tags(self, example):
        domain = next(iter(resources_of(example.template("mlp-platform"), "AWS::SageMaker::Domain").values()))
        assert {t["Key"] for t in domain["Properties"]["Tags"]} == {tags.PLATFORM, tags.MANAGED_BY}

    def test_key_rotates_and_is_retained(self, example):
        keys = resources_of(example.template("mlp-platform"), "AWS::KMS::Key")
        assert len(keys) == 1
        key = next(iter(keys.values()))
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"

    def test_access_log_bucket(self, example):
        buckets = resources_of(example.template("mlp-platform"), "AWS::S3::Bucket")
        assert len(buckets) == 1
        bucket = next(iter(buckets.values()))
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"


class TestTeam:
    @pytest.mark.parametrize("team", ["fraud", "churn", "pricing"])
    def test_data_bucket(self, example, team):
        template = example.template(f"mlp-team-{team}")
        buckets = resources_of(template, "AWS::S3::Bucket")
        assert len(buckets) == 1
        bucket = next(iter(buckets.values()))
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert rule["SSEAlgorithm"] == "aws:kms" and "Fn::ImportValue" in str(rule["KMSMasterKeyID"])
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["LogFilePrefix"] == f"mlp-team-{team}/"

    @pytest.mark.parametrize(("team", "users"), [("fraud", ["alice", "bob"]), ("churn", ["carol"]), ("pricing", ["dave", "erin"])])
    def test_one_profile_per_user_with_team_role(self, example, team, users):
        profiles = resources_of(example.template(f"mlp-team-{team}"), "AWS::SageMaker::UserProfile").values()
        assert sorted(p["Properties"]["UserProfileName"] for p in profiles) == sorted(f"{team}-{u}" for u in users)
        for profile in profiles:
            assert "ExecutionRoleArn" in str(profile["Properties"]["UserSettings"]["ExecutionRole"]) or "Arn" in str(
                profile["Properties"]["UserSettings"]["ExecutionRole"]
            )
            assert profile["Properties"]["DomainId"] == {"Fn::ImportValue": "mlp-studio-domain-id"}

    def test_registry_group_per_use_case_retained(self, example):
        groups = resources_of(example.template("mlp-team-fraud"), "AWS::SageMaker::ModelPackageGroup")
        assert [g["Properties"]["ModelPackageGroupName"] for g in groups.values()] == ["mlp-fraud-fraud-detection"]
        for group in groups.values():
            assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"

    def test_taggable_resources_carry_platform_team_and_cost_center(self, example):
        template = example.template("mlp-team-fraud")
        expected = {tags.PLATFORM: "mlp", tags.TEAM: "fraud", tags.COST_CENTER: "CC-1001", "project": "sagemaker-mlops"}
        for kind in ("AWS::S3::Bucket", "AWS::IAM::Role", "AWS::SNS::Topic", "AWS::SageMaker::ModelPackageGroup"):
            for logical_id, resource in resources_of(template, kind).items():
                found = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
                assert expected.items() <= found.items(), f"{logical_id} tags {found}"

    def test_user_profiles_are_not_tagged_with_changeable_values(self, example):
        for profile in resources_of(example.template("mlp-team-fraud"), "AWS::SageMaker::UserProfile").values():
            keys = {t["Key"] for t in profile["Properties"]["Tags"]}
            assert keys == {tags.PLATFORM, tags.TEAM, tags.MANAGED_BY}

    def test_model_execution_role_reads_only_team_bucket(self, example):
        template = example.template("mlp-team-fraud")
        role_id = next(k for k in resources_of(template, "AWS::IAM::Role") if k.startswith("ModelExecutionRole"))
        policy = next(
            p for p in resources_of(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role_id}]
        )
        s3_statements = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"] if str(s["Action"]).startswith("s3:")
        ]
        bucket_id = next(iter(resources_of(template, "AWS::S3::Bucket")))
        for statement in s3_statements:
            assert bucket_id in str(statement["Resource"])


class TestTeamAutomation:
    @pytest.mark.parametrize("team", ["fraud", "churn", "pricing"])
    def test_pipeline_runs_with_the_teams_own_role_and_bucket(self, example, team):
        template = example.template(f"mlp-team-{team}")
        pipelines = {k: p for k, p in resources_of(template, "AWS::SageMaker::Pipeline").items()
                     if not p["Properties"]["PipelineName"].endswith("--monitor")}
        use_case = example.platform.teams[team].team.use_cases[0].name
        assert [p["Properties"]["PipelineName"] for p in pipelines.values()] == [f"mlp-{team}-{use_case}"]
        pipeline = next(iter(pipelines.values()))
        role_id = next(k for k in resources_of(template, "AWS::IAM::Role") if k.startswith("ExecutionRole"))
        bucket_id = next(iter(resources_of(template, "AWS::S3::Bucket")))
        assert pipeline["Properties"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
        body = json.dumps(pipeline["Properties"]["PipelineDefinition"])
        assert bucket_id in body
        assert f"mlp-{team}-{use_case}" in body, "the pipeline must register into the team's own group"
        for other in {"fraud", "churn", "pricing"} - {team}:
            assert f"mlp-{other}-" not in body

    @pytest.mark.parametrize("team", ["fraud", "churn", "pricing"])
    def test_approval_rule_watches_only_the_teams_groups(self, example, team):
        template = example.template(f"mlp-team-{team}")
        patterns = [
            r["Properties"]["EventPattern"]
            for r in resources_of(template, "AWS::Events::Rule").values()
            if r["Properties"].get("EventPattern", {}).get("detail-type") == ["SageMaker Model Package State Change"]
        ]
        assert patterns
        for pattern in patterns:
            assert all(g.startswith(f"mlp-{team}-") for g in pattern["detail"]["ModelPackageGroupName"])
            assert sorted(pattern["detail"]["ModelApprovalStatus"]) == ["Approved", "Rejected"]

    def test_teardown_runs_before_the_profiles_are_deleted(self, example):
        template = example.template("mlp-team-fraud")
        teardown = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudFormation::CustomResource"
                    or r["Type"].startswith("Custom::")]
        profiles = set(resources_of(template, "AWS::SageMaker::UserProfile"))
        assert any(profiles <= set(r.get("DependsOn", [])) for r in teardown)

    def test_model_execution_role_may_read_the_teams_rollback_alarms(self, example):
        template = example.template("mlp-team-fraud")
        statements = [
            s
            for p in resources_of(template, "AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s.get("Action") == "cloudwatch:DescribeAlarms"
        ]
        assert any(":alarm:mlp-fraud-fraud-detection-model-latency" in json.dumps(s["Resource"]) for s in statements)
        assert not any("*" in json.dumps(s["Resource"]) for s in statements)


class TestPlatformAutomation:
    def test_platform_holds_reaper_quotas_and_domain_teardown(self, example):
        template = example.template("mlp-platform")
        rules = resources_of(template, "AWS::Events::Rule").values()
        assert any(r["Properties"].get("ScheduleExpression") == "rate(1 hour)" for r in rules)
        quota_resources = [r for r in template["Resources"].values() if r["Type"] == "Custom::SageMakerInstanceQuota"]
        assert len(quota_resources) == 3
        quota_outputs = [k for k in template["Outputs"] if k.startswith("InstanceQuotas")]
        assert len(quota_outputs) == 3
        assert any(
            r["Type"] == "AWS::SageMaker::Domain" for r in template["Resources"].values()
        ) and any(
            "studio_teardown" in json.dumps(r["Properties"].get("Handler", ""))
            for r in resources_of(template, "AWS::Lambda::Function").values()
        )
