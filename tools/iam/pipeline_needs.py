"""What the experiment pipeline and the team's endpoints need from IAM, derived from the synthesized templates.

``pipeline_needs(world, stack, pipeline_logical_id)`` reads the synthesized ``AWS::SageMaker::Pipeline``
(its ``PipelineDefinitionBody`` resolved with ``World.resolve``, then parsed), runs the definition with
representative values (pipeline parameters take their ``DefaultValue``; ``Execution.*`` is an
execution ``abc123def456``; a step's properties are what its Describe* response would hold, with the
job names SageMaker Pipelines generates, ``pipelines-<execution id>-<step>-<hash>``) and lists every
IAM request SageMaker makes with the pipeline's role or the roles the steps pass, step by step:

- Processing: ``CreateProcessingJob`` on ``processing-job/<generated name>`` (+ ``AddTags`` when the step
  has Tags, ``iam:PassRole`` of its ``RoleArn``), ``DescribeProcessingJob`` / ``StopProcessingJob`` by the
  service while it polls (``aws:ResourceTag/*`` from the step's Tags); the job's role reads every input
  (``S3Prefix``: ``s3:ListBucket`` with ``s3:prefix`` and ``s3:GetObject`` on ``<prefix>*``; ``S3Object``:
  the key), writes every output prefix, uses the keys of the job config and the buckets' default keys,
  pulls its image and logs to ``/aws/sagemaker/ProcessingJobs``; the pipeline role reads the step's
  property files. A Clarify processing job (image ``sagemaker-clarify-processing``) also runs a shadow
  endpoint of the model its analysis config names: ``CreateEndpointConfig``, ``CreateEndpoint``,
  ``DescribeEndpoint``, ``InvokeEndpoint``, ``DeleteEndpoint``, ``DeleteEndpointConfig`` (and
  ``DescribeModel``) with the job's role, on names starting with the predictor's ``endpoint_name_prefix``
  (``pipeline_code.clarify_config --endpoint-name-prefix``, default ``sm-clarify``); the model's role then
  serves that endpoint (image pull, model data, ``/aws/sagemaker/Endpoints/<endpoint>`` logs).
- Training: ``CreateTrainingJob`` (+ AddTags, PassRole), Describe/Stop; the role reads the channels, writes
  ``<S3OutputPath>/<job>/``, Debugger output and rule output, pulls the training and rule images, logs to
  ``/aws/sagemaker/TrainingJobs`` (the rule jobs to ``ProcessingJobs``).
- Tuning: ``CreateHyperParameterTuningJob`` (+ AddTags, PassRole of the training definition's role),
  Describe/Stop, ``ListTrainingJobsForHyperParameterTuningJob`` when a step reads ``TrainingJobSummaries``;
  the training jobs it starts (``<tuning job>-001-<hash>``, carrying its tags) need what a training job
  needs from their role.
- AutoML: ``CreateAutoMLJob`` or ``CreateAutoMLJobV2`` by the request's shape (+ AddTags, PassRole), the
  matching Describe, ``ListCandidatesForAutoMLJob``,
  ``StopAutoMLJob``; the role reads the channels, writes ``<S3OutputPath>/``, uses the keys and logs to
  the groups of the jobs Autopilot runs (processing, training, transform).
- Model: ``CreateModel`` (+ AddTags, PassRole of its ``ExecutionRoleArn``), ``DescribeModel``.
- Transform: ``CreateTransformJob`` (+ AddTags), Describe/Stop; the model's role reads the input, the model
  data, pulls the model's images, writes the output and logs to ``/aws/sagemaker/TransformJobs``.
- RegisterModel: ``CreateModelPackage`` in the group (on the package and on the group), ``DescribeModelPackage``,
  and reads of the metrics and reports it names.
- Condition, Fail: nothing of their own (the property files their ``Std:JsonGet`` reads are read by the
  pipeline role).
- ``PipelineExperimentConfig`` when present: ``CreateExperiment`` (experiment = its ExperimentName, by
  default the pipeline name), ``CreateTrial`` (trial = its TrialName, by default the execution id) and
  ``AssociateTrialComponent`` of ``<job name>-aws-<job type>`` for every job a step creates.

``model_execution_needs(world, stack)`` lists what a running endpoint of the team needs from the role the
deploy Lambda passes (its ``MODEL_EXECUTION_ROLE_ARN``): the registered packages' model data and images
(the containers of the pipelines' RegisterModel steps of each use case's group), the bucket key, logs
to ``/aws/sagemaker/Endpoints/<endpoint>``, data capture under the Lambda's ``DATA_CAPTURE_S3_URI`` with
its ``KMS_KEY_ARN`` (use cases with capture enabled), and ``cloudwatch:DescribeAlarms`` on the rollback
alarms (from its ``USE_CASES``).

Resources follow the Service Authorization Reference (``tools.iam.reference.action_facts``): an action
without resource types, or whose only resource type is optional, is evaluated on ``*`` (the reference's
rule: ``sagemaker:ListCandidatesForAutoMLJob``, ``ecr:GetAuthorizationToken``, ``servicequotas:GetServiceQuota``);
an action with several optional resource types (S3 object or access-point object, model package or its
group, AddTags's taggable types) is evaluated on the resource the request acts on, which must be of one
of those types; an action with required types on the named resource (one request per required type, e.g.
``CreateEndpoint`` on the endpoint and on its config).

``check(world, needs)`` evaluates every need against the identity policies of its role, joined with the
bucket policy (S3) or the key policy (KMS, ``key_policy=True``) that covers its resource, and returns the
outcomes; ``unmet_report`` formats the denied ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lambdas.common.naming import MONITORING_PIPELINE_SUFFIX
from pipeline_code.definition import all_steps, gets
from tools.iam.evaluate import Decision, Request, evaluate, evaluate_access
from tools.iam.reference import action_facts
from tools.iam.template import ResolveError, World

EXECUTION_ID = "abc123def456"
EXECUTION_TIME = "2026-12-01T00:00:00Z"
LOG_STREAM_TIME = "1764547200"
PASSED_TO = "sagemaker.amazonaws.com"
CLARIFY_REPOSITORY = "sagemaker-clarify-processing"
CLARIFY_CONFIG_MODULE = "pipeline_code.clarify_config"
CLARIFY_DEFAULT_ENDPOINT_PREFIX = "sm-clarify"
DATA_CAPTURE_VARIANT = "AllTraffic"
# Image of an Autopilot ensembling candidate (AutoGluon inference, AWS Deep Learning Containers account).
AUTOML_INFERENCE_REPOSITORY = ("763104351884", "autogluon-inference", "1.1-cpu-py310")
# Longest names SageMaker accepts (botocore's model): Pipelines shortens generated names to fit.
NAME_LIMITS = {"hyper-parameter-tuning-job": 32, "automl-job": 32}
DEFAULT_NAME_LIMIT = 63
LOG_GROUPS = {
    "processing-job": "/aws/sagemaker/ProcessingJobs",
    "training-job": "/aws/sagemaker/TrainingJobs",
    "transform-job": "/aws/sagemaker/TransformJobs",
}
IMAGE_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")
PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']+)'\]")
ECR_PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:DescribeLogStreams", "logs:CreateLogStream", "logs:PutLogEvents")


class NeedsError(ValueError):
    """The definition uses something this model cannot derive requests for (names the step and the value)."""


@dataclass
class Need:
    """One IAM request and why it is made; ``request.principal_arn`` is the role that makes it."""

    request: Request
    why: str
    also: list[str] = field(default_factory=list)

    @property
    def role_arn(self) -> str:
        return self.request.principal_arn or ""

    def __str__(self) -> str:
        return f"{self.why}: {self.request.action} on {self.request.resource} as {self.role_arn}"


@dataclass
class Outcome:
    need: Need
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


def evaluated_resource(action: str, arn: str) -> str:
    """The resource IAM evaluates `action` on when it acts on `arn` (see the module docstring)."""
    facts = action_facts(action)
    if not facts.resource_types:
        return "*"
    if not facts.required_types and len(facts.resource_types) == 1:
        return "*"
    if arn == "*":
        if facts.required_types:
            raise NeedsError(f"{action} needs a resource of type {[t.name for t in facts.required_types]}")
        return "*"
    if not any(t.arn_regex().match(arn) for t in facts.resource_types if t.arn_format):
        raise NeedsError(f"{arn} is none of the resource types of {action}: {[t.name for t in facts.resource_types]}")
    return arn


# --- collecting needs ----------------------------------------------------------------------------------


class _Collector:
    def __init__(self, world: World) -> None:
        self.world = world
        self.needs: dict[tuple, Need] = {}

    def principal_context(self, role_arn: str) -> dict[str, Any]:
        return {
            "aws:PrincipalArn": role_arn,
            "aws:PrincipalAccount": self.world.account,
            "aws:PrincipalIsAWSService": "false",
            "aws:PrincipalType": "AssumedRole",
            "aws:RequestedRegion": self.world.region,
        }

    def add(self, role_arn: str, action: str, arn: str, why: str, context: dict[str, Any] | None = None) -> None:
        resource = evaluated_resource(action, arn)
        merged = {**self.principal_context(role_arn), **(context or {})}
        request = Request(action, resource, merged, principal_arn=role_arn, principal_account=self.world.account)
        key = (role_arn, action.lower(), resource, json.dumps(merged, sort_keys=True, default=str))
        if key in self.needs:
            existing = self.needs[key]
            if why != existing.why and why not in existing.also:
                existing.also.append(why)
            return
        self.needs[key] = Need(request, why)

    # shared building blocks

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.world.partition}:{service}:{self.world.region}:{self.world.account}:{resource}"

    def sagemaker_arn(self, resource_type: str, name: str) -> str:
        return self.arn("sagemaker", f"{resource_type}/{name}")

    def key_arn(self, key: str | None) -> str | None:
        if not key:
            return None
        if key.startswith("arn:"):
            return key
        if key.startswith("alias/"):
            return self.arn("kms", key)
        return self.arn("kms", f"key/{key}")

    def bucket_key(self, bucket: str) -> str | None:
        """The default SSE-KMS key of a bucket of the world (None when it has none or is not in the world)."""
        for res in self.world.resources("AWS::S3::Bucket"):
            if self.world.physical_name(res.stack, res.logical_id) != bucket:
                continue
            encryption = self.world.resolve(res.stack, res.properties.get("BucketEncryption", {}))
            for rule in encryption.get("ServerSideEncryptionConfiguration", []):
                default = rule.get("ServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
                    return self.key_arn(default["KMSMasterKeyID"])
        return None

    def kms(self, role_arn: str, actions: Iterable[str], key: str | None, why: str, via: str,
            extra: dict[str, Any] | None = None) -> None:
        key = self.key_arn(key)
        if key is None:
            return
        context = {"kms:ViaService": f"{via}.{self.world.region}.amazonaws.com",
                   "kms:CallerAccount": self.world.account}
        context.update(extra or {})
        for action in actions:
            self.add(role_arn, action, key, why, context)

    def s3_read(self, role_arn: str, uri: str, why: str, *, prefix: bool) -> None:
        bucket, key = split_s3_uri(uri)
        object_arn = f"arn:{self.world.partition}:s3:::{bucket}/{key}" + ("*" if prefix else "")
        if prefix:
            self.add(role_arn, "s3:ListBucket", f"arn:{self.world.partition}:s3:::{bucket}", why, {"s3:prefix": key})
        self.add(role_arn, "s3:GetObject", object_arn, why)
        self.kms(role_arn, ["kms:Decrypt"], self.bucket_key(bucket), f"{why} (objects under the bucket's default key)",
                 "s3", {"kms:EncryptionContext:aws:s3:arn": f"arn:{self.world.partition}:s3:::{bucket}"})

    def s3_write(self, role_arn: str, uri: str, why: str, kms_key: str | None, *, under: str = "*") -> None:
        bucket, key = split_s3_uri(uri)
        key = key.rstrip("/")
        object_arn = f"arn:{self.world.partition}:s3:::{bucket}/{key}/{under}" if key else \
            f"arn:{self.world.partition}:s3:::{bucket}/{under}"
        key_arn = self.key_arn(kms_key) or self.bucket_key(bucket)
        context = {}
        if key_arn:
            context = {"s3:x-amz-server-side-encryption": "aws:kms",
                       "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
        self.add(role_arn, "s3:PutObject", object_arn, why, context)
        self.kms(role_arn, ["kms:GenerateDataKey", "kms:Decrypt"], key_arn,
                 f"{why} (SSE-KMS upload, multipart parts)", "s3",
                 {"kms:EncryptionContext:aws:s3:arn": f"arn:{self.world.partition}:s3:::{bucket}"})

    def image_pull(self, role_arn: str, image: str, why: str) -> None:
        match = IMAGE_URI.match(image or "")
        if not match:
            raise NeedsError(f"{why}: {image!r} is not an ECR image URI")
        account, region, repository = match.groups()
        arn = f"arn:{self.world.partition}:ecr:{region}:{account}:repository/{repository}"
        self.add(role_arn, "ecr:GetAuthorizationToken", "*", why)
        for action in ECR_PULL_ACTIONS:
            self.add(role_arn, action, arn, why)

    def logs(self, role_arn: str, group: str, stream: str, why: str) -> None:
        group_arn = self.arn("logs", f"log-group:{group}")
        stream_arn = f"{group_arn}:log-stream:{stream}"
        for action in LOG_ACTIONS:
            self.add(role_arn, action, stream_arn if action in ("logs:CreateLogStream", "logs:PutLogEvents")
                     else group_arn, why)

    def metrics(self, role_arn: str, namespace: str, why: str) -> None:
        self.add(role_arn, "cloudwatch:PutMetricData", "*", why, {"cloudwatch:namespace": namespace})

    def result(self) -> list[Need]:
        return list(self.needs.values())


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", str(uri))
    if not match:
        raise NeedsError(f"{uri!r} is not an s3:// URI")
    return match.group(1), match.group(2)


def _tag_context(tags: list[dict] | None, *, request: bool) -> dict[str, Any]:
    """``aws:RequestTag/<k>`` and ``aws:TagKeys`` (request) or ``aws:ResourceTag/<k>`` (resource) of Tags."""
    tags = tags or []
    if request:
        context: dict[str, Any] = {f"aws:RequestTag/{t['Key']}": t["Value"] for t in tags}
        if tags:
            context["aws:TagKeys"] = [t["Key"] for t in tags]
        return context
    return {f"aws:ResourceTag/{t['Key']}": t["Value"] for t in tags}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _short_hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# --- the pipeline ----------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """A synthesized pipeline resolved for one account: name, role, and the definition as data."""

    stack: str
    logical_id: str
    name: str
    role_arn: str
    definition: dict[str, Any]


def resolved_pipeline(world: World, stack: str, logical_id: str) -> Pipeline:
    res = world.resource(stack, logical_id)
    if res.type != "AWS::SageMaker::Pipeline":
        raise ResolveError(f"{stack}/{logical_id} is a {res.type}, not a pipeline")
    body = res.properties["PipelineDefinition"]["PipelineDefinitionBody"]
    text = world.resolve(stack, body)
    definition = json.loads(text) if isinstance(text, str) else text
    return Pipeline(stack, logical_id, str(world.resolve(stack, res.properties["PipelineName"])),
                    str(world.resolve(stack, res.properties["RoleArn"])), definition)


def pipelines_of(world: World, stack: str, kind: str = "all") -> list[Pipeline]:
    """The stack's pipelines: ``all``, ``experiment`` or ``monitoring`` (named ``<group>--monitor``)."""
    if kind not in ("all", "experiment", "monitoring"):
        raise ValueError(f"kind {kind!r} is not one of all, experiment, monitoring")
    found = [resolved_pipeline(world, res.stack, res.logical_id)
             for res in world.resources("AWS::SageMaker::Pipeline") if res.stack == stack]
    if kind == "all":
        return found
    return [p for p in found if p.name.endswith(MONITORING_PIPELINE_SUFFIX) == (kind == "monitoring")]


class _AnyKey(dict):
    """A map that answers every key with a representative value (container environments)."""

    def __missing__(self, key: str) -> str:
        return f"representative-{key}"


class _Run:
    """One representative execution of a pipeline: expression values, step properties and names."""

    JOB_TYPES = {
        "Processing": "processing-job",
        "Training": "training-job",
        "Tuning": "hyper-parameter-tuning-job",
        "AutoML": "automl-job",
        "Transform": "transform-job",
        "Model": "model",
    }

    def __init__(self, collector: _Collector, pipeline: Pipeline, execution_id: str) -> None:
        self.c = collector
        self.pipeline = pipeline
        self.execution_id = execution_id
        self.definition = pipeline.definition
        self.steps = {s["Name"]: s for s, _ in all_steps(self.definition.get("Steps", []))}
        self.parameters = {p["Name"]: p.get("DefaultValue") for p in self.definition.get("Parameters", [])}
        self._arguments: dict[str, Any] = {}
        self._properties: dict[str, Any] = {}
        self._resolving: list[str] = []
        self.list_reads: set[str] = set()

    # names

    def job_name(self, step: str) -> str:
        kind = self.JOB_TYPES[self.steps[step]["Type"]]
        limit = NAME_LIMITS.get(kind, DEFAULT_NAME_LIMIT)
        suffix = "-" + _short_hash(self.pipeline.name, self.execution_id, step, length=5)
        return f"pipelines-{self.execution_id}-{step}"[: limit - len(suffix)] + suffix

    def execution_arn(self) -> str:
        return self.c.sagemaker_arn("pipeline", f"{self.pipeline.name.lower()}/execution/{self.execution_id}")

    # expressions

    def value(self, expression: Any, where: str) -> Any:
        if isinstance(expression, list):
            return [self.value(v, where) for v in expression]
        if not isinstance(expression, dict):
            return expression
        if len(expression) == 1:
            (key, arg), = expression.items()
            if key == "Get":
                return self.get(arg, where)
            if key == "Std:Join":
                return arg.get("On", "").join(_text(self.value(v, where)) for v in arg.get("Values", []))
            if key == "Std:JsonGet":
                return self.json_get(arg, where)
        return {k: self.value(v, where) for k, v in expression.items()}

    def get(self, path: str, where: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise NeedsError(f"{where}: Get {path}: no such parameter")
            return self.parameters[rest]
        if head == "Execution":
            execution = {
                "PipelineExecutionId": self.execution_id,
                "PipelineExecutionArn": self.execution_arn(),
                "PipelineName": self.pipeline.name,
                "PipelineArn": self.c.sagemaker_arn("pipeline", self.pipeline.name.lower()),
                "CurrentDateTime": EXECUTION_TIME,
                "StartDateTime": EXECUTION_TIME,
            }
            if rest not in execution:
                raise NeedsError(f"{where}: Get {path}: unknown execution variable")
            return execution[rest]
        if head == "Steps":
            step, _, property_path = rest.partition(".")
            if step not in self.steps:
                raise NeedsError(f"{where}: Get {path}: no step {step!r}")
            if property_path.startswith("PropertyFiles."):
                return ("PropertyFile", step, property_path.split(".", 1)[1])
            return self.step_property(step, property_path, where)
        raise NeedsError(f"{where}: Get {path}: unknown root {head!r}")

    def json_get(self, arg: dict, where: str) -> str:
        marker = self.value(arg["PropertyFile"], where)
        if not (isinstance(marker, tuple) and marker[0] == "PropertyFile"):
            raise NeedsError(f"{where}: Std:JsonGet of something that is not a property file: {arg}")
        _, step, name = marker
        declared = {f["PropertyFileName"]: f for f in self.steps[step].get("PropertyFiles", [])}
        if name not in declared:
            raise NeedsError(f"{where}: step {step} declares no property file {name!r}")
        spec = declared[name]
        outputs = self.arguments(step)["ProcessingOutputConfig"]["Outputs"]
        output = next(o for o in outputs if o["OutputName"] == spec["OutputName"])
        uri = output["S3Output"]["S3Uri"].rstrip("/") + "/" + spec["FilePath"]
        self.c.s3_read(self.pipeline.role_arn, uri,
                       f"{where}: SageMaker Pipelines reads property file {name} of {step} ({uri})", prefix=False)
        return "0.9"

    def arguments(self, step: str) -> dict:
        if step not in self._arguments:
            if step in self._resolving:
                raise NeedsError(f"reference cycle through {' -> '.join(self._resolving + [step])}")
            self._resolving.append(step)
            try:
                self._arguments[step] = self.value(self.steps[step].get("Arguments", {}), step)
            finally:
                self._resolving.pop()
        return self._arguments[step]

    def step_property(self, step: str, path: str, where: str) -> Any:
        if path.startswith("TrainingJobSummaries"):
            self.list_reads.add(step)
        value: Any = self.properties(step)
        for name, index, key in PATH_TOKEN.findall(path):
            try:
                if name:
                    value = value[name]
                elif index:
                    value = value[int(index)]
                elif isinstance(value, list):
                    value = next(item for item in value if key in item.values())
                else:
                    value = value[key]
            except (KeyError, IndexError, TypeError, StopIteration) as error:
                raise NeedsError(f"{where}: Get Steps.{step}.{path}: no such property in this model") from error
        return value

    def properties(self, step: str) -> dict:
        """What the step's Describe* response would hold: its request, its generated name and results."""
        if step in self._properties:
            return self._properties[step]
        kind = self.steps[step]["Type"]
        args = self.arguments(step)
        props: dict[str, Any] = dict(args)
        if kind in self.JOB_TYPES:
            name = self.job_name(step)
            resource_type = self.JOB_TYPES[kind]
            field_name = {
                "Processing": "ProcessingJob", "Training": "TrainingJob", "Tuning": "HyperParameterTuningJob",
                "AutoML": "AutoMLJob", "Transform": "TransformJob", "Model": "Model",
            }[kind]
            props[f"{field_name}Name"] = name
            props[f"{field_name}Arn"] = self.c.sagemaker_arn(resource_type, name.lower())
        if kind == "Training":
            path = args["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            props["ModelArtifacts"] = {"S3ModelArtifacts": f"{path}/{props['TrainingJobName']}/output/model.tar.gz"}
        elif kind == "Tuning":
            props["BestTrainingJob"] = self._best_training_job(step, args, props["HyperParameterTuningJobName"])
            props["TrainingJobSummaries"] = [props["BestTrainingJob"]]
        elif kind == "AutoML":
            output = args["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            job = props["AutoMLJobName"]
            account, repository, tag = AUTOML_INFERENCE_REPOSITORY
            image = f"{account}.dkr.ecr.{self.c.world.region}.amazonaws.com/{repository}:{tag}"
            props["BestCandidate"] = {
                "CandidateName": f"{job}-candidate",
                "InferenceContainers": [{
                    "Image": image,
                    "ModelDataUrl": f"{output}/{job}/sagemaker-automl-candidates/model/{job}-candidate/model.tar.gz",
                    "Environment": _AnyKey(),
                }],
            }
        elif kind == "RegisterModel":
            group = args["ModelPackageGroupName"]
            props["ModelPackageArn"] = self.c.sagemaker_arn("model-package", f"{group.lower()}/1")
            props["ModelPackageVersion"] = 1
        self._properties[step] = props
        return props

    def _best_training_job(self, step: str, args: dict, tuning_name: str) -> dict:
        ranges = args["HyperParameterTuningJobConfig"].get("ParameterRanges", {})
        tuned = {}
        for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
            for entry in ranges.get(kind, []):
                tuned[entry["Name"]] = str(entry["MinValue"])
        for entry in ranges.get("CategoricalParameterRanges", []):
            tuned[entry["Name"]] = str(entry["Values"][0])
        name = f"{tuning_name}-001-{_short_hash(tuning_name, length=8)}"
        return {"TrainingJobName": name, "TrainingJobArn": self.c.sagemaker_arn("training-job", name.lower()),
                "TunedHyperParameters": tuned}


def pipeline_needs(world: World, stack: str, pipeline_logical_id: str, *, execution_id: str = EXECUTION_ID,
                   pipeline: Pipeline | None = None) -> list[Need]:
    """Every request of one representative execution of the pipeline (see the module docstring)."""
    collector = _Collector(world)
    pipeline = pipeline or resolved_pipeline(world, stack, pipeline_logical_id)
    run = _Run(collector, pipeline, execution_id)
    derive = {
        "Processing": _processing, "Training": _training, "Tuning": _tuning, "AutoML": _automl,
        "Model": _model, "Transform": _transform, "RegisterModel": _register_model,
    }
    created_jobs: list[tuple[str, str]] = []
    for name, step in run.steps.items():
        kind = step["Type"]
        if kind == "Condition":  # its Std:JsonGet reads property files with the pipeline role
            run.value(step["Arguments"].get("Conditions", []), name)
            continue
        if kind == "Fail":
            run.value(step.get("Arguments", {}).get("ErrorMessage"), name)
            continue
        if kind not in derive:
            raise NeedsError(f"step {name}: type {kind!r} has no derivation here")
        created_jobs += derive[kind](run, name)
    for name in sorted(run.list_reads):
        collector.add(pipeline.role_arn, "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                      collector.sagemaker_arn("hyper-parameter-tuning-job", run.job_name(name).lower()),
                      f"{name} (Tuning): SageMaker Pipelines lists the tuning job's training jobs "
                      "for TrainingJobSummaries",
                      _tag_context(run.arguments(name).get("Tags"), request=False))
    _experiment(run, created_jobs)
    return collector.result()


# --- per step type -----------------------------------------------------------------------------------------


def _create(run: _Run, step: str, action: str, resource_type: str, args: dict, passed_roles: list[str],
            extra: dict[str, Any] | None = None) -> str:
    """The Create* of a job or model with its AddTags and PassRole; returns the generated name."""
    c, role = run.c, run.pipeline.role_arn
    name = run.job_name(step)
    arn = c.sagemaker_arn(resource_type, name.lower())
    kind = run.steps[step]["Type"]
    tags = args.get("Tags") or []
    context = {**_tag_context(tags, request=True), **(extra or {})}
    c.add(role, action, arn, f"{step} ({kind}): SageMaker Pipelines creates {resource_type}/{name}", context)
    if tags:
        c.add(role, "sagemaker:AddTags", arn, f"{step} ({kind}): the create request carries Tags",
              _tag_context(tags, request=True))
    for passed in passed_roles:
        c.add(role, "iam:PassRole", passed, f"{step} ({kind}): {action} passes {passed}",
              {"iam:PassedToService": PASSED_TO, "iam:AssociatedResourceArn": arn})
    # AddTags (a create with Tags) and PassRole (each role the request names) are requested above.
    unmodelled = set(action_facts(action).dependent_actions) - {"sagemaker:AddTags", "iam:PassRole"}
    if unmodelled:
        raise NeedsError(f"{step} ({kind}): the Service Authorization Reference lists {sorted(unmodelled)} "
                                 f"as dependent actions of {action}, which this derivation does not request")
    return name


def _watch(run: _Run, step: str, resource_type: str, name: str, tags: list | None, actions: Iterable[str]) -> None:
    kind = run.steps[step]["Type"]
    arn = run.c.sagemaker_arn(resource_type, name.lower())
    for action in actions:
        verb = "polls" if ":Describe" in action else "stops it when the execution stops" if ":Stop" in action \
            else "calls"
        run.c.add(run.pipeline.role_arn, action, arn, f"{step} ({kind}): SageMaker Pipelines {verb} ({action})",
                  _tag_context(tags, request=False))


def _job_context(instance_type: Any = None, volume_key: str | None = None, output_key: str | None = None,
                 max_runtime: Any = None, inter_container: Any = None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if instance_type:
        context["sagemaker:InstanceTypes"] = [str(instance_type)]
    if volume_key:
        context["sagemaker:VolumeKmsKey"] = volume_key
    if output_key:
        context["sagemaker:OutputKmsKey"] = output_key
    if max_runtime is not None:
        context["sagemaker:MaxRuntimeInSeconds"] = str(max_runtime)
    if inter_container is not None:
        context["sagemaker:InterContainerTrafficEncryption"] = _text(bool(inter_container))
    return context


def _volume_key(run: _Run, step: str, key: str | None, role_arn: str) -> None:
    """A volume key: SageMaker makes a grant for the instance volumes; the job's role uses the key."""
    if not key:
        return
    kind = run.steps[step]["Type"]
    why = f"{step} ({kind}): instance volumes encrypted with {key}"
    run.c.kms(run.pipeline.role_arn, ["kms:CreateGrant", "kms:DescribeKey"], key, why, "sagemaker",
              {"kms:GrantIsForAWSResource": "true"})
    run.c.kms(role_arn, ["kms:Decrypt", "kms:GenerateDataKey"], key, why, "sagemaker")


def _output_key(run: _Run, step: str, key: str | None, role_arn: str) -> None:
    """An output key named in the job config: the job's role encrypts with it (SageMaker's API reference)."""
    if not key:
        return
    kind = run.steps[step]["Type"]
    run.c.kms(role_arn, ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"], key,
              f"{step} ({kind}): outputs encrypted with the job config's KmsKeyId", "s3")


def _processing(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    args = run.arguments(step)
    role = args["RoleArn"]
    cluster = args.get("ProcessingResources", {}).get("ClusterConfig", {})
    output_config = args.get("ProcessingOutputConfig", {})
    volume_key, output_key = cluster.get("VolumeKmsKeyId"), output_config.get("KmsKeyId")
    name = _create(run, step, "sagemaker:CreateProcessingJob", "processing-job", args, [role],
                   _job_context(cluster.get("InstanceType"), c.key_arn(volume_key), c.key_arn(output_key),
                                args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")))
    _watch(run, step, "processing-job", name, args.get("Tags"),
           ["sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"])
    where = f"{step} (Processing job {name}, role {role.rsplit('/', 1)[-1]})"
    for item in args.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source:
            c.s3_read(role, source["S3Uri"], f"{where}: input {item['InputName']} ({source['S3Uri']})",
                      prefix=source.get("S3DataType", "S3Prefix") != "S3Object")
    for item in output_config.get("Outputs", []):
        target = item.get("S3Output")
        if target:
            c.s3_write(role, target["S3Uri"], f"{where}: output {item['OutputName']} ({target['S3Uri']})", output_key)
    _volume_key(run, step, volume_key, role)
    _output_key(run, step, output_key, role)
    image = args["AppSpecification"]["ImageUri"]
    c.image_pull(role, image, f"{where}: pulls {image}")
    c.logs(role, LOG_GROUPS["processing-job"], f"{name}/algo-1-{LOG_STREAM_TIME}", f"{where}: container logs")
    c.metrics(role, LOG_GROUPS["processing-job"], f"{where}: instance metrics")
    if IMAGE_URI.match(image) and IMAGE_URI.match(image).group(3) == CLARIFY_REPOSITORY:
        _clarify_shadow_endpoint(run, step, name, role)
    _experiment_recording(run, step, name, role, args)
    _endpoint_monitoring(run, step, name, role, args)
    return [(name, "processing-job")]


MONITOR_MODULE = "pipeline_code.monitor"


def _options(arguments: list) -> dict:
    """``--option value`` pairs of container arguments, wherever the options start (a module name or an
    offline-install prefix may come first): both alignments of the list are read."""
    options = dict(zip(arguments[::2], arguments[1::2]))
    options.update(dict(zip(arguments[1::2], arguments[2::2])))
    return options


def _endpoint_monitoring(run: _Run, step: str, job: str, role: str, args: dict) -> None:
    """``pipeline_code.monitor`` reads the baseline (and its reference rows beside it), the hour folders of data
    capture and ground truth (``s3:ListBucket`` on each folder's prefix) and publishes to its metric namespace."""
    arguments = [_text(a) for a in args["AppSpecification"].get("ContainerArguments") or []]
    if MONITOR_MODULE not in arguments:
        return
    c = run.c
    options = _options(arguments)
    where = f"{step} (Processing job {job})"
    baseline = options["--baseline-uri"]
    if not baseline.startswith("s3://"):  # the schedule sets it: a baseline the experiment pipeline registered
        bucket, _ = split_s3_uri(options["--capture-uri"])
        baseline = f"s3://{bucket}/pipeline/runs/{EXECUTION_ID}/automl/drift-baseline/baseline.json"
    folder = baseline.rsplit("/", 1)[0]
    for name in (baseline.rsplit("/", 1)[1], "reference.csv"):
        c.s3_read(role, f"{folder}/{name}", f"{where}: reads the version's baseline {folder}/{name}", prefix=False)
    for option, what in (("--capture-uri", "data capture"), ("--ground-truth-uri", "ground truth")):
        uri = options[option].rstrip("/") + "/2026/12/04/10/"
        c.s3_read(role, uri, f"{where}: reads one hour folder of the window's {what} ({uri})", prefix=True)
    namespace = options["--metric-namespace"]
    c.add(role, "cloudwatch:PutMetricData", "*", f"{where}: publishes drift and quality to {namespace}",
          {"cloudwatch:namespace": namespace})


RECORD_RUN_MODULE = "pipeline_code.record_run"
CANDIDATE_LISTINGS = {
    "AutoML": ("sagemaker:ListCandidatesForAutoMLJob", "automl-job"),
    "XGBoost": ("sagemaker:ListTrainingJobsForHyperParameterTuningJob", "hyper-parameter-tuning-job"),
}
"""Training path -> the call ``pipeline_code.record_run`` lists the candidates with, and its resource type."""


def _experiment_recording(run: _Run, step: str, job: str, role: str, args: dict) -> None:
    """A step with ``MLFLOW_TRACKING_URI`` calls that MLflow App; ``record_run run`` also lists the candidates."""
    c = run.c
    uri = _text((args.get("Environment") or {}).get("MLFLOW_TRACKING_URI", ""))
    where = f"{step} (Processing job {job})"
    if ":mlflow-app/" in uri:
        c.add(role, "sagemaker:CallMlflowAppApi", uri, f"{where}: logs to the MLflow App {uri.rsplit('/', 1)[-1]}")
    arguments = [_text(a) for a in args["AppSpecification"].get("ContainerArguments") or []]
    if RECORD_RUN_MODULE not in arguments or "run" not in arguments:
        return
    options = _options(arguments)
    action, resource_type = CANDIDATE_LISTINGS[options["--training-path"]]
    raw = run.steps[step]["Arguments"]["AppSpecification"]["ContainerArguments"]
    job_step = raw[raw.index("--job-name") + 1]
    job_tags = None
    if isinstance(job_step, dict) and set(job_step) == {"Get"} and job_step["Get"].startswith("Steps."):
        job_tags = run.arguments(job_step["Get"].split(".")[1]).get("Tags")
    c.add(role, action, c.sagemaker_arn(resource_type, options["--job-name"].lower()),
          f"{where}: lists the candidates of {options['--job-name']}", _tag_context(job_tags, request=False))
    retrain = options.get("--training-job-name")
    if retrain and "--training-job-name" in arguments:
        raw_retrain = raw[raw.index("--training-job-name") + 1]
        retrain_tags = None
        if isinstance(raw_retrain, dict) and set(raw_retrain) == {"Get"}:
            retrain_tags = run.arguments(raw_retrain["Get"].split(".")[1]).get("Tags")
        c.add(role, "sagemaker:DescribeTrainingJob", c.sagemaker_arn("training-job", retrain.lower()),
              f"{where}: reads which metrics {retrain} reported", _tag_context(retrain_tags, request=False))
        c.add(role, "cloudwatch:GetMetricData", "*", f"{where}: reads the training history of {retrain}")


def _clarify_shadow_endpoint(run: _Run, step: str, job: str, role: str) -> None:
    """The Clarify container deploys the analysis config's model on a shadow endpoint, with the job's role."""
    from pipeline_code import clarify_config

    raw_inputs = run.steps[step]["Arguments"].get("ProcessingInputs", [])
    referenced = {p.split(".")[1] for p in gets(raw_inputs) if p.startswith("Steps.")}
    config_steps = [
        s for s in sorted(referenced)
        if CLARIFY_CONFIG_MODULE in (run.arguments(s).get("AppSpecification", {}).get("ContainerEntrypoint") or [])
    ]
    if len(config_steps) != 1:
        raise NeedsError(f"{step}: Clarify job whose analysis config comes from {config_steps or 'no step'} "
                         f"(expected one {CLARIFY_CONFIG_MODULE} step)")
    app = run.arguments(config_steps[0])["AppSpecification"]
    container_arguments = [_text(a) for a in app.get("ContainerArguments", [])]
    try:
        options = clarify_config.parse_args(container_arguments)
    except SystemExit as error:
        raise NeedsError(
            f"{config_steps[0]}: container arguments {container_arguments} are not clarify_config's"
        ) from error
    prefix = getattr(options, "endpoint_name_prefix", None) or CLARIFY_DEFAULT_ENDPOINT_PREFIX
    stamp = _short_hash(job, length=12)
    endpoint = f"{prefix}-{stamp}"[:63]
    config = f"{prefix}-config-{stamp}"[:63]
    c = run.c
    endpoint_arn = c.sagemaker_arn("endpoint", endpoint.lower())
    config_arn = c.sagemaker_arn("endpoint-config", config.lower())
    why = f"{step} (Clarify job {job}): shadow endpoint {endpoint} of model {options.model_name}"
    c.add(role, "sagemaker:CreateEndpointConfig", config_arn, why)
    c.add(role, "sagemaker:CreateEndpoint", endpoint_arn, why)
    c.add(role, "sagemaker:CreateEndpoint", config_arn, why)
    c.add(role, "sagemaker:DescribeEndpointConfig", config_arn, why)
    for action in ("sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:DeleteEndpoint"):
        c.add(role, action, endpoint_arn, why)
    c.add(role, "sagemaker:DeleteEndpointConfig", config_arn, why)
    model_step = _model_step_named(run, options.model_name)
    if model_step is None:
        raise NeedsError(f"{step}: Clarify's model {options.model_name!r} is made by no Model step")
    c.add(role, "sagemaker:DescribeModel", c.sagemaker_arn("model", options.model_name.lower()), why,
          _tag_context(run.arguments(model_step).get("Tags"), request=False))
    _model_runtime(run, model_step, f"{why}: the endpoint serves the model",
                   f"/aws/sagemaker/Endpoints/{endpoint}", "AllTraffic/i-0123456789abcdef0",
                   "/aws/sagemaker/Endpoints")


def _model_step_named(run: _Run, model_name: str) -> str | None:
    for name, step in run.steps.items():
        if step["Type"] == "Model" and run.job_name(name) == model_name:
            return name
    return None


def _model_containers(args: dict) -> list[dict]:
    return ([args["PrimaryContainer"]] if args.get("PrimaryContainer") else []) + list(args.get("Containers", []))


def _model_runtime(run: _Run, model_step: str, why: str, log_group: str, log_stream: str, namespace: str) -> None:
    """What the model's role needs wherever the model runs (transform job, endpoint)."""
    c = run.c
    args = run.arguments(model_step)
    role = args["ExecutionRoleArn"]
    for container in _model_containers(args):
        if container.get("Image"):
            c.image_pull(role, container["Image"], f"{why}: pulls {container['Image']}")
        if container.get("ModelDataUrl"):
            c.s3_read(role, container["ModelDataUrl"], f"{why}: model data {container['ModelDataUrl']}", prefix=False)
    c.logs(role, log_group, log_stream, f"{why}: container logs")
    c.metrics(role, namespace, f"{why}: instance metrics")


def _training_job(run: _Run, step: str, job: str, definition: dict, why: str) -> None:
    """What a training job's role needs (a Training step's job, or one a tuning job starts)."""
    c = run.c
    role = definition["RoleArn"]
    where = f"{why} (training job {job}, role {role.rsplit('/', 1)[-1]})"
    for channel in definition.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source:
            c.s3_read(role, source["S3Uri"], f"{where}: channel {channel['ChannelName']} ({source['S3Uri']})",
                      prefix=source.get("S3DataType", "S3Prefix") != "S3Object")
    output = definition["OutputDataConfig"]
    output_key = output.get("KmsKeyId")
    c.s3_write(role, output["S3OutputPath"].rstrip("/") + f"/{job}", f"{where}: model artifacts", output_key)
    resources = definition.get("ResourceConfig", {})
    _volume_key(run, step, resources.get("VolumeKmsKeyId"), role)
    _output_key(run, step, output_key, role)
    image = definition["AlgorithmSpecification"]["TrainingImage"]
    c.image_pull(role, image, f"{where}: pulls {image}")
    c.logs(role, LOG_GROUPS["training-job"], f"{job}/algo-1-{LOG_STREAM_TIME}", f"{where}: container logs")
    c.metrics(role, LOG_GROUPS["training-job"], f"{where}: training metrics")
    hook = definition.get("DebugHookConfig")
    rules = definition.get("DebugRuleConfigurations") or []
    if hook:
        debug = hook["S3OutputPath"].rstrip("/") + f"/{job}/debug-output"
        c.s3_write(role, debug, f"{where}: Debugger hook output", output_key)
        for rule in rules:
            rule_name = rule["RuleConfigurationName"]
            rule_job = f"{job}-{rule_name}"[:50] + "-" + _short_hash(job, rule_name, length=8)
            rule_where = f"{where}: Debugger rule {rule['RuleConfigurationName']} (processing job {rule_job})"
            c.s3_read(role, debug + "/", f"{rule_where} reads the hook output", prefix=True)
            rule_output = rule.get("S3OutputPath") or output["S3OutputPath"].rstrip("/") + f"/{job}/rule-output"
            c.s3_write(role, rule_output, f"{rule_where} writes its report", output_key)
            c.image_pull(role, rule["RuleEvaluatorImage"], f"{rule_where} pulls {rule['RuleEvaluatorImage']}")
            c.logs(role, LOG_GROUPS["processing-job"], f"{rule_job}/algo-1-{LOG_STREAM_TIME}", f"{rule_where}: logs")


def _training(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    args = run.arguments(step)
    resources = args.get("ResourceConfig", {})
    name = _create(run, step, "sagemaker:CreateTrainingJob", "training-job", args, [args["RoleArn"]],
                   _job_context(resources.get("InstanceType"), c.key_arn(resources.get("VolumeKmsKeyId")),
                                c.key_arn(args["OutputDataConfig"].get("KmsKeyId")),
                                args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
                                args.get("EnableInterContainerTrafficEncryption")))
    _watch(run, step, "training-job", name, args.get("Tags"),
           ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"])
    _training_job(run, step, name, args, f"{step} (Training)")
    return [(name, "training-job")]


def _tuning(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    args = run.arguments(step)
    definitions = ([args["TrainingJobDefinition"]] if args.get("TrainingJobDefinition") else []) + list(
        args.get("TrainingJobDefinitions", []))
    first = definitions[0]
    resources = first.get("ResourceConfig", {})
    name = _create(run, step, "sagemaker:CreateHyperParameterTuningJob", "hyper-parameter-tuning-job", args,
                   sorted({d["RoleArn"] for d in definitions}),
                   _job_context(resources.get("InstanceType"), c.key_arn(resources.get("VolumeKmsKeyId")),
                                c.key_arn(first["OutputDataConfig"].get("KmsKeyId")),
                                inter_container=first.get("EnableInterContainerTrafficEncryption")))
    _watch(run, step, "hyper-parameter-tuning-job", name, args.get("Tags"),
           ["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:StopHyperParameterTuningJob"])
    best = run.properties(step)["BestTrainingJob"]["TrainingJobName"]
    for definition in definitions:
        _training_job(run, step, best, definition, f"{step} (Tuning): a training job the tuning job starts")
    return [(best, "training-job")]


def _automl(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    args = run.arguments(step)
    role = args["RoleArn"]
    security = (args.get("AutoMLJobConfig") or {}).get("SecurityConfig") or args.get("SecurityConfig") or {}
    output = args["OutputDataConfig"]
    volume_key, output_key = security.get("VolumeKmsKeyId"), output.get("KmsKeyId")
    # V1 request shape (InputDataConfig, AutoMLJobConfig) means CreateAutoMLJob; V2 has AutoMLJobInputDataConfig.
    version = "V2" if "AutoMLJobInputDataConfig" in args else ""
    name = _create(run, step, f"sagemaker:CreateAutoMLJob{version}", "automl-job", args, [role],
                   _job_context(volume_key=c.key_arn(volume_key), output_key=c.key_arn(output_key),
                                inter_container=security.get("EnableInterContainerTrafficEncryption")))
    _watch(run, step, "automl-job", name, args.get("Tags"),
           [f"sagemaker:DescribeAutoMLJob{version}", "sagemaker:StopAutoMLJob"])
    c.add(run.pipeline.role_arn, "sagemaker:ListCandidatesForAutoMLJob",
          c.sagemaker_arn("automl-job", name.lower()),
          f"{step} (AutoML): SageMaker Pipelines lists the job's candidates for BestCandidate")
    where = f"{step} (AutoML job {name}, role {role.rsplit('/', 1)[-1]})"
    channels = list(args.get("InputDataConfig", [])) + list(args.get("AutoMLJobInputDataConfig", []))
    for channel in channels:
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        label = channel.get("ChannelType", "training")
        c.s3_read(role, source["S3Uri"], f"{where}: channel {label} ({source['S3Uri']})",
                  prefix=source.get("S3DataType", "S3Prefix") != "S3Object")
    c.s3_write(role, output["S3OutputPath"], f"{where}: candidates, models and reports", output_key)
    _volume_key(run, step, volume_key, role)
    _output_key(run, step, output_key, role)
    for kind, group in LOG_GROUPS.items():
        c.logs(role, group, f"{name}-{kind}/algo-1-{LOG_STREAM_TIME}", f"{where}: logs of the {kind}s Autopilot runs")
        c.metrics(role, group, f"{where}: metrics of the {kind}s Autopilot runs")
    return []


def _model(run: _Run, step: str) -> list[tuple[str, str]]:
    args = run.arguments(step)
    name = _create(run, step, "sagemaker:CreateModel", "model", args, [args["ExecutionRoleArn"]])
    _watch(run, step, "model", name, args.get("Tags"), ["sagemaker:DescribeModel"])
    return []


def _transform(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    args = run.arguments(step)
    resources = args.get("TransformResources", {})
    output = args["TransformOutput"]
    volume_key, output_key = resources.get("VolumeKmsKeyId"), output.get("KmsKeyId")
    name = _create(run, step, "sagemaker:CreateTransformJob", "transform-job", args, [],
                   _job_context(resources.get("InstanceType"), c.key_arn(volume_key), c.key_arn(output_key)))
    _watch(run, step, "transform-job", name, args.get("Tags"),
           ["sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"])
    model_step = _model_step_named(run, args["ModelName"])
    if model_step is None:
        raise NeedsError(f"{step}: transform of model {args['ModelName']!r}, which no Model step makes")
    role = run.arguments(model_step)["ExecutionRoleArn"]
    where = f"{step} (Transform job {name}, model role {role.rsplit('/', 1)[-1]})"
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    c.s3_read(role, source["S3Uri"], f"{where}: input ({source['S3Uri']})",
              prefix=source.get("S3DataType", "S3Prefix") != "S3Object")
    c.s3_write(role, output["S3OutputPath"], f"{where}: predictions", output_key)
    _volume_key(run, step, volume_key, role)
    _output_key(run, step, output_key, role)
    _model_runtime(run, model_step, where, LOG_GROUPS["transform-job"], f"{name}/i-0123456789abcdef0-{LOG_STREAM_TIME}",
                   LOG_GROUPS["transform-job"])
    return [(name, "transform-job")]


def _register_model(run: _Run, step: str) -> list[tuple[str, str]]:
    c = run.c
    role = run.pipeline.role_arn
    args = run.arguments(step)
    props = run.properties(step)
    group = args["ModelPackageGroupName"]
    context = {**_tag_context(args.get("Tags"), request=True)}
    if args.get("ModelApprovalStatus"):
        context["sagemaker:ModelApprovalStatus"] = args["ModelApprovalStatus"]
    for key, value in (args.get("CustomerMetadataProperties") or {}).items():
        context[f"sagemaker:CustomerMetadataProperties/{key}"] = _text(value)
    why = f"{step} (RegisterModel): SageMaker Pipelines creates version 1 of {group}"
    c.add(role, "sagemaker:CreateModelPackage", props["ModelPackageArn"], why, context)
    c.add(role, "sagemaker:CreateModelPackage", c.sagemaker_arn("model-package-group", group.lower()), why, context)
    if args.get("Tags"):
        c.add(role, "sagemaker:AddTags", props["ModelPackageArn"], f"{why} with Tags",
              _tag_context(args["Tags"], request=True))
    c.add(role, "sagemaker:DescribeModelPackage", props["ModelPackageArn"],
          f"{step} (RegisterModel): SageMaker Pipelines reads the version")
    for section, entries in (args.get("ModelMetrics") or {}).items():
        for kind, entry in entries.items():
            if isinstance(entry, dict) and entry.get("S3Uri"):
                c.s3_read(role, entry["S3Uri"],
                          f"{step} (RegisterModel): {section} {kind} the version names ({entry['S3Uri']})",
                          prefix=False)
    return []


def _experiment(run: _Run, created_jobs: list[tuple[str, str]]) -> None:
    config = run.definition.get("PipelineExperimentConfig")
    if not config:
        return
    c, role = run.c, run.pipeline.role_arn
    where = "PipelineExperimentConfig"
    experiment = _text(run.value(config.get("ExperimentName", {"Get": "Execution.PipelineName"}), where))
    trial = _text(run.value(config.get("TrialName", {"Get": "Execution.PipelineExecutionId"}), where))
    experiment_arn = c.sagemaker_arn("experiment", experiment.lower())
    trial_arn = c.sagemaker_arn("experiment-trial", trial.lower())
    why = f"PipelineExperimentConfig: experiment {experiment}, trial {trial}"
    c.add(role, "sagemaker:CreateExperiment", experiment_arn, why)
    c.add(role, "sagemaker:CreateTrial", experiment_arn, why)
    c.add(role, "sagemaker:CreateTrial", trial_arn, why)
    for job, job_type in created_jobs:
        component = f"{job}-aws-{job_type}"
        component_arn = c.sagemaker_arn("experiment-trial-component", component.lower())
        component_why = f"{why}: trial component {component}"
        c.add(role, "sagemaker:AssociateTrialComponent", trial_arn, component_why)
        c.add(role, "sagemaker:AssociateTrialComponent", component_arn, component_why)


# --- endpoints ------------------------------------------------------------------------------------------


@dataclass
class DeploySettings:
    """What the team's deploy Lambda is configured with (its environment in the synthesized template)."""

    function_logical_id: str
    model_execution_role_arn: str
    kms_key_arn: str
    data_capture_s3_uri: str
    use_cases: list[dict[str, Any]]


def deploy_settings(world: World, stack: str) -> DeploySettings | None:
    """The deploy Lambda of the stack: the function whose environment holds DATA_CAPTURE_S3_URI."""
    for res in world.resources("AWS::Lambda::Function"):
        if res.stack != stack:
            continue
        variables = world.resolve(stack, res.properties.get("Environment", {})).get("Variables", {})
        if "DATA_CAPTURE_S3_URI" in variables:
            return DeploySettings(res.logical_id, variables["MODEL_EXECUTION_ROLE_ARN"], variables["KMS_KEY_ARN"],
                                  variables["DATA_CAPTURE_S3_URI"], json.loads(variables["USE_CASES"]))
    return None


def registered_containers(world: World, stack: str, group: str) -> list[tuple[str, dict]]:
    """(step, container) of every RegisterModel step of the stack's pipelines that registers into `group`."""
    found = []
    for pipeline in pipelines_of(world, stack):
        run = _Run(_Collector(world), pipeline, EXECUTION_ID)
        for name, step in run.steps.items():
            if step["Type"] == "RegisterModel":
                args = run.arguments(name)
                if args["ModelPackageGroupName"] == group:
                    for container in args.get("InferenceSpecification", {}).get("Containers", []):
                        found.append((f"{pipeline.name}/{name}", container))
    return found


def model_execution_needs(world: World, stack: str) -> list[Need]:
    """What the team's running endpoints need from the model execution role (see the module docstring)."""
    settings = deploy_settings(world, stack)
    if settings is None:
        return []
    c = _Collector(world)
    role = settings.model_execution_role_arn
    for use_case in settings.use_cases:
        endpoint, group = use_case["endpoint"], use_case["group"]
        where = f"endpoint {endpoint} (use case {use_case['use_case']}, model role {role.rsplit('/', 1)[-1]})"
        containers = registered_containers(world, stack, group)
        if not containers:
            raise NeedsError(f"{where}: no pipeline of {stack} registers into {group}")
        for source, container in containers:
            c.image_pull(role, container["Image"], f"{where}: pulls the image of versions from {source}")
            c.s3_read(role, container["ModelDataUrl"], f"{where}: model data of versions from {source}", prefix=False)
        c.logs(role, f"/aws/sagemaker/Endpoints/{endpoint}", f"{DATA_CAPTURE_VARIANT}/i-0123456789abcdef0",
               f"{where}: container logs")
        c.metrics(role, "/aws/sagemaker/Endpoints", f"{where}: instance metrics")
        if use_case.get("settings", {}).get("data_capture", {}).get("enabled"):
            uri = settings.data_capture_s3_uri.rstrip("/") + f"/{endpoint}/{DATA_CAPTURE_VARIANT}/2026/12/01/00"
            c.s3_write(role, uri, f"{where}: data capture", settings.kms_key_arn, under="capture-0001.jsonl")
            c.kms(role, ["kms:GenerateDataKey"], settings.kms_key_arn, f"{where}: data capture KmsKeyId", "s3")
        for alarm in use_case.get("alarms", []):
            c.add(role, "cloudwatch:DescribeAlarms", c.arn("cloudwatch", f"alarm:{alarm}"),
                  f"{where}: blue/green auto-rollback watches alarm {alarm}")
    return c.result()


# --- evaluation -------------------------------------------------------------------------------------------


def role_of_arn(world: World, arn: str) -> tuple[str, str]:
    """(stack, logical id) of the role with this ARN."""
    for res in world.resources("AWS::IAM::Role"):
        if world.role_arn(res.stack, res.logical_id) == arn:
            return res.stack, res.logical_id
    raise ResolveError(f"no role of the world has the ARN {arn}")


def check(world: World, needs: Iterable[Need], *, identity: dict[str, list[dict]] | None = None) -> list[Outcome]:
    """Each need against its role's identity policies, joined with the bucket or key policy of its resource.

    `identity` maps a role ARN to the statements to use instead of the world's (for mutation tests).
    """
    identity = dict(identity or {})
    resource_policies: dict[str, list[dict]] = {}
    outcomes = []
    for need in needs:
        request = need.request
        if need.role_arn not in identity:
            identity[need.role_arn] = world.role_statements(*role_of_arn(world, need.role_arn))
        statements = identity[need.role_arn]
        service = request.action.split(":", 1)[0].lower()
        resource_policy: list[dict] = []
        if service in ("s3", "kms") and request.resource != "*":
            if request.resource not in resource_policies:
                resource_policies[request.resource] = world.resource_statements(request.resource)
            resource_policy = resource_policies[request.resource]
        if service == "kms":
            decision = evaluate_access(statements, resource_policy, request, key_policy=True)
        elif service == "s3" and resource_policy:
            decision = evaluate_access(statements, resource_policy, request)
        else:
            decision = evaluate(statements, request)
        outcomes.append(Outcome(need, decision))
    return outcomes


def unmet(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.allowed]


def unmet_report(outcomes: Iterable[Outcome]) -> str:
    lines = []
    for outcome in unmet(outcomes):
        need = outcome.need
        lines.append(f"- {need.why}")
        for other in need.also[:3]:
            lines.append(f"  (also: {other})")
        lines.append(f"    {need.request.action} on {need.request.resource}")
        lines.append(f"    as {need.role_arn}")
        keys = {k: v for k, v in need.request.context.items() if not k.startswith(("aws:Principal", "aws:Requested"))}
        if keys:
            lines.append(f"    context {json.dumps(keys, sort_keys=True)}")
        lines.append(f"    {outcome.decision.explain()}")
    return "\n".join(lines)
