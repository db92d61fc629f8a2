"""The MLflow run of a local pipeline run, seen in a real headless browser through the MLflow UI.

A local run of the fraud example logs to its sqlite store; ``mlflow server`` serves that store on a free loopback
port, and Debian's Chromium, driven by Playwright, opens the run's page and its artifacts. A screenshot of each
page goes to ``out/mlflow-ui/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tools import local_run

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "mlflow-ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def recorded(example, example_config, tmp_path_factory):
    """(result, tracking URI, run) of a local run of the fraud example."""
    from mlflow.tracking import MlflowClient

    team, use_case = local_run.find_use_case(example_config, "fraud-detection")
    text, bucket, images = local_run.deployed_definition(example.templates, example_config, team, use_case,
                                                         example_config.region or "eu-west-1")
    out = tmp_path_factory.mktemp("ui-run")
    result = local_run.execute(text, bucket, images, out, tables=local_run.example_tables("fraud-detection", 3000, 0))
    assert result.status == "Succeeded", result.summary()
    uri = f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(f"{example_config.prefix}-{team.name}-{use_case.name}")
    (run,) = client.search_runs([experiment.experiment_id])
    return result, uri, run


@pytest.fixture(scope="module")
def server(recorded):
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    _, uri, _ = recorded
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
                                "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.5)
    yield base
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def test_the_run_page_shows_the_run_its_parameters_and_metrics(server, page, recorded):
    result, _, run = recorded
    page.goto(f"{server}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")
    page.get_by_text(result.execution_id).first.wait_for(timeout=60_000)
    for metric in ("binary_classification_metrics.auc", "rows.test", "shap.label0.amount"):
        page.get_by_text(metric).first.wait_for(timeout=30_000)
    auc = run.data.metrics["binary_classification_metrics.auc"]
    assert f"{auc:.4f}"[:5] in page.content()
    page.get_by_text("split.mode").first.wait_for(timeout=30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "run.png"), full_page=True)
    assert (SCREENSHOTS / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_artifacts_page_lists_the_reports_and_renders_a_plot(server, page, recorded):
    _, _, run = recorded
    page.goto(f"{server}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/artifacts")
    for name in ("evaluation.json", "analysis.json", "plots"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
    page.get_by_text("plots", exact=True).first.click()
    page.get_by_text("roc_curve.png", exact=True).first.click()
    image = page.locator("img[src^='blob:']").first  # the UI shows an artifact image from a blob it fetched
    image.wait_for(timeout=60_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "plot.png"), full_page=True)
    assert (SCREENSHOTS / "plot.png").stat().st_size > 10_000
