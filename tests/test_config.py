"""Config validation: every bad input stops with one message naming the field, the value and what is allowed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.config import ConfigError, load_config, parse_config
from tests.config_edits import DELETE, set_path
from tools.export_schema import SCHEMA_FILE, render_schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())


def with_change(path: str, value) -> dict:
    """The example config with the value at dotted `path` (list indexes as numbers) replaced or deleted."""
    data = copy.deepcopy(EXAMPLE)
    set_path(data, path, value)
    return data



# (change path, new value, text the message must contain: field path, bad value, what is allowed)
BAD_INPUTS = [
    ("unknown_key", "x", ["unknown_key", "unknown key"]),
    ("teams.0.favourite_colour", "blue", ["teams[0].favourite_colour", "unknown key"]),
    ("prefix", DELETE, ["prefix", "required field is missing"]),
    ("teams.0.cost_center", DELETE, ["teams[0].cost_center", "required"]),
    ("teams.1.name", "fraud", ["teams", "duplicate team name 'fraud'"]),
    ("teams.0.users", ["alice", "alice"], ["teams[0].users", "duplicate user name 'alice'"]),
    (
        "teams.0.use_cases",
        [{"name": "fraud-detection"}, {"name": "fraud-detection"}],
        ["teams[0].use_cases", "duplicate use case name 'fraud-detection'"],
    ),
    ("prefix", "My_Platform", ["prefix", "'My_Platform'", "lowercase letters or digits"]),
    ("teams.0.name", "fraud-team", ["teams[0].name", "'fraud-team'", "no hyphens"]),
    ("teams.0.users.0", "Alice!", ["teams[0].users[0]", "'Alice!'", "lowercase letters or digits, with single hyphens"]),
    ("teams.0.use_cases.0.name", "fraud--detection", ["teams[0].use_cases[0].name", "'fraud--detection'"]),
    (
        "teams.0.use_cases.0.name",
        "a-very-long-use-case-name-that-goes-on-and-on",
        ["teams[0].use_cases[0].name", "at most 47", "characters long"],
    ),
    ("account", "12345", ["account", "'12345'", "exactly 12 digits"]),
    ("account", "1234567890123", ["account", "'1234567890123'", "exactly 12 digits"]),
    ("region", "us-east-9", ["region", "'us-east-9'", "one of us-east-1"]),
    ("network.cidr", "10.0.0.0/33", ["network.cidr", "'10.0.0.0/33'", "IPv4 CIDR block"]),
    ("network.cidr", "10.0.0.1/16", ["network.cidr", "'10.0.0.1/16'", "IPv4 CIDR block"]),
    ("network.cidr", "10.0.0.0/8", ["network.cidr", "'10.0.0.0/8'", "/16 to /24"]),
    (
        "teams.0.use_cases.0.endpoint.instance_type",
        "m5.large",
        ["teams[0].use_cases[0].endpoint.instance_type", "'m5.large'", "must start with 'ml.'"],
    ),
    ("studio.idle_timeout_minutes", 59, ["studio.idle_timeout_minutes", "59", "greater than or equal to 60"]),
    ("studio.idle_timeout_minutes", 525601, ["studio.idle_timeout_minutes", "525601", "less than or equal to 525600"]),
    ("teams", [], ["teams", "at least 1 item"]),
    ("quotas.0.desired", 0, ["quotas[0].desired", "0", "greater than 0"]),
    ("quotas.0.usage", "inference", ["quotas[0].usage", "'inference'", "'processing'"]),
    ("quotas.0.instance_type", "c5.large", ["quotas[0].instance_type", "'c5.large'", "must start with 'ml.'"]),
    ("teams.0.alert_emails.0", "not-an-email", ["teams[0].alert_emails[0]", "'not-an-email'", "e-mail address"]),
    (
        "teams.0.use_cases.0.endpoint.deployment.canary_percent",
        60,
        ["teams[0].use_cases[0].endpoint.deployment.canary_percent", "60", "less than or equal to 50"],
    ),
    (
        "teams.0.use_cases",
        [{"name": f"case{i}"} for i in range(5)],
        ["teams[0].use_cases", "at most 4 items"],
    ),
    (
        "teams.0.use_cases.0.endpoint.initial_instance_count",
        1,
        ["teams[0].use_cases[0].endpoint", "'canary' with initial_instance_count 1", "at least 2"],
    ),
    ("reaper.schedule", "every hour", ["reaper.schedule", "'every hour'", "rate(1 hour)"]),
    *[
        ("reaper.schedule", bad, ["reaper.schedule", repr(bad), "singular unit for 1", "six-field"])
        for bad in (
            "rate(1 hours)", "rate(5 hour)", "rate(0 minutes)", "cron(0 * * *)", "cron(0 * * * *)",
            "cron(0 * * * * *)", "cron(0 * ? * ? *)", "cron(60 * * * ? *)", "cron(0 * 32 * ? *)", "rate(1 Hour)",
        )
    ],
    ("tags", {"aws:owner": "x"}, ["tags", "'aws:owner'", "reserved"]),
    ("network", {"mode": "existing", "vpc_id": "vpc-123"}, ["network.vpc_id", "'vpc-123'", "VPC id"]),
    ("network", {"mode": "existing", "vpc_id": "vpc-0123456789abcdef0"}, ["network.subnet_ids", "required"]),
    ("network", {"mode": "somewhere"}, ["network", "'somewhere'", "'new'", "'existing'"]),
    ("teams.0.name", "platform", ["teams[0].name", "'platform'", "reserved for the platform"]),
    ("account", 123456789012, ["account", "123456789012", "put it in quotes", "leading zeros"]),
    ("teams.0.cost_center", 1001, ["teams[0].cost_center", "1001", "put it in quotes"]),
    ("reaper.dry_run", "false", ["reaper.dry_run", "'false'", "true or false, written without quotes"]),
    ("teams.2.reaper.exempt", "yes", ["teams[2].reaper.exempt", "'yes'", "true or false"]),
    ("quotas.0.desired", "4", ["quotas[0].desired", "'4'", "a whole number, written without quotes"]),
    (
        "teams.0.use_cases.0.endpoint.initial_instance_count",
        "2",
        ["teams[0].use_cases[0].endpoint.initial_instance_count", "'2'", "a whole number"],
    ),
    ("studio.idle_timeout_minutes", 90.5, ["studio.idle_timeout_minutes", "90.5"]),
    (
        "break_glass_role_arns",
        ["arn:aws:iam::123456789012:user/admin"],
        ["break_glass_role_arns[0]", "'arn:aws:iam::123456789012:user/admin'", "IAM role ARN"],
    ),
    (
        "break_glass_role_arns",
        ["arn:aws:sts::123456789012:assumed-role/Admin/me"],
        ["break_glass_role_arns[0]", "assumed-role", "not a user or an assumed-role session"],
    ),
    (
        "break_glass_role_arns",
        ["arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:role/Admin"],
        ["break_glass_role_arns", "duplicate break-glass role ARN"],
    ),
    # use-case problems (teams[1]: churn, binary with a key split; teams[2]: pricing, regression ordered by time)
    ("teams.2.use_cases.0.problem.objective", "AUC",
     ["teams[2].use_cases[0].problem.objective: 'AUC' is not allowed for problem_type 'regression'", "RMSE"]),
    ("teams.1.use_cases.0.problem.objective", "F1macro",
     ["teams[1].use_cases[0].problem.objective", "'F1macro'", "use one of AUC, Accuracy"]),
    ("teams.1.use_cases.0.problem.positive_label", "yes, really",
     ["teams[1].use_cases[0].problem.positive_label", "'yes, really'", "(no commas)"]),
    ("teams.2.use_cases.0.problem.time_column", DELETE,
     ["teams[2].use_cases[0].problem.split.mode: 'ordered' is not allowed here: it needs time_column",
      "allows random, by_key"]),
    ("teams.1.use_cases.0.problem.key_column", DELETE,
     ["problem.split.mode: 'by_key'", "needs key_column"]),
    ("teams.2.use_cases.0.problem.split", {"mode": "stratified"},
     ["problem.split.mode: 'stratified'", "a classification problem_type"]),
    ("teams.2.use_cases.0.problem.facets", [{"name": "region", "values": ["north"]}],
     ["problem.facets[0].name: 'region' is not among the columns", "store_region"]),
    ("teams.2.use_cases.0.problem.facets", [{"name": "units_sold", "values": ["1"]}],
     ["problem.facets[0].name: 'units_sold'", "it is the target"]),
    ("teams.2.use_cases.0.problem.quality_gate", {"metric": "auc", "threshold": 0.8},
     ["problem.quality_gate.metric: 'auc' is not allowed for problem_type 'regression'", "r2, rmse"]),
    ("teams.2.use_cases.0.problem.quality_gate", {"metric": "r2", "threshold": 1.5},
     ["problem.quality_gate.threshold: 1.5", "must be <= 1"]),
    ("teams.1.use_cases.0.problem.problem_type", "ranking",
     ["teams[1].use_cases[0].problem.problem_type", "'ranking'", "'binary', 'multiclass' or 'regression'"]),
    ("teams.1.use_cases.0.problem.problem_type", "multiclass",
     ["problem.classes: [] is not allowed for problem_type 'multiclass'", "at least 3 class labels"]),
    ("teams.1.use_cases.0.problem.target", "churned flag",
     ["teams[1].use_cases[0].problem.target", "'churned flag'", "no commas or spaces"]),
    ("teams.1.use_cases.0.problem.context", ["region", "customer_id"],
     ["problem.context[1]: 'customer_id' is not allowed: it is already the key_column"]),
    ("teams.2.use_cases.0.problem.exclude", ["promo"],
     ["exclude is only allowed when features is empty"]),
    ("teams.1.use_cases.0.problem.data_prefix", "pipeline/data/churn",
     ["teams[1].use_cases[0].problem.data_prefix", "'pipeline/data/churn'", "each ending in '/'"]),
    ("teams.1.use_cases.0.problem.split", {"mode": "by_key", "train_fraction": 0.8},
     ["train_fraction + validation_fraction + test_fraction is 1.1", "must sum to 1"]),
    ("teams.1.use_cases.0.problem.target", DELETE, ["teams[1].use_cases[0].problem.target", "required"]),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD_INPUTS, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD_INPUTS])
def test_bad_input_names_field_value_and_what_is_allowed(path, value, expected):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_change(path, value), "platform.yaml")
    message = str(caught.value)
    assert message.startswith("platform.yaml: invalid platform config")
    for text in expected:
        assert text in message, f"{text!r} missing from:\n{message}"


@pytest.mark.parametrize(
    "schedule",
    ["rate(1 minute)", "rate(15 minutes)", "rate(1 day)", "cron(0 * * * ? *)", "cron(0/15 8-17 ? * MON-FRI *)",
     "cron(0 12 L * ? *)", "cron(0 10 ? * 6#3 *)", "cron(15 10 ? * 6L 2026-2030)", "cron(0 0 1,15 * ? *)"],
)
def test_valid_eventbridge_schedules_load(schedule):
    assert parse_config(with_change("reaper.schedule", schedule)).reaper.schedule == schedule


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("teams.1.name", "fraud", "duplicate team name 'fraud'"),
        ("teams.0.use_cases.0.name", "x" * 38, "makes the registry group name"),
    ],
)
def test_cross_field_messages_show_the_problem_not_the_whole_config(path, value, named):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_change(path, value), "platform.yaml")
    (problem,) = str(caught.value).splitlines()[1:]
    assert named in problem
    assert "(top level)" not in problem and "cost_center" not in problem, problem
    assert len(problem) < 300, problem


def test_example_config_is_valid(example_config):
    assert example_config.prefix == "mlp"
    assert [t.name for t in example_config.teams] == ["fraud", "churn", "pricing"]
    fraud = example_config.team("fraud")
    assert [u.name for u in fraud.use_cases] == ["fraud-detection"]


def test_yaml_syntax_error_reports_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: mlp\nteams:\n  - name: fraud\n    users: [alice\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+, column \d+"):
        load_config(bad)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"config file does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_non_mapping_document_is_reported(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)


def test_several_problems_are_all_listed():
    data = with_change("prefix", "X")
    data["account"] = "abc"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "p.yaml")
    assert "2 problem(s)" in str(caught.value)


def test_schema_file_is_in_sync_with_the_model():
    assert SCHEMA_FILE.read_text() == render_schema(), "run `make schema` to regenerate config/platform.schema.json"


def test_example_yaml_points_editors_at_the_schema():
    first_line = (ROOT / "config" / "platform.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./platform.schema.json"


def test_example_validates_against_the_exported_schema():
    import jsonschema

    jsonschema.validate(EXAMPLE, json.loads(SCHEMA_FILE.read_text()))


def test_field_reference_is_in_sync_and_complete():
    from stacks.config import PlatformConfig
    from tools.export_schema import DOCS_FILE, render_docs

    docs = DOCS_FILE.read_text()
    assert docs == render_docs(), "run `make schema` to regenerate docs/config.md"
    for name, field in PlatformConfig.model_fields.items():
        assert f"| `{name}` |" in docs
    assert "| `teams[].use_cases[].endpoint.deployment.canary_percent` |" in docs
    assert "| `network.subnet_ids` |" in docs


def test_cli_prints_one_message_and_no_traceback(tmp_path):
    """The app as `cdk synth` starts it: a process that exits 2 with one message."""
    config = tmp_path / "c.yaml"
    config.write_text("prefix: [unclosed\n")
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "CDK_CONTEXT_JSON": json.dumps({"config": str(config)})},
        timeout=120,
    )
    assert result.returncode == 2
    assert "YAML syntax error at line" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_app_stops_on_a_bad_config_before_building_anything(tmp_path, capsys):
    import aws_cdk as cdk

    import app as cdk_app

    config = tmp_path / "c.yaml"
    config.write_text("prefix: mlp\nteams: []\n")
    app = cdk.App(outdir=str(tmp_path / "out"))
    assert cdk_app.main(app, str(config)) == 2
    assert "teams: [] is not allowed" in capsys.readouterr().err
    assert app.node.children == []


def test_every_problem_of_a_use_case_problem_is_listed_at_once():
    data = with_change("teams.2.use_cases.0.problem.objective", "AUC")
    data["teams"][2]["use_cases"][0]["problem"]["quality_gate"] = {"metric": "auc", "threshold": 0.8}
    data["teams"][2]["use_cases"][0]["problem"]["context"] = ["store_region", "price"]
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "platform.yaml")
    message = str(caught.value)
    assert "(3 problem(s))" in message, message
    for text in ("problem.objective: 'AUC' is not allowed", "problem.quality_gate.metric: 'auc' is not allowed",
                 "problem.context[1]: 'price' is not allowed: it is also one of the features"):
        assert text in message, message


def test_a_use_case_without_a_problem_keeps_the_fraud_example():
    data = with_change("teams.1.use_cases.0.problem", DELETE)
    problem = parse_config(data).teams[1].use_cases[0].problem
    assert (problem.problem_type, problem.target, problem.input_layout) == ("binary", "is_fraud", "transactions_and_customers")
    assert problem.objective == "AUC" and problem.quality_gate.metric == "auc" and problem.split.mode == "stratified"
