"""The Clarify analysis config built at run time: SDK schema, model inputs, facet checks, CLI."""

from __future__ import annotations

import json

import pytest

from pipeline_code import clarify_config
from pipeline_code.columns import CONTEXT, FEATURES, LABEL

HEADERS = [LABEL] + list(FEATURES) + list(CONTEXT)


def build(**overrides):
    arguments = dict(
        headers=HEADERS, facet_name="home_state", facet_values=["CA", "NY"], model_name="fraud-model",
        instance_type="ml.m5.large", prediction_format="label_and_probability",
    )
    arguments.update(overrides)
    return clarify_config.analysis_config(**arguments)


@pytest.mark.parametrize("prediction_format", sorted(clarify_config.PREDICTOR_FIELDS))
def test_config_passes_the_sagemaker_sdk_schema(prediction_format):
    from sagemaker.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    config = build(prediction_format=prediction_format)
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(json.loads(json.dumps(config)))


def test_model_sees_exactly_the_features_in_order():
    config = build()
    sent = [h for h in config["headers"] if h != config["label"] and h not in config["excluded_columns"]]
    assert sent == list(FEATURES)
    assert set(config["excluded_columns"]) == set(CONTEXT)


def test_predictor_reads_the_right_response_columns():
    assert build(prediction_format="label_and_probability")["predictor"]["label"] == 0
    assert build(prediction_format="label_and_probability")["predictor"]["probability"] == 1
    xgboost = build(prediction_format="probability")["predictor"]
    assert xgboost["probability"] == 0 and "label" not in xgboost
    assert xgboost["model_name"] == "fraud-model"


def test_numeric_facet_values_are_typed():
    config = build(facet_name="customer_age", facet_values=["60"])
    assert config["facet"] == [{"name_or_index": "customer_age", "value_or_threshold": [60]}]


def test_all_bias_methods_and_shap_are_requested():
    methods = build()["methods"]
    assert methods["pre_training_bias"] == {"methods": "all"}
    assert methods["post_training_bias"] == {"methods": "all"}
    assert methods["shap"]["num_samples"] == 100 and methods["shap"]["agg_method"] == "mean_abs"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"facet_name": "state"}, "facet 'state' is not a column of the test data"),
        ({"facet_name": LABEL}, "is not a column of the test data"),
        ({"facet_values": [" "]}, "at least one facet value"),
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


def test_cli_writes_analysis_config(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text(",".join(HEADERS) + "\n" + ",".join(["1"] * len(HEADERS)) + "\n")
    code = clarify_config.main(["--test-dir", str(tmp_path / "test"), "--output-dir", str(tmp_path / "out"),
                                "--model-name", "m-1", "--facet-values", "CA,TX", "--shap-samples", "50"])
    assert code == 0
    config = json.loads((tmp_path / "out" / "analysis_config.json").read_text())
    assert config["predictor"]["model_name"] == "m-1"
    assert config["facet"][0]["value_or_threshold"] == ["CA", "TX"]
    assert config["methods"]["shap"]["num_samples"] == 50


def test_cli_names_a_missing_facet(tmp_path, capsys):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text(",".join(HEADERS) + "\n")
    code = clarify_config.main(["--test-dir", str(tmp_path / "test"), "--output-dir", str(tmp_path / "out"),
                                "--model-name", "m", "--facet-name", "gender"])
    assert code == 2
    assert "facet 'gender' is not a column" in capsys.readouterr().err


def test_endpoint_name_prefix_reaches_the_predictor_and_bad_ones_are_refused():
    headers = ["is_fraud", *clarify_config.FEATURES, "home_state"]
    config = clarify_config.analysis_config(
        headers, "home_state", ["CA"], "m", "ml.m5.large", "probability", endpoint_name_prefix="mlp-fraud"
    )
    assert config["predictor"]["endpoint_name_prefix"] == "mlp-fraud"
    assert "endpoint_name_prefix" not in clarify_config.analysis_config(
        headers, "home_state", ["CA"], "m", "ml.m5.large", "probability"
    )["predictor"]
    for bad in ("mlp-fraud-", "-mlp", "mlp--fraud", "x" * 32, "mlp_fraud"):
        with pytest.raises(clarify_config.ClarifyConfigError, match="endpoint name prefix"):
            clarify_config.analysis_config(
                headers, "home_state", ["CA"], "m", "ml.m5.large", "probability", endpoint_name_prefix=bad
            )
