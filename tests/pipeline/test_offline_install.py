"""The wheelhouse installs offline under the scikit-learn image's Python and versions, and the open bias and SHAP
step runs there with the same results as here.

The stand-in for the image is a CPython 3.9 virtualenv holding the image's pinned versions
(``pipeline_code/container_base.txt``, from PyPI) plus the unpinned packages it has; it is built once and kept
under ``build/container-py39/`` (keyed by the pin files). Each session copies it, so the offline install starts
from the image's state; pip is pointed at an address that refuses connections, so any download fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline_code import churn_data, examples, explain, offline_install, price_data, split
from pipeline_code.problem import FRAUD, QUALITY_METRICS
from tools import wheelhouse
from tools.pipeline_runtime import stand_ins

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "container-py39"
WHEELS = ROOT / "build" / "wheelhouse"
UNPINNED = ("certifi", "cryptography")
"""Packages the image has without a pin (its requirements.txt lists them bare)."""
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _stamp() -> str:
    digest = hashlib.sha256()
    for path in (wheelhouse.BASE, wheelhouse.REQUIREMENTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _image_venv() -> Path:
    """The cached stand-in of the image (built when missing or when the pins changed)."""
    python = wheelhouse.python39()
    if python is None:
        message = "no CPython 3.9 here (pyenv or python3.9 on PATH): the offline install cannot be proven"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stamp = CACHE / ".stamp"
    if stamp.is_file() and stamp.read_text() == _stamp():
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(CACHE)], check=True)
    pins = [line for line in wheelhouse.BASE.read_text().splitlines() if line and not line.startswith("#")]
    subprocess.run([str(CACHE / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *pins, *UNPINNED], check=True)
    stamp.write_text(_stamp())
    return CACHE


@pytest.fixture(scope="module")
def container_python(tmp_path_factory) -> Path:
    """A fresh copy of the image stand-in after the step bootstrap's offline install; its python."""
    if not (WHEELS / "requirements.txt").is_file():
        pytest.fail("build/wheelhouse is missing: run `make wheelhouse`")
    venv = tmp_path_factory.mktemp("image") / "venv"
    shutil.copytree(_image_venv(), venv, symlinks=True)
    python = venv / "bin" / "python"
    listing = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                              "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"],
                             capture_output=True, text=True, check=True).stdout.split()
    expected = offline_install.missing_pins(offline_install.read_pins(),
                                            {offline_install.normalised(n) for n in listing})
    assert len(expected) > 40, "the image stand-in lacks the step libraries before the install"
    done = _bootstrap(python, ["pipeline_code.explain", "--help"])
    assert done.returncode == 0, done.stderr
    installed = int(done.stdout.split("offline_install: ", 1)[1].split(" ", 1)[0])
    assert installed == len(expected), done.stdout
    return python


def _bootstrap(python: Path, arguments: list, wheels: Path = WHEELS) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(python), "-m", "pipeline_code.offline_install", "--wheelhouse", str(wheels),
                           *arguments], capture_output=True, text=True, env=env, cwd=ROOT)


def _versions(python: Path, names: list) -> dict:
    script = ("import importlib.metadata as m, json, sys; "
              "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    done = subprocess.run([str(python), "-c", script, *names], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_offline_install_brings_every_library_and_keeps_the_images_versions(container_python):
    imports = "import smclarify.bias.report, shap, mlflow, sagemaker_mlflow, matplotlib.pyplot; print('ok')"
    done = subprocess.run([str(container_python), "-c", imports], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    image = dict(line.split("==") for line in wheelhouse.BASE.read_text().splitlines()
                 if line and not line.startswith("#"))
    for name in ("numpy", "pandas", "scikit-learn", "scipy", "protobuf"):
        assert _versions(container_python, [name])[name] == image[name], name
    pins = dict(offline_install.read_pins())
    assert _versions(container_python, ["shap", "smclarify", "mlflow-skinny"]) == {
        "shap": pins["shap"], "smclarify": pins["smclarify"], "mlflow-skinny": pins["mlflow-skinny"]}


def test_a_second_start_installs_nothing(container_python):
    done = _bootstrap(container_python, ["pipeline_code.explain", "--help"])
    assert done.returncode == 0
    assert "offline_install: 0 wheel(s) installed" in done.stdout


def test_the_module_arguments_and_exit_code_pass_through(container_python):
    done = _bootstrap(container_python, ["pipeline_code.explain", "report", "--test-dir", "x"])
    assert done.returncode == 2, "argparse's usage error of the module is the step's exit code"
    assert "--predictions-dir" in done.stderr


def test_a_wheel_missing_from_the_wheelhouse_fails_naming_it(tmp_path):
    pins = offline_install.read_pins()
    shap_pin = next(p for p in pins if p[0] == "shap")
    for wheel in WHEELS.glob("*.whl"):
        if not wheel.name.startswith("shap-"):
            (tmp_path / wheel.name).symlink_to(wheel)
    with pytest.raises(offline_install.WheelhouseError, match=r"no wheel of shap==0\.49\.1"):
        offline_install.install(tmp_path, [shap_pin], run=lambda *a, **k: pytest.fail("pip must not run"))
    assert offline_install.missing_pins(pins, {offline_install.normalised(n) for n, _ in pins}) == []
    assert offline_install.missing_pins([("Typing_Extensions", "4")], {"typing-extensions"}) == []


def test_the_wheelhouse_holds_exactly_the_pinned_wheels():
    assert wheelhouse.complete(WHEELS), "run `make wheelhouse`"
    image = wheelhouse.base_names() | wheelhouse.IMAGE_HAS
    pinned = {offline_install.normalised(name) for name, _ in offline_install.read_pins()}
    assert not pinned & image, "the wheelhouse never replaces what the image has"
    assert {"shap", "smclarify", "mlflow-skinny", "sagemaker-mlflow", "matplotlib", "numba"} <= pinned
    assert not {"pyarrow", "s3fs"} & pinned, "smclarify.bias needs neither"


# --- the open bias and SHAP step under the image's Python --------------------------------------------------------


EXAMPLES = {
    "fraud-detection": (FRAUD, "stratified", "binary:logistic", "probability"),
    "churn-propensity": (churn_data.PROBLEM, "by_key", "binary:logistic", "probability"),
    "price-elasticity": (price_data.PROBLEM, "ordered", "reg:squarederror", "value"),
}
"""Example use case -> (problem, split mode, stand-in XGBoost objective, prediction format)."""


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def step_inputs(request, tmp_path_factory):
    """An example's split, a stand-in XGBoost model and its test predictions (made here)."""
    problem, mode, objective, prediction_format = EXAMPLES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    (root / "input").mkdir()
    for name, text in examples.tables(request.param, 1500, seed=3).items():
        (root / "input" / name).write_text(text)
    split.run(root / "input", root / "split", problem, mode, (0.7, 0.15, 0.15), 42)
    model = stand_ins.train_xgboost([root / "split/xgboost_train/train.csv"],
                                    {"objective": objective, "num_round": "20"})
    _score(model, root / "split/transform_input/test_features.csv", root / "predictions")
    return root, model, problem, prediction_format


def _score(model, source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, text in stand_ins.transform(model, {}, [(source, source.name)]).items():
        (target / f"{name}.out").write_text(text)


def _run_step(command: list, python: Path | None) -> None:
    if python is None:
        assert explain.main(command) == 0
        return
    done = _bootstrap(python, ["pipeline_code.explain", *command])
    assert done.returncode == 0, done.stderr[-3000:]


def _analysis(root: Path, model, problem, prediction_format: str, out: Path, python: Path | None) -> dict:
    args = problem.to_arguments()
    _run_step(["samples", "--test-dir", str(root / "split/test"), "--train-dir", str(root / "split/train"),
               "--output-dir", str(out / "samples"), "--design-dir", str(out / "design"), "--shap-samples", "40",
               "--max-rows", "8", "--seed", "5", *args], python)
    _score(model, out / "samples/samples.csv", out / "sample_predictions")
    _run_step(["report", "--test-dir", str(root / "split/test"), "--predictions-dir", str(root / "predictions"),
               "--design-dir", str(out / "design"), "--sample-predictions-dir", str(out / "sample_predictions"),
               "--output-dir", str(out / "analysis"), "--prediction-format", prediction_format, *args], python)
    return json.loads((out / "analysis/analysis.json").read_text())


def _metrics(section: dict) -> dict:
    return {(facet, entry["value_or_threshold"], metric["name"]): metric["value"]
            for facet, entries in section["facets"].items() for entry in entries for metric in entry["metrics"]}


def test_the_bias_and_shap_step_gives_the_same_report_under_the_images_versions(container_python, step_inputs,
                                                                                 tmp_path):
    """Here the step's numbers equal smclarify and shap called directly (tests/pipeline/test_explain.py); under
    Python 3.9 with pandas 1.1.3 and numpy 1.24.1 it must draw the same coalitions and give the same report."""
    root, model, problem, prediction_format = step_inputs
    there = _analysis(root, model, problem, prediction_format, tmp_path / "image", container_python)
    here = _analysis(root, model, problem, prediction_format, tmp_path / "here", None)
    assert (tmp_path / "image/samples/samples.csv").read_text() == (tmp_path / "here/samples/samples.csv").read_text()
    for section in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        ours, theirs = _metrics(here[section]), _metrics(there[section])
        assert ours.keys() == theirs.keys() and ours
        for key, value in ours.items():
            if isinstance(value, float):
                assert theirs[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
            else:
                assert theirs[key] == value, key
    ours = here["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    theirs = there["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    assert ours.keys() == theirs.keys()
    assert np.allclose([theirs[k] for k in ours], [ours[k] for k in ours], rtol=1e-7, atol=1e-10)


def test_the_step_module_runs_under_the_image_python_version(container_python):
    done = subprocess.run([str(container_python), "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(3, 9)"


# --- the drift baseline and the monitoring job under the image's Python ------------------------------------------


def _monitoring_report(root: Path, problem, prediction_format: str, out: Path, python: Path | None) -> dict:
    from pipeline_code import baseline, evaluate, monitor

    evaluate.run(root / "split/test", root / "predictions", out / "evaluation", prediction_format, 0.5, problem)
    metric = next(iter(QUALITY_METRICS[problem.problem_type]))
    commands = [
        (baseline, ["--train-dir", str(root / "split/train"), "--split-dir", str(root / "split/summary"),
                    "--evaluation-dir", str(out / "evaluation"), "--output-dir", str(out / "baseline"),
                    "--prediction-format", prediction_format, "--quality-metric", metric, "--seed", "42",
                    *problem.to_arguments()]),
        (monitor, ["--baseline-uri", str(out / "baseline/baseline.json"), "--capture-uri", str(root / "capture"),
                   "--ground-truth-uri", str(root / "ground-truth"), "--endpoint-name", "mlp-team-case",
                   "--model-package-arn", "arn:aws:sagemaker:eu-west-1:111122223333:model-package/g/2",
                   "--window-end", "2026-12-04T12:00:00Z", "--window-hours", "24", "--min-rows", "50",
                   "--output-dir", str(out / "report"), "--metric-namespace", "unused", "--no-metrics"]),
    ]
    for module, arguments in commands:
        if python is None:
            assert module.main(arguments) == 0
        else:
            done = _bootstrap(python, [module.__name__, *arguments])
            assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "report/report.json").read_text())


def test_the_monitoring_job_gives_the_same_report_under_the_images_versions(container_python, step_inputs, tmp_path):
    """Baseline and monitoring of an example's test rows (one feature shifted): the same report here and under
    Python 3.9 with the image's pandas, numpy and scipy."""
    from datetime import datetime, timedelta, timezone

    import pandas as pd

    from tools import capture_records

    root, _, problem, prediction_format = step_inputs
    features = json.loads((root / "split/summary/split_summary.json").read_text())["features"]
    rows = (root / "split/transform_input/test_features.csv").read_text().splitlines()
    responses = next((root / "predictions").iterdir()).read_text().splitlines()
    numeric = next(i for i, name in enumerate(features)
                   if pd.api.types.is_numeric_dtype(pd.read_csv(root / "split/train/train.csv")[name]))
    shifted = []
    for row in rows:
        fields = row.split(",")
        fields[numeric] = repr(float(fields[numeric]) * 2 + 10)
        shifted.append(",".join(fields))
    labels = pd.read_csv(root / "split/test/test.csv", dtype=str)[problem.target].tolist()
    end = datetime(2026, 12, 4, 12, tzinfo=timezone.utc)
    lines = capture_records.capture_lines(shifted, responses, end - timedelta(hours=20), timedelta(hours=19))
    capture_records.write_hours(root / "capture", lines)
    capture_records.write_hours(root / "ground-truth", capture_records.ground_truth_lines(labels, [t for t, _ in lines]))

    here = _monitoring_report(root, problem, prediction_format, tmp_path / "here", None)
    there = _monitoring_report(root, problem, prediction_format, tmp_path / "image", container_python)
    assert here["status"] == there["status"] == "ok" and here["rows"] == there["rows"] == len(rows)
    assert features[numeric] in [c["column"] for c in here["drift"]["columns"] if c["drifted"]]
    for ours, theirs in zip(here["drift"]["columns"], there["drift"]["columns"]):
        assert (ours["column"], ours["test"], ours["drifted"]) == (theirs["column"], theirs["test"], theirs["drifted"])
        assert theirs["score"] == pytest.approx(ours["score"], rel=1e-9, abs=1e-12), ours["column"]
    assert here["quality"]["metrics"].keys() == there["quality"]["metrics"].keys()
    for name, value in here["quality"]["metrics"].items():
        assert there["quality"]["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name
