"""One MLflow App per team: its artifact store, role, retention, grants, the domain default and the endpoint."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from lambdas.common import tags
from stacks.constructs.mlflow_default_domain import RESOURCE_TYPE
from stacks.team_stack import MLFLOW_APP_USE_ACTIONS, mlflow_app_name
from tools.iam.template import World

APP_TYPE = "AWS::SageMaker::MlflowApp"


def team_stacks(example) -> dict[str, str]:
    return {team.name: f"{example.platform.platform.config.prefix}-team-{team.name}"
            for team in example.platform.platform.config.teams}


def template(example, stack: str) -> Template:
    return Template.from_json(example.templates[stack])


def only(resources: dict) -> tuple[str, dict]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def statements_of(body: dict) -> list[dict]:
    return body["Properties"]["PolicyDocument"]["Statement"]


def test_every_team_has_exactly_one_app_named_by_the_platform(example):
    config = example.platform.platform.config
    for team, stack in team_stacks(example).items():
        logical_id, app = only(template(example, stack).find_resources(APP_TYPE))
        props = app["Properties"]
        assert props["Name"] == mlflow_app_name(config.prefix, team) == f"{config.prefix}-{team}-mlflow"
        assert props["ModelRegistrationMode"] == "AutoModelRegistrationDisabled"
        assert {"Key": tags.TEAM, "Value": team} in props["Tags"]
        assert example.platform.teams[team].mlflow_app_arn == example.platform.teams[team].mlflow_app.attr_arn
    assert not template(example, f"{config.prefix}-platform").find_resources(APP_TYPE)


def test_artifacts_go_under_mlflow_of_the_team_bucket(example):
    for stack in team_stacks(example).values():
        t = template(example, stack)
        bucket, _ = only(t.find_resources("AWS::S3::Bucket"))
        t.has_resource_properties(APP_TYPE, {"ArtifactStoreUri": {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/mlflow/"]]}})


def test_app_is_retained(example):
    for stack in team_stacks(example).values():
        template(example, stack).has_resource(APP_TYPE, {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_app_role_is_trusted_by_sagemaker_and_reaches_only_mlflow_artifacts(example):
    for stack in team_stacks(example).values():
        t = template(example, stack)
        _, app = only(t.find_resources(APP_TYPE))
        role_id = app["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        role = t.to_json()["Resources"][role_id]
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        assert "ManagedPolicyArns" not in role["Properties"]
        policies = [b for b in t.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in b["Properties"]["Roles"]]
        (policy,) = policies
        bucket, _ = only(t.find_resources("AWS::S3::Bucket"))
        by_sid = {s["Sid"]: s for s in statements_of(policy)}
        objects = by_sid["MlflowArtifacts"]["Resource"]
        assert objects == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/mlflow/*"]]}
        assert by_sid["ListMlflowArtifacts"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/", "mlflow/*"]}}
        assert by_sid["UsePlatformKeyThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"]
        for statement in statements_of(policy):
            assert statement["Resource"] != "*", statement
            assert not any(a.endswith("*") for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]))


def test_the_app_role_may_use_the_team_bucket_despite_its_deny(example):
    for stack in team_stacks(example).values():
        t = template(example, stack)
        _, app = only(t.find_resources(APP_TYPE))
        role_arn = app["Properties"]["RoleArn"]
        (bucket_policy,) = t.find_resources("AWS::S3::BucketPolicy").values()
        deny = next(s for s in statements_of(bucket_policy) if s.get("Sid") == "DataOnlyForTheTeamsRoles")
        assert role_arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]


def test_team_roles_are_granted_their_own_app_only(example):
    for stack in team_stacks(example).values():
        t = template(example, stack)
        app_id, _ = only(t.find_resources(APP_TYPE))
        own = {"Fn::GetAtt": [app_id, "Arn"]}
        granted = {}
        for body in t.find_resources("AWS::IAM::Policy").values():
            for statement in statements_of(body):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    if "Mlflow" in action:
                        granted.setdefault(action, []).append(statement["Resource"])
        for action in (*MLFLOW_APP_USE_ACTIONS, "sagemaker:CreatePresignedMlflowAppUrl"):
            resources = granted.pop(action)
            assert resources and all(r == own for r in resources), (action, resources)
        assert granted.pop("sagemaker:ListMlflowApps") == ["*"]
        # What is left is the default-domain function's, also on the App's own ARN only.
        assert all(r == own for resources in granted.values() for r in resources), granted


def test_pipelines_get_their_teams_app(example):
    for stack in team_stacks(example).values():
        t = template(example, stack)
        app_id, _ = only(t.find_resources(APP_TYPE))
        pipelines = t.find_resources("AWS::SageMaker::Pipeline")
        assert pipelines
        for body in pipelines.values():
            variables = body["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][1]
            if "MlflowAppArn" in variables:
                assert variables["MlflowAppArn"] == {"Fn::GetAtt": [app_id, "Arn"]}


def test_the_default_domain_resource_is_only_in_the_default_teams_stack(example):
    config = example.platform.platform.config
    assert config.studio.default_mlflow_team == "fraud"
    for team, stack in team_stacks(example).items():
        found = template(example, stack).find_resources(RESOURCE_TYPE)
        if team != config.studio.default_mlflow_team:
            assert not found and example.platform.teams[team].mlflow_default_domain is None
            continue
        _, resource = only(found)
        app_id, _ = only(template(example, stack).find_resources(APP_TYPE))
        assert resource["Properties"]["MlflowAppArn"] == {"Fn::GetAtt": [app_id, "Arn"]}
        assert resource["Properties"]["DomainId"] == {"Fn::ImportValue": f"{config.prefix}-studio-domain-id"}


def test_the_default_domain_function_may_only_describe_and_update_that_app(example):
    stack = f"{example.platform.platform.config.prefix}-team-fraud"
    world = World(example.templates)
    construct = example.platform.teams["fraud"].mlflow_default_domain
    function_id = example.platform.teams["fraud"].get_logical_id(construct.on_event_function.node.default_child)
    role = world.function_role(stack, function_id)
    app = world.arn(stack, "MlflowApp")
    sagemaker = [s for s in world.role_statements(stack, role) if any(
        a.startswith("sagemaker:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
    assert [(sorted(s["Action"]), s["Resource"]) for s in sagemaker] == [
        (["sagemaker:DescribeMlflowApp", "sagemaker:UpdateMlflowApp"], app)
    ]


def test_no_default_domain_resource_without_the_setting(edge):
    for stack, body in edge("minimal").templates.items():
        assert not Template.from_json(body).find_resources(RESOURCE_TYPE), stack


def test_vpc_has_the_mlflow_endpoint(example):
    network = template(example, f"{example.platform.platform.config.prefix}-network")
    network.has_resource_properties("AWS::EC2::VPCEndpoint", {
        "ServiceName": {"Fn::Join": ["", ["aws.sagemaker.", {"Ref": "AWS::Region"}, ".experiments"]]},
        "VpcEndpointType": "Interface",
        "PrivateDnsEnabled": True,
        "SecurityGroupIds": Match.any_value(),
    })
