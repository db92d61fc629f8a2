"""The local tools' first mistakes end in one line that says what to do, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools import local_monitor, local_run

ROOT = Path(__file__).resolve().parents[1]
SPLIT = "steps/SplitData/opt/ml/processing/output"


def test_monitoring_before_any_local_run_says_to_run_the_pipeline_first(tmp_path, capsys):
    code = local_monitor.main(["--use-case", "fraud-detection", "--run-dir", str(tmp_path / "run"),
                               "--out", str(tmp_path / "monitor")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "make local-run USE_CASE=fraud-detection" in err and "split_summary.json" in err


def test_a_run_that_stopped_before_its_transform_is_named_as_unfinished(tmp_path, capsys):
    run = tmp_path / "run"
    for name in local_monitor.RUN_OUTPUTS:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(json.dumps({}))
    code = local_monitor.main(["--use-case", "fraud-detection", "--run-dir", str(run), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "BatchTransform" in err and "no finished local run" in err


def test_a_use_case_without_example_data_says_how_to_pass_its_folder():
    with pytest.raises(local_run.LocalRunError) as error:
        local_run.example_tables("loss-forecast", 100, 1)
    message = str(error.value)
    assert "'loss-forecast'" in message
    assert "make local-run USE_CASE=loss-forecast DATA_DIR=<folder>" in message and "--data-dir" in message


@pytest.mark.parametrize(("extra", "expected"), [(["DATA_DIR=/data/mine"], "--data-dir /data/mine"), ([], None)])
def test_make_local_run_passes_the_data_folder(extra, expected):
    printed = subprocess.run(["make", "-n", "local-run", "USE_CASE=loss-forecast", *extra], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    (line,) = [line for line in printed.splitlines() if "tools.local_run" in line]
    assert "--use-case loss-forecast" in line
    assert (expected in line) if expected else ("--data-dir" not in line)
