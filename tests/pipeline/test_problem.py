"""The problem description shared by the config, the definition and the step scripts."""

from __future__ import annotations

import argparse

import botocore.session
import pytest

from pipeline_code import problem as problem_module
from pipeline_code.problem import FRAUD, Facet, Problem, ProblemError


def roundtrip(problem: Problem) -> Problem:
    parser = argparse.ArgumentParser()
    problem_module.add_arguments(parser)
    return problem_module.from_namespace(parser.parse_args(problem.to_arguments()))


def test_objectives_are_autopilot_metrics():
    model = botocore.session.get_session().get_service_model("sagemaker")
    enum = set(model.shape_for("AutoMLMetricEnum").enum)
    for problem_type, objectives in problem_module.AUTOML_OBJECTIVES.items():
        assert set(objectives) <= enum, problem_type
    assert set(problem_module.AUTOML_PROBLEM_TYPES.values()) == set(model.shape_for("ProblemType").enum)


@pytest.mark.parametrize("problem", [
    FRAUD,
    Problem(problem_type="multiclass", target="grade", classes=("a", "b", "c"), exclude=("noise",),
            facets=(Facet("region", ("n", "s")), Facet("age", ("60",))), context=("region",)),
    Problem(problem_type="regression", target="units", time_column="date", key_column="sku", id_column="row"),
])
def test_container_arguments_rebuild_the_same_problem(problem):
    assert roundtrip(problem) == problem


def test_long_feature_lists_are_split_into_arguments_sagemaker_accepts():
    features = tuple(f"feature_number_{i:03d}" for i in range(120))
    problem = Problem(problem_type="binary", target="y", features=features)
    arguments = problem.to_arguments()
    assert max(len(a) for a in arguments) <= problem_module.MAX_ARGUMENT_LENGTH
    assert arguments.count("--features") > 1
    assert roundtrip(problem).features == features


def test_allowed_split_modes_follow_the_columns_and_type():
    assert FRAUD.allowed_split_modes() == ("random", "ordered", "by_key", "stratified")
    assert Problem(problem_type="regression", target="y").allowed_split_modes() == ("random",)
    assert Problem(problem_type="binary", target="y", key_column="k").allowed_split_modes() == (
        "random", "by_key", "stratified")


def test_all_but_features_leave_out_every_role_and_context_column():
    problem = Problem(problem_type="binary", target="y", key_column="k", time_column="t", id_column="i",
                      context=("region",), exclude=("leak",))
    assert problem.model_features(["i", "k", "t", "a", "region", "leak", "b", "y"]) == ["a", "b"]
    with pytest.raises(ProblemError, match=r"feature column\(s\) \['z'\] are not in the data"):
        problem.replace(features=("a", "z")).model_features(["a", "y"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"problem_type": "ranking"}, "problem_type 'ranking' is not one of"),
    ({"problem_type": "multiclass", "classes": ("a", "b")}, "at least 3 classes"),
    ({"features": ("y",)}, "feature 'y' is also the target column"),
    ({"input_layout": "parquet"}, "input_layout 'parquet'"),
])
def test_contradictions_are_refused(changes, message):
    with pytest.raises(ProblemError, match=message):
        Problem(**{"problem_type": "binary", "target": "y", **changes})


def test_facets_text_round_trips_and_bad_text_is_named():
    facets = (Facet("a", ("x", "y")), Facet("b", ("z",)))
    assert problem_module.parse_facets(problem_module.facets_text(facets)) == facets
    with pytest.raises(ProblemError, match="facet 'a' is not name=value"):
        problem_module.parse_facets("a")


def test_columns_with_commas_cannot_travel_as_arguments():
    with pytest.raises(ProblemError, match="contains a comma"):
        Problem(problem_type="binary", target="y", features=("a,b",)).to_arguments()
