"""`-c teams=NAME` builds only the stacks a team's command needs, each exactly as the full synth makes it."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

import app as cdk_app
from stacks.app_builder import selected_teams
from stacks.config import ConfigError
from tests.conftest import EXAMPLE_CONFIG, cdk_context


@pytest.fixture(scope="module")
def selected(tmp_path_factory) -> dict[str, dict]:
    outdir = tmp_path_factory.mktemp("teams-churn")
    app = cdk.App(outdir=str(outdir), context={**cdk_context(), "teams": "churn"})
    assert cdk_app.main(app, str(EXAMPLE_CONFIG)) == 0
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        name: json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def test_only_the_selected_team_and_the_shared_stacks_are_built(selected):
    assert sorted(selected) == ["mlp-network", "mlp-platform", "mlp-team-churn"]


def test_every_built_template_equals_the_full_synth(selected, example):
    for name, template in selected.items():
        assert template == example.template(name), name


@pytest.mark.parametrize(
    ("selection", "expected"),
    [("churn", ["churn"]), ("pricing, fraud", ["pricing", "fraud"]), ("fraud,fraud", ["fraud"]), (None, None)],
)
def test_a_selection_names_teams_of_the_config(example_config, selection, expected):
    assert selected_teams(example_config, selection) == expected


@pytest.mark.parametrize(("selection", "named"), [("nobody", "'nobody'"), ("fraud,Churn", "'Churn'"), (",", "','")])
def test_an_unknown_team_is_refused_naming_it_and_the_teams_there_are(example_config, selection, named):
    with pytest.raises(ConfigError) as error:
        selected_teams(example_config, selection)
    assert str(error.value) == (
        f"-c teams: {named} is not allowed: a comma-separated list of team names of the config (fraud, churn, pricing)"
    )


def test_the_app_stops_on_an_unknown_team_before_building_anything(tmp_path, capsys):
    app = cdk.App(outdir=str(tmp_path), context={**cdk_context(), "teams": "nobody"})
    assert cdk_app.main(app, str(EXAMPLE_CONFIG)) == 2
    assert "-c teams: 'nobody' is not allowed" in capsys.readouterr().err
    assert app.node.children == []
