"""Every config that synthesizes runs: a use case without an optional section runs its pipeline end to end.

Each optional field of a use case (``UseCase`` and the sections inside it in ``stacks/config.py``) and the
platform's ``explainability`` is left out of an example use case of ``config/platform.yaml`` in turn. A
variant that no longer validates is out of scope (the config refuses it at synth time); a variant whose
pipeline definition equals one that ``test_local_pipeline`` already executes adds nothing and is not run
again; every other variant is synthesized and executed locally (``tools.local_run``) and must register a
model version, or stop at the quality gate when the variant leaves out the gate and the example's data does
not reach the problem type's default (``GATE_STOPS``). A variant that turns a text column (a key, a date, a
context column) into a model feature runs as Autopilot runs it: the column is a categorical feature; on the
built-in XGBoost path the split refuses it before any training job (``SPLIT_STOPS``).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pipeline_code import definition as definition_module
from tools import local_run

ROOT = Path(__file__).resolve().parents[2]
ROWS = 5000
REGION = "eu-west-1"
NO_FACETS = "bias skipped: no facets configured"

GROUPS = {
    "open without facets": {
        "churn without facets": ("churn-propensity", ("problem", "facets"), "open"),
        "price without facets": ("price-elasticity", ("problem", "facets"), "open"),
    },
    "churn": {
        **{f"churn without {'.'.join(path)}": ("churn-propensity", ("problem", *path), "open")
           for path in (("context",), ("quality_gate",), ("split",), ("split", "mode"), ("time_column",))},
        "churn without context, on XGBoost": ("churn-propensity", ("problem", "context"), "open"),
    },
    "price": {f"price without {'.'.join(path)}": ("price-elasticity", ("problem", *path), "open")
              for path in (("features",), ("key_column",), ("quality_gate",), ("split",), ("split", "mode"))},
    "fraud open": {f"fraud open without {field}": ("fraud-detection", ("problem", field), "open")
                   for field in ("features", "input_layout", "key_column", "time_column")},
    "fraud clarify": {
        "fraud clarify without facets": ("fraud-detection", ("problem", "facets"), "clarify"),
        "fraud clarify without features": ("fraud-detection", ("problem", "features"), "clarify"),
    },
}
"""Group -> variants run together (one synth, runs in parallel): name -> (example use case, field path left
out, platform explainability). Every variant of a group has the group's explainability."""

VARIANTS = {name: variant for group in GROUPS.values() for name, variant in group.items()}
"""The variants executed end to end (one local pipeline run each)."""

GATE_STOPS = {
    "churn without quality_gate": ("AutoMLQualityTooLow", "is not at least QualityThreshold 0.8"),
}
"""Variant -> (Fail step, message part) of a variant whose example data does not reach the default gate."""

SPLIT_STOPS = {
    "churn without context, on XGBoost": (
        {"TrainingPath": "XGBoost"}, "feature column(s) ['region'] hold text: the built-in XGBoost path reads numbers"),
}
"""Variant -> (execution parameters, message) of a variant the split refuses before any training job: a text
column left as a feature on the built-in XGBoost path, which reads numbers only."""

TABLE_LAYOUT = {"fraud open without input_layout"}
"""Variants read with the ``table`` layout: their data is the fraud example's two tables joined into one."""

NOT_RUN = {
    ("fraud-detection", ("problem", "facets"), "open"):
        "the open path without facets: churn and price without facets run it",
    **{("fraud-detection", ("problem", field), "clarify"):
       f"the same change as 'fraud open without {field}' (run): the clarify path adds only its Clarify steps, "
       "which 'fraud clarify without facets' and 'fraud clarify without features' (text features) run"
       for field in ("input_layout", "key_column", "time_column")},
}
"""Variants with a definition no local run executes, each with the reason it is not run here."""


def example_data() -> dict:
    return yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())


def example_use_case(data: dict, name: str) -> dict:
    return next(u for t in data["teams"] for u in t.get("use_cases", []) if u["name"] == name)


def without(use_case: dict, path: tuple) -> dict:
    """A copy of the raw use case with the field at ``path`` left out (the fraud problem written out first
    when the path is inside ``problem`` and the use case has none)."""
    from stacks.config import UseCase

    changed = copy.deepcopy(use_case)
    if path[0] == "problem" and "problem" not in changed:
        changed["problem"] = UseCase(name=use_case["name"]).problem.model_dump(mode="json", exclude_defaults=True)
    section = changed
    for key in path[:-1]:
        section = section[key]
    section.pop(path[-1], None)
    return changed


def variant_tables(name: str) -> dict:
    """File name -> CSV text of the variant's data: its example's tables, joined into one for ``TABLE_LAYOUT``."""
    import pandas as pd

    from pipeline_code.features import build_model_table

    tables = local_run.example_tables(VARIANTS[name][0], ROWS, 0)
    if name not in TABLE_LAYOUT:
        return tables
    frames = {file: pd.read_csv(io.StringIO(text)) for file, text in tables.items()}
    joined = build_model_table(frames["transactions.csv"], frames["customers.csv"])
    return {"transactions.csv": joined.to_csv(index=False)}


def variant_config(names: list, explainability: str):
    """One platform with a team per variant of ``names``, each holding the one use case of that variant."""
    from stacks.config import parse_config

    data = example_data()
    teams = []
    for index, name in enumerate(names):
        base, path, _ = VARIANTS[name]
        use_case = without(example_use_case(data, base), path)
        use_case.pop("endpoint", None)
        teams.append({"name": f"variant{index}", "cost_center": "CC-1", "use_cases": [use_case]})
    return parse_config({"prefix": "opt", "explainability": explainability, "teams": teams}, "variants")


def optional_paths(model, prefix: tuple = ()) -> list:
    """Paths of every field of ``model`` (a config section) and its sub-sections that has a default."""
    from stacks.config import Strict

    found = []
    for name, field in model.model_fields.items():
        path = prefix + (name,)
        if not field.is_required():
            found.append(path)
        members = [field.annotation, *typing.get_args(field.annotation)]
        for member in members:
            if isinstance(member, type) and issubclass(member, Strict):
                found += optional_paths(member, path)
    return found


def comparable_definition(use_case, explainability: str) -> str:
    """The use case's definition with what only names it (title, default data prefix) written the same way."""
    spec = use_case.pipeline_spec(explainability)
    spec = dataclasses.replace(spec, title="title", data_prefix=spec.data_prefix.replace(use_case.name, "<name>"))
    return json.dumps(definition_module.build_definition(spec), sort_keys=True)


def executed_definitions() -> set:
    """The definitions ``test_local_pipeline`` executes: the examples (open) and the fraud problem (clarify)."""
    from stacks.config import UseCase, load_config

    config = load_config(ROOT / "config" / "platform.yaml")
    found = {comparable_definition(u, "open") for t in config.teams for u in t.use_cases}
    return found | {comparable_definition(UseCase(name="case-0"), "clarify")}


BASES = [("fraud-detection", "open"), ("churn-propensity", "open"), ("price-elasticity", "open"),
         ("fraud-detection", "clarify")]
"""(example use case, explainability) of the definitions ``test_local_pipeline`` executes."""


def classified_variants() -> dict:
    """(example use case, path, explainability) -> 'invalid' | 'executed already' | 'new', for each base of
    ``BASES`` and each optional field present in it, left out (the platform's ``explainability`` is the
    base's own: leaving it out gives ``open``, which the examples are)."""
    from stacks.config import ConfigError, UseCase, parse_config

    executed = executed_definitions()
    found = {}
    for base, explainability in BASES:
        for path in optional_paths(UseCase):
            data = example_data()
            raw = example_use_case(data, base)
            section = raw
            for key in path[:-1]:
                section = section.get(key) if isinstance(section, dict) else None
            if not (isinstance(section, dict) and path[-1] in section) and path[0] != "problem":
                continue
            changed = without(raw, path)
            if changed == raw or (path[0] == "problem" and "problem" not in raw and path[-1] not in
                                  without(raw, ("problem", "__none__"))["problem"]):
                continue
            raw.clear()
            raw.update(changed)
            try:
                config = parse_config({**data, "explainability": explainability}, "variant")
            except ConfigError:
                found[base, path, explainability] = "invalid"
                continue
            _, use_case = local_run.find_use_case(config, base)
            known = comparable_definition(use_case, explainability) in executed
            found[base, path, explainability] = "executed already" if known else "new"
    return found


def test_every_variant_with_a_new_definition_is_executed():
    """A use case without an optional field whose definition no local run executes is one of ``VARIANTS``."""
    planned = {(base, path, option) for base, path, option in VARIANTS.values()}
    verdicts = classified_variants()
    missing = sorted(key for key, verdict in verdicts.items()
                     if verdict == "new" and key not in planned and key not in NOT_RUN)
    assert missing == [], f"variants with a definition no local run executes: {missing}"
    assert all(verdicts.get(key) == "new" for key in planned | set(NOT_RUN)), {
        key: verdicts.get(key) for key in planned | set(NOT_RUN) if verdicts.get(key) != "new"}


def test_the_endpoint_sections_leave_the_pipeline_definition_as_it_is():
    """Monitoring, autoscaling, data capture and the other endpoint fields never change the pipeline."""
    endpoint = {key: verdict for key, verdict in classified_variants().items() if key[1][0] == "endpoint"}
    assert endpoint and set(endpoint.values()) <= {"executed already", "invalid"}, endpoint


def group_runs(group: str, tmp_path_factory) -> dict:
    """Variant name -> (result, output folder, use case) of every variant of ``group``: one synth, the runs in
    parallel."""
    names = list(GROUPS[group])
    explainability = VARIANTS[names[0]][2]
    config = variant_config(names, explainability)
    templates = local_run.synthesized_templates(config)
    jobs = []
    for index, name in enumerate(names):
        team = config.teams[index]
        use_case = team.use_cases[0]
        text, bucket, images = local_run.deployed_definition(templates, config, team, use_case, REGION)
        # the folders are made here: tmp_path_factory makes its base folder on first use, which is not thread-safe
        out = tmp_path_factory.mktemp(name.replace(" ", "-").replace(".", "-"))
        jobs.append((name, text, bucket, images, use_case, out))

    def one(job):
        name, text, bucket, images, use_case, out = job
        parameters = SPLIT_STOPS[name][0] if name in SPLIT_STOPS else None
        return name, (local_run.execute(text, bucket, images, out, tables=variant_tables(name), parameters=parameters),
                      out, use_case)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return dict(pool.map(one, jobs))


def check_registered(result) -> None:
    assert result.status == "Succeeded", result.summary()
    assert len(result.registered) == 1, result.summary()
    assert "Drift baseline" in result.reports


def check_stopped_at_gate(result, step: str, message: str) -> None:
    """Every step before the gate succeeded; the gate's Fail step stopped the run with ``message``."""
    assert result.status == "Failed", result.summary()
    assert len(result.registered) == 0, result.summary()
    assert message in result.summary() and step in result.summary(), result.summary()
    assert "evaluation" in result.reports


def check_stopped_at_split(result, message: str) -> None:
    """The split failed with ``message``: no training, tuning or AutoML step ran."""
    assert result.status == "Failed" and result.failed_step == "SplitData", result.summary()
    assert message in result.summary(), result.summary()
    assert len(result.registered) == 0, result.summary()


def check_facets_skipped(result, out: Path, use_case, explainability: str) -> None:
    """Without facets bias is skipped with its reason (report and MLflow run) and SHAP still runs."""
    from mlflow.tracking import MlflowClient

    bias = json.loads(result.reports["Bias report"].read_text())
    assert "pre_training_bias_metrics" not in bias and "post_training_bias_metrics" not in bias
    shap = json.loads(result.reports["Explainability report"].read_text())["explanations"]["kernel_shap"]
    assert next(iter(shap.values()))["global_shap_values"]
    client = MlflowClient(f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name.endswith(use_case.name)]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["mlops.bias_skipped"].startswith(NO_FACETS)
    assert any(key.startswith("shap.") for key in run.data.metrics)
    assert not any(key.startswith("bias.") for key in run.data.metrics)
    if explainability == "open":
        assert bias["bias_skipped"].startswith(NO_FACETS)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_use_case_without_the_section_runs_to_registration(tmp_path_factory, group):
    """Each variant of the group registers a version (or stops at the default gate, ``GATE_STOPS``); one
    without facets skips bias with its reason."""
    runs = group_runs(group, tmp_path_factory)
    failures = {}
    for name, (result, out, use_case) in runs.items():
        try:
            if name in GATE_STOPS:
                check_stopped_at_gate(result, *GATE_STOPS[name])
            elif name in SPLIT_STOPS:
                check_stopped_at_split(result, SPLIT_STOPS[name][1])
            else:
                check_registered(result)
            if VARIANTS[name][1] == ("problem", "facets"):
                check_facets_skipped(result, out, use_case, VARIANTS[name][2])
        except AssertionError as error:
            failures[name] = str(error)
    assert failures == {}, "\n\n".join(f"{name}: {text}" for name, text in failures.items())


def test_a_text_column_left_as_a_feature_is_a_categorical_feature_of_the_automl_stand_in(tmp_path):
    """Autopilot encodes non-numeric columns itself: the stand-in trains on them and answers text records."""
    import pandas as pd

    from tools.pipeline_runtime import stand_ins

    frame = pd.DataFrame({"x": [0.1 * i for i in range(60)], "region": ["north", "south", "east"] * 20})
    frame["y"] = ((frame.x > 3) | (frame.region == "south")).astype(int)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = stand_ins.train_automl([tmp_path / "train.csv"], [tmp_path / "train.csv"], "y", "BinaryClassification")
    (tmp_path / "records.csv").write_text("0.5,south\n0.5,west\n")
    answers = stand_ins.transform(model, {}, [(tmp_path / "records.csv", "records.csv")])["records.csv"]
    assert len(answers.splitlines()) == 2
    with pytest.raises(stand_ins.StandInError, match="non-numeric"):
        model.answer([["x", "south"]], {})


def test_without_facets_the_clarify_config_asks_for_shap_only():
    from pipeline_code import clarify_config
    from pipeline_code.problem import FRAUD

    headers = [FRAUD.target, *FRAUD.features, *FRAUD.context]
    config = clarify_config.analysis_config(headers, FRAUD.replace(facets=()), (), "model", "ml.m5.large",
                                            "value", [1])
    assert "facet" not in config
    assert set(config["methods"]) == {"shap", "report"}
    with_facets = clarify_config.analysis_config(headers, FRAUD, FRAUD.facets, "model", "ml.m5.large", "value", [1])
    assert {"pre_training_bias", "post_training_bias", "shap"} <= set(with_facets["methods"])


def test_the_recorded_run_says_why_it_has_no_bias_metrics():
    from pipeline_code import record_run

    assert record_run.bias_skipped({"pre_training_bias_metrics": {"facets": {}}}, "") is None
    assert record_run.bias_skipped({"bias_skipped": "bias skipped: because"}, "a=b") == "bias skipped: because"
    assert record_run.bias_skipped({"explanations": {}}, "") == NO_FACETS
    assert record_run.bias_skipped({"explanations": {}}, None).startswith("bias skipped:")


def test_the_record_step_receives_the_executions_facets():
    arguments = next(s for s in definition_module.build_definition()["Steps"][1]["Arguments"]["IfSteps"]
                     if s["Name"] == "AutoMLRecordExperiment")["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--bias-facets") + 1] == {"Get": "Parameters.BiasFacets"}
