"""Each use case's synthesized pipeline follows its config: problem type, objective, target, evaluation, gate."""

from __future__ import annotations

import json

import pytest

from pipeline_code.definition import AUTOML_INFERENCE_OUTPUT, XGBOOST_OBJECTIVES, all_steps
from pipeline_code.problem import AUTOML_PROBLEM_TYPES, METRICS_SECTION
from tools.iam import pipeline_needs as pn
from tools.iam.template import World

EXAMPLE_PROBLEM_TYPES = {"fraud-detection": "binary", "churn-propensity": "binary", "price-elasticity": "regression"}


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates, generated_names="concrete")


def use_cases(config):
    return [(team, use_case) for team in config.teams for use_case in team.use_cases]


@pytest.fixture(scope="module")
def deployed(example, example_config, world):
    """Use case name -> (use case config, resolved pipeline definition as deployed)."""
    found = {}
    for team, use_case in use_cases(example_config):
        stack = next(s.stack_name for s in example.platform.stacks if s.stack_name.endswith(f"-{team.name}"))
        for pipeline in pn.pipelines_of(world, stack):
            if pipeline.name.endswith(f"-{use_case.name}"):
                found[use_case.name] = (use_case, pipeline.definition)
    return found


def steps(definition: dict) -> dict:
    return {step["Name"]: step for step, _ in all_steps(definition["Steps"])}


def parameter_defaults(definition: dict) -> dict:
    return {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}


def option(arguments: list, name: str):
    values = [arguments[i + 1] for i, a in enumerate(arguments) if a == name]
    return values[0] if len(values) == 1 else values


def test_every_example_use_case_has_its_own_pipeline(deployed):
    assert set(deployed) == set(EXAMPLE_PROBLEM_TYPES)
    assert {name: uc.problem.problem_type for name, (uc, _) in deployed.items()} == EXAMPLE_PROBLEM_TYPES
    assert len({json.dumps(d, sort_keys=True) for _, d in deployed.values()}) == 3


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROBLEM_TYPES))
def test_automl_problem_type_objective_and_target_follow_the_config(deployed, name):
    use_case, definition = deployed[name]
    problem = use_case.problem
    automl = steps(definition)["AutoMLTrain"]["Arguments"]
    assert automl["ProblemType"] == AUTOML_PROBLEM_TYPES[problem.problem_type]
    assert {c["TargetAttributeName"] for c in automl["InputDataConfig"]} == {problem.target}
    assert automl["AutoMLJobObjective"] == {"MetricName": {"Get": "Parameters.AutoMLObjective"}}
    assert parameter_defaults(definition)["AutoMLObjective"] == problem.objective
    environment = steps(definition)["AutoMLModel"]["Arguments"]["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_INFERENCE_OUTPUT"] == AUTOML_INFERENCE_OUTPUT[problem.problem_type]


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROBLEM_TYPES))
def test_xgboost_objective_follows_the_problem_type(deployed, name):
    use_case, definition = deployed[name]
    objective, metric, direction = XGBOOST_OBJECTIVES[use_case.problem.problem_type]
    tune = steps(definition)["XGBoostTune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert tune["HyperParameterTuningJobObjective"] == {"Type": direction, "MetricName": f"validation:{metric}"}
    train = steps(definition)["XGBoostTrain"]["Arguments"]["HyperParameters"]
    assert (train["objective"], train["eval_metric"]) == (objective, metric)


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROBLEM_TYPES))
def test_scripts_get_the_use_cases_problem(deployed, name):
    use_case, definition = deployed[name]
    expected = use_case.problem.to_problem().to_arguments()
    for step_name in ("SplitData", "AutoMLEvaluate", "XGBoostEvaluate", "AutoMLExplanationSamples", "AutoMLBiasExplain",
                      "XGBoostBiasExplain"):
        arguments = steps(definition)[step_name]["Arguments"]["AppSpecification"]["ContainerArguments"]
        assert arguments[-len(expected):] == expected, step_name
        assert option(arguments, "--target") == use_case.problem.target


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROBLEM_TYPES))
def test_quality_gate_reads_the_configured_metric(deployed, name):
    use_case, definition = deployed[name]
    gate = use_case.problem.quality_gate
    for prefix in ("AutoML", "XGBoost"):
        condition = steps(definition)[f"{prefix}CheckQuality"]["Arguments"]["Conditions"][0]
        path = condition["LeftValue"]["Std:JsonGet"]["Path"]
        assert path == f"{METRICS_SECTION[use_case.problem.problem_type]}.{gate.metric}.value"
        lower_is_better = gate.metric in ("rmse", "mae", "mse")
        assert condition["Type"] == ("LessThanOrEqualTo" if lower_is_better else "GreaterThanOrEqualTo")
    assert parameter_defaults(definition)["QualityThreshold"] == gate.threshold


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROBLEM_TYPES))
def test_split_defaults_and_data_location_follow_the_config(deployed, name, world):
    use_case, definition = deployed[name]
    defaults = parameter_defaults(definition)
    split = use_case.problem.split
    assert defaults["SplitMode"] == split.mode
    assert (defaults["TrainFraction"], defaults["ValidationFraction"], defaults["TestFraction"]) == (
        split.train_fraction, split.validation_fraction, split.test_fraction)
    assert defaults["InputDataUri"].endswith(f"/pipeline/data/{name}/")
    binary = use_case.problem.problem_type == "binary"
    assert ("DecisionThreshold" in defaults) == binary and ("OversampleRatio" in defaults) == binary
