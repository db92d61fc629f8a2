"""The pipeline definition: structure, references, parameters, graph, API shapes, determinism."""

from __future__ import annotations

import copy
import dataclasses
import json

import jsonschema
import pytest

from pipeline_code import definition
from pipeline_code.images import IMAGES, region_images
from pipeline_code.problem import Facet, Problem
from tests.pipeline import definition_rules as rules

EXPRESSION = {
    "oneOf": [
        {"type": "object", "properties": {"Get": {"type": "string"}}, "required": ["Get"], "additionalProperties": False},
        {
            "type": "object",
            "properties": {
                "Std:Join": {
                    "type": "object",
                    "properties": {"On": {"type": "string"}, "Values": {"type": "array"}},
                    "required": ["On", "Values"],
                    "additionalProperties": False,
                }
            },
            "required": ["Std:Join"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "Std:JsonGet": {
                    "type": "object",
                    "properties": {"PropertyFile": {"$ref": "#/definitions/get"}, "Path": {"type": "string"}},
                    "required": ["PropertyFile", "Path"],
                    "additionalProperties": False,
                }
            },
            "required": ["Std:JsonGet"],
            "additionalProperties": False,
        },
    ]
}
SCALAR = {"anyOf": [{"type": ["string", "number", "boolean"]}, EXPRESSION]}
ENVELOPE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {
        "get": EXPRESSION["oneOf"][0],
        "name": {"type": "string", "pattern": "^[A-Za-z0-9\\-_]{1,64}$"},
        "parameter": {
            "type": "object",
            "properties": {
                "Name": {"$ref": "#/definitions/name"},
                "Type": {"enum": ["String", "Integer", "Float", "Boolean"]},
                "DefaultValue": {"type": ["string", "number", "boolean"]},
            },
            "required": ["Name", "Type"],
            "additionalProperties": False,
        },
        "condition": {
            "type": "object",
            "properties": {
                "Type": {"enum": ["Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"]},
                "LeftValue": SCALAR,
                "RightValue": SCALAR,
            },
            "required": ["Type", "LeftValue", "RightValue"],
            "additionalProperties": False,
        },
        "step": {
            "type": "object",
            "properties": {
                "Name": {"$ref": "#/definitions/name"},
                "Type": {"enum": ["Processing", "Training", "Tuning", "Transform", "Model", "AutoML",
                                  "RegisterModel", "Condition", "Fail"]},
                "Arguments": {"type": "object"},
                "DependsOn": {"type": "array", "items": {"$ref": "#/definitions/name"}},
                "PropertyFiles": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "PropertyFileName": {"$ref": "#/definitions/name"},
                            "OutputName": {"type": "string"},
                            "FilePath": {"type": "string"},
                        },
                        "required": ["PropertyFileName", "OutputName", "FilePath"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["Name", "Type", "Arguments"],
            "additionalProperties": False,
            "allOf": [
                {
                    "if": {"properties": {"Type": {"const": "Condition"}}},
                    "then": {
                        "properties": {
                            "Arguments": {
                                "type": "object",
                                "properties": {
                                    "Conditions": {"type": "array", "minItems": 1,
                                                   "items": {"$ref": "#/definitions/condition"}},
                                    "IfSteps": {"type": "array", "items": {"$ref": "#/definitions/step"}},
                                    "ElseSteps": {"type": "array", "items": {"$ref": "#/definitions/step"}},
                                },
                                "required": ["Conditions"],
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                {
                    "if": {"properties": {"Type": {"const": "Fail"}}},
                    "then": {
                        "properties": {
                            "Arguments": {
                                "type": "object",
                                "properties": {"ErrorMessage": SCALAR},
                                "required": ["ErrorMessage"],
                                "additionalProperties": False,
                            }
                        }
                    },
                },
            ],
        },
    },
    "type": "object",
    "properties": {
        "Version": {"enum": ["2020-12-01"]},
        "Metadata": {"type": "object"},
        "Parameters": {"type": "array", "items": {"$ref": "#/definitions/parameter"}},
        "PipelineExperimentConfig": {
            "type": "object",
            "properties": {"ExperimentName": SCALAR, "TrialName": SCALAR},
            "additionalProperties": False,
        },
        "Steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/step"}},
    },
    "required": ["Version", "Steps"],
    "additionalProperties": False,
}
"""The public pipeline-definition JSON schema's envelope, extended to the step types, functions and fields
SageMaker accepts today (see docs/pipeline.md, "Definition checks"); step Arguments are checked against the
API model by ``definition_rules``."""


def example_specs() -> dict:
    from stacks.config import load_config
    from tests.conftest import EXAMPLE_CONFIG

    specs = {u.name: u.pipeline_spec() for t in load_config(EXAMPLE_CONFIG).teams for u in t.use_cases}
    specs["multiclass (no example)"] = definition.PipelineSpec(
        problem=Problem(problem_type="multiclass", target="segment", classes=("gold", "silver", "bronze"),
                        positive_label="gold", key_column="customer", input_layout="table",
                        facets=(Facet("region", ("north",)),), context=("region",)),
        objective="F1macro", quality_metric="weighted_f1", quality_threshold=0.6, split_mode="by_key",
        data_prefix="pipeline/data/segments/", title="Customer segments",
    )
    return specs


def with_clarify_option(specs: dict) -> dict:
    """Every spec as built by default (``open``) and with the platform's ``explainability: clarify`` option."""
    both = dict(specs)
    for name, spec in specs.items():
        both[f"{name} (clarify)"] = dataclasses.replace(spec, explainability="clarify")
    return both


SPECS = with_clarify_option(example_specs())


@pytest.fixture(scope="module", params=sorted(SPECS))
def spec(request) -> definition.PipelineSpec:
    return SPECS[request.param]


@pytest.fixture(scope="module")
def built(spec):
    return definition.build_definition(spec)


def step_named(built_definition, name):
    return next(step for step, _ in rules.all_steps(built_definition["Steps"]) if step["Name"] == name)


def test_definition_matches_the_envelope_schema(built):
    jsonschema.validate(built, ENVELOPE_SCHEMA)


def test_step_arguments_fit_the_sagemaker_api_model(built):
    assert rules.argument_problems(built) == []


def test_every_reference_points_at_a_declared_parameter_step_and_property(built):
    assert rules.reference_problems(built) == []


def test_graph_is_acyclic_with_unique_names_and_no_cross_branch_references(built):
    assert rules.graph_problems(built) == []


def test_every_declared_parameter_is_used(built):
    used = {p.split(".", 1)[1] for p in rules.gets(built) if p.startswith("Parameters.")}
    assert used == {p["Name"] for p in built["Parameters"]}


def test_each_branch_ends_in_register_or_fail(built, spec):
    for prefix in definition.TRAINING_PATHS:
        check = step_named(built, f"{prefix}CheckQuality")
        assert [s["Name"] for s in check["Arguments"]["IfSteps"]] == [f"{prefix}Register", f"{prefix}RecordRegistration"]
        assert [s["Type"] for s in check["Arguments"]["IfSteps"]] == ["RegisterModel", "Processing"]
        assert [s["Type"] for s in check["Arguments"]["ElseSteps"]] == ["Fail"]
        register = check["Arguments"]["IfSteps"][0]["Arguments"]
        assert register["ModelApprovalStatus"] == "PendingManualApproval"
        assert register["ModelPackageGroupName"] == "${ModelPackageGroupName}"
        assert set(register["ModelMetrics"]) == {"ModelQuality", "Bias", "Explainability"}
        assert register["MetadataProperties"] == {"GeneratedBy": {"Get": "Execution.PipelineExecutionArn"}}
        assert register["CustomerMetadataProperties"]["Explainability"] == spec.explainability
        condition = check["Arguments"]["Conditions"][0]
        assert condition["RightValue"] == {"Get": "Parameters.QualityThreshold"}
        assert condition["LeftValue"]["Std:JsonGet"]["Path"] == spec.quality_metric_path
        assert condition["Type"] == ("GreaterThanOrEqualTo" if spec.higher_is_better else "LessThanOrEqualTo")


def test_registration_attaches_the_bias_and_explanation_report_of_its_branch(built, spec):
    report = "BiasExplain" if spec.explainability == "open" else "Clarify"
    output = "analysis" if spec.explainability == "open" else "analysis_result"
    for prefix in definition.TRAINING_PATHS:
        metrics = step_named(built, f"{prefix}Register")["Arguments"]["ModelMetrics"]
        expected = definition.join(definition.processing_output(f"{prefix}{report}", output), "analysis.json")
        assert metrics["Bias"]["Report"]["S3Uri"] == expected
        assert metrics["Explainability"]["Report"]["S3Uri"] == expected


def test_open_explanations_score_the_recorded_samples_with_the_branch_model(built, spec):
    if spec.explainability != "open":
        pytest.skip("the clarify option has no open explanation steps")
    for prefix in definition.TRAINING_PATHS:
        samples = step_named(built, f"{prefix}ExplanationSamples")["Arguments"]
        transform = step_named(built, f"{prefix}ExplainTransform")["Arguments"]
        report = step_named(built, f"{prefix}BiasExplain")["Arguments"]
        assert transform["ModelName"] == {"Get": f"Steps.{prefix}Model.ModelName"}
        assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == definition.folder(
            definition.processing_output(f"{prefix}ExplanationSamples", "samples"))
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in report["ProcessingInputs"]}
        assert inputs["design"] == definition.folder(
            definition.processing_output(f"{prefix}ExplanationSamples", "design"))
        assert inputs["sample_predictions"] == definition.folder(
            {"Get": f"Steps.{prefix}ExplainTransform.TransformOutput.S3OutputPath"})
        assert inputs["predictions"] == definition.folder(
            {"Get": f"Steps.{prefix}BatchTransform.TransformOutput.S3OutputPath"})
        for arguments in (samples, report):
            app = arguments["AppSpecification"]
            assert app["ImageUri"] == "${SklearnImage}"
            assert app["ContainerEntrypoint"] == ["python3", "-m", definition.OFFLINE_INSTALL_MODULE]
            assert app["ContainerArguments"][:3] == ["--wheelhouse", definition.WHEELHOUSE_LOCAL, "pipeline_code.explain"]
            wheelhouse = next(i for i in arguments["ProcessingInputs"] if i["InputName"] == "wheelhouse")
            assert wheelhouse["S3Input"]["S3Uri"] == f"s3://${{BucketName}}/{definition.WHEELHOUSE_PREFIX}/"
            assert wheelhouse["S3Input"]["LocalPath"] == definition.WHEELHOUSE_LOCAL
        # the samples folder holds only the rows to score: the design goes to a folder of its own
        outputs = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in samples["ProcessingOutputConfig"]["Outputs"]}
        assert outputs["samples"] != outputs["design"]


def test_each_execution_is_recorded_in_the_teams_mlflow_app(built, spec):
    for prefix in definition.TRAINING_PATHS:
        record = step_named(built, f"{prefix}RecordExperiment")["Arguments"]
        registration = step_named(built, f"{prefix}RecordRegistration")["Arguments"]
        for arguments in (record, registration):
            assert arguments["Environment"]["MLFLOW_TRACKING_URI"] == "${MlflowAppArn}"
            assert arguments["Environment"]["MLOPS_EXPERIMENT_NAME"] == "${PipelineName}"
            assert arguments["Environment"]["MLOPS_PIPELINE_EXECUTION_ARN"] == {"Get": "Execution.PipelineExecutionArn"}
            assert arguments["Environment"]["MLOPS_CODE_COMMIT"] == "${CodeCommit}"
            assert arguments["AppSpecification"]["ContainerArguments"][2] == "pipeline_code.record_run"
        container = record["AppSpecification"]["ContainerArguments"]
        job, retrain = definition.TRAINING_JOB_NAMES[prefix]
        assert container[container.index("--job-name") + 1] == {"Get": f"Steps.{job}"}
        assert ("--training-job-name" in container) == (retrain is not None)
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in record["ProcessingInputs"]}
        assert inputs["split"] == definition.folder(definition.processing_output("SplitData", "summary"))
        assert inputs["evaluation"] == definition.folder(definition.processing_output(f"{prefix}Evaluate", "evaluation"))
        arguments = registration["AppSpecification"]["ContainerArguments"]
        assert arguments[arguments.index("--model-package-arn") + 1] == {"Get": f"Steps.{prefix}Register.ModelPackageArn"}
        assert "ProcessingOutputConfig" not in registration, "the API has no empty output list"


def test_every_s3_input_of_a_step_output_reads_that_folder_only(built):
    """An S3Prefix input takes every key starting with its URI: a folder URI must end in '/'."""
    def uri_values(step):
        arguments = step["Arguments"]
        for item in arguments.get("ProcessingInputs", []):
            yield item["InputName"], item["S3Input"]["S3Uri"]
        for channel in arguments.get("InputDataConfig", []) + arguments.get("TrainingJobDefinition", {}).get(
                "InputDataConfig", []):
            yield channel.get("ChannelName", channel.get("ChannelType")), channel["DataSource"]["S3DataSource"]["S3Uri"]
        if "TransformInput" in arguments:
            yield "transform", arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]

    checked = 0
    for step, _ in rules.all_steps(built["Steps"]):
        for name, uri in uri_values(step):
            checked += 1
            where = f"{step['Name']} input {name}"
            if isinstance(uri, str):
                assert uri.endswith("/"), f"{where}: {uri!r} also matches sibling prefixes"
            elif uri == {"Get": "Parameters.InputDataUri"}:
                default = next(p["DefaultValue"] for p in built["Parameters"] if p["Name"] == "InputDataUri")
                assert default.endswith("/"), f"{where}: default {default!r} also matches sibling prefixes"
            else:
                assert "Std:Join" in uri and uri["Std:Join"]["Values"][-1] == "", f"{where}: {uri} is not a folder"
    assert checked >= 15


def test_automl_runs_in_ensembling_mode_on_train_and_validation(built):
    arguments = step_named(built, "AutoMLTrain")["Arguments"]
    assert arguments["AutoMLJobConfig"]["Mode"] == "ENSEMBLING"
    assert [c["ChannelType"] for c in arguments["InputDataConfig"]] == ["training", "validation"]
    assert arguments["AutoMLJobObjective"] == {"MetricName": {"Get": "Parameters.AutoMLObjective"}}


def test_xgboost_trains_best_tuned_values_with_debugger_rules_only_on_the_clarify_option(built, spec):
    train = step_named(built, "XGBoostTrain")["Arguments"]
    if spec.explainability == "clarify":
        rule_names = {r["RuleConfigurationName"] for r in train["DebugRuleConfigurations"]}
        assert rule_names == {"LossNotDecreasing", "Overfit"}
    else:
        assert not {"DebugRuleConfigurations", "DebugHookConfig"} & set(train)
    assert train["HyperParameters"]["early_stopping_rounds"] == "20"
    tuned = {k for k, v in train["HyperParameters"].items() if isinstance(v, dict)}
    ranges = step_named(built, "XGBoostTune")["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert tuned == {r["Name"] for kind in ranges.values() for r in kind}


def test_clarify_reads_a_config_built_at_run_time(built, spec):
    if spec.explainability != "clarify":
        pytest.skip("only the clarify option runs Clarify")
    for prefix in definition.TRAINING_PATHS:
        clarify = step_named(built, f"{prefix}Clarify")["Arguments"]
        config_input = next(i for i in clarify["ProcessingInputs"] if i["InputName"] == "analysis_config")
        assert config_input["S3Input"]["S3Uri"] == definition.folder(
            definition.processing_output(f"{prefix}ClarifyConfig", "config"))
        assert clarify["AppSpecification"] == {"ImageUri": "${ClarifyImage}"}


def test_the_default_definition_references_no_clarify_or_debugger_image_rule_or_config(built, spec):
    text = definition.definition_json(built)
    if spec.explainability == "open":
        for word in ("Clarify", "clarify", "Debug", "debugger"):
            assert word not in text, word
        assert not definition.placeholders_in(text) & set(definition.CLARIFY_ONLY_PLACEHOLDERS)
    else:
        assert set(definition.CLARIFY_ONLY_PLACEHOLDERS) <= definition.placeholders_in(text)


@pytest.mark.parametrize(
    ("mutate", "problem_check", "expected"),
    [
        (lambda d: d["Steps"][1]["Arguments"]["IfSteps"][2]["Arguments"].update(ModelName={"Get": "Steps.Nope.ModelName"}),
         rules.reference_problems, "no step named 'Nope'"),
        (lambda d: d["Parameters"].pop(0), rules.reference_problems, "parameter 'InputDataUri' is not declared"),
        (lambda d: d["Steps"][1]["Arguments"]["IfSteps"][2]["Arguments"].update(ModelName={"Get": "Steps.AutoMLModel.ModelNam"}),
         rules.reference_problems, "has no member 'ModelNam'"),
        (lambda d: d["Steps"][1]["Arguments"]["IfSteps"][3]["Arguments"]["ProcessingInputs"][1]["S3Input"].update(
            S3Uri=definition.processing_output("SplitData", "tset")), rules.reference_problems, "declares no output 'tset'"),
        (lambda d: d["Steps"][0]["Arguments"].update(ProcessingJobTimeout=5), rules.argument_problems,
         "has no field 'ProcessingJobTimeout'"),
        (lambda d: d["Steps"][0]["Arguments"].pop("RoleArn"), rules.argument_problems, "required field 'RoleArn'"),
        (lambda d: d["Steps"][0].update(DependsOn=["AutoMLTrain"]), rules.graph_problems, "cycle"),
        (lambda d: d["Steps"][1]["Arguments"]["IfSteps"][2]["Arguments"].update(
            ModelName={"Get": "Steps.XGBoostModel.ModelName"}), rules.graph_problems, "in a branch"),
    ],
)
def test_the_checks_catch_broken_definitions(built, mutate, problem_check, expected):
    broken = copy.deepcopy(built)
    mutate(broken)
    assert any(expected in problem for problem in problem_check(broken)), problem_check(broken)


CREATING_STEP_TYPES = {"Processing", "Training", "Tuning", "AutoML", "Model", "Transform"}


def test_every_job_and_model_a_step_creates_carries_the_team_tag(built):
    steps = [s for s, _ in rules.all_steps(built["Steps"]) if s["Type"] in CREATING_STEP_TYPES]
    assert {s["Type"] for s in steps} == CREATING_STEP_TYPES
    for step in steps:
        tags = {t["Key"]: t["Value"] for t in step["Arguments"].get("Tags", [])}
        assert tags == {"mlops:team": "${TeamName}", "mlops:platform": "${PlatformPrefix}"}, step["Name"]
    tuning = next(s for s in steps if s["Type"] == "Tuning")
    assert "Tags" not in tuning["Arguments"]["TrainingJobDefinition"], "the API has no Tags in a training job definition"


def test_tag_keys_are_the_platforms(built):
    from lambdas.common import tags

    assert (definition.TEAM_TAG_KEY, definition.PLATFORM_TAG_KEY) == (tags.TEAM, tags.PLATFORM)


def test_no_experiment_trial_named_by_sagemaker(built):
    assert "PipelineExperimentConfig" not in built


def test_clarify_shadow_endpoints_get_the_team_prefix(built, spec):
    configs = [s for s, _ in rules.all_steps(built["Steps"]) if s["Name"].endswith("ClarifyConfig")]
    assert len(configs) == (2 if spec.explainability == "clarify" else 0)
    for step in configs:
        arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
        assert arguments[arguments.index("--endpoint-name-prefix") + 1] == "${ClarifyEndpointPrefix}"


def test_json_is_deterministic_and_uses_only_known_placeholders():
    first, second = definition.definition_json(), definition.definition_json()
    assert first == second
    assert definition.placeholders_in(first) == set(definition.PLACEHOLDERS) - set(definition.CLARIFY_ONLY_PLACEHOLDERS)
    clarify = definition.definition_json(definition.build_definition(
        dataclasses.replace(definition.FRAUD_SPEC, explainability="clarify")))
    assert definition.placeholders_in(clarify) == set(definition.PLACEHOLDERS)
    assert first.count("${") == len(definition.PLACEHOLDER_PATTERN.findall(first))


def test_render_fills_every_placeholder_and_keeps_valid_json():
    values = {
        "TeamName": "fraud",
        "PlatformPrefix": "mlp",
        "ClarifyEndpointPrefix": "mlp-fraud",
        "BucketName": "team-bucket",
        "ExecutionRoleArn": "arn:aws:iam::111111111111:role/team",
        "ModelPackageGroupName": "mlp-team-fraud",
        "KmsKeyArn": "arn:aws:kms:eu-west-1:111111111111:key/abc",
        "PipelineName": "mlp-fraud-fraud-detection",
        "MlflowAppArn": "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-app/app-abc",
        "CodeCommit": "0" * 40,
        **region_images("eu-west-1"),
    }
    rendered = json.loads(definition.render(definition.definition_json(), values))
    split = rendered["Steps"][0]["Arguments"]
    assert split["AppSpecification"]["ImageUri"].startswith("141502667606.dkr.ecr.eu-west-1.amazonaws.com/")
    assert split["RoleArn"] == values["ExecutionRoleArn"]
    assert "${" not in json.dumps(rendered)
    with pytest.raises(KeyError, match="KmsKeyArn"):
        definition.render(definition.definition_json(), {k: v for k, v in values.items() if k != "KmsKeyArn"})


def test_every_image_placeholder_is_used():
    text = definition.definition_json(definition.build_definition(
        dataclasses.replace(definition.FRAUD_SPEC, explainability="clarify")))
    assert {image.placeholder for image in IMAGES} <= definition.placeholders_in(text)


def test_an_unknown_explainability_option_is_refused_naming_the_options():
    with pytest.raises(ValueError, match=r"explainability 'shap' is not one of \['open', 'clarify'\]"):
        dataclasses.replace(definition.FRAUD_SPEC, explainability="shap")


def test_parameter_defaults_have_their_declared_types(spec):
    python_types = {"String": str, "Integer": int, "Float": float}
    for name, kind, default, _ in definition.parameters(spec):
        assert isinstance(default, python_types[kind]) and not isinstance(default, bool), name
    fractions = [d for n, _, d, _ in definition.parameters(spec) if n.endswith("Fraction")]
    assert sum(fractions) == pytest.approx(1.0)


def test_docs_show_each_example_use_cases_parameters():
    from pathlib import Path

    from tools.pipeline_doc import parameter_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "pipeline.md").read_text()
    for name, spec in SPECS.items():
        if "no example" not in name and "(clarify)" not in name:
            assert parameter_table(name, spec) in docs, f"run `make schema` to refresh docs/pipeline.md ({name})"
