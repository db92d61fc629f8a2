"""Scripts that run in the SageMaker scikit-learn container keep to its Python and library versions."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

from pipeline_code import images

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline_code"
STDLIB = set(sys.stdlib_module_names)

NEWER_THAN_CONTAINER = {
    "zip": ("strict", "Python 3.10"),
    "dataclass": ("slots", "Python 3.10"),
    "to_csv": ("storage_options", "pandas 1.2"),
    "read_csv": ("dtype_backend", "pandas 2.0"),
    "OneHotEncoder": ("sparse_output", "scikit-learn 1.2"),
}
"""Call -> (keyword, version that introduced it) for keywords newer than the container's versions."""
NEWER_ATTRIBUTES = {"root_mean_squared_error": "scikit-learn 1.4", "case_when": "pandas 2.2", "applymap": "renamed map in pandas 2.1"}
"""Attributes whose presence (or renaming) postdates the container's libraries."""


def module_paths():
    return [PACKAGE / f"{name}.py" for name in images.CONTAINER_MODULES]


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: p.name)
def test_parses_at_the_oldest_container_python(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=images.oldest_script_python())


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: p.name)
def test_annotations_stay_unevaluated(path):
    tree = ast.parse(path.read_text())
    futures = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert any(alias.name == "annotations" for f in futures for alias in f.names), (
        "X | None annotations need 'from __future__ import annotations' on Python 3.9"
    )


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: p.name)
def test_imports_only_what_the_container_has(path):
    tree = ast.parse(path.read_text())
    allowed = STDLIB | set(images.CONTAINER_LIBRARIES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root == "pipeline_code":
                assert name.split(".")[-1] in images.CONTAINER_MODULES or name == "pipeline_code", (
                    f"{path.name} imports {name}, which is not a container module"
                )
            else:
                assert root in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: p.name)
def test_uses_no_api_newer_than_the_container(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in NEWER_THAN_CONTAINER:
                keyword, since = NEWER_THAN_CONTAINER[called]
                assert keyword not in {k.arg for k in node.keywords}, f"{path.name}: {called}({keyword}=) needs {since}"
        if isinstance(node, ast.Attribute) and node.attr in NEWER_ATTRIBUTES:
            pytest.fail(f"{path.name}: {node.attr} needs {NEWER_ATTRIBUTES[node.attr]}")
        if isinstance(node, ast.Match):
            pytest.fail(f"{path.name}: match statements need Python 3.10")


@pytest.mark.parametrize(
    "module", ["generate", "churn_data", "price_data", "split", "evaluate", "bias", "clarify_config", "cli"]
)
def test_every_script_has_help(module, capsys):
    loaded = importlib.import_module(f"pipeline_code.{module}")
    if hasattr(loaded, "build_parser"):
        parse = loaded.build_parser().parse_args
    else:
        parse = getattr(loaded, "parse_args", loaded.main)
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    assert f"usage: python -m pipeline_code.{module}" in capsys.readouterr().out
