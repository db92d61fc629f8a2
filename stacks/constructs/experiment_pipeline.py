"""A team's experiment pipeline: the step scripts in the team bucket and the SageMaker pipeline itself.

The pipeline definition comes from ``pipeline_code.definition`` (plain dictionaries, no SageMaker SDK);
its placeholders are filled with ``Fn::Sub``: bucket, execution role, model package group, KMS key and
the container images of the stack's region. When the stack has no concrete region, the images come from
a ``CfnMapping`` over every supported region, looked up with ``Fn::FindInMap`` on ``AWS::Region``, so one
template works in any supported region.

This construct grants the execution role nothing: the team stack gives it access to its bucket, key,
registry group and the SageMaker jobs the pipeline starts. The code upload (``BucketDeployment``) brings
its own Lambda and role, which only it uses; its log group and environment use the platform key.

The wheelhouse (``build/wheelhouse``, made by ``make wheelhouse``: the wheels of the libraries the scikit-learn
image lacks, for its Python) is uploaded once per stack under ``pipeline/code/wheelhouse/``; the steps that need
those libraries install them from there with no network (``pipeline_code.offline_install``).

``CodeCommit`` is the git commit of the last change to ``pipeline_code/`` (``-modified`` when the working tree
changes it; a content hash outside a git checkout), so each MLflow run records the code it ran.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from aws_cdk import CfnMapping, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from lambdas.common import naming
from pipeline_code import definition, images
from stacks.constructs.lambda_function import grant_environment_decryption
from stacks.regions import SUPPORTED_REGIONS

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_CODE_DIR = REPOSITORY_ROOT / "pipeline_code"
WHEELHOUSE_DIR = REPOSITORY_ROOT / "build" / "wheelhouse"
CODE_KEY_PREFIX = f"{definition.CODE_PREFIX}/pipeline_code"
CODE_EXCLUDES = ["__pycache__", "*.pyc"]
DEPLOYMENT_MEMORY_MB = 512
"""Memory of the stack's BucketDeployment function: the wheelhouse holds wheels of tens of MB."""


class WheelhouseMissing(FileNotFoundError):
    """Raised at synth when ``build/wheelhouse`` has not been made."""


@functools.lru_cache(maxsize=None)
def pipeline_code_commit(root: Path = REPOSITORY_ROOT) -> str:
    """The commit of the last change to ``pipeline_code/`` (see module docstring); offline, no credentials."""
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", "pipeline_code"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "pipeline_code"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, changed = "", ""
    if commit:
        return f"{commit}-modified" if changed else commit
    digest = hashlib.sha256()
    for path in sorted((root / "pipeline_code").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def wheelhouse_deployment(scope: Construct, bucket: s3.IBucket, kms_key: kms.IKey,
                          wheelhouse: Path = WHEELHOUSE_DIR) -> s3deploy.BucketDeployment:
    """The stack's one upload of the wheelhouse into the team bucket (shared by its pipelines)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PipelineWheelhouse")
    if existing is not None:
        return existing
    if not (wheelhouse / "requirements.txt").is_file():
        raise WheelhouseMissing(f"{wheelhouse} has no wheelhouse: run `make wheelhouse` (the `make synth` and "
                                "`make test` targets run it) before synthesizing")
    return encrypted_upload(stack, "PipelineWheelhouse", s3deploy.Source.asset(str(wheelhouse)), bucket,
                            definition.WHEELHOUSE_PREFIX, kms_key)


def encrypted_upload(scope: Construct, construct_id: str, source: s3deploy.ISource, bucket: s3.IBucket,
                     prefix: str, kms_key: kms.IKey) -> s3deploy.BucketDeployment:
    """``source`` into ``bucket`` under ``prefix`` (pruned, KMS-encrypted), by the stack's one upload function:
    every upload passes the same memory and log group, so CDK builds that function once."""
    return s3deploy.BucketDeployment(
        scope,
        construct_id,
        sources=[source],
        destination_bucket=bucket,
        destination_key_prefix=prefix,
        server_side_encryption=s3deploy.ServerSideEncryption.AWS_KMS,
        server_side_encryption_aws_kms_key_id=kms_key.key_id,
        prune=True,
        retain_on_delete=False,
        memory_limit=DEPLOYMENT_MEMORY_MB,
        log_group=code_deployment_logs(scope, kms_key),
    )


def code_deployment_logs(scope: Construct, kms_key: kms.IKey) -> logs.LogGroup:
    """The log group of the stack's BucketDeployment function, encrypted with the platform key.

    CDK builds that function once per stack (a singleton) and takes the log group of the first
    deployment only, so every pipeline of the stack passes this one group.
    """
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PipelineCodeDeploymentLogs")
    if existing is not None:
        return existing
    return logs.LogGroup(
        stack,
        "PipelineCodeDeploymentLogs",
        retention=logs.RetentionDays.THREE_MONTHS,
        encryption_key=kms_key,
        removal_policy=RemovalPolicy.DESTROY,
    )


def encrypt_code_deployment_environment(stack: Stack, kms_key: kms.IKey) -> None:
    """Encrypt the environment of the stack's BucketDeployment function with the platform key (once).

    BucketDeployment has no option for it, so the key is set on the singleton function's L1 and its
    role may decrypt with it, as every platform function's role may.
    """
    functions = [
        child for child in stack.node.children
        if child.node.id.startswith("Custom::CDKBucketDeployment") and isinstance(child, lambda_.Function)
    ]
    if len(functions) != 1:
        raise ValueError(f"{stack.stack_name}: expected one BucketDeployment function, found {len(functions)}")
    function = functions[0].node.default_child
    if function.kms_key_arn is None:
        function.kms_key_arn = kms_key.key_arn
        grant_environment_decryption(functions[0].role, kms_key)


def default_region_images() -> dict:
    """Region -> {image placeholder: URI} for every supported region, from the project's image table."""
    return {region: images.region_images(region) for region in SUPPORTED_REGIONS}


def resolve_definition(scope: Construct, body: str, variables: dict, region_images: dict | None = None) -> tuple:
    """(``Fn::Sub`` of ``body``, image ``CfnMapping`` or None): ``variables`` and the container images of the
    stack's region fill the placeholders ``body`` uses (a mapping over every supported region when the region
    is a token). A placeholder without a value raises ``ValueError`` naming it."""
    table = region_images if region_images is not None else default_region_images()
    placeholders = {image.placeholder for image in images.IMAGES}
    for region, uris in table.items():
        if set(uris) != placeholders:
            raise ValueError(f"region_images[{region!r}] must give exactly {sorted(placeholders)}")
    used = definition.placeholders_in(body)
    table = {region: {name: uri for name, uri in uris.items() if name in used} for region, uris in table.items()}
    placeholders &= used
    region = Stack.of(scope).region
    mapping = None
    if Token.is_unresolved(region):
        mapping = CfnMapping(scope, "ImageMapping", mapping=table, lazy=True)
        image_values = {name: mapping.find_in_map(region, name) for name in sorted(placeholders)}
    else:
        if region not in table:
            raise ValueError(f"region {region!r} has no container images; supported: {sorted(table)}")
        image_values = dict(table[region])
    values = {**variables, **image_values}
    missing = used - set(values)
    if missing:
        raise ValueError(f"no value for pipeline placeholders {sorted(missing)}")
    return Fn.sub(body, {name: value for name, value in values.items() if name in used}), mapping


class ExperimentPipeline(Construct):
    """``AWS::SageMaker::Pipeline`` running one use case's experiment (``spec``), plus its uploaded scripts.

    Attributes: ``pipeline`` (the ``CfnPipeline``), ``code_deployment`` (the ``BucketDeployment``),
    ``image_mapping`` (the ``CfnMapping``, or None when the region is concrete).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        execution_role: iam.IRole,
        model_package_group_name: str,
        pipeline_name: str,
        kms_key: kms.IKey,
        team_name: str,
        platform_prefix: str,
        spec: definition.PipelineSpec = definition.FRAUD_SPEC,
        region_images: dict | None = None,
        mlflow_app_arn: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        body = definition.definition_json(definition.build_definition(spec))
        self.code_deployment = encrypted_upload(
            self, "StepCode", s3deploy.Source.asset(str(PIPELINE_CODE_DIR), exclude=CODE_EXCLUDES), bucket,
            CODE_KEY_PREFIX, kms_key)
        self.wheelhouse_deployment = wheelhouse_deployment(self, bucket, kms_key)
        encrypt_code_deployment_environment(Stack.of(self), kms_key)

        variables = {
            "TeamName": team_name,
            "PlatformPrefix": platform_prefix,
            # Clarify's shadow endpoints start with the team's resource prefix, inside the team's grants.
            "ClarifyEndpointPrefix": naming.team_resource_prefix(platform_prefix, team_name).rstrip("-"),
            "BucketName": bucket.bucket_name,
            "ExecutionRoleArn": execution_role.role_arn,
            "ModelPackageGroupName": model_package_group_name,
            "KmsKeyArn": kms_key.key_arn,
            "PipelineName": pipeline_name,
            "MlflowAppArn": mlflow_app_arn,
            "CodeCommit": pipeline_code_commit(),
        }
        resolved, self.image_mapping = resolve_definition(self, body, variables, region_images)
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_description=(
                f"{spec.title[:200]}: {spec.problem.problem_type} on {spec.problem.target}; split, AutoML or XGBoost, "
                f"evaluation ({spec.quality_metric}), bias and explanations, registration"
            ),
            role_arn=execution_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": resolved},
        )
        self.pipeline.node.add_dependency(self.code_deployment)
        self.pipeline.node.add_dependency(self.wheelhouse_deployment)
