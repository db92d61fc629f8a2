"""pipeline_code.bias: the Clarify-layout sections it builds around smclarify equal smclarify called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smclarify.bias import report as smclarify_report

from pipeline_code import bias
from pipeline_code.columns import LABEL


def clarify_values(frame, facet, values, stage, predicted=None):
    """smclarify's values, called directly; labels as categories, since it reads a small 0/1 column as continuous."""
    kwargs = {}
    label = frame[LABEL].astype(str).astype("category")
    if predicted is not None:
        series = pd.Series(predicted).astype(str).astype("category")
        kwargs["predicted_label_column"] = smclarify_report.LabelColumn("predicted", series, ["1"])
    names = bias.PRE_TRAINING_METRICS if predicted is None else bias.POST_TRAINING_METRICS
    result = smclarify_report.bias_report(frame[[facet]], smclarify_report.FacetColumn(facet, list(values)),
                                          smclarify_report.LabelColumn(LABEL, label, ["1"]), stage_type=stage,
                                          metrics=list(names), **kwargs)
    return {m["name"]: m["value"] for m in result[0]["metrics"]}


def ours(report, section):
    metrics = report[section]["facets"][next(iter(report[section]["facets"]))][0]["metrics"]
    return {m["name"]: m["value"] for m in metrics}


def sections(frame, facet, values, predicted=None):
    return bias.bias_sections(frame[[facet]], [(facet, values)], LABEL, bias.categorical(frame[LABEL]), ["1"],
                              None if predicted is None else bias.categorical(predicted))


def assert_same(mine: dict, theirs: dict):
    assert set(mine) == set(theirs)
    for name, value in theirs.items():
        if isinstance(value, float) and np.isnan(value):
            assert mine[name] is None, name
        else:
            assert mine[name] == value, name


@st.composite
def bias_cases(draw):
    rows = draw(st.integers(30, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    states = np.array(["CA", "NY", "TX", "WA"])
    frame = pd.DataFrame({"home_state": states[rng.integers(0, 4, size=rows)],
                          LABEL: (rng.random(rows) < draw(st.floats(0.05, 0.6))).astype(int)})
    frame.loc[:1, "home_state"] = ["CA", "NY"]
    frame.loc[:3, LABEL] = [1, 0, 1, 0]
    predicted = (rng.random(rows) < draw(st.floats(0.05, 0.6))).astype(int)
    predicted[:2] = [1, 0]
    return frame, predicted


@settings(max_examples=15, deadline=None)
@given(case=bias_cases(), facet_values=st.sampled_from([["CA"], ["CA", "TX"], ["NY"]]))
def test_sections_equal_smclarify_called_directly(case, facet_values):
    frame, predicted = case
    report = sections(frame, "home_state", facet_values, predicted)
    assert_same(ours(report, "pre_training_bias_metrics"),
                clarify_values(frame, "home_state", facet_values, smclarify_report.StageType.PRE_TRAINING))
    assert_same(ours(report, "post_training_bias_metrics"),
                clarify_values(frame, "home_state", facet_values, smclarify_report.StageType.POST_TRAINING, predicted))
    json.dumps(report, allow_nan=False)


def test_continuous_facet_is_the_rows_above_the_threshold():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"customer_age": rng.integers(18, 90, size=400), LABEL: (rng.random(400) < 0.2).astype(int)})
    report = sections(frame, "customer_age", ["60"])
    group = report["pre_training_bias_metrics"]["facets"]["customer_age"][0]
    assert group["value_or_threshold"] == f"(60, {frame['customer_age'].max()}]"
    older = frame["customer_age"] > 60
    assert ours(report, "pre_training_bias_metrics")["CI"] == pytest.approx((len(frame) - 2 * older.sum()) / len(frame))


def test_no_favourable_prediction_gives_null_metrics_with_the_reason():
    frame = pd.DataFrame({"home_state": ["CA", "NY"] * 20, LABEL: [1, 0, 0, 1] * 10})
    metrics = sections(frame, "home_state", ["CA"], [0] * 40)["post_training_bias_metrics"]["facets"]["home_state"]
    assert {m["name"] for m in metrics[0]["metrics"]} == set(bias.POST_TRAINING_METRICS)
    assert all(m["value"] is None and m["error"] == "no row is predicted favourable" for m in metrics[0]["metrics"])


@pytest.mark.parametrize(("facet", "values", "message"), [
    ("state", ["CA"], "'state' is not in the data"),
    ("home_state", ["ZZ"], "selects no row"),
    ("home_state", ["CA", "NY"], "selects every row"),
    ("home_state", [], "needs at least one value"),
])
def test_unusable_facets_are_rejected(facet, values, message):
    frame = pd.DataFrame({"home_state": ["CA", "NY", "CA", "NY"], LABEL: [1, 0, 0, 1]})
    with pytest.raises(bias.BiasError, match=message):
        bias.bias_sections(frame, [(facet, values)], LABEL, bias.categorical(frame[LABEL]), ["1"])


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
