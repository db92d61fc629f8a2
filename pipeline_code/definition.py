"""The SageMaker pipeline definition, built from plain dictionaries (no SageMaker SDK at synth time).

A step's ``Arguments`` are the matching SageMaker Create* request without the job name; references
between steps are ``{"Get": "Steps.<name>.<property path>"}`` and the pipeline functions ``Std:Join``
and ``Std:JsonGet``.

Account-specific values are placeholders ``${Name}`` for ``PLACEHOLDERS`` (the CDK construct fills them
with ``Fn::Sub``; ``render`` fills them for tests and tools). ``definition_json`` is deterministic: the
same code gives byte-identical output.

Graph:
``SplitData`` -> ``SelectTrainingPath`` (TrainingPath == "AutoML"):
- AutoML branch: AutoMLTrain -> AutoMLModel -> AutoMLBatchTransform -> AutoMLEvaluate and
  AutoMLClarifyConfig -> AutoMLClarify -> AutoMLCheckQuality -> AutoMLRegister | AutoMLQualityTooLow
- otherwise ``CheckXGBoostPath`` (TrainingPath == "XGBoost"): XGBoostTune -> XGBoostTrain (best tuned
  hyperparameters, Debugger rules) -> XGBoostModel -> the same evaluation chain with the XGBoost prefix;
  any other TrainingPath ends in ``UnknownTrainingPath`` (Fail).
Each branch holds every step that depends on its model, so no step refers across branches.
"""

from __future__ import annotations

import json
import re

from pipeline_code.columns import LABEL
from pipeline_code.images import CLARIFY, DEBUGGER, SKLEARN, XGBOOST

VERSION = "2020-12-01"
CODE_PREFIX = "pipeline/code"
"""Key prefix in the team bucket under which the ``pipeline_code`` package is uploaded."""
RUNS_PREFIX = "pipeline/runs"
DATA_PREFIX = "pipeline/data/raw"

PLACEHOLDERS = (
    "TeamName",
    "PlatformPrefix",
    "ClarifyEndpointPrefix",
    "BucketName",
    "ExecutionRoleArn",
    "ModelPackageGroupName",
    "KmsKeyArn",
    SKLEARN.placeholder,
    XGBOOST.placeholder,
    CLARIFY.placeholder,
    DEBUGGER.placeholder,
)
# Tags on every job and model a step creates: SageMaker Pipelines names them ``pipelines-...``, so the
# team role's grants on such names are scoped by the team tag (see stacks/team_stack.py).
TEAM_TAG_KEY = "mlops:team"
PLATFORM_TAG_KEY = "mlops:platform"
STEP_TAGS = ({"Key": TEAM_TAG_KEY, "Value": "${TeamName}"}, {"Key": PLATFORM_TAG_KEY, "Value": "${PlatformPrefix}"})
PLACEHOLDER_PATTERN = re.compile(r"\$\{([A-Za-z0-9]+)\}")

TRAINING_PATHS = ("AutoML", "XGBoost")
QUALITY_METRIC_PATH = "binary_classification_metrics.auc.value"
CODE_LOCAL_ROOT = "/opt/ml/processing/code"
INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"
PROCESSING_MAX_SECONDS = 3600
TRAINING_MAX_SECONDS = 3600
REALTIME_INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge"]
TRANSFORM_INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge"]
AUTOML_INFERENCE_OUTPUT = "predicted_label,probability"

PARAMETERS = (
    ("InputDataUri", "String", f"s3://${{BucketName}}/{DATA_PREFIX}",
     "S3 folder holding transactions.csv and customers.csv"),
    ("TrainingPath", "String", "AutoML", "AutoML (Autopilot, ensembling) or XGBoost (built-in, tuned)"),
    ("SplitMode", "String", "stratified", "random, ordered, by_key or stratified"),
    ("TrainFraction", "Float", 0.7, "share of rows in train"),
    ("ValidationFraction", "Float", 0.15, "share of rows in validation"),
    ("TestFraction", "Float", 0.15, "share of rows in test"),
    ("SplitSeed", "Integer", 42, "seed of the split and of oversampling"),
    ("OversampleRatio", "Float", 0.0, "share of positives in train after oversampling; 0 disables it"),
    ("AutoMLObjective", "String", "AUC", "Autopilot objective metric"),
    ("AutoMLMaxCandidates", "Integer", 10, "most candidates Autopilot trains"),
    ("AutoMLMaxCandidateRuntimeSeconds", "Integer", 1800, "time limit of one candidate's training job"),
    ("AutoMLMaxRuntimeSeconds", "Integer", 7200, "time limit of the whole Autopilot job"),
    ("XGBoostMaxTuningJobs", "Integer", 8, "training jobs the XGBoost tuning job may run"),
    ("XGBoostMaxParallelJobs", "Integer", 2, "tuning training jobs run at once"),
    ("DecisionThreshold", "Float", 0.5, "score at or above which a transaction counts as fraud"),
    ("MinimumTestAUC", "Float", 0.8, "test AUC a model needs to be registered"),
    ("BiasFacetName", "String", "home_state", "column of the test data analysed for bias"),
    ("BiasFacetValues", "String", "CA", "comma-separated facet values of the sensitive group"),
    ("ShapSamples", "Integer", 100, "samples per row for Clarify's SHAP"),
    ("ProcessingInstanceType", "String", "ml.m5.large", "instance type of processing and Clarify jobs"),
    ("TrainingInstanceType", "String", "ml.m5.xlarge", "instance type of XGBoost training"),
    ("TransformInstanceType", "String", "ml.m5.large", "instance type of batch transform and Clarify's shadow endpoint"),
)
"""(name, type, default, description) of every pipeline parameter."""

PARAMETER_NAMES = tuple(p[0] for p in PARAMETERS)


def step_tags() -> list:
    """The tags of a job or model a step creates (a fresh list per step)."""
    return [dict(tag) for tag in STEP_TAGS]


def get(path: str) -> dict:
    return {"Get": path}


def param(name: str) -> dict:
    if name not in PARAMETER_NAMES:
        raise KeyError(f"undeclared pipeline parameter {name!r}")
    return get(f"Parameters.{name}")


def join(*values, on: str = "/") -> dict:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def as_text(value) -> dict:
    """A number parameter as a string (for container arguments and metadata)."""
    return join(value, on="")


def json_get(step: str, property_file: str, path: str) -> dict:
    return {"Std:JsonGet": {"PropertyFile": get(f"Steps.{step}.PropertyFiles.{property_file}"), "Path": path}}


def run_uri(*parts) -> dict:
    """``s3://<bucket>/pipeline/runs/<execution id>/<parts...>``: one folder per execution."""
    return join(f"s3://${{BucketName}}/{RUNS_PREFIX}", get("Execution.PipelineExecutionId"), *parts)


def processing_output(step: str, output: str) -> dict:
    return get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


def _s3_input(name: str, uri, local_path: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def _s3_output(name: str, local_path: str, uri) -> dict:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"}}


def processing_step(name: str, image: str, inputs: list, outputs: list, module: str | None = None,
                    arguments: list | None = None, property_files: list | None = None) -> dict:
    """A processing step; with ``module`` it runs ``python3 -m pipeline_code.<module>`` from the uploaded code."""
    app = {"ImageUri": image}
    processing_inputs = list(inputs)
    environment = {}
    if module is not None:
        app["ContainerEntrypoint"] = ["python3", "-m", f"pipeline_code.{module}"]
        app["ContainerArguments"] = list(arguments or [])
        processing_inputs.insert(
            0,
            _s3_input("code", f"s3://${{BucketName}}/{CODE_PREFIX}/pipeline_code", f"{CODE_LOCAL_ROOT}/pipeline_code"),
        )
        environment["PYTHONPATH"] = CODE_LOCAL_ROOT
    arguments_block = {
        "AppSpecification": app,
        "ProcessingInputs": processing_inputs,
        "ProcessingOutputConfig": {"Outputs": list(outputs), "KmsKeyId": "${KmsKeyArn}"},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": param("ProcessingInstanceType"),
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": "${KmsKeyArn}",
            }
        },
        "RoleArn": "${ExecutionRoleArn}",
        "StoppingCondition": {"MaxRuntimeInSeconds": PROCESSING_MAX_SECONDS},
        "Tags": step_tags(),
    }
    if environment:
        arguments_block["Environment"] = environment
    step = {"Name": name, "Type": "Processing", "Arguments": arguments_block}
    if property_files:
        step["PropertyFiles"] = list(property_files)
    return step


def split_step() -> dict:
    outputs = ["train", "validation", "test", "test_features", "xgboost_train", "xgboost_validation", "summary"]
    return processing_step(
        "SplitData",
        f"${{{SKLEARN.placeholder}}}",
        inputs=[_s3_input("raw", param("InputDataUri"), f"{INPUT_ROOT}/raw")],
        outputs=[_s3_output(o, f"{OUTPUT_ROOT}/{o}", run_uri("split", o)) for o in outputs],
        module="split",
        arguments=[
            "--input-dir", f"{INPUT_ROOT}/raw",
            "--output-dir", OUTPUT_ROOT,
            "--mode", param("SplitMode"),
            "--train-fraction", as_text(param("TrainFraction")),
            "--validation-fraction", as_text(param("ValidationFraction")),
            "--test-fraction", as_text(param("TestFraction")),
            "--seed", as_text(param("SplitSeed")),
            "--oversample-ratio", as_text(param("OversampleRatio")),
        ],
    )


def _training_channel(name: str, uri, content_type: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


def _automl_channel(channel_type: str, uri) -> dict:
    return {
        "ChannelType": channel_type,
        "ContentType": "text/csv;header=present",
        "CompressionType": "None",
        "TargetAttributeName": LABEL,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
    }


def automl_steps() -> tuple:
    """([Autopilot step in ensembling mode on train + validation], container of its best candidate)."""
    container = "Steps.AutoMLTrain.BestCandidate.InferenceContainers[0]"
    environment = {
        key: get(f"{container}.Environment['{key}']")
        for key in (
            "MODEL_NAME",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
            "SAGEMAKER_INFERENCE_SUPPORTED",
            "SAGEMAKER_PROGRAM",
            "SAGEMAKER_SUBMIT_DIRECTORY",
        )
    }
    environment["SAGEMAKER_INFERENCE_OUTPUT"] = AUTOML_INFERENCE_OUTPUT
    train = {
        "Name": "AutoMLTrain",
        "Type": "AutoML",
        "Arguments": {
            "InputDataConfig": [
                _automl_channel("training", processing_output("SplitData", "train")),
                _automl_channel("validation", processing_output("SplitData", "validation")),
            ],
            "OutputDataConfig": {"S3OutputPath": run_uri("automl"), "KmsKeyId": "${KmsKeyArn}"},
            "ProblemType": "BinaryClassification",
            "AutoMLJobObjective": {"MetricName": param("AutoMLObjective")},
            "AutoMLJobConfig": {
                "Mode": "ENSEMBLING",
                "CompletionCriteria": {
                    "MaxCandidates": param("AutoMLMaxCandidates"),
                    "MaxRuntimePerTrainingJobInSeconds": param("AutoMLMaxCandidateRuntimeSeconds"),
                    "MaxAutoMLJobRuntimeInSeconds": param("AutoMLMaxRuntimeSeconds"),
                },
                "SecurityConfig": {"VolumeKmsKeyId": "${KmsKeyArn}", "EnableInterContainerTrafficEncryption": True},
            },
            "RoleArn": "${ExecutionRoleArn}",
            "Tags": step_tags(),
        },
    }
    model_container = {
        "Image": get(f"{container}.Image"),
        "ModelDataUrl": get(f"{container}.ModelDataUrl"),
        "Environment": environment,
    }
    return [train], model_container


def xgboost_steps() -> tuple:
    """([tuning step, training step with the best values under Debugger rules], model container)."""
    channels = [
        _training_channel("train", processing_output("SplitData", "xgboost_train"), "text/csv"),
        _training_channel("validation", processing_output("SplitData", "xgboost_validation"), "text/csv"),
    ]
    static = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "num_round": "300",
        "early_stopping_rounds": "20",
    }
    tuned = ("eta", "max_depth", "min_child_weight", "subsample")

    def job() -> dict:
        """What the tuning jobs and the Debugger-watched retrain share, so the retrain matches the tuning."""
        return {
            "AlgorithmSpecification": {"TrainingImage": f"${{{XGBOOST.placeholder}}}", "TrainingInputMode": "File"},
            "RoleArn": "${ExecutionRoleArn}",
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": run_uri("xgboost", "models"), "KmsKeyId": "${KmsKeyArn}"},
            "ResourceConfig": {
                "InstanceCount": 1,
                "InstanceType": param("TrainingInstanceType"),
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": "${KmsKeyArn}",
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": TRAINING_MAX_SECONDS},
            "EnableInterContainerTrafficEncryption": True,
        }

    tune = {
        "Name": "XGBoostTune",
        "Type": "Tuning",
        "Arguments": {
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": param("XGBoostMaxTuningJobs"),
                    "MaxParallelTrainingJobs": param("XGBoostMaxParallelJobs"),
                },
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"},
                        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1.0", "ScalingType": "Linear"},
                    ],
                    "IntegerParameterRanges": [
                        {"Name": "max_depth", "MinValue": "3", "MaxValue": "10", "ScalingType": "Linear"},
                        {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "10", "ScalingType": "Linear"},
                    ],
                    "CategoricalParameterRanges": [],
                },
                "TrainingJobEarlyStoppingType": "Auto",
            },
            "TrainingJobDefinition": {"StaticHyperParameters": dict(static), **job()},
            # Tags of a tuning job also go to every training job it starts.
            "Tags": step_tags(),
        },
    }
    hyperparameters = dict(static)
    for name in tuned:
        hyperparameters[name] = get(f"Steps.XGBoostTune.BestTrainingJob.TunedHyperParameters['{name}']")
    rule_image = f"${{{DEBUGGER.placeholder}}}"
    train = {
        "Name": "XGBoostTrain",
        "Type": "Training",
        "Arguments": {
            "HyperParameters": hyperparameters,
            **job(),
            "Tags": step_tags(),
            "DebugHookConfig": {
                "S3OutputPath": run_uri("xgboost", "debugger"),
                "CollectionConfigurations": [
                    {"CollectionName": "metrics", "CollectionParameters": {"save_interval": "1"}},
                ],
            },
            "DebugRuleConfigurations": [
                {
                    "RuleConfigurationName": "LossNotDecreasing",
                    "RuleEvaluatorImage": rule_image,
                    "RuleParameters": {
                        "rule_to_invoke": "LossNotDecreasing",
                        "collection_names": "metrics",
                        "num_steps": "10",
                    },
                },
                {
                    "RuleConfigurationName": "Overfit",
                    "RuleEvaluatorImage": rule_image,
                    "RuleParameters": {"rule_to_invoke": "Overfit"},
                },
            ],
        },
    }
    model_container = {
        "Image": f"${{{XGBOOST.placeholder}}}",
        "ModelDataUrl": get("Steps.XGBoostTrain.ModelArtifacts.S3ModelArtifacts"),
    }
    return [tune, train], model_container


def evaluation_chain(prefix: str, model_container: dict, prediction_format: str) -> list:
    """Model -> batch transform -> evaluation, Clarify config -> Clarify -> quality gate -> register or fail."""
    model, transform, evaluate = f"{prefix}Model", f"{prefix}BatchTransform", f"{prefix}Evaluate"
    config, clarify, check = f"{prefix}ClarifyConfig", f"{prefix}Clarify", f"{prefix}CheckQuality"
    test_uri = processing_output("SplitData", "test")
    steps = [
        {
            "Name": model,
            "Type": "Model",
            "Arguments": {
                "ExecutionRoleArn": "${ExecutionRoleArn}",
                "PrimaryContainer": dict(model_container),
                "Tags": step_tags(),
            },
        },
        {
            "Name": transform,
            "Type": "Transform",
            "Arguments": {
                "ModelName": get(f"Steps.{model}.ModelName"),
                "BatchStrategy": "MultiRecord",
                "MaxPayloadInMB": 6,
                "TransformInput": {
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": processing_output("SplitData", "test_features")}
                    },
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                },
                "TransformOutput": {
                    "S3OutputPath": run_uri(prefix.lower(), "predictions"),
                    "Accept": "text/csv",
                    "AssembleWith": "Line",
                    "KmsKeyId": "${KmsKeyArn}",
                },
                "TransformResources": {
                    "InstanceCount": 1,
                    "InstanceType": param("TransformInstanceType"),
                    "VolumeKmsKeyId": "${KmsKeyArn}",
                },
                "Tags": step_tags(),
            },
        },
        processing_step(
            evaluate,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[
                _s3_input("test", test_uri, f"{INPUT_ROOT}/test"),
                _s3_input("predictions", get(f"Steps.{transform}.TransformOutput.S3OutputPath"), f"{INPUT_ROOT}/predictions"),
            ],
            outputs=[_s3_output("evaluation", f"{OUTPUT_ROOT}/evaluation", run_uri(prefix.lower(), "evaluation"))],
            module="evaluate",
            arguments=[
                "--test-dir", f"{INPUT_ROOT}/test",
                "--predictions-dir", f"{INPUT_ROOT}/predictions",
                "--output-dir", f"{OUTPUT_ROOT}/evaluation",
                "--prediction-format", prediction_format,
                "--threshold", as_text(param("DecisionThreshold")),
            ],
            property_files=[
                {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
            ],
        ),
        processing_step(
            config,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[_s3_input("test", test_uri, f"{INPUT_ROOT}/test")],
            outputs=[_s3_output("config", f"{OUTPUT_ROOT}/config", run_uri(prefix.lower(), "clarify-config"))],
            module="clarify_config",
            arguments=[
                "--test-dir", f"{INPUT_ROOT}/test",
                "--output-dir", f"{OUTPUT_ROOT}/config",
                "--model-name", get(f"Steps.{model}.ModelName"),
                "--endpoint-name-prefix", "${ClarifyEndpointPrefix}",
                "--facet-name", param("BiasFacetName"),
                "--facet-values", param("BiasFacetValues"),
                "--instance-type", param("TransformInstanceType"),
                "--prediction-format", prediction_format,
                "--probability-threshold", as_text(param("DecisionThreshold")),
                "--shap-samples", as_text(param("ShapSamples")),
            ],
        ),
        processing_step(
            clarify,
            f"${{{CLARIFY.placeholder}}}",
            inputs=[
                _s3_input("dataset", test_uri, f"{INPUT_ROOT}/data"),
                _s3_input("analysis_config", processing_output(config, "config"), f"{INPUT_ROOT}/config"),
            ],
            outputs=[_s3_output("analysis_result", OUTPUT_ROOT, run_uri(prefix.lower(), "clarify"))],
        ),
    ]
    auc = json_get(evaluate, "EvaluationReport", QUALITY_METRIC_PATH)
    evaluation_file = join(processing_output(evaluate, "evaluation"), "evaluation.json")
    analysis_file = join(processing_output(clarify, "analysis_result"), "analysis.json")
    register = {
        "Name": f"{prefix}Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "${ModelPackageGroupName}",
            "ModelApprovalStatus": "PendingManualApproval",
            "ModelPackageDescription": join(
                f"Fraud detection, {prefix} path; test AUC", auc, "from pipeline execution",
                get("Execution.PipelineExecutionId"), on=" ",
            ),
            "InferenceSpecification": {
                "Containers": [dict(model_container)],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
                "SupportedRealtimeInferenceInstanceTypes": list(REALTIME_INSTANCE_TYPES),
                "SupportedTransformInstanceTypes": list(TRANSFORM_INSTANCE_TYPES),
            },
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_file}},
                "Bias": {"Report": {"ContentType": "application/json", "S3Uri": analysis_file}},
                "Explainability": {"Report": {"ContentType": "application/json", "S3Uri": analysis_file}},
            },
            "MetadataProperties": {"GeneratedBy": get("Execution.PipelineExecutionArn")},
            "CustomerMetadataProperties": {
                "TrainingPath": prefix,
                "SplitMode": param("SplitMode"),
                "SplitSeed": as_text(param("SplitSeed")),
                "TestAUC": as_text(auc),
                "BiasFacet": join(param("BiasFacetName"), param("BiasFacetValues"), on="="),
                "PipelineExecutionArn": get("Execution.PipelineExecutionArn"),
            },
        },
    }
    fail = {
        "Name": f"{prefix}QualityTooLow",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": join(
                "Test AUC", auc, "is below MinimumTestAUC", param("MinimumTestAUC"),
                "- the model was not registered", on=" ",
            )
        },
    }
    steps.append(
        {
            "Name": check,
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": param("MinimumTestAUC")}
                ],
                "IfSteps": [register],
                "ElseSteps": [fail],
            },
        }
    )
    return steps


def build_definition() -> dict:
    """The whole pipeline definition as a dict (placeholders unresolved)."""
    automl, automl_container = automl_steps()
    xgboost, xgboost_container = xgboost_steps()
    automl_branch = automl + evaluation_chain("AutoML", automl_container, "label_and_probability")
    xgboost_branch = xgboost + evaluation_chain("XGBoost", xgboost_container, "probability")
    unknown_path = {
        "Name": "UnknownTrainingPath",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": join(
                "Unknown TrainingPath", param("TrainingPath"), "- expected one of", ", ".join(TRAINING_PATHS), on=" "
            )
        },
    }
    select = {
        "Name": "SelectTrainingPath",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": param("TrainingPath"), "RightValue": "AutoML"}],
            "IfSteps": automl_branch,
            "ElseSteps": [
                {
                    "Name": "CheckXGBoostPath",
                    "Type": "Condition",
                    "Arguments": {
                        "Conditions": [{"Type": "Equals", "LeftValue": param("TrainingPath"), "RightValue": "XGBoost"}],
                        "IfSteps": xgboost_branch,
                        "ElseSteps": [unknown_path],
                    },
                }
            ],
        },
    }
    return {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": [
            {"Name": name, "Type": kind, "DefaultValue": default} for name, kind, default, _ in PARAMETERS
        ],
        # No PipelineExperimentConfig: the SDK's default one makes a SageMaker Experiments (classic) trial
        # per execution, named by SageMaker rather than by the team, which no team-scoped policy allows.
        "Steps": [split_step(), select],
    }


def all_steps(steps: list, branch: tuple = ()) -> list:
    """(step, branch path) for every step, the steps of nested condition branches included."""
    found = []
    for step in steps:
        found.append((step, branch))
        if step.get("Type") == "Condition":
            arguments = step["Arguments"]
            found += all_steps(arguments.get("IfSteps", []), branch + ((step["Name"], "If"),))
            found += all_steps(arguments.get("ElseSteps", []), branch + ((step["Name"], "Else"),))
    return found


def gets(value) -> list:
    """Every ``Get`` path inside ``value``."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return [value["Get"]]
        return [path for item in value.values() for path in gets(item)]
    if isinstance(value, list):
        return [path for item in value for path in gets(item)]
    return []


def definition_json(definition: dict | None = None) -> str:
    """Canonical JSON text (sorted keys, no spaces): identical for identical input."""
    return json.dumps(definition if definition is not None else build_definition(), sort_keys=True,
                      separators=(",", ":"))


def placeholders_in(text: str) -> set:
    """Every ``${Name}`` used in ``text``."""
    return set(PLACEHOLDER_PATTERN.findall(text))


def render(text: str, values: dict) -> str:
    """Replace every placeholder (JSON-escaped); raises ``KeyError`` naming any that has no value."""
    missing = placeholders_in(text) - set(values)
    if missing:
        raise KeyError(f"no value for placeholder(s) {sorted(missing)}")
    return PLACEHOLDER_PATTERN.sub(lambda m: json.dumps(str(values[m.group(1)]))[1:-1], text)
