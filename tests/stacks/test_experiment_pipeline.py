"""ExperimentPipeline in a minimal stack: the pipeline resource, its definition, images per region, code upload."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from pipeline_code import definition, images
from stacks.constructs.experiment_pipeline import (
    CODE_KEY_PREFIX,
    DEPLOYMENT_MEMORY_MB,
    ExperimentPipeline,
    WheelhouseMissing,
    pipeline_code_commit,
    wheelhouse_deployment,
)
from stacks.regions import SUPPORTED_REGIONS
from tests.pipeline import definition_rules

GROUP = "mlp-team-fraud-detection"
PIPELINE = "mlp-team-fraud-experiment"


def team_stack(app: cdk.App, name: str, env: cdk.Environment | None = None) -> cdk.Stack:
    stack = cdk.Stack(app, name, env=env)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket(stack, "Bucket", encryption=s3.BucketEncryption.KMS, encryption_key=key, enforce_ssl=True)
    role = iam.Role(stack, "TeamRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    ExperimentPipeline(
        stack, "Experiment", bucket=bucket, execution_role=role, model_package_group_name=GROUP,
        pipeline_name=PIPELINE, kms_key=key, team_name="fraud", platform_prefix="mlp",
    )
    return stack


@pytest.fixture(scope="module")
def templates():
    app = cdk.App()
    anywhere = team_stack(app, "AnyRegion")
    ireland = team_stack(app, "Ireland", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    return Template.from_stack(anywhere), Template.from_stack(ireland)


def pipeline_properties(template: Template) -> dict:
    (resource,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    return resource["Properties"]


def test_one_pipeline_with_the_team_role(templates):
    template, _ = templates
    template.resource_count_is("AWS::SageMaker::Pipeline", 1)
    properties = pipeline_properties(template)
    assert properties["PipelineName"] == PIPELINE
    role = next(k for k in template.find_resources("AWS::IAM::Role") if k.startswith("TeamRole"))
    assert properties["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def test_definition_body_is_the_project_definition_with_every_placeholder_bound(templates):
    template, _ = templates
    body = pipeline_properties(template)["PipelineDefinition"]["PipelineDefinitionBody"]
    text, variables = body["Fn::Sub"]
    assert text == definition.definition_json()
    assert set(variables) == definition.placeholders(definition.FRAUD_SPEC)
    bucket = next(k for k in template.find_resources("AWS::S3::Bucket"))
    key = next(k for k in template.find_resources("AWS::KMS::Key"))
    assert variables["BucketName"] == {"Ref": bucket}
    assert variables["KmsKeyArn"] == {"Fn::GetAtt": [key, "Arn"]}
    assert variables["ModelPackageGroupName"] == GROUP


def test_images_come_from_a_mapping_over_every_supported_region(templates):
    template, _ = templates
    mappings = template.to_json()["Mappings"]
    (mapping_id, mapping), = mappings.items()
    assert set(mapping) == set(SUPPORTED_REGIONS)
    used = [image for image in images.IMAGES if image.placeholder in definition.placeholders(definition.FRAUD_SPEC)]
    assert {image.placeholder for image in used} == {images.SKLEARN.placeholder, images.XGBOOST.placeholder}
    for region in SUPPORTED_REGIONS:
        assert mapping[region] == {image.placeholder: images.image_uri(image, region) for image in used}
    _, variables = pipeline_properties(template)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    for image in used:
        assert variables[image.placeholder] == {"Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, image.placeholder]}


def test_concrete_region_uses_that_regions_images_without_a_mapping(templates):
    _, ireland = templates
    assert "Mappings" not in ireland.to_json()
    _, variables = pipeline_properties(ireland)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    for image in (images.SKLEARN, images.XGBOOST):
        assert variables[image.placeholder] == images.image_uri(image, "eu-west-1")
    assert not {images.CLARIFY.placeholder, images.DEBUGGER.placeholder} & set(variables)


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])
def test_substituted_definition_is_valid_in_each_region(templates, region):
    template, _ = templates
    text, variables = pipeline_properties(template)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    mapping = next(iter(template.to_json()["Mappings"].values()))
    values = {}
    for name, value in variables.items():
        if isinstance(value, dict) and "Fn::FindInMap" in value:
            values[name] = mapping[region][value["Fn::FindInMap"][2]]
        elif isinstance(value, dict):
            values[name] = f"resolved-{name.lower()}"
        else:
            values[name] = value
    rendered = json.loads(definition.render(text, values))
    assert rendered["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"].endswith(
        f".dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert definition_rules.reference_problems(rendered) == []
    assert definition_rules.graph_problems(rendered) == []


def test_step_scripts_are_uploaded_under_the_fixed_prefix_with_the_team_key(templates):
    template, _ = templates
    key = next(k for k in template.find_resources("AWS::KMS::Key"))
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketKeyPrefix": CODE_KEY_PREFIX,
            "Prune": True,
            "SystemMetadata": Match.object_like({"sse": "aws:kms", "sse-kms-key-id": {"Ref": key}}),
        },
    )
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    deployments = template.find_resources("Custom::CDKBucketDeployment")
    assert len(deployments) == 2
    assert set(deployments) <= set(pipeline["DependsOn"]), "the pipeline starts only after code and wheels are there"


def test_the_wheelhouse_is_uploaded_once_per_stack_with_the_team_key():
    app = cdk.App()
    stack = team_stack(app, "TwoPipelines")
    key = kms.Key.from_key_arn(stack, "Same", "arn:aws:kms:eu-west-1:111111111111:key/abc")
    bucket = s3.Bucket.from_bucket_name(stack, "SameBucket", "team-bucket")
    role = iam.Role(stack, "Other", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    ExperimentPipeline(stack, "Second", bucket=bucket, execution_role=role, model_package_group_name=GROUP + "-2",
                       pipeline_name=PIPELINE + "-2", kms_key=key, team_name="fraud", platform_prefix="mlp")
    template = Template.from_stack(stack)
    wheelhouses = [r for r in template.find_resources("Custom::CDKBucketDeployment").values()
                   if r["Properties"]["DestinationBucketKeyPrefix"] == definition.WHEELHOUSE_PREFIX]
    assert len(wheelhouses) == 1
    assert wheelhouses[0]["Properties"]["SystemMetadata"]["sse"] == "aws:kms"
    assert wheelhouses[0]["Properties"]["Prune"] is True
    functions = [f for k, f in template.find_resources("AWS::Lambda::Function").items()
                 if k.startswith("CustomCDKBucketDeployment")]
    assert [f["Properties"]["MemorySize"] for f in functions] == [DEPLOYMENT_MEMORY_MB], "one upload function"


def test_synth_without_a_wheelhouse_says_how_to_make_it(tmp_path):
    app = cdk.App()
    stack = cdk.Stack(app, "NoWheels")
    with pytest.raises(WheelhouseMissing, match="run `make wheelhouse`"):
        wheelhouse_deployment(stack, s3.Bucket(stack, "B"), kms.Key(stack, "K"), wheelhouse=tmp_path)


def test_the_tracking_variables_name_the_app_the_pipeline_and_the_code_commit():
    app = cdk.App()
    stack = cdk.Stack(app, "Tracked")
    key = kms.Key(stack, "Key")
    ExperimentPipeline(
        stack, "Experiment", bucket=s3.Bucket(stack, "B"), kms_key=key,
        execution_role=iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        model_package_group_name=GROUP, pipeline_name=PIPELINE, team_name="fraud", platform_prefix="mlp",
        mlflow_app_arn="arn:aws:sagemaker:eu-west-1:111111111111:mlflow-app/app-abc",
    )
    _, variables = pipeline_properties(Template.from_stack(stack))["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert variables["MlflowAppArn"] == "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-app/app-abc"
    assert variables["PipelineName"] == PIPELINE
    assert variables["CodeCommit"] == pipeline_code_commit()


def test_the_code_commit_is_the_last_commit_of_the_pipeline_code(tmp_path):
    root = Path(__file__).resolve().parents[2]
    last = subprocess.run(["git", "log", "-1", "--format=%H", "--", "pipeline_code"], cwd=root,
                          capture_output=True, text=True).stdout.strip()
    if not last:
        pytest.skip("not a git checkout")
    assert pipeline_code_commit.__wrapped__(root).split("-")[0] == last
    copy = tmp_path / "copy"
    shutil.copytree(root / "pipeline_code", copy / "pipeline_code", ignore=shutil.ignore_patterns("__pycache__"))
    outside = pipeline_code_commit.__wrapped__(copy)
    assert outside.startswith("sha256:") and len(outside) == len("sha256:") + 64
    (copy / "pipeline_code" / "split.py").write_text("# changed\n")
    assert pipeline_code_commit.__wrapped__(copy) != outside, "the hash follows the code"


def test_code_prefix_is_where_the_processing_steps_read(templates):
    code_uris = {
        item["S3Input"]["S3Uri"]
        for step, _ in definition_rules.all_steps(definition.build_definition()["Steps"])
        if step["Type"] == "Processing"
        for item in step["Arguments"]["ProcessingInputs"]
        if item["InputName"] == "code"
    }
    assert code_uris == {f"s3://${{BucketName}}/{CODE_KEY_PREFIX}/"}, "the code input reads the uploaded folder, no sibling prefix"


def test_construct_grants_nothing_to_the_execution_role(templates):
    template, _ = templates
    role = next(k for k in template.find_resources("AWS::IAM::Role") if k.startswith("TeamRole"))
    for policy in template.find_resources("AWS::IAM::Policy").values():
        assert {"Ref": role} not in policy["Properties"].get("Roles", [])
    assert "Policies" not in template.find_resources("AWS::IAM::Role")[role]["Properties"]
    key_policy = json.dumps(next(iter(template.find_resources("AWS::KMS::Key").values()))["Properties"]["KeyPolicy"])
    assert role not in key_policy


def test_unsupported_region_is_refused():
    app = cdk.App()
    with pytest.raises(ValueError, match="region 'cn-north-1' has no container images"):
        team_stack(app, "China", env=cdk.Environment(account="111111111111", region="cn-north-1"))


def test_incomplete_image_table_is_refused():
    app = cdk.App()
    stack = cdk.Stack(app, "Partial")
    key = kms.Key(stack, "Key")
    with pytest.raises(ValueError, match="must give exactly"):
        ExperimentPipeline(
            stack, "Experiment", bucket=s3.Bucket(stack, "B"), kms_key=key,
            execution_role=iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
            model_package_group_name=GROUP, pipeline_name=PIPELINE, team_name="fraud", platform_prefix="mlp",
            region_images={"eu-west-1": {"SklearnImage": "x"}},
        )


def test_a_changed_working_tree_marks_the_commit_modified(tmp_path):
    root = Path(__file__).resolve().parents[2]
    repo = tmp_path / "repo"
    shutil.copytree(root / "pipeline_code", repo / "pipeline_code", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "pipeline_code"], check=True)
    subprocess.run([*git, "commit", "-qm", "code"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert pipeline_code_commit.__wrapped__(repo) == commit
    (repo / "pipeline_code" / "split.py").write_text("# changed\n")
    assert pipeline_code_commit.__wrapped__(repo) == f"{commit}-modified"
