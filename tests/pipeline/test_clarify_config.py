"""The Clarify analysis config built at run time: SDK schema, model inputs, facets, label order, CLI."""

from __future__ import annotations

import json

import pytest

from pipeline_code import clarify_config
from pipeline_code.columns import CONTEXT, FEATURES, LABEL
from pipeline_code.problem import FRAUD, Facet, Problem

HEADERS = [LABEL] + list(FEATURES) + list(CONTEXT)
FACETS = (Facet("home_state", ("CA", "NY")),)
MULTICLASS = Problem(problem_type="multiclass", target="grade", features=("x1", "x2"), context=("region",),
                     classes=("a", "b", "c"), positive_label="a", input_layout="table")
REGRESSION = Problem(problem_type="regression", target="units", context=("region",), input_layout="table")


def build(**overrides):
    arguments = dict(
        headers=HEADERS, problem=FRAUD, facets=FACETS, model_name="fraud-model", instance_type="ml.m5.large",
        prediction_format="automl_classification", label_values=[1], label_headers=["0", "1"],
    )
    arguments.update(overrides)
    return clarify_config.analysis_config(**arguments)


CASES = {
    "automl_classification": {},
    "probability": {"prediction_format": "probability"},
    "class_index": {"headers": ["grade", "x1", "x2", "region"], "problem": MULTICLASS, "label_values": ["a"],
                    "prediction_format": "class_index", "facets": (Facet("region", ("north",)),)},
    "value": {"headers": ["units", "x1", "region"], "problem": REGRESSION, "label_values": [12.5],
              "prediction_format": "value", "facets": (Facet("region", ("north",)),)},
}


@pytest.mark.parametrize("prediction_format", sorted(clarify_config.PREDICTOR_FIELDS))
def test_config_passes_the_sagemaker_sdk_schema(prediction_format):
    from sagemaker.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    config = build(**CASES[prediction_format])
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(json.loads(json.dumps(config)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_sees_exactly_the_features_in_order(case):
    config = build(**CASES[case])
    problem = CASES[case].get("problem", FRAUD)
    sent = [h for h in config["headers"] if h != config["label"] and h not in config["excluded_columns"]]
    assert sent == problem.model_features(config["headers"])
    assert set(config["excluded_columns"]) == set(problem.context)


def test_automl_classification_explains_each_class_probability_in_the_models_label_order():
    predictor = build(label_headers=["1", "0"])["predictor"]
    assert (predictor["label"], predictor["probability"]) == (0, 2), "predicted label, then the probabilities list"
    assert predictor["label_headers"] == ["1", "0"], "the order the model reported, not an assumed one"
    assert "probability_threshold" not in build(), "no threshold on a probability of the predicted label"
    with pytest.raises(clarify_config.ClarifyConfigError, match="must include the positive label '1'"):
        build(label_headers=["no", "yes"])


def test_xgboost_binary_reads_the_positive_score_with_the_threshold():
    config = build(prediction_format="probability", probability_threshold=0.3)
    assert config["predictor"]["probability"] == 0 and "label" not in config["predictor"]
    assert config["probability_threshold"] == 0.3


def test_class_index_predictions_map_through_the_classes():
    assert build(**CASES["class_index"])["predictor"]["label_headers"] == ["a", "b", "c"]


def test_regression_favourable_outcome_is_the_test_median(tmp_path):
    (tmp_path / "test.csv").write_text("units,x1,region\n1,0,n\n5,0,n\n9,0,s\n100,0,s\n")
    assert clarify_config.favourable_outcome(REGRESSION, tmp_path) == [7.0]
    assert clarify_config.favourable_outcome(FRAUD, tmp_path) == [1]


def test_numeric_facet_values_are_typed():
    config = build(facets=(Facet("customer_age", ("60",)),))
    assert config["facet"] == [{"name_or_index": "customer_age", "value_or_threshold": [60]}]


def test_several_facets_are_analysed():
    config = build(facets=(Facet("home_state", ("CA",)), Facet("transaction_state", ("NY", "TX"))))
    assert [f["name_or_index"] for f in config["facet"]] == ["home_state", "transaction_state"]


def test_all_bias_methods_and_shap_are_requested():
    methods = build()["methods"]
    assert methods["pre_training_bias"] == {"methods": "all"}
    assert methods["post_training_bias"] == {"methods": "all"}
    assert methods["shap"]["num_samples"] == 100 and methods["shap"]["agg_method"] == "mean_abs"


def test_without_facets_only_shap_is_requested():
    config = build(facets=())
    assert "facet" not in config
    assert set(config["methods"]) == {"shap", "report"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"facets": (Facet("state", ("x",)),)}, "facet 'state' is not a column of the test data"),
        ({"facets": (Facet(LABEL, ("1",)),)}, "is not a column of the test data"),
        ({"facets": (Facet("home_state", ()),)}, "needs at least one value"),
        ({"prediction_format": "json"}, "unknown prediction format"),
        ({"probability_threshold": 1.0}, "probability threshold must be in"),
        ({"shap_samples": 0}, "shap samples must be at least 1"),
        ({"headers": [LABEL, "home_state"]}, "lacks model features"),
        ({"headers": list(FEATURES) + ["home_state"]}, "label column 'is_fraud' not in"),
    ],
)
def test_unusable_options_are_rejected(overrides, message):
    with pytest.raises(clarify_config.ClarifyConfigError, match=message):
        build(**overrides)


def write_inputs(tmp_path, labels_column="['0', '1']"):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text(",".join(HEADERS) + "\n" + ",".join(["1"] * len(HEADERS)) + "\n")
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "test_features.csv.out").write_text(f'1,0.9,"[0.1, 0.9]","{labels_column}"\n')


def test_cli_writes_analysis_config_with_the_reported_label_order(tmp_path):
    write_inputs(tmp_path, "['1', '0']")
    code = clarify_config.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                                "--output-dir", str(tmp_path / "out"), "--model-name", "m-1",
                                "--facets", "home_state=CA|TX", "--shap-samples", "50",
                                "--prediction-format", "automl_classification", *FRAUD.to_arguments()])
    assert code == 0
    config = json.loads((tmp_path / "out" / "analysis_config.json").read_text())
    assert config["predictor"]["model_name"] == "m-1"
    assert config["predictor"]["label_headers"] == ["1", "0"]
    assert config["facet"][0]["value_or_threshold"] == ["CA", "TX"]
    assert config["methods"]["shap"]["num_samples"] == 50


def test_cli_names_a_missing_facet(tmp_path, capsys):
    write_inputs(tmp_path)
    code = clarify_config.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                                "--output-dir", str(tmp_path / "out"), "--model-name", "m", "--facets", "gender=f",
                                "--prediction-format", "automl_classification", *FRAUD.to_arguments()])
    assert code == 2
    assert "facet 'gender' is not a column" in capsys.readouterr().err


def test_endpoint_name_prefix_reaches_the_predictor_and_bad_ones_are_refused():
    assert build(endpoint_name_prefix="mlp-fraud")["predictor"]["endpoint_name_prefix"] == "mlp-fraud"
    assert "endpoint_name_prefix" not in build()["predictor"]
    for bad in ("mlp-fraud-", "-mlp", "mlp--fraud", "x" * 32, "mlp_fraud"):
        with pytest.raises(clarify_config.ClarifyConfigError, match="endpoint name prefix"):
            build(endpoint_name_prefix=bad)
