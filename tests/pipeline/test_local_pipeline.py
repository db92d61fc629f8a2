"""The deployed pipeline definition runs here: S3 transfer rules on a real local S3, expressions, stand-ins,
and every example use case's synthesized definition executed end to end (``make local-run``).

The end-to-end runs share one session fixture and run concurrently (each is a chain of subprocesses):
the three example use cases on their AutoML path, price elasticity on its XGBoost path, fraud with a
quality gate it cannot pass, and the fraud definition re-wired the way it was before the per-use-case
pipelines (one wiring defect per run), each of which the run must refuse at the step AWS would break.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline_code import definition as definition_module
from pipeline_code.problem import METRICS_SECTION
from tools import local_run
from tools.pipeline_runtime import LocalS3, stand_ins
from tools.pipeline_runtime.expressions import Context, ExpressionError, parameter_values
from tools.pipeline_runtime.s3 import TransferError

ROWS = 5000
REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parents[2]

# --- S3 transfer rules on moto's server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    with LocalS3("unit-bucket") as local:
        for key in ("runs/1/split/test/test.csv", "runs/1/split/test_features/test_features.csv",
                    "runs/1/split/train/part/a.csv", "runs/1/other.csv"):
            local.put_text(key, f"content of {key}\n")
        yield local


def test_s3_prefix_input_takes_every_key_that_starts_with_the_uri(s3, tmp_path):
    written = s3.download_input("s3://unit-bucket/runs/1/split/test", tmp_path / "in")
    relative = sorted(p.relative_to(tmp_path / "in").as_posix() for p in written)
    assert relative == ["_features/test_features.csv", "test.csv"]


def test_a_trailing_slash_limits_the_prefix_to_that_folder(s3, tmp_path):
    written = s3.download_input("s3://unit-bucket/runs/1/split/test/", tmp_path / "in")
    assert [p.relative_to(tmp_path / "in").as_posix() for p in written] == ["test.csv"]


def test_nested_keys_keep_their_relative_path(s3, tmp_path):
    written = s3.download_input("s3://unit-bucket/runs/1/split/train/", tmp_path / "in")
    assert [p.relative_to(tmp_path / "in").as_posix() for p in written] == ["part/a.csv"]
    assert written[0].read_text() == "content of runs/1/split/train/part/a.csv\n"


def test_manifest_file_input_brings_each_listed_object(s3, tmp_path):
    s3.put_text("manifests/m.json", json.dumps([{"prefix": "s3://unit-bucket/runs/1/"}, "other.csv",
                                                 "split/test/test.csv"]))
    written = s3.download_input("s3://unit-bucket/manifests/m.json", tmp_path / "in", "ManifestFile")
    assert sorted(p.relative_to(tmp_path / "in").as_posix() for p in written) == ["other.csv", "split/test/test.csv"]


@pytest.mark.parametrize("data_type, mode, message", [
    ("S3Prefix", "Pipe", "S3InputMode 'Pipe'"),
    ("AugmentedManifestFile", "File", "S3DataType 'AugmentedManifestFile'"),
])
def test_unsupported_transfer_modes_are_refused_by_name(s3, tmp_path, data_type, mode, message):
    with pytest.raises(TransferError, match=message):
        s3.download_input("s3://unit-bucket/runs/1/", tmp_path / "in", data_type, mode)


def test_outputs_upload_under_the_uri_without_doubling_a_slash(s3, tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / "r.json").write_text("{}")
    uris = s3.upload_output(tmp_path / "out", "s3://unit-bucket/runs/2/evaluation/")
    assert uris == ["s3://unit-bucket/runs/2/evaluation/sub/r.json"]
    assert s3.exists("s3://unit-bucket/runs/2/evaluation/sub/r.json")


def test_two_local_s3_servers_share_nothing(s3):
    with LocalS3("unit-bucket") as other:
        other.put_text("only-here.txt", "x")
        assert other.keys("unit-bucket", "") == ["only-here.txt"]
    assert "only-here.txt" not in s3.keys("unit-bucket", "")


# --- expressions ------------------------------------------------------------------------------------


def context(s3=None, steps=None) -> Context:
    values = parameter_values([{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
                               {"Name": "Mode", "Type": "String", "DefaultValue": "random"}], {"Mode": "by_key"})
    made = Context(values, "exec1", "arn:aws:sagemaker:local:000000000000:pipeline/p/execution/exec1",
                   lambda uri: json.loads(s3.read_text(uri)))
    made.steps.update(steps or {})
    return made


def test_parameters_take_overrides_with_their_declared_type():
    values = parameter_values([{"Name": "Rows", "Type": "Integer", "DefaultValue": 3},
                               {"Name": "On", "Type": "Boolean", "DefaultValue": "false"}], {"Rows": "7"})
    assert values == {"Rows": 7, "On": False}
    with pytest.raises(ExpressionError, match="unknown parameter"):
        parameter_values([{"Name": "Rows", "Type": "Integer", "DefaultValue": 3}], {"Rowz": "1"})
    with pytest.raises(ExpressionError, match="Rows must be Integer"):
        parameter_values([{"Name": "Rows", "Type": "Integer", "DefaultValue": 3}], {"Rows": "many"})


def test_get_and_join_resolve_parameters_execution_and_step_properties():
    steps = {"Split": {"ProcessingOutputConfig": {"Outputs": {"test": {"S3Output": {"S3Uri": "s3://b/t"}}}}}}
    value = context(steps=steps).value({"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.Split.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"},
        {"Get": "Execution.PipelineExecutionId"}, {"Get": "Parameters.Mode"}]}})
    assert value == "s3://b/t/exec1/by_key"
    with pytest.raises(ExpressionError, match="no member"):
        context(steps=steps).value({"Get": "Steps.Split.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"})


def test_json_get_reads_the_property_file_and_conditions_compare_it(s3):
    s3.put_text("runs/3/evaluation/evaluation.json", json.dumps({"m": {"auc": {"value": 0.7}}}))
    made = context(s3)
    made.property_files["Evaluate"] = {"EvaluationReport": "s3://unit-bucket/runs/3/evaluation/evaluation.json"}
    read = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                            "Path": "m.auc.value"}}
    assert made.value(read) == 0.7
    assert made.condition({"Type": "GreaterThanOrEqualTo", "LeftValue": read, "RightValue": 0.7}) is True
    assert made.condition({"Type": "GreaterThanOrEqualTo", "LeftValue": read,
                           "RightValue": {"Get": "Parameters.Threshold"}}) is True
    assert made.condition({"Type": "LessThanOrEqualTo", "LeftValue": read, "RightValue": 0.5}) is False


def test_a_processing_step_runs_the_uploaded_code_from_a_relative_workdir(s3, tmp_path, monkeypatch):
    """Inputs, arguments and PYTHONPATH are remapped under the step's folder, whatever the working directory."""
    from tools.pipeline_runtime import run_pipeline

    s3.upload_folder(ROOT / "pipeline_code", "code/pipeline_code/", exclude=("__pycache__", "*.pyc"))
    step = {"Name": "Generate", "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": "sklearn-image",
                             "ContainerEntrypoint": ["python3", "-m", "pipeline_code.churn_data"],
                             "ContainerArguments": ["--out", "/opt/ml/processing/output/data",
                                                    "--rows", {"Std:Join": {"On": "", "Values": [
                                                        {"Get": "Parameters.Rows"}]}}]},
        "Environment": {"PYTHONPATH": "/opt/ml/processing/code"},
        "ProcessingInputs": [{"InputName": "code", "S3Input": {
            "S3Uri": "s3://unit-bucket/code/pipeline_code/", "LocalPath": "/opt/ml/processing/code/pipeline_code",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "data", "S3Output": {
            "S3Uri": "s3://unit-bucket/generated", "LocalPath": "/opt/ml/processing/output/data",
            "S3UploadMode": "EndOfJob"}}]}}}
    definition = {"Parameters": [{"Name": "Rows", "Type": "Integer", "DefaultValue": 100}], "Steps": [step]}
    monkeypatch.chdir(tmp_path)
    result = run_pipeline(json.dumps(definition), s3=s3, images={}, parameters={"Rows": "60"}, workdir=Path("run"))
    assert result.status == "Succeeded", result.summary()
    assert s3.keys("unit-bucket", "generated/") == ["generated/churn.csv"]
    assert len(s3.read_text("s3://unit-bucket/generated/churn.csv").splitlines()) == 61
    assert result.step("Generate").arguments[1] == str(tmp_path / "run/steps/Generate/opt/ml/processing/output/data")


# --- the Clarify stand-in's contract -------------------------------------------------------------------


HEADERS = ["label", "x", "facet"]


def test_clarify_dataset_rows_without_header_are_one_table(tmp_path):
    (tmp_path / "a.csv").write_text("1,0.5,CA\n0,0.2,NY\n")
    (tmp_path / "b.csv").write_text("0,0.9,CA\n")
    table = stand_ins.read_clarify_dataset(tmp_path, HEADERS)
    assert list(table.columns) == HEADERS and len(table) == 3


def test_clarify_dataset_with_a_header_row_is_refused(tmp_path):
    (tmp_path / "test.csv").write_text("label,x,facet\n1,0.5,CA\n")
    with pytest.raises(stand_ins.StandInError, match="starts with a header row"):
        stand_ins.read_clarify_dataset(tmp_path, HEADERS)


def test_clarify_dataset_with_a_file_of_another_width_is_refused(tmp_path):
    (tmp_path / "test.csv").write_text("1,0.5,CA\n")
    (tmp_path / "_features").mkdir()
    (tmp_path / "_features" / "test_features.csv").write_text("0.5\n")
    with pytest.raises(stand_ins.StandInError, match="_features/test_features.csv has 1 columns"):
        stand_ins.read_clarify_dataset(tmp_path, HEADERS)


AUTOML_BINARY = stand_ins.StandInModel("automl", "BinaryClassification", ["x"], estimator=None)


@pytest.mark.parametrize("environment, predictor, read", [
    ("predicted_label,probability", {"label": 0, "probability": 1}, "'probability' field, which is the probability "
                                                                     "of the predicted label"),
    (definition_module.AUTOML_INFERENCE_OUTPUT["binary"], {"probability": 0}, "'predicted_label' field"),
    (definition_module.AUTOML_INFERENCE_OUTPUT["binary"], {"label": 0, "probability": 2}, "'probabilities' field"),
])
def test_clarify_refuses_a_predictor_that_misreads_autopilot_scores(environment, predictor, read):
    with pytest.raises(stand_ins.StandInError, match=read):
        stand_ins.check_score_semantics(AUTOML_BINARY, {"SAGEMAKER_INFERENCE_OUTPUT": environment}, predictor)


def test_clarify_accepts_probabilities_with_label_headers():
    stand_ins.check_score_semantics(AUTOML_BINARY, {"SAGEMAKER_INFERENCE_OUTPUT": definition_module.AUTOML_INFERENCE_OUTPUT["binary"]},
                                    {"label": 0, "probability": 2, "label_headers": ["0", "1"]})


# --- the synthesized definitions, executed ----------------------------------------------------------------


def set_argument(step: dict, flag: str, value) -> None:
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    arguments[arguments.index(flag) + 1] = value


def all_steps(definition: dict) -> dict:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(all_steps({"Steps": step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]}))
    return found


def split_output(name: str) -> dict:
    return {"Get": f"Steps.SplitData.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def prefix_overlap(definition: dict) -> None:
    """The earlier wiring: the split writes ``split/test`` and ``split/test_features``, Clarify reads ``split/test``."""
    steps = all_steps(definition)
    for output in steps["SplitData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
        if output["OutputName"] == "transform_input":
            output["S3Output"]["S3Uri"]["Std:Join"]["Values"][-1] = "test_features"
    steps["AutoMLClarify"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = split_output("test")


def header_row(definition: dict) -> None:
    """The earlier wiring without the overlap: Clarify reads the test folder, whose test.csv has a header."""
    steps = all_steps(definition)
    steps["AutoMLClarify"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = definition_module.folder(
        split_output("test"))


def score_semantics(definition: dict) -> None:
    """The earlier predictor: a single score column read with a 0.5 threshold."""
    set_argument(all_steps(definition)["AutoMLClarifyConfig"], "--prediction-format", "probability")


CLARIFY = "everything switched"
"""The edge config with ``explainability: clarify``; its use case ``case-0`` has the fraud example's problem."""
RUNS = {
    "fraud-detection": ("fraud-detection", {}, None),
    "churn-propensity": ("churn-propensity", {}, None),
    "price-elasticity": ("price-elasticity", {}, None),
    "price-elasticity xgboost": ("price-elasticity", {"TrainingPath": "XGBoost"}, None),
    "fraud gate too high": ("fraud-detection", {"QualityThreshold": "0.99"}, None),
    "fraud clarify": ("case-0", {}, None),
    "fraud prefix overlap": ("case-0", {}, prefix_overlap),
    "fraud header row": ("case-0", {}, header_row),
    "fraud score semantics": ("case-0", {}, score_semantics),
}
CLARIFY_RUNS = {"fraud clarify", "fraud prefix overlap", "fraud header row", "fraud score semantics"}


@pytest.fixture(scope="session")
def local_runs(example, example_config, edge, tmp_path_factory) -> dict:
    """Run name -> (result, output folder, definition that ran), for every run of ``RUNS``."""
    from stacks.config import parse_config
    from tests.conftest import EDGE_CONFIGS

    clarify_config = parse_config(EDGE_CONFIGS[CLARIFY])
    clarify_templates = edge(CLARIFY).templates

    def one(name: str):
        use_case_name, parameters, rewire = RUNS[name]
        config, templates = (clarify_config, clarify_templates) if name in CLARIFY_RUNS else (
            example_config, example.templates)
        team, use_case = local_run.find_use_case(config, use_case_name)
        text, bucket, region_images = local_run.deployed_definition(templates, config, team, use_case,
                                                                    config.region or REGION)
        definition = json.loads(text)
        if rewire is not None:
            rewire(definition)
        out = tmp_path_factory.mktemp(name.replace(" ", "-"))
        tables = local_run.example_tables("fraud-detection" if name in CLARIFY_RUNS else use_case_name, ROWS, 0)
        result = local_run.execute(json.dumps(definition), bucket, region_images, out, tables=tables,
                                   parameters=parameters)
        return name, (result, out, definition)

    with ThreadPoolExecutor(max_workers=len(RUNS)) as pool:
        return dict(pool.map(one, RUNS))


EXAMPLES = ["fraud-detection", "churn-propensity", "price-elasticity", "price-elasticity xgboost"]


def use_case_of(example_config, run_name: str):
    return local_run.find_use_case(example_config, RUNS[run_name][0])


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_every_example_runs_its_deployed_definition_to_registration(local_runs, example_config, run_name):
    result, _, _ = local_runs[run_name]
    team, use_case = use_case_of(example_config, run_name)
    assert result.status == "Succeeded", result.summary()
    assert [p["ModelPackageGroupName"] for p in result.registered] == [
        f"{example_config.prefix}-{team.name}-{use_case.name}"]
    quality_metric = use_case.pipeline_spec().quality_metric
    assert f"test {quality_metric} " in result.registered[0]["ModelPackageDescription"]


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_the_run_walks_exactly_the_branch_the_definition_chooses(local_runs, run_name):
    result, _, definition = local_runs[run_name]
    path = RUNS[run_name][1].get("TrainingPath", "AutoML")
    ran = {s.name for s in result.steps if s.status != "NotRun"}
    steps = all_steps(definition)
    assert ran <= set(steps)
    expected = {"SplitData", "SelectTrainingPath"} | {n for n in steps if n.startswith(path)}
    if path == "XGBoost":
        expected.add("CheckXGBoostPath")
    expected -= {f"{path}QualityTooLow"}
    assert ran == expected
    assert all(s.status == "Succeeded" for s in result.steps if s.name in ran)
    if path == "XGBoost":
        defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        tried = min(int(defaults["XGBoostMaxTuningJobs"]), 5)
        assert result.step("XGBoostTune").detail.startswith(f"{tried} candidates, best validation:")


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_automl_problem_and_evaluation_follow_the_use_case(local_runs, example_config, run_name):
    result, out, definition = local_runs[run_name]
    _, use_case = use_case_of(example_config, run_name)
    problem_type = use_case.problem.problem_type
    if RUNS[run_name][1].get("TrainingPath") != "XGBoost":
        automl = all_steps(definition)["AutoMLTrain"]["Arguments"]
        assert automl["ProblemType"] == definition_module.AUTOML_PROBLEM_TYPES[problem_type]
        assert automl["AutoMLJobObjective"]["MetricName"] == {"Get": "Parameters.AutoMLObjective"}
        defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        assert defaults["AutoMLObjective"] == use_case.problem.objective
        assert result.step("AutoMLTrain").detail.startswith(automl["ProblemType"])
    model_quality = json.loads(result.reports["ModelQuality report"].read_text())
    assert METRICS_SECTION[problem_type] in model_quality
    assert result.metrics[use_case.pipeline_spec().quality_metric] >= use_case.problem.quality_gate.threshold


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_processing_steps_ran_the_code_the_stack_uploaded(local_runs, run_name):
    result, out, _ = local_runs[run_name]
    for record in result.steps:
        if record.module:
            code = out / "steps" / record.name / "opt/ml/processing/code/pipeline_code"
            assert (code / f"{record.module.split('.')[-1]}.py").read_bytes() == (
                ROOT / "pipeline_code" / f"{record.module.split('.')[-1]}.py").read_bytes()
            assert all(str(out) in a or not a.startswith("/") for a in record.arguments), record.arguments


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_registered_reports_hold_the_configured_facets_and_the_model_features(local_runs, example_config, run_name):
    result, _, _ = local_runs[run_name]
    _, use_case = use_case_of(example_config, run_name)
    bias = json.loads(result.reports["Bias report"].read_text())
    facets = {f.name for f in use_case.problem.facets}
    assert set(bias["post_training_bias_metrics"]["facets"]) == facets
    assert set(bias["pre_training_bias_metrics"]["facets"]) == facets
    shap = json.loads(result.reports["Explainability report"].read_text())["explanations"]["kernel_shap"]
    explained = set(next(iter(shap.values()))["global_shap_values"])
    assert explained and not explained & facets


def test_the_clarify_option_runs_clarify_and_registers_its_report(local_runs):
    result, _, definition = local_runs["fraud clarify"]
    assert result.status == "Succeeded", result.summary()
    ran = {s.name for s in result.steps if s.status == "Succeeded"}
    assert {"AutoMLClarifyConfig", "AutoMLClarify", "AutoMLRecordExperiment", "AutoMLRegister"} <= ran
    assert not {n for n in ran if "Explain" in n}
    register = all_steps(definition)["AutoMLRegister"]["Arguments"]
    assert "AutoMLClarify" in json.dumps(register["ModelMetrics"]["Bias"])


def test_clarify_predicts_what_the_evaluation_measured(local_runs):
    """Score semantics, end to end: the favourable rate Clarify's predictor sees equals the evaluation's."""
    result, _, _ = local_runs["fraud clarify"]
    matrix = json.loads(result.reports["ModelQuality report"].read_text())[
        "binary_classification_metrics"]["confusion_matrix"]
    rows = sum(sum(row.values()) for row in matrix.values())
    predicted_positive = sum(row.get("1", 0) for row in matrix.values()) / rows
    observed = json.loads(result.reports["Bias report"].read_text())["local_stand_in"]
    assert observed["rows"] == rows
    assert observed["predicted_favourable_rate"] == pytest.approx(predicted_positive)
    assert observed["predicted_favourable_rate"] < 0.5


@pytest.mark.parametrize("run_name, plot", [("fraud-detection", "roc_curve.png"), ("price-elasticity", "residuals.png")])
def test_the_problem_types_plot_is_written(local_runs, run_name, plot):
    result, out, _ = local_runs[run_name]
    assert result.reports["plot"] == out / "reports" / plot
    assert result.reports["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(result.reports["plot"]) in result.summary()


def test_a_quality_gate_the_model_misses_fails_without_registering(local_runs):
    result, out, _ = local_runs["fraud gate too high"]
    assert result.status == "Failed" and result.failed_step == "AutoMLQualityTooLow"
    assert "is not at least QualityThreshold 0.99" in result.reason
    assert result.registered == [] and result.step("AutoMLRegister").status == "NotRun"
    assert json.loads(result.reports["evaluation"].read_text())["binary_classification_metrics"]["auc"]["value"] < 0.99


@pytest.mark.parametrize("run_name, message", [
    ("fraud prefix overlap", "_features/test_features.csv has 6 columns but the analysis config's headers list 9"),
    ("fraud header row", "test.csv starts with a header row"),
    ("fraud score semantics", "reads the Autopilot answer's 'predicted_label' field"),
])
def test_each_earlier_wiring_defect_fails_the_run_where_aws_would_break(local_runs, run_name, message):
    result, _, _ = local_runs[run_name]
    assert result.status == "Failed", result.summary()
    assert result.failed_step == "AutoMLClarify"
    assert message in result.reason
    assert result.registered == []


def test_local_run_names_the_use_cases_when_one_is_unknown(example_config):
    with pytest.raises(local_run.LocalRunError, match="no use case 'nope'.*fraud-detection"):
        local_run.find_use_case(example_config, "nope")


def test_local_run_refuses_a_malformed_parameter():
    with pytest.raises(local_run.LocalRunError, match="'TrainingPath' is not Name=Value"):
        local_run.parse_parameters(["TrainingPath"])


def test_a_multiclass_evaluation_draws_its_confusion_matrix(tmp_path):
    from pipeline_code import evaluate
    from tools.pipeline_runtime import report

    labels = ["a", "b", "c", "a", "b", "c", "a"]
    evaluation = evaluate.multiclass_report(labels, ["a", "b", "b", "a", "c", "c", "a"], ("a", "b", "c"))
    report.plot_confusion(evaluation, tmp_path / "confusion_matrix.png")
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_each_execution_is_one_mlflow_run_with_its_metrics_and_registered_version(local_runs, example_config,
                                                                                  run_name):
    from mlflow.tracking import MlflowClient

    result, out, _ = local_runs[run_name]
    team, use_case = use_case_of(example_config, run_name)
    client = MlflowClient(f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"{example_config.prefix}-{team.name}-{use_case.name}")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == result.execution_id
    assert run.data.tags["mlops.pipeline_execution_arn"].endswith(f"/execution/{result.execution_id}")
    spec = use_case.pipeline_spec()
    section = METRICS_SECTION[use_case.problem.problem_type]
    assert run.data.metrics[f"{section}.{spec.quality_metric}"] == pytest.approx(result.metrics[spec.quality_metric])
    assert any(key.startswith("shap.") for key in run.data.metrics)
    assert any(key.startswith("bias.pre.") for key in run.data.metrics)
    assert run.data.tags["mlops.model_package_arn"].endswith(f"/{example_config.prefix}-{team.name}-{use_case.name}/1")
    assert run.data.params["training_path"] == RUNS[run_name][1].get("TrainingPath", "AutoML")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"evaluation.json", "analysis.json"}


# --- the deployed monitoring pipeline on windows made from the fraud run ---------------------------------------


@pytest.fixture(scope="module")
def monitored_windows(local_runs, example, example_config, tmp_path_factory) -> dict:
    """Window name -> MonitorRun: the fraud run's test rows as served, as they are and with amount tripled."""
    from lambdas.common import naming
    from tools import local_monitor

    _, out, _ = local_runs["fraud-detection"]
    team, use_case = local_run.find_use_case(example_config, "fraud-detection")
    text, bucket, endpoint = local_monitor.deployed_monitoring_definition(
        example.templates, example_config, team, use_case, example_config.region or REGION)
    namespace = naming.monitoring_namespace(example_config.prefix, team.name)

    def one(name: str, shift: dict | None):
        capture, truth = local_monitor.window_from_run(out, shift)
        return name, local_monitor.monitor_window(text, bucket, endpoint, out / "reports" / "drift-baseline",
                                                  capture, truth, tmp_path_factory.mktemp(f"monitor-{name}"),
                                                  namespace)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, ("clean", "shifted"), (None, {"amount": 3.0})))


def test_the_monitoring_job_flags_the_shifted_window_and_only_it(monitored_windows, local_runs):
    clean, shifted = monitored_windows["clean"], monitored_windows["shifted"]
    for run in (clean, shifted):
        assert run.result.status == "Succeeded", run.result.summary()
        assert run.report["status"] == "ok" and run.report["rows"] == run.report["requests"] > 100
    assert [c["column"] for c in clean.report["drift"]["columns"] if c["drifted"]] == []
    assert [c["column"] for c in shifted.report["drift"]["columns"] if c["drifted"]] == ["amount"]
    assert clean.report["drift"]["drifted_share"] == 0.0
    # The served answers are the batch predictions the pipeline evaluated: the window's quality is the test's.
    result, _, _ = local_runs["fraud-detection"]
    for run in (clean, shifted):
        assert run.report["quality"]["metrics"]["auc"] == pytest.approx(result.metrics["auc"], rel=1e-12)


def test_the_monitoring_job_publishes_what_the_alarms_watch(monitored_windows, example_config):
    from lambdas.common import naming

    endpoint = naming.endpoint_name(example_config.prefix, "fraud", "fraud-detection")
    by_key = {(name, tuple(sorted(dims.items()))): value for name, dims, value in monitored_windows["shifted"].metrics}
    assert by_key[("DriftedFeatureShare", (("EndpointName", endpoint),))] == pytest.approx(1 / 6)
    assert by_key[("FeatureDrifted", (("EndpointName", endpoint), ("Feature", "amount"), ("ModelVersion", "1")))] == 1
    assert ("Quality_auc", (("EndpointName", endpoint),)) in by_key
    clean = {(name, tuple(sorted(dims.items()))): value for name, dims, value in monitored_windows["clean"].metrics}
    assert clean[("DriftedFeatureShare", (("EndpointName", endpoint),))] == 0.0


# --- what the stage accounts may read: stacks.cross_account.ARTIFACT_KEY_PATTERNS against the keys a run writes ---------


def iam_key_match(pattern: str, key: str) -> bool:
    """An S3 key against a key pattern of an IAM resource ARN: ``*`` is any run of characters, ``/`` too, ``?`` one."""
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, key, re.DOTALL) is not None


def artifact_patterns_matching(key: str) -> list:
    from stacks.cross_account import ARTIFACT_KEY_PATTERNS

    return [pattern for pattern in ARTIFACT_KEY_PATTERNS if iam_key_match(pattern, key)]


# Keys as real SageMaker writes them, where the job name (not the local stand-ins' step name) is the folder under
# S3OutputPath. Matches that are not the registered tarball of their execution, all of them model tarballs:
# - the training jobs of XGBoostTune share the retrain's OutputDataConfig, so each tuning candidate's
#   ``xgboost/models/<candidate job>/output/model.tar.gz`` matches;
# - an AutoML job writes the models of all its candidates and data processors under ``automl/<job>/``
#   (``tuning/...``, ``data-processor-models/...``); only the best candidate's inference containers are registered;
# - an execution that stops at its quality gate (never registers) has written its tarball already, and it matches;
# - a registered version matches whatever its approval status.
# The local runs write none of the first two (the stand-ins train one model per step) and no key under mlflow/
# (the recording steps log to a local store), hence the explicit keys here.
REAL_SAGEMAKER_TARBALLS = [
    "pipeline/runs/abc123/xgboost/models/pipelines-abc123-XGBoostTrain-Zx9/output/model.tar.gz",
    "pipeline/runs/abc123/xgboost/models/XGBoostTune-abc123-001-1a2b3c4d/output/model.tar.gz",
    "pipeline/runs/abc123/automl/automl-abc123/data-processor-models/dpp0/output/model.tar.gz",
    "pipeline/runs/abc123/automl/automl-abc123/tuning/automl-abc-dpp0-xgb/automl-abc-dpp0-xgb-1-a1b2/output/model.tar.gz",
]
REAL_SAGEMAKER_DATA = [
    "pipeline/runs/abc123/automl/automl-abc123/preprocessed-data/tuning_data/train/chunk_20.csv",
    "pipeline/runs/abc123/automl/automl-abc123/transformed-data/dpp0/rpb/train/chunk_20.csv.out",
    "pipeline/runs/abc123/automl/automl-abc123/documentation/explainability/output/analysis.json",
    "pipeline/runs/abc123/xgboost/models/pipelines-abc123-XGBoostTrain-Zx9/debug-output/training_job_end.ts",
    "pipeline/runs/abc123/xgboost/debugger/pipelines-abc123-XGBoostTrain-Zx9/debug-output/index/000000000/x.json",
    "pipeline/runs/abc123/split/train/train.csv",
    "mlflow/1/0123456789abcdef/artifacts/model/model.tar.gz",
    "pipeline/code/pipeline_code/split.py",
]


def test_the_artifact_patterns_take_the_real_sagemaker_tarball_keys_and_no_data_around_them():
    assert [k for k in REAL_SAGEMAKER_TARBALLS if not artifact_patterns_matching(k)] == []
    assert {k: artifact_patterns_matching(k) for k in REAL_SAGEMAKER_DATA if artifact_patterns_matching(k)} == {}
    # The translation is IAM's, not a path glob's: * crosses a /.
    assert iam_key_match("a/*/c", "a/b/b/c") and not iam_key_match("a/*/c", "a/c") and iam_key_match("a?c", "abc")


@pytest.mark.parametrize("run_name", EXAMPLES)
def test_the_artifact_patterns_take_the_registered_tarballs_and_no_data_the_run_wrote(local_runs, run_name):
    from pipeline_code.definition import RUNS_PREFIX
    from tools.pipeline_runtime.s3 import split_uri

    result, _, definition = local_runs[run_name]
    assert result.status == "Succeeded", result.summary()
    keys = set(result.s3_keys)
    registered = {split_uri(c["ModelDataUrl"])[1] for package in result.registered
                  for c in package["InferenceSpecification"]["Containers"]}
    assert registered and registered <= keys
    assert {k: artifact_patterns_matching(k) for k in registered if not artifact_patterns_matching(k)} == {}

    runs = f"{RUNS_PREFIX}/{result.execution_id}/"
    tarballs = {k for k in keys if k.startswith((f"{runs}automl/", f"{runs}xgboost/models/"))
                and k.endswith("/model.tar.gz")}
    assert tarballs == registered  # locally no other model tarball exists (see REAL_SAGEMAKER_TARBALLS)
    others = keys - tarballs
    assert {k: artifact_patterns_matching(k) for k in others if artifact_patterns_matching(k)} == {}

    # The negative check covered every kind of data the run writes.
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    path = RUNS[run_name][1].get("TrainingPath", "AutoML").lower()
    kinds = {
        "split": f"{runs}split/",
        "input data": split_uri(defaults["InputDataUri"])[1],
        "evaluation": f"{runs}{path}/evaluation/",
        "drift baseline": f"{runs}{path}/drift-baseline/",
        "MLflow run record": f"{runs}{path}/experiment-run/",
        "explanations": f"{runs}{path}-explanations/",
        "predictions": f"{runs}{path}/predictions/",
        "code": local_run.CODE_PREFIX,
    }
    assert [kind for kind, prefix in kinds.items() if not any(k.startswith(prefix) for k in others)] == []

    # Real SageMaker puts the job name where the stand-ins put the step name.
    step = {"automl": "AutoMLTrain", "xgboost": "XGBoostTrain"}[path]
    for key in registered:
        assert f"/{step}/" in key
        real = key.replace(f"/{step}/", f"/pipelines-{result.execution_id}-{step}-Zx9/")
        assert artifact_patterns_matching(real), real
