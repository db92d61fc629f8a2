"""The SageMaker pipeline definition, built from plain dictionaries (no SageMaker SDK at synth time).

A step's ``Arguments`` are the matching SageMaker Create* request without the job name; references
between steps are ``{"Get": "Steps.<name>.<property path>"}`` and the pipeline functions ``Std:Join``
and ``Std:JsonGet``.

Account-specific values are placeholders ``${Name}`` for ``PLACEHOLDERS`` (the CDK construct fills them
with ``Fn::Sub``; ``render`` fills them for tests and tools). ``definition_json`` is deterministic: the
same code gives byte-identical output.

One definition per use case: ``build_definition(spec)`` takes a ``PipelineSpec`` (the use case's
``Problem``, objective, quality gate, default split and data prefix), so the AutoML problem type and
objective, the XGBoost objective, the target, the evaluation and the gate all follow the use case.

Every S3 input that reads another step's output folder ends in ``/``: an ``S3Prefix`` input takes every
key that *starts with* its URI, so ``.../split/test`` would also take ``.../split/test_features/...``.

Graph:
``SplitData`` -> ``SelectTrainingPath`` (TrainingPath == "AutoML"):
- AutoML branch: AutoMLTrain -> AutoMLModel -> AutoMLBatchTransform -> AutoMLEvaluate -> AutoMLDriftBaseline,
  and the bias and explanation steps (below) -> AutoMLRecordExperiment -> AutoMLCheckQuality -> AutoMLRegister ->
  AutoMLRecordRegistration | AutoMLQualityTooLow
- otherwise ``CheckXGBoostPath`` (TrainingPath == "XGBoost"): XGBoostTune -> XGBoostTrain (best tuned
  hyperparameters, early stopping on the validation metric) -> XGBoostModel -> the same evaluation chain with the
  XGBoost prefix; any other TrainingPath ends in ``UnknownTrainingPath`` (Fail).
Each branch holds every step that depends on its model, so no step refers across branches.

Bias and explanations (``PipelineSpec.explainability``):
- ``open`` (default; every account can use it): <P>ExplanationSamples (Kernel SHAP's coalitions of the explained
  test rows, which depend on the data only) -> <P>ExplainTransform (the model scores them in a batch transform) ->
  <P>BiasExplain (``smclarify`` bias metrics and ``shap`` values from the recorded scores, written as a Clarify
  ``analysis.json``), in the scikit-learn image with the libraries installed offline from the wheelhouse that ships
  with the code (``pipeline_code.offline_install``);
- ``clarify`` (accounts that still have SageMaker Clarify and Debugger): <P>ClarifyConfig -> <P>Clarify (the Clarify
  processing job on a shadow endpoint), and Debugger rules on the XGBoost retrain.
An empty BiasFacets (a use case without ``problem.facets``) skips the bias metrics on both options and keeps the
SHAP values: <P>BiasExplain writes ``bias_skipped`` instead of the bias sections, <P>ClarifyConfig a config with no
facet and no bias methods.
<P>RecordExperiment logs the execution's split, candidates, metrics, reports and plots to the team's MLflow App
(one MLflow run per execution; ``mlops.bias_skipped`` says why a run has no bias metrics); <P>RecordRegistration
adds the registered model package to that run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pipeline_code.images import CLARIFY, DEBUGGER, SKLEARN, XGBOOST
from pipeline_code.problem import AUTOML_PROBLEM_TYPES, FRAUD, METRICS_SECTION, QUALITY_METRICS, Problem, facets_text

VERSION = "2020-12-01"
CODE_PREFIX = "pipeline/code"
"""Key prefix in the team bucket under which the ``pipeline_code`` package is uploaded."""
RUNS_PREFIX = "pipeline/runs"
BASELINE_FILE = "baseline.json"
"""The drift baseline ``pipeline_code.baseline`` writes; its S3 URI is on the model package."""
DATA_ROOT = "pipeline/data"
"""Each use case reads ``pipeline/data/<use case>/`` by default (``data_prefix``)."""

PLACEHOLDERS = (
    "TeamName",
    "PlatformPrefix",
    "ClarifyEndpointPrefix",
    "BucketName",
    "ExecutionRoleArn",
    "ModelPackageGroupName",
    "KmsKeyArn",
    "PipelineName",
    "MlflowAppArn",
    "CodeCommit",
    SKLEARN.placeholder,
    XGBOOST.placeholder,
    CLARIFY.placeholder,
    DEBUGGER.placeholder,
)
"""Every placeholder a definition can use; ``placeholders(spec)`` gives the ones ``spec``'s definition uses."""
CLARIFY_ONLY_PLACEHOLDERS = ("ClarifyEndpointPrefix", CLARIFY.placeholder, DEBUGGER.placeholder)
EXPLAINABILITY_OPTIONS = ("open", "clarify")
"""``open``: bias and SHAP in the team's own processing steps (smclarify, shap); ``clarify``: SageMaker Clarify
processing jobs and Debugger rules, for accounts that still have them."""
WHEELHOUSE_PREFIX = f"{CODE_PREFIX}/wheelhouse"
"""Key prefix of the wheels the container installs offline (uploaded with the code)."""
WHEELHOUSE_LOCAL = "/opt/ml/processing/wheelhouse"
OFFLINE_INSTALL_MODULE = "pipeline_code.offline_install"
EXPLAIN_ROWS = 50
"""Test rows whose predictions SHAP explains (``ExplainRows``'s default)."""
# Tags on every job and model a step creates: SageMaker Pipelines names them ``pipelines-...``, so the
# team role's grants on such names are scoped by the team tag (see stacks/team_stack.py).
TEAM_TAG_KEY = "mlops:team"
PLATFORM_TAG_KEY = "mlops:platform"
STEP_TAGS = ({"Key": TEAM_TAG_KEY, "Value": "${TeamName}"}, {"Key": PLATFORM_TAG_KEY, "Value": "${PlatformPrefix}"})
PLACEHOLDER_PATTERN = re.compile(r"\$\{([A-Za-z0-9]+)\}")

TRAINING_PATHS = ("AutoML", "XGBoost")
CODE_LOCAL_ROOT = "/opt/ml/processing/code"
INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"
PROCESSING_MAX_SECONDS = 3600
TRAINING_MAX_SECONDS = 3600
REALTIME_INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge"]
TRANSFORM_INSTANCE_TYPES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge"]
AUTOML_INFERENCE_OUTPUT = {
    "binary": "predicted_label,probability,probabilities,labels",
    "multiclass": "predicted_label,probability,probabilities,labels",
    "regression": "predicted_label",
}
"""``SAGEMAKER_INFERENCE_OUTPUT`` of the AutoML model: classification asks for every class's probability
and the label order, because an ensemble's ``probability`` belongs to the *predicted* label."""
PREDICTION_FORMATS = {
    ("AutoML", "binary"): "automl_classification",
    ("AutoML", "multiclass"): "automl_classification",
    ("AutoML", "regression"): "value",
    ("XGBoost", "binary"): "probability",
    ("XGBoost", "multiclass"): "class_index",
    ("XGBoost", "regression"): "value",
}
"""(training path, problem type) -> the ``pipeline_code.evaluate`` format of its batch predictions."""
XGBOOST_OBJECTIVES = {
    "binary": ("binary:logistic", "auc", "Maximize"),
    "multiclass": ("multi:softmax", "merror", "Minimize"),
    "regression": ("reg:squarederror", "rmse", "Minimize"),
}
"""problem type -> (XGBoost objective, eval metric, tuning direction of ``validation:<metric>``)."""


@dataclass(frozen=True)
class PipelineSpec:
    """What one use case's pipeline is built from (the platform config's ``problem`` section)."""

    problem: Problem = FRAUD
    objective: str = "AUC"
    quality_metric: str = "auc"
    quality_threshold: float = 0.8
    split_mode: str = "stratified"
    fractions: tuple = (0.7, 0.15, 0.15)
    split_seed: int = 42
    data_prefix: str = f"{DATA_ROOT}/raw/"
    title: str = "Fraud detection"
    explainability: str = "open"

    def __post_init__(self) -> None:
        if self.explainability not in EXPLAINABILITY_OPTIONS:
            raise ValueError(f"explainability {self.explainability!r} is not one of {list(EXPLAINABILITY_OPTIONS)}")
        metrics = QUALITY_METRICS[self.problem.problem_type]
        if self.quality_metric not in metrics:
            raise ValueError(f"quality metric {self.quality_metric!r} is not one of {sorted(metrics)} "
                             f"for a {self.problem.problem_type} problem")
        if self.split_mode not in self.problem.allowed_split_modes():
            raise ValueError(f"split mode {self.split_mode!r} is not one of {self.problem.allowed_split_modes()}")

    @property
    def quality_metric_path(self) -> str:
        """The JSON path of the gate's metric in ``evaluation.json``."""
        return f"{METRICS_SECTION[self.problem.problem_type]}.{self.quality_metric}.value"

    @property
    def higher_is_better(self) -> bool:
        return QUALITY_METRICS[self.problem.problem_type][self.quality_metric] == "max"


FRAUD_SPEC = PipelineSpec()


def parameters(spec: PipelineSpec) -> tuple:
    """(name, type, default, description) of every pipeline parameter of ``spec``'s pipeline."""
    binary = spec.problem.problem_type == "binary"
    clarify = spec.explainability == "clarify"
    gate = "at least" if spec.higher_is_better else "at most"
    declared = [
        ("InputDataUri", "String", f"s3://${{BucketName}}/{spec.data_prefix}", "S3 folder holding the input CSV file(s)"),
        ("TrainingPath", "String", "AutoML", "AutoML (Autopilot, ensembling) or XGBoost (built-in, tuned)"),
        ("SplitMode", "String", spec.split_mode, f"one of {', '.join(spec.problem.allowed_split_modes())}"),
        ("TrainFraction", "Float", spec.fractions[0], "share of rows in train"),
        ("ValidationFraction", "Float", spec.fractions[1], "share of rows in validation"),
        ("TestFraction", "Float", spec.fractions[2], "share of rows in test"),
        ("SplitSeed", "Integer", spec.split_seed, "seed of the split and of oversampling"),
    ]
    if binary:
        declared.append(("OversampleRatio", "Float", 0.0, "share of positives in train after oversampling; 0 disables it"))
    declared += [
        ("AutoMLObjective", "String", spec.objective, "Autopilot objective metric"),
        ("AutoMLMaxCandidates", "Integer", 10, "most candidates Autopilot trains"),
        ("AutoMLMaxCandidateRuntimeSeconds", "Integer", 1800, "time limit of one candidate's training job"),
        ("AutoMLMaxRuntimeSeconds", "Integer", 7200, "time limit of the whole Autopilot job"),
        ("XGBoostMaxTuningJobs", "Integer", 8, "training jobs the XGBoost tuning job may run"),
        ("XGBoostMaxParallelJobs", "Integer", 2, "tuning training jobs run at once"),
    ]
    if binary:
        declared.append(("DecisionThreshold", "Float", 0.5, "score at or above which a row counts as positive"))
    declared += [
        ("QualityThreshold", "Float", spec.quality_threshold,
         f"test {spec.quality_metric} a model needs ({gate}) to be registered"),
        ("BiasFacets", "String", facets_text(spec.problem.facets), "sensitive facets: column=value|value;column=value"),
        ("ShapSamples", "Integer", 100,
         "samples per row for Clarify's SHAP" if clarify else "coalitions Kernel SHAP samples per explained row"),
    ]
    if spec.explainability == "open":
        declared.append(("ExplainRows", "Integer", EXPLAIN_ROWS, "test rows whose predictions SHAP explains"))
    declared += [
        ("ProcessingInstanceType", "String", "ml.m5.large",
         "instance type of processing and Clarify jobs" if clarify else "instance type of processing jobs"),
        ("TrainingInstanceType", "String", "ml.m5.xlarge", "instance type of XGBoost training"),
        ("TransformInstanceType", "String", "ml.m5.large",
         "instance type of batch transform and Clarify's shadow endpoint" if clarify else
         "instance type of the batch transforms (test predictions and SHAP samples)"),
    ]
    return tuple(declared)


PARAMETERS = parameters(FRAUD_SPEC)
"""The fraud example's parameters (every use case's pipeline declares its own: ``parameters(spec)``)."""
PARAMETER_NAMES = tuple(p[0] for p in PARAMETERS)
ALL_PARAMETER_NAMES = frozenset(PARAMETER_NAMES)


def step_tags() -> list:
    """The tags of a job or model a step creates (a fresh list per step)."""
    return [dict(tag) for tag in STEP_TAGS]


def get(path: str) -> dict:
    return {"Get": path}


def param(name: str) -> dict:
    if name not in ALL_PARAMETER_NAMES:
        raise KeyError(f"undeclared pipeline parameter {name!r}")
    return get(f"Parameters.{name}")


def folder(uri) -> dict:
    """``uri`` with a trailing ``/``, so an ``S3Prefix`` input reads that folder and no sibling that shares its name."""
    return join(uri, "")


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
                    arguments: list | None = None, property_files: list | None = None, *,
                    wheelhouse: bool = False, environment: dict | None = None) -> dict:
    """A processing step; with ``module`` it runs ``python3 -m pipeline_code.<module>`` from the uploaded code.

    With ``wheelhouse`` the module runs through ``pipeline_code.offline_install``, which first installs the
    libraries the image lacks from the wheelhouse input (no network), then runs the module.
    """
    app = {"ImageUri": image}
    processing_inputs = list(inputs)
    environment = dict(environment or {})
    if module is not None:
        if wheelhouse:
            app["ContainerEntrypoint"] = ["python3", "-m", OFFLINE_INSTALL_MODULE]
            app["ContainerArguments"] = ["--wheelhouse", WHEELHOUSE_LOCAL, f"pipeline_code.{module}",
                                         *(arguments or [])]
            processing_inputs.insert(
                0, _s3_input("wheelhouse", f"s3://${{BucketName}}/{WHEELHOUSE_PREFIX}/", WHEELHOUSE_LOCAL))
        else:
            app["ContainerEntrypoint"] = ["python3", "-m", f"pipeline_code.{module}"]
            app["ContainerArguments"] = list(arguments or [])
        processing_inputs.insert(
            0,
            _s3_input("code", f"s3://${{BucketName}}/{CODE_PREFIX}/pipeline_code/", f"{CODE_LOCAL_ROOT}/pipeline_code"),
        )
        environment["PYTHONPATH"] = CODE_LOCAL_ROOT
    arguments_block = {
        "AppSpecification": app,
        "ProcessingInputs": processing_inputs,
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
    if outputs:
        arguments_block["ProcessingOutputConfig"] = {"Outputs": list(outputs), "KmsKeyId": "${KmsKeyArn}"}
    if environment:
        arguments_block["Environment"] = environment
    step = {"Name": name, "Type": "Processing", "Arguments": arguments_block}
    if property_files:
        step["PropertyFiles"] = list(property_files)
    return step


def split_step(spec: PipelineSpec) -> dict:
    outputs = ["train", "validation", "test", "transform_input", "bias_dataset", "xgboost_train",
               "xgboost_validation", "summary"]
    arguments = [
        "--input-dir", f"{INPUT_ROOT}/raw",
        "--output-dir", OUTPUT_ROOT,
        "--mode", param("SplitMode"),
        "--train-fraction", as_text(param("TrainFraction")),
        "--validation-fraction", as_text(param("ValidationFraction")),
        "--test-fraction", as_text(param("TestFraction")),
        "--seed", as_text(param("SplitSeed")),
        "--training-path", param("TrainingPath"),
    ]
    if spec.problem.problem_type == "binary":
        arguments += ["--oversample-ratio", as_text(param("OversampleRatio"))]
    return processing_step(
        "SplitData",
        f"${{{SKLEARN.placeholder}}}",
        inputs=[_s3_input("raw", param("InputDataUri"), f"{INPUT_ROOT}/raw")],
        outputs=[_s3_output(o, f"{OUTPUT_ROOT}/{o}", run_uri("split", o)) for o in outputs],
        module="split",
        arguments=arguments + spec.problem.to_arguments(),
    )


def _training_channel(name: str, uri, content_type: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


def _automl_channel(channel_type: str, uri, target: str) -> dict:
    return {
        "ChannelType": channel_type,
        "ContentType": "text/csv;header=present",
        "CompressionType": "None",
        "TargetAttributeName": target,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
    }


def automl_steps(spec: PipelineSpec) -> tuple:
    """([Autopilot step in ensembling mode on train + validation], container of its best candidate)."""
    problem = spec.problem
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
    environment["SAGEMAKER_INFERENCE_OUTPUT"] = AUTOML_INFERENCE_OUTPUT[problem.problem_type]
    train = {
        "Name": "AutoMLTrain",
        "Type": "AutoML",
        "Arguments": {
            "InputDataConfig": [
                _automl_channel("training", folder(processing_output("SplitData", "train")), problem.target),
                _automl_channel("validation", folder(processing_output("SplitData", "validation")), problem.target),
            ],
            "OutputDataConfig": {"S3OutputPath": run_uri("automl"), "KmsKeyId": "${KmsKeyArn}"},
            "ProblemType": AUTOML_PROBLEM_TYPES[problem.problem_type],
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


def xgboost_steps(spec: PipelineSpec) -> tuple:
    """([tuning step, training step with the best tuned values], model container)."""
    problem = spec.problem
    channels = [
        _training_channel("train", folder(processing_output("SplitData", "xgboost_train")), "text/csv"),
        _training_channel("validation", folder(processing_output("SplitData", "xgboost_validation")), "text/csv"),
    ]
    objective, eval_metric, direction = XGBOOST_OBJECTIVES[problem.problem_type]
    static = {
        "objective": objective,
        "eval_metric": eval_metric,
        "num_round": "300",
        "early_stopping_rounds": "20",
    }
    if problem.problem_type == "multiclass":
        static["num_class"] = str(len(problem.classes))
    tuned = ("eta", "max_depth", "min_child_weight", "subsample")

    def job() -> dict:
        """What the tuning jobs and the retrain share, so the retrain matches the tuning."""
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
                "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": f"validation:{eval_metric}"},
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
    train = {
        "Name": "XGBoostTrain",
        "Type": "Training",
        "Arguments": {"HyperParameters": hyperparameters, **job(), "Tags": step_tags()},
    }
    if spec.explainability == "clarify":
        train["Arguments"].update(debugger_configuration())
    model_container = {
        "Image": f"${{{XGBOOST.placeholder}}}",
        "ModelDataUrl": get("Steps.XGBoostTrain.ModelArtifacts.S3ModelArtifacts"),
    }
    return [tune, train], model_container


def debugger_configuration() -> dict:
    """Debugger's hook and rules on the XGBoost retrain (the ``clarify`` option only: Debugger is closed to new
    customers, and ``early_stopping_rounds`` already stops training when the validation metric stops improving)."""
    rule_image = f"${{{DEBUGGER.placeholder}}}"
    return {
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
    }


def tracking_environment() -> dict:
    """Where a recording step logs: the team's MLflow App, the pipeline's experiment, this execution and code."""
    return {
        "MLFLOW_TRACKING_URI": "${MlflowAppArn}",
        "MLOPS_EXPERIMENT_NAME": "${PipelineName}",
        "MLOPS_PIPELINE_EXECUTION_ARN": get("Execution.PipelineExecutionArn"),
        "MLOPS_CODE_COMMIT": "${CodeCommit}",
    }


def transform_step(name: str, model: str, input_uri, output_uri) -> dict:
    """Batch transform of the CSV files under ``input_uri`` (one line per record) with ``model``'s model."""
    return {
        "Name": name,
        "Type": "Transform",
        "Arguments": {
            "ModelName": get(f"Steps.{model}.ModelName"),
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 6,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": output_uri,
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
    }


def open_explanation_steps(spec: PipelineSpec, prefix: str, model: str, prediction_format: str) -> tuple:
    """([samples, their batch transform, bias and SHAP report], the report's output): no Clarify, no endpoint."""
    problem = spec.problem
    samples, transform, report = f"{prefix}ExplanationSamples", f"{prefix}ExplainTransform", f"{prefix}BiasExplain"
    folder_name = f"{prefix.lower()}-explanations"
    threshold = ["--threshold", as_text(param("DecisionThreshold"))] if problem.problem_type == "binary" else []
    steps = [
        processing_step(
            samples,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[
                _s3_input("test", folder(processing_output("SplitData", "test")), f"{INPUT_ROOT}/test"),
                _s3_input("train", folder(processing_output("SplitData", "train")), f"{INPUT_ROOT}/train"),
            ],
            outputs=[
                _s3_output("samples", f"{OUTPUT_ROOT}/samples", run_uri(folder_name, "samples")),
                _s3_output("design", f"{OUTPUT_ROOT}/design", run_uri(folder_name, "design")),
            ],
            module="explain",
            wheelhouse=True,
            arguments=[
                "samples",
                "--test-dir", f"{INPUT_ROOT}/test",
                "--train-dir", f"{INPUT_ROOT}/train",
                "--output-dir", f"{OUTPUT_ROOT}/samples",
                "--design-dir", f"{OUTPUT_ROOT}/design",
                "--shap-samples", as_text(param("ShapSamples")),
                "--max-rows", as_text(param("ExplainRows")),
                "--seed", as_text(param("SplitSeed")),
                *problem.to_arguments(),
            ],
        ),
        transform_step(transform, model, folder(processing_output(samples, "samples")),
                       run_uri(folder_name, "sample-predictions")),
        processing_step(
            report,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[
                _s3_input("test", folder(processing_output("SplitData", "test")), f"{INPUT_ROOT}/test"),
                _s3_input("predictions", folder(get(f"Steps.{prefix}BatchTransform.TransformOutput.S3OutputPath")),
                          f"{INPUT_ROOT}/predictions"),
                _s3_input("design", folder(processing_output(samples, "design")), f"{INPUT_ROOT}/design"),
                _s3_input("sample_predictions", folder(get(f"Steps.{transform}.TransformOutput.S3OutputPath")),
                          f"{INPUT_ROOT}/sample_predictions"),
            ],
            outputs=[_s3_output("analysis", f"{OUTPUT_ROOT}/analysis", run_uri(folder_name, "analysis"))],
            module="explain",
            wheelhouse=True,
            arguments=[
                "report",
                "--test-dir", f"{INPUT_ROOT}/test",
                "--predictions-dir", f"{INPUT_ROOT}/predictions",
                "--design-dir", f"{INPUT_ROOT}/design",
                "--sample-predictions-dir", f"{INPUT_ROOT}/sample_predictions",
                "--output-dir", f"{OUTPUT_ROOT}/analysis",
                "--facets", param("BiasFacets"),
                "--prediction-format", prediction_format,
                *threshold,
                *problem.to_arguments(),
            ],
        ),
    ]
    return steps, processing_output(report, "analysis")


def clarify_steps(spec: PipelineSpec, prefix: str, model: str, prediction_format: str) -> tuple:
    """([Clarify config, Clarify processing job], the job's output): the ``clarify`` option."""
    problem = spec.problem
    config, clarify = f"{prefix}ClarifyConfig", f"{prefix}Clarify"
    test_uri = folder(processing_output("SplitData", "test"))
    predictions_uri = folder(get(f"Steps.{prefix}BatchTransform.TransformOutput.S3OutputPath"))
    binary = problem.problem_type == "binary"
    steps = [
        processing_step(
            config,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[
                _s3_input("test", test_uri, f"{INPUT_ROOT}/test"),
                _s3_input("predictions", predictions_uri, f"{INPUT_ROOT}/predictions"),
            ],
            outputs=[_s3_output("config", f"{OUTPUT_ROOT}/config", run_uri(prefix.lower(), "clarify-config"))],
            module="clarify_config",
            arguments=[
                "--test-dir", f"{INPUT_ROOT}/test",
                "--predictions-dir", f"{INPUT_ROOT}/predictions",
                "--output-dir", f"{OUTPUT_ROOT}/config",
                "--model-name", get(f"Steps.{model}.ModelName"),
                "--endpoint-name-prefix", "${ClarifyEndpointPrefix}",
                "--facets", param("BiasFacets"),
                "--instance-type", param("TransformInstanceType"),
                "--prediction-format", prediction_format,
                *(["--probability-threshold", as_text(param("DecisionThreshold"))] if binary else []),
                "--shap-samples", as_text(param("ShapSamples")),
                *problem.to_arguments(),
            ],
        ),
        processing_step(
            clarify,
            f"${{{CLARIFY.placeholder}}}",
            inputs=[
                _s3_input("dataset", folder(processing_output("SplitData", "bias_dataset")), f"{INPUT_ROOT}/data"),
                _s3_input("analysis_config", folder(processing_output(config, "config")), f"{INPUT_ROOT}/config"),
            ],
            outputs=[_s3_output("analysis_result", OUTPUT_ROOT, run_uri(prefix.lower(), "clarify"))],
        ),
    ]
    return steps, processing_output(clarify, "analysis_result")


TRAINING_JOB_NAMES = {
    "AutoML": ("AutoMLTrain.AutoMLJobName", None),
    "XGBoost": ("XGBoostTune.HyperParameterTuningJobName", "XGBoostTrain.TrainingJobName"),
}
"""Training path -> (its AutoML or tuning job's name, its retrain job's name) as step properties."""


def record_experiment_step(prefix: str, evaluate: str, analysis_output) -> dict:
    """Logs the execution's split, candidates, evaluation, bias and SHAP summaries and plots to one MLflow run."""
    job, retrain = TRAINING_JOB_NAMES[prefix]
    return processing_step(
        f"{prefix}RecordExperiment",
        f"${{{SKLEARN.placeholder}}}",
        inputs=[
            _s3_input("split", folder(processing_output("SplitData", "summary")), f"{INPUT_ROOT}/split"),
            _s3_input("evaluation", folder(processing_output(evaluate, "evaluation")), f"{INPUT_ROOT}/evaluation"),
            _s3_input("analysis", folder(analysis_output), f"{INPUT_ROOT}/analysis"),
        ],
        outputs=[_s3_output("run", f"{OUTPUT_ROOT}/run", run_uri(prefix.lower(), "experiment-run"))],
        module="record_run",
        wheelhouse=True,
        arguments=[
            "run",
            "--split-dir", f"{INPUT_ROOT}/split",
            "--evaluation-dir", f"{INPUT_ROOT}/evaluation",
            "--analysis-dir", f"{INPUT_ROOT}/analysis",
            "--output-dir", f"{OUTPUT_ROOT}/run",
            "--training-path", prefix,
            "--job-name", get(f"Steps.{job}"),
            *(["--training-job-name", get(f"Steps.{retrain}")] if retrain else []),
            "--bias-facets", param("BiasFacets"),
        ],
        environment=tracking_environment(),
    )


def record_registration_step(prefix: str) -> dict:
    """Adds the registered model package's ARN to the execution's MLflow run."""
    return processing_step(
        f"{prefix}RecordRegistration",
        f"${{{SKLEARN.placeholder}}}",
        inputs=[_s3_input("run", folder(processing_output(f"{prefix}RecordExperiment", "run")), f"{INPUT_ROOT}/run")],
        outputs=[],
        module="record_run",
        wheelhouse=True,
        arguments=[
            "registration",
            "--run-dir", f"{INPUT_ROOT}/run",
            "--model-package-arn", get(f"Steps.{prefix}Register.ModelPackageArn"),
        ],
        environment=tracking_environment(),
    )


def drift_baseline_step(spec: PipelineSpec, prefix: str, evaluate: str, prediction_format: str,
                        threshold: list) -> dict:
    """The version's drift baseline (``pipeline_code.baseline``): training-split reference rows and statistics,
    the test metrics and what the monitoring job needs to read the endpoint's responses."""
    return processing_step(
        f"{prefix}DriftBaseline",
        f"${{{SKLEARN.placeholder}}}",
        inputs=[
            _s3_input("train", folder(processing_output("SplitData", "train")), f"{INPUT_ROOT}/train"),
            _s3_input("split", folder(processing_output("SplitData", "summary")), f"{INPUT_ROOT}/split"),
            _s3_input("evaluation", folder(processing_output(evaluate, "evaluation")), f"{INPUT_ROOT}/evaluation"),
        ],
        outputs=[_s3_output("baseline", f"{OUTPUT_ROOT}/baseline", run_uri(prefix.lower(), "drift-baseline"))],
        module="baseline",
        arguments=[
            "--train-dir", f"{INPUT_ROOT}/train",
            "--split-dir", f"{INPUT_ROOT}/split",
            "--evaluation-dir", f"{INPUT_ROOT}/evaluation",
            "--output-dir", f"{OUTPUT_ROOT}/baseline",
            "--prediction-format", prediction_format,
            "--quality-metric", spec.quality_metric,
            "--seed", as_text(param("SplitSeed")),
            *threshold,
            *spec.problem.to_arguments(),
        ],
    )


def evaluation_chain(spec: PipelineSpec, prefix: str, model_container: dict) -> list:
    """Model -> batch transform -> evaluation, bias and explanations, experiment record -> quality gate ->
    register (and record it) or fail."""
    problem = spec.problem
    prediction_format = PREDICTION_FORMATS[(prefix, problem.problem_type)]
    binary = problem.problem_type == "binary"
    model, transform, evaluate = f"{prefix}Model", f"{prefix}BatchTransform", f"{prefix}Evaluate"
    check = f"{prefix}CheckQuality"
    test_uri = folder(processing_output("SplitData", "test"))
    predictions_uri = folder(get(f"Steps.{transform}.TransformOutput.S3OutputPath"))
    threshold = ["--threshold", as_text(param("DecisionThreshold"))] if binary else []
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
        transform_step(transform, model, folder(processing_output("SplitData", "transform_input")),
                       run_uri(prefix.lower(), "predictions")),
        processing_step(
            evaluate,
            f"${{{SKLEARN.placeholder}}}",
            inputs=[
                _s3_input("test", test_uri, f"{INPUT_ROOT}/test"),
                _s3_input("predictions", predictions_uri, f"{INPUT_ROOT}/predictions"),
            ],
            outputs=[_s3_output("evaluation", f"{OUTPUT_ROOT}/evaluation", run_uri(prefix.lower(), "evaluation"))],
            module="evaluate",
            arguments=[
                "--test-dir", f"{INPUT_ROOT}/test",
                "--predictions-dir", f"{INPUT_ROOT}/predictions",
                "--output-dir", f"{OUTPUT_ROOT}/evaluation",
                "--prediction-format", prediction_format,
                "--quality-metric", spec.quality_metric,
                *threshold,
                *problem.to_arguments(),
            ],
            property_files=[
                {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
            ],
        ),
    ]
    steps.append(drift_baseline_step(spec, prefix, evaluate, prediction_format, threshold))
    explain = open_explanation_steps if spec.explainability == "open" else clarify_steps
    explanation, analysis_output = explain(spec, prefix, model, prediction_format)
    steps += explanation
    steps.append(record_experiment_step(prefix, evaluate, analysis_output))
    quality = json_get(evaluate, "EvaluationReport", spec.quality_metric_path)
    evaluation_file = join(processing_output(evaluate, "evaluation"), "evaluation.json")
    analysis_file = join(analysis_output, "analysis.json")
    baseline_file = join(processing_output(f"{prefix}DriftBaseline", "baseline"), BASELINE_FILE)
    metric = spec.quality_metric
    register = {
        "Name": f"{prefix}Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "${ModelPackageGroupName}",
            "ModelApprovalStatus": "PendingManualApproval",
            "ModelPackageDescription": join(
                f"{spec.title}, {prefix} path; test {metric}", quality, "from pipeline execution",
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
            "DriftCheckBaselines": {
                "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": baseline_file}},
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_file}},
            },
            "MetadataProperties": {"GeneratedBy": get("Execution.PipelineExecutionArn")},
            "CustomerMetadataProperties": {
                "TrainingPath": prefix,
                "ProblemType": problem.problem_type,
                "Target": problem.target,
                "SplitMode": param("SplitMode"),
                "SplitSeed": as_text(param("SplitSeed")),
                "QualityMetric": metric,
                "QualityValue": as_text(quality),
                "BiasFacets": param("BiasFacets"),
                "Explainability": spec.explainability,
                "PipelineExecutionArn": get("Execution.PipelineExecutionArn"),
                "DriftBaseline": baseline_file,
            },
        },
    }
    relation = "at least" if spec.higher_is_better else "at most"
    fail = {
        "Name": f"{prefix}QualityTooLow",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": join(
                f"Test {metric}", quality, f"is not {relation} QualityThreshold", param("QualityThreshold"),
                "- the model was not registered", on=" ",
            )
        },
    }
    comparison = "GreaterThanOrEqualTo" if spec.higher_is_better else "LessThanOrEqualTo"
    steps.append(
        {
            "Name": check,
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"Type": comparison, "LeftValue": quality, "RightValue": param("QualityThreshold")}],
                "IfSteps": [register, record_registration_step(prefix)],
                "ElseSteps": [fail],
            },
        }
    )
    return steps


def build_definition(spec: PipelineSpec = FRAUD_SPEC) -> dict:
    """The whole pipeline definition of one use case as a dict (placeholders unresolved)."""
    automl, automl_container = automl_steps(spec)
    xgboost, xgboost_container = xgboost_steps(spec)
    automl_branch = automl + evaluation_chain(spec, "AutoML", automl_container)
    xgboost_branch = xgboost + evaluation_chain(spec, "XGBoost", xgboost_container)
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
    definition = {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": [
            {"Name": name, "Type": kind, "DefaultValue": default} for name, kind, default, _ in parameters(spec)
        ],
        # No PipelineExperimentConfig: the SDK's default one makes a SageMaker Experiments (classic) trial
        # per execution, named by SageMaker rather than by the team, which no team-scoped policy allows.
        "Steps": [split_step(spec), select],
    }
    undeclared = {path.split(".", 1)[1] for path in gets(definition["Steps"]) if path.startswith("Parameters.")}
    undeclared -= {name for name, *_ in parameters(spec)}
    if undeclared:
        raise KeyError(f"steps use undeclared parameter(s) {sorted(undeclared)}")
    return definition


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


def placeholders(spec: PipelineSpec = FRAUD_SPEC) -> set:
    """The placeholders ``spec``'s definition uses (a subset of ``PLACEHOLDERS``)."""
    return placeholders_in(definition_json(build_definition(spec)))
