"""explain samples/report on every example's data: bias equals smclarify, SHAP equals shap called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shap
from smclarify.bias import report as clarify_report

from pipeline_code import bias, churn_data, examples, explain, price_data, split
from pipeline_code.definition import AUTOML_INFERENCE_OUTPUT
from pipeline_code.evaluate import read_prediction_lines
from pipeline_code.problem import FRAUD, Facet
from tools.pipeline_runtime import stand_ins

MULTICLASS = price_data.PROBLEM.replace(problem_type="multiclass", target="demand", classes=("high", "low", "mid"),
                                        positive_label="high")
EXAMPLE = {"fraud-detection": (FRAUD, "stratified"), "churn-propensity": (churn_data.PROBLEM, "by_key"),
           "price-elasticity": (price_data.PROBLEM, "ordered"), "price-multiclass": (MULTICLASS, "ordered")}
CASES = [("fraud-detection", "probability"), ("fraud-detection", "automl_classification"),
         ("churn-propensity", "automl_classification"), ("churn-propensity", "probability"),
         ("price-elasticity", "value"), ("price-multiclass", "class_index"),
         ("price-multiclass", "automl_classification")]
NSAMPLES, ROWS = 60, 12


def _inputs(name, folder):
    folder.mkdir(parents=True)
    source = "price-elasticity" if name == "price-multiclass" else name
    for file, text in examples.tables(source, 1500, seed=3).items():
        (folder / file).write_text(text)
    if name == "price-multiclass":
        frame = pd.read_csv(folder / "prices.csv")
        frame["demand"] = pd.qcut(frame["units_sold"], 3, labels=["low", "mid", "high"]).astype(str)
        frame.drop(columns="units_sold").to_csv(folder / "prices.csv", index=False)


def _model(problem, fmt, out):
    if fmt == "automl_classification":
        kind = {"binary": "BinaryClassification", "multiclass": "MulticlassClassification"}[problem.problem_type]
        model = stand_ins.train_automl([out / "train/train.csv"], [out / "validation/validation.csv"],
                                       problem.target, kind)
        return model, {"SAGEMAKER_INFERENCE_OUTPUT": AUTOML_INFERENCE_OUTPUT[problem.problem_type]}
    objective = {"probability": "binary:logistic", "class_index": "multi:softmax", "value": "reg:squarederror"}[fmt]
    settings = {"objective": objective, "num_round": "20", "num_class": str(len(problem.classes))}
    return stand_ins.train_xgboost([out / "xgboost_train/train.csv"], settings), {}


def _transform(model, environment, source, target):
    target.mkdir(parents=True, exist_ok=True)
    for name, text in stand_ins.transform(model, environment, [(source, source.name)]).items():
        (target / f"{name}.out").write_text(text)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def case(request, tmp_path_factory):
    name, fmt = request.param
    problem, mode = EXAMPLE[name]
    root = tmp_path_factory.mktemp(f"{name}-{fmt}")
    _inputs(name, root / "input")
    split.run(root / "input", root / "split", problem, mode, (0.7, 0.15, 0.15), 42)
    model, environment = _model(problem, fmt, root / "split")
    _transform(model, environment, root / "split/transform_input/test_features.csv", root / "predictions")
    args = problem.to_arguments()
    assert explain.main(["samples", "--test-dir", str(root / "split/test"), "--train-dir", str(root / "split/train"),
                         "--output-dir", str(root / "samples"), "--design-dir", str(root / "design"),
                         "--shap-samples", str(NSAMPLES), "--max-rows", str(ROWS), "--seed", "5", *args]) == 0
    _transform(model, environment, root / "samples/samples.csv", root / "sample_predictions")
    report_args = ["report", "--test-dir", str(root / "split/test"), "--predictions-dir", str(root / "predictions"),
                   "--design-dir", str(root / "design"), "--sample-predictions-dir", str(root / "sample_predictions"),
                   "--output-dir", str(root / "out"), "--prediction-format", fmt, *args]
    assert explain.main(report_args) == 0
    return {"problem": problem, "format": fmt, "root": root, "model": model, "environment": environment,
            "report_args": report_args, "analysis": json.loads((root / "out/analysis.json").read_text()),
            "design": json.loads((root / "design/design.json").read_text())}


def _model_function(case):
    def predict(array):
        lines = case["model"].answer(np.asarray(array, dtype=float), case["environment"])
        outputs = explain.model_outputs(lines, case["format"], case["problem"])
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs
    return predict


def _direct(case):
    design, root = case["design"], case["root"]
    test = pd.read_csv(root / "split/test/test.csv")
    rows = test[design["features"]].to_numpy(dtype=float)[design["explained_rows"]]
    explainer = shap.KernelExplainer(_model_function(case), np.array(design["baseline"])[None, :])
    np.random.seed(design["seed"])
    values = explainer.shap_values(rows, nsamples=design["nsamples"], l1_reg=design["l1_reg"], silent=True)
    values = np.asarray(values)
    return rows, (values[:, :, None] if values.ndim == 2 else values), np.atleast_1d(explainer.expected_value)


def test_bias_metrics_equal_smclarify_on_the_same_frame(case):
    problem, root = case["problem"], case["root"]
    test = pd.read_csv(root / "split/test/test.csv")
    lines = read_prediction_lines(root / "predictions")
    features = case["design"]["features"]
    if problem.problem_type == "regression":
        label, positive = test[problem.target].astype(float), [float(np.median(test[problem.target]))]
        predicted = pd.Series([float(v) for v in lines])
    elif problem.problem_type == "binary":
        label, positive = test[problem.target].astype(str).astype("category"), [problem.positive_label]
        scores = explain.model_outputs(lines, case["format"], problem)[:, 0]
        predicted = pd.Series(np.where(scores >= 0.5, "1", "0")).astype("category")
    else:
        label, positive = test[problem.target].astype(str).astype("category"), [problem.positive_label]
        classes = list(problem.classes)
        predicted = pd.Series([classes[int(np.argmax(r))] for r in explain.model_outputs(lines, case["format"],
                               problem)]).astype("category")
    for facet in problem.facets:
        frame = test[features + [facet.name]]
        pre = clarify_report.bias_report(frame, clarify_report.FacetColumn(facet.name, list(facet.values)),
                                         clarify_report.LabelColumn(problem.target, label, list(positive)),
                                         clarify_report.StageType.PRE_TRAINING, metrics=list(bias.PRE_TRAINING_METRICS))
        post = clarify_report.bias_report(
            frame, clarify_report.FacetColumn(facet.name, list(facet.values)),
            clarify_report.LabelColumn(problem.target, label, list(positive)), clarify_report.StageType.POST_TRAINING,
            predicted_label_column=clarify_report.LabelColumn("p", predicted, list(positive)),
            metrics=list(bias.POST_TRAINING_METRICS))
        for section, theirs in (("pre_training_bias_metrics", pre), ("post_training_bias_metrics", post)):
            ours = case["analysis"][section]["facets"][facet.name]
            assert [g["value_or_threshold"] for g in ours] == [g["value_or_threshold"] for g in theirs]
            for mine, library in zip(ours[0]["metrics"], theirs[0]["metrics"]):
                assert mine["name"] == library["name"]
                value = library["value"]
                if isinstance(value, float) and np.isnan(value):
                    value = None
                assert mine["value"] == value, (section, mine["name"])


def test_shap_values_equal_the_library_called_directly_with_the_real_model(case):
    _, direct, expected = _direct(case)
    local = pd.read_csv(case["root"] / "out" / explain.LOCAL_FILE)
    design = case["design"]
    for k, name in enumerate(design["outputs"]):
        mine = local[local["output"] == name][design["features"]].to_numpy()
        np.testing.assert_allclose(mine, direct[:, :, k], rtol=0, atol=1e-12)
        section = case["analysis"]["explanations"]["kernel_shap"][name]
        assert section["expected_value"] == pytest.approx(float(expected[k]), abs=1e-12)
        globals_ = np.abs(direct[:, :, k]).mean(axis=0)
        assert list(section["global_shap_values"].values()) == pytest.approx(list(globals_), abs=1e-12)


def test_shap_values_add_up_and_the_baseline_is_the_train_mean(case):
    rows, direct, expected = _direct(case)
    design, predict = case["design"], _model_function(case)
    train = pd.read_csv(case["root"] / "split/train/train.csv")
    assert design["baseline"] == pytest.approx(list(train[design["features"]].mean()))
    outputs = np.asarray(predict(rows)).reshape(len(rows), -1)
    np.testing.assert_allclose(direct.sum(axis=1), outputs - expected[None, :], atol=1e-6)


def test_analysis_has_the_keys_studio_reads(case):
    from sagemaker.model_card.evaluation_metric_parsers import ClarifyBiasParser, ClarifyExplainabilityParser

    analysis = case["analysis"]
    assert analysis["version"] == "1.0"
    for section in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        assert {"label", "label_value_or_threshold", "facets"} <= set(analysis[section])
        assert set(analysis[section]["facets"]) == {f.name for f in case["problem"].facets}
        for groups in analysis[section]["facets"].values():
            assert {"value_or_threshold", "metrics"} <= set(groups[0])
            assert all({"name", "description", "value"} <= set(m) for m in groups[0]["metrics"])
    outputs = explain.output_names(case["problem"])
    assert list(analysis["explanations"]["kernel_shap"]) == outputs
    for output in outputs:
        entry = analysis["explanations"]["kernel_shap"][output]
        assert set(entry["global_shap_values"]) == set(case["design"]["features"])
        assert isinstance(entry["expected_value"], float)
    groups = ClarifyBiasParser().run({k: v for k, v in analysis.items() if k.endswith("bias_metrics")})
    assert groups["metric_groups"]
    assert ClarifyExplainabilityParser().run(analysis)["metric_groups"][0]["metric_data"]
    summary = json.loads((case["root"] / "out" / explain.SUMMARY_FILE).read_text())
    assert set(summary["top_features"]) == set(outputs)
    assert set(summary["largest_bias"]) == {f.name for f in case["problem"].facets}


@pytest.mark.parametrize("tamper, message", [
    ("cut predictions", "model call"),
    ("bad prediction", "model call"),
    ("design seed", "model call 3:"),
    ("design baseline", "model call 1:"),
])
def test_a_changed_design_or_sample_predictions_file_fails_naming_the_call(case, tmp_path, tamper, message, capsys):
    if case["format"] not in ("probability", "value"):
        pytest.skip("one format per problem type is enough")
    root = case["root"]
    args = list(case["report_args"])
    design, predictions = json.loads((root / "design/design.json").read_text()), tmp_path / "sample_predictions"
    predictions.mkdir()
    lines = read_prediction_lines(root / "sample_predictions")
    if tamper == "cut predictions":
        lines = lines[:-3]
    elif tamper == "bad prediction":
        lines[5] = "not a number"
    elif tamper == "design seed":
        design["seed"] += 1
    else:
        design["baseline"][0] += 1.0
    (predictions / "samples.csv.out").write_text("\n".join(lines) + "\n")
    (tmp_path / "design").mkdir()
    (tmp_path / "design/design.json").write_text(json.dumps(design))
    args[args.index("--design-dir") + 1] = str(tmp_path / "design")
    args[args.index("--sample-predictions-dir") + 1] = str(predictions)
    args[args.index("--output-dir") + 1] = str(tmp_path / "out")
    assert explain.main(args) == 2
    assert message in capsys.readouterr().err


def test_linear_model_gets_exact_shapley_values_and_an_ignored_feature_zero(tmp_path):
    rng = np.random.default_rng(0)
    weights = np.array([2.0, -1.0, 0.0, 0.5])
    features = ["a", "b", "c", "d"]
    frame = pd.DataFrame(rng.random((80, 4)), columns=features)
    frame["y"] = frame.to_numpy() @ weights
    frame["region"] = rng.choice(["x", "z"], 80)
    problem = price_data.PROBLEM.replace(target="y", features=tuple(features), context=("region",), time_column="",
                                         key_column="", facets=(Facet("region", ("x",)),))
    for name in ("test", "train"):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / f"{name}.csv", index=False)
    design = explain.make_samples(tmp_path / "test", tmp_path / "train", tmp_path / "s", tmp_path / "s", problem,
                                  20, 10, 1)
    samples = pd.read_csv(tmp_path / "s/samples.csv", header=None).to_numpy()
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp/samples.csv.out").write_text("".join(f"{float(v)!r}\n" for v in samples @ weights))
    (tmp_path / "p").mkdir()
    (tmp_path / "p/out").write_text("".join(f"{float(v)!r}\n" for v in frame["y"]))
    explain.make_report(tmp_path / "test", tmp_path / "p", tmp_path / "s", tmp_path / "sp", tmp_path / "out", (),
                        "value", problem)
    local = pd.read_csv(tmp_path / "out" / explain.LOCAL_FILE)
    rows = frame[features].to_numpy()[design["explained_rows"]]
    expected = (rows - np.array(design["baseline"])) * weights
    np.testing.assert_allclose(local[features].to_numpy(), expected, atol=1e-9)
    assert np.all(np.abs(local["c"]) < 1e-12)


def test_a_format_the_problem_cannot_explain_is_refused():
    with pytest.raises(explain.ExplainError, match="cannot be explained for a regression problem"):
        explain.model_outputs(["1.0"], "probability", price_data.PROBLEM)
