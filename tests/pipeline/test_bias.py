"""Bias metrics against Amazon's own Clarify metric library (smclarify), SHAP properties, report layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_code import bias
from pipeline_code.columns import LABEL

smclarify_report = pytest.importorskip("smclarify.bias.report")


def clarify_values(frame, facet, values, stage, predicted=None):
    """smclarify's values; labels as categories, since it reads a small 0/1 integer column as continuous."""
    kwargs = {}
    frame = frame.assign(**{LABEL: frame[LABEL].astype("category")})
    if predicted is not None:
        frame = frame.assign(predicted=pd.Series(predicted, index=frame.index).astype("category"))
        kwargs["predicted_label_column"] = smclarify_report.LabelColumn("predicted", frame["predicted"], [1])
    result = smclarify_report.bias_report(
        frame,
        smclarify_report.FacetColumn(facet, values),
        smclarify_report.LabelColumn(LABEL, frame[LABEL], [1]),
        stage_type=stage,
        metrics=list(bias.PRE_TRAINING_METRICS if predicted is None else bias.POST_TRAINING_METRICS),
        **kwargs,
    )
    return {m["name"]: m["value"] for m in result[0]["metrics"]}


def ours(report, section):
    metrics = report[section]["facets"][next(iter(report[section]["facets"]))][0]["metrics"]
    return {m["name"]: m["value"] for m in metrics}


def assert_same(mine: dict, theirs: dict):
    assert set(mine) == set(theirs)
    for name, value in theirs.items():
        if value is None or isinstance(value, str):
            assert mine[name] == value, name
        else:
            assert mine[name] == pytest.approx(value, abs=1e-9), name


@st.composite
def bias_cases(draw):
    rows = draw(st.integers(30, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    states = np.array(["CA", "NY", "TX", "WA"])
    frame = pd.DataFrame(
        {
            "home_state": states[rng.integers(0, 4, size=rows)],
            LABEL: (rng.random(rows) < draw(st.floats(0.05, 0.6))).astype(int),
        }
    )
    frame.loc[:1, "home_state"] = ["CA", "NY"]
    frame.loc[:3, LABEL] = [1, 0, 1, 0]
    predicted = (rng.random(rows) < draw(st.floats(0.05, 0.6))).astype(int)
    predicted[:2] = [1, 0]
    return frame, predicted


@settings(max_examples=20, deadline=None)
@given(case=bias_cases(), facet_values=st.sampled_from([["CA"], ["CA", "TX"], ["NY"]]))
def test_metrics_equal_smclarify(case, facet_values):
    frame, predicted = case
    report = bias.bias_report(frame, "home_state", facet_values, predicted)
    assert_same(ours(report, "pre_training_bias_metrics"),
                clarify_values(frame, "home_state", facet_values, smclarify_report.StageType.PRE_TRAINING))
    assert_same(ours(report, "post_training_bias_metrics"),
                clarify_values(frame, "home_state", facet_values, smclarify_report.StageType.POST_TRAINING, predicted))


def test_continuous_facet_uses_the_threshold_like_clarify():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"customer_age": rng.integers(18, 90, size=400), LABEL: (rng.random(400) < 0.2).astype(int)})
    mask = bias.facet_mask(frame["customer_age"], ["60"])
    assert (mask == (frame["customer_age"] > 60).to_numpy()).all()
    report = bias.bias_report(frame, "customer_age", [60])
    assert_same(ours(report, "pre_training_bias_metrics"),
                clarify_values(frame, "customer_age", [60], smclarify_report.StageType.PRE_TRAINING))


def test_report_parses_with_the_sagemaker_sdk_model_card_parsers():
    from sagemaker.model_card.evaluation_metric_parsers import (
        ClarifyBiasParser,
        ClarifyExplainabilityParser,
    )

    frame = pd.DataFrame({"home_state": ["CA", "NY", "TX", "CA"] * 25, LABEL: [1, 0, 0, 1] * 25, "x": range(100)})
    report = bias.bias_report(frame, "home_state", ["CA"], [1, 1, 0, 0] * 25)
    report.update(bias.explanations_report(lambda x: x[:, 0] / 100.0, frame[["x"]]))
    json.dumps(report, allow_nan=False)
    bias_sections = {k: v for k, v in report.items() if k.endswith("bias_metrics")}
    groups = ClarifyBiasParser().run(bias_sections)["metric_groups"]
    assert {g["name"].split(" - ")[0] for g in groups} == {"pre_training_bias_metrics", "post_training_bias_metrics"}
    explained = ClarifyExplainabilityParser().run(report)["metric_groups"]
    assert explained[0]["metric_data"][0]["name"] == "x"


def test_shapley_values_add_up_and_ignore_unused_features():
    rng = np.random.default_rng(0)
    rows = rng.random((50, 4))
    baseline = rows.mean(axis=0)

    def model(x):
        return 1.0 / (1.0 + np.exp(-(3 * x[:, 0] - 2 * x[:, 1] * x[:, 2])))

    values = bias.shapley_values(model, rows, baseline, permutations=8, seed=1)
    assert np.allclose(values.sum(axis=1), model(rows) - model(baseline[None, :]))
    assert np.all(values[:, 3] == 0.0)
    linear = bias.shapley_values(lambda x: x @ np.array([2.0, -1.0, 0.0, 0.5]), rows, baseline, permutations=3)
    assert np.allclose(linear, (rows - baseline) * np.array([2.0, -1.0, 0.0, 0.5]))


@pytest.mark.parametrize(
    ("facet", "values", "message"),
    [
        ("state", ["CA"], "column 'state' not in the data"),
        ("home_state", ["ZZ"], "selects 0 of"),
        ("home_state", ["CA", "NY"], "selects 4 of 4"),
        ("home_state", [], "at least one facet value"),
    ],
)
def test_unusable_facets_are_rejected(facet, values, message):
    frame = pd.DataFrame({"home_state": ["CA", "NY", "CA", "NY"], LABEL: [1, 0, 0, 1]})
    with pytest.raises(bias.BiasError, match=message):
        bias.bias_report(frame, facet, values)


def test_cli_writes_analysis_json(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "predictions").mkdir()
    frame = pd.DataFrame({LABEL: [1, 0, 0, 1] * 10, "home_state": ["CA", "NY", "TX", "NY"] * 10})
    frame.to_csv(tmp_path / "test" / "test.csv", index=False)
    (tmp_path / "predictions" / "out").write_text("\n".join(["0.9", "0.2", "0.7", "0.1"] * 10))
    code = bias.main(["--test-dir", str(tmp_path / "test"), "--predictions-dir", str(tmp_path / "predictions"),
                      "--output-dir", str(tmp_path / "out"), "--facet-values", "CA"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert report["post_training_bias_metrics"]["facets"]["home_state"][0]["value_or_threshold"] == "CA"
