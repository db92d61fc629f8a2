"""The local run: every stage runs here and writes the files the pipeline writes, plus a ROC curve."""

from __future__ import annotations

import json

import pytest

from pipeline_code import local_run
from pipeline_code.columns import FEATURES


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("local_run")
    return out, local_run.run(out, rows=20_000, seed=3, split_mode="stratified")


def test_stand_in_model_is_labelled_and_learns(result):
    _, summary = result
    assert "stand-in for the AutoML" in summary["model"]
    assert summary["test_auc"] > 0.8


def test_evaluation_report_is_the_pipeline_format(result):
    from sagemaker.model_card.evaluation_metric_parsers import ClassificationParser

    _, summary = result
    report = json.loads(open(summary["files"]["evaluation"]).read())
    assert report["binary_classification_metrics"]["auc"]["value"] == pytest.approx(summary["test_auc"])
    assert report["dataset"]["item_count"] == summary["split"]["rows"]["test"]
    ClassificationParser().run(report)


def test_analysis_has_bias_and_explanations(result):
    from sagemaker.model_card.evaluation_metric_parsers import (
        ClarifyExplainabilityParser,
    )

    _, summary = result
    analysis = json.loads(open(summary["files"]["analysis"]).read())
    assert analysis["pre_training_bias_metrics"]["facets"]["home_state"][0]["value_or_threshold"] == "CA"
    assert {m["name"] for m in analysis["post_training_bias_metrics"]["facets"]["home_state"][0]["metrics"]} >= {
        "DPPL", "DI", "RD"
    }
    shap = analysis["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    assert set(shap) == set(FEATURES)
    assert max(shap, key=shap.get) in ("amount", "away_from_home", "is_night", "hour", "account_age_days")
    ClarifyExplainabilityParser().run(analysis)


def test_analysis_config_is_the_one_the_pipeline_would_use(result):
    from sagemaker.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    _, summary = result
    config = json.loads(open(summary["files"]["analysis_config"]).read())
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(config)
    assert config["predictor"]["model_name"] == local_run.STAND_IN_MODEL_NAME


def test_roc_curve_png_is_written(result):
    import matplotlib.image

    _, summary = result
    with open(summary["files"]["roc_curve"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(summary["files"]["roc_curve"]).shape
    assert (width, height) == (500, 500)


def test_layout_mirrors_a_pipeline_execution(result):
    out, _ = result
    for relative in ("split/train/train.csv", "split/test/test.csv", "automl/predictions/test_features.csv.out",
                     "automl/evaluation/evaluation.json", "automl/clarify/analysis.json"):
        assert (out / relative).is_file(), relative


def test_cli_runs_end_to_end(tmp_path, capsys):
    code = local_run.main(["--out", str(tmp_path), "--rows", "5000", "--split-mode", "by_key", "--seed", "1"])
    assert code == 0
    output = capsys.readouterr().out
    assert "stand-in for the AutoML" in output and "test AUC:" in output


def test_cli_reports_bad_facet(tmp_path, capsys):
    code = local_run.main(["--out", str(tmp_path), "--rows", "3000", "--facet-name", "nope"])
    assert code == 2
    assert "facet 'nope'" in capsys.readouterr().err
