"""No documented updatable setting replaces a Domain, UserProfile or Model Package Group; fixed ones are locked."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stacks.config import ConfigError, parse_config
from stacks.replacement_guard import (
    GUARDED_TYPES,
    check_against_lock,
    create_only_paths,
    missing_lock_warning,
    replacements,
    write_lock,
)
from tests.conftest import EXAMPLE_CONFIG, synthesize

BASE = yaml.safe_load(EXAMPLE_CONFIG.read_text())


def changed(mutate) -> dict:
    data = copy.deepcopy(BASE)
    mutate(data)
    return data


UPDATABLE = {
    "studio idle timeout": lambda d: d["studio"].update(idle_timeout_minutes=240, max_idle_timeout_minutes=600),
    "cost center": lambda d: d["teams"][0].update(cost_center="CC-9999"),
    "extra tags": lambda d: d["tags"].update(owner="ml-platform"),
    "alert e-mails": lambda d: d["teams"][0].update(alert_emails=["other@example.com"]),
    "endpoint settings": lambda d: d["teams"][0]["use_cases"][0]["endpoint"].update(
        instance_type="ml.c5.2xlarge", initial_instance_count=3
    ),
    "reaper settings": lambda d: d["reaper"].update(dry_run=False, idle_window_hours=48),
    "quotas": lambda d: d["quotas"][0].update(desired=8),
    "a new user": lambda d: d["teams"][0]["users"].append("zoe"),
    "a new use case": lambda d: (d["teams"][0]["use_cases"].append({"name": "chargeback"}),
                                 d["quotas"][2].update(desired=12)),
}


def guarded_ids(templates: dict) -> set[tuple[str, str]]:
    return {
        (stack, logical_id)
        for stack, template in templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in GUARDED_TYPES
    }


# Settings of one team change only that team's stack (tests/stacks/test_policy_gates.py proves a team's
# stack independent of the others): those are synthesized with the team alone, as `-c teams=fraud` does.
ONE_TEAM = {"cost center", "alert e-mails", "endpoint settings", "a new user", "a new use case"}


@pytest.fixture(scope="module")
def base(example):
    return example


def test_schemas_know_the_create_only_properties():
    assert ("ModelPackageGroupDescription",) in create_only_paths("AWS::SageMaker::ModelPackageGroup")
    assert ("UserProfileName",) in create_only_paths("AWS::SageMaker::UserProfile")
    assert ("KmsKeyId",) in create_only_paths("AWS::SageMaker::Domain")


@pytest.mark.parametrize("setting", list(UPDATABLE))
def test_updatable_setting_replaces_nothing(base, setting, tmp_path):
    teams = ["fraud"] if setting in ONE_TEAM else None
    after = synthesize(parse_config(changed(UPDATABLE[setting])), tmp_path / "after", policy_gates=False, teams=teams)
    before = {name: template for name, template in base.templates.items() if name in after.templates}
    assert len(before) == len(after.templates)
    assert replacements(before, after.templates) == []
    assert guarded_ids(before) <= guarded_ids(after.templates), "a guarded resource was renamed or removed"


def test_detector_sees_a_replacing_change(base, tmp_path):
    data = changed(lambda d: d["teams"][0]["use_cases"][0].update(description="something else"))
    after = synthesize(parse_config(data), tmp_path / "after", policy_gates=False)
    found = replacements(base.templates, after.templates)
    assert len(found) == 1 and "ModelPackageGroupDescription" in found[0]


def test_lock_rejects_changes_to_fixed_settings(tmp_path):
    config_path = tmp_path / "platform.yaml"
    write_lock(parse_config(BASE), config_path)
    data = changed(lambda d: d["teams"][0]["use_cases"][0].update(description="new words"))
    with pytest.raises(ConfigError) as caught:
        check_against_lock(parse_config(data), config_path)
    message = str(caught.value)
    assert "teams[fraud].use_cases[fraud-detection].description" in message
    assert "'Card transaction fraud classifier' -> 'new words'" in message
    assert "fixed after the first deploy" in message


def test_lock_rejects_a_new_prefix(tmp_path):
    config_path = tmp_path / "platform.yaml"
    write_lock(parse_config(BASE), config_path)
    with pytest.raises(ConfigError, match=r"prefix: 'mlp' -> 'mlq'"):
        check_against_lock(parse_config(changed(lambda d: d.update(prefix="mlq"))), config_path)


@pytest.mark.parametrize("setting", ["cost center", "a new use case", "endpoint settings"])
def test_lock_accepts_updatable_changes(tmp_path, setting):
    config_path = tmp_path / "platform.yaml"
    write_lock(parse_config(BASE), config_path)
    check_against_lock(parse_config(changed(UPDATABLE[setting])), config_path)


def test_lock_accepts_removing_a_use_case(tmp_path):
    config_path = tmp_path / "platform.yaml"
    write_lock(parse_config(BASE), config_path)
    check_against_lock(parse_config(changed(lambda d: d["teams"][0].update(use_cases=[]))), config_path)


def test_without_a_recorded_deploy_the_guard_says_it_is_off_and_how_to_turn_it_on(tmp_path):
    config_path = tmp_path / "platform.yaml"
    warning = missing_lock_warning(config_path)
    assert warning and "replacement guard off" in warning
    assert f"python -m tools.record_deployment {config_path}" in warning
    write_lock(parse_config(BASE), config_path)
    assert missing_lock_warning(config_path) is None


def test_the_cdk_app_warns_on_synth_when_no_deploy_is_recorded(tmp_path, capsys):
    """``npx cdk synth/deploy`` run app.py directly: the warning must come from there, not from make."""
    import importlib.util

    config_path = tmp_path / "platform.yaml"
    config_path.write_text(yaml.safe_dump({"prefix": "mlp", "teams": [{"name": "solo", "cost_center": "CC-1"}]}))
    spec = importlib.util.spec_from_file_location("cdk_app", Path(__file__).resolve().parents[2] / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    import aws_cdk as cdk

    assert app.main(cdk.App(outdir=str(tmp_path / "a")), str(config_path)) == 0
    assert f"replacement guard off for {config_path}" in capsys.readouterr().err
    write_lock(parse_config(yaml.safe_load(config_path.read_text())), config_path)
    assert app.main(cdk.App(outdir=str(tmp_path / "b")), str(config_path)) == 0
    assert "replacement guard off" not in capsys.readouterr().err
