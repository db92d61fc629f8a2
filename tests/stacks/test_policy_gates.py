"""Policy gates: cdk-nag, cfn-lint, security checks, team isolation, determinism, environments."""

from __future__ import annotations

import copy
import fnmatch
import json
import re

import pytest

from stacks import policy_checks
from stacks.config import parse_config
from stacks.nag_acknowledgments import acknowledgments_for
from stacks.regions import SUPPORTED_REGIONS
from tests.conftest import EDGE_CONFIGS, EXAMPLE_CONFIG, synthesize
from tools.iam.reference import action_facts
from tools.synth_report import cfn_lint, deploy_regions, load_templates, nag_findings

ACCOUNT, REGION, PARTITION = "111122223333", "us-east-1", "aws"


def test_cdk_nag_leaves_no_open_finding(example):
    open_findings, acknowledged = nag_findings(example.outdir)
    assert open_findings == []
    assert sum(acknowledged.values()) > 0


@pytest.fixture(params=["example", "multi_account"])
def synthesized(request):
    """The example platform, then config/multi-account.yaml (a development and two stage accounts)."""
    return request.getfixturevalue(request.param)


def test_every_acknowledgment_has_a_reason_and_is_used(synthesized):
    example = synthesized
    report = json.loads((example.outdir / "validation-report.json").read_text())
    used = {
        (c["constructPath"], v["acknowledgedId"])
        for plugin in report["pluginReports"]
        for v in plugin["suppressedViolations"]
        for c in v["violatingConstructs"]
    }
    for stack in example.platform.stacks:
        for entry in acknowledgments_for(stack):
            assert len(entry.reason) >= 30, f"reason too thin: {entry}"
            finding = f"AwsSolutions::{entry.finding}"
            assert any(
                ack == finding and fnmatch.fnmatchcase(path, f"{stack.stack_name}/{entry.path}") for path, ack in used
            ), f"unused acknowledgment in {stack.stack_name}: {entry}"


def test_acknowledgments_are_per_finding_never_per_rule(synthesized):
    for stack in synthesized.platform.stacks:
        for entry in acknowledgments_for(stack):
            if entry.finding.startswith("AwsSolutions-IAM5"):
                assert re.fullmatch(r"AwsSolutions-IAM5\[(Resource|Action)::.+\]", entry.finding), entry


def test_cfn_lint_is_clean(example):
    manifest = json.loads((example.outdir / "manifest.json").read_text())
    files = [example.outdir / a["properties"]["templateFile"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert len(files) == 5
    assert cfn_lint(files) == []


def test_cfn_lint_gate_can_fail(tmp_path):
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Nope": 1}}}}))
    assert cfn_lint([broken])


def test_security_checks_pass(example):
    assert policy_checks.run_all(load_templates(example.outdir)) == []


def test_security_checks_catch_each_problem():
    bad = {
        "S": {
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"ManagedPolicyArns": ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]},
                },
                "Policy": {
                    "Type": "AWS::IAM::Policy",
                    "Properties": {
                        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}
                    },
                },
                "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
                "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {}},
            }
        }
    }
    assert len(policy_checks.no_aws_managed_full_access(bad)) == 1
    assert len(policy_checks.pass_role_is_scoped(bad)) == 2
    assert len(policy_checks.buckets_are_locked_down(bad)) == 3
    assert len(policy_checks.data_is_retained(bad)) == 4


# ---- team isolation -------------------------------------------------------------------------------------


def _render(value, template: dict, stack: str) -> list[str]:
    """Resolve an IAM resource expression into concrete ARN patterns (this stack's logical ids made unique)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [r for item in value for r in _render(item, template, stack)]
    if "Ref" in value:
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        return [pseudo.get(value["Ref"], f"{stack}-{value['Ref']}")]
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        kind = template["Resources"][logical_id]["Type"]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return [f"arn:aws:s3:::{stack}-{logical_id}".lower()]
        return [f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{stack}-{logical_id}"]
    if "Fn::ImportValue" in value:
        return [f"imported-{value['Fn::ImportValue']}"]
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        return [re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m.group(1), f"{stack}-{m.group(1)}"), value["Fn::Sub"])]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        rendered = [""]
        for part in parts:
            options = _render(part, template, stack)
            rendered = [r + o for r in rendered for o in options]
        return [separator.join([r]) for r in rendered]
    raise AssertionError(f"unexpected expression {value}")


def _team_arns(example, team: str) -> list[str]:
    stack = f"mlp-team-{team}"
    template = example.template(stack)
    bucket_id = next(k for k, v in template["Resources"].items() if v["Type"] == "AWS::S3::Bucket")
    bucket = f"arn:aws:s3:::{stack}-{bucket_id}".lower()
    base = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    use_case = example.platform.teams[team].team.use_cases[0].name
    group = f"mlp-{team}-{use_case}"
    return [
        bucket,
        f"{bucket}/data/train.csv",
        f"{base}:model-package-group/{group}",
        f"{base}:model-package/{group}/1",
        f"{base}:endpoint/{group}",
        f"{base}:endpoint-config/{group}-v1-abc",
        f"{base}:model/{group}-v1",
        f"{base}:training-job/mlp-{team}-job",
        f"{base}:pipeline/mlp-{team}-pipeline",
        f"{base}:user-profile/imported-mlp-studio-domain-id/{team}-someone",
        f"{base}:app/imported-mlp-studio-domain-id/{team}-someone/jupyterlab/default",
    ]


def _allowed_resource_patterns(example, team: str) -> list[tuple[str, str]]:
    stack = f"mlp-team-{team}"
    template = example.template(stack)
    patterns = []
    for _, logical_id, statement in policy_checks.policy_statements({stack: template}):
        if statement.get("Effect") != "Allow":
            continue
        for pattern in _render(statement.get("Resource", []), template, stack):
            patterns.append((logical_id, pattern.lower() if pattern.startswith("arn:aws:s3") else pattern))
    return patterns


TEAMS = ["fraud", "churn", "pricing"]


@pytest.mark.parametrize(("owner", "other"), [(a, b) for a in TEAMS for b in TEAMS if a != b])
def test_team_role_grants_nothing_on_another_teams_resources(example, owner, other):
    patterns = _allowed_resource_patterns(example, owner)
    assert patterns, "no statements found: the isolation check would be vacuous"
    for arn in _team_arns(example, other):
        matching = [(lid, p) for lid, p in patterns if p != "*" and fnmatch.fnmatchcase(arn, p)]
        assert not matching, f"{owner} can reach {arn} via {matching}"
    own = _team_arns(example, owner)
    assert all(any(fnmatch.fnmatchcase(arn, p) for _, p in patterns) for arn in own), "own resources unreachable"


# Actions the Service Authorization Reference lists without resource types: only these may use "*".
# CDK grants Step Functions' documented log-delivery set, stream writes included, on "*" to the Provider waiter.
STEP_FUNCTIONS_LOG_DELIVERY = {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_star_resources_only_for_actions_without_resource_level_permissions(synthesized):
    checked = 0
    for _, logical_id, statement in policy_checks.policy_statements(synthesized.templates):
        if statement.get("Effect") == "Allow" and statement.get("Resource") == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                checked += 1
                waiter = "waiterstatemachineRole" in logical_id and action in STEP_FUNCTIONS_LOG_DELIVERY
                assert waiter or action_facts(action).authorized_on_star, (
                    f"{logical_id} grants {action} on * but the Service Authorization Reference lists a required "
                    f"resource type for it: {[t.name for t in action_facts(action).required_types]}"
                )
    assert checked > 0


# ---- determinism, environments, scale ---------------------------------------------------------------------


def test_synth_is_deterministic(example, example_config, tmp_path):
    again = synthesize(example_config, tmp_path / "again", policy_gates=False)
    assert again.templates == example.templates


def _variant(**changes) -> dict:
    import yaml

    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data.update(changes)
    return data


def test_explicit_account_and_region_synthesize_without_dummy_zones(tmp_path):
    config = parse_config(_variant(account="123456789012", region="eu-west-1"))
    result = synthesize(config, tmp_path / "env")  # the policy gates hold with a concrete environment too
    assert nag_findings(result.outdir)[0] == []
    manifest = json.loads((result.outdir / "manifest.json").read_text())
    assert manifest.get("missing") is None, "synthesis asked for a context lookup"
    network = json.dumps(result.template("mlp-network"))
    assert "dummy" not in network
    assert '"Fn::GetAZs"' in network
    assert result.platform.platform.region == "eu-west-1"


def test_configured_zones_are_used(tmp_path):
    data = _variant(account="123456789012", region="ap-northeast-1")
    data["network"] = {"mode": "new", "cidr": "10.1.0.0/16", "availability_zones": ["ap-northeast-1a", "ap-northeast-1c"]}
    result = synthesize(parse_config(data), tmp_path / "zones", policy_gates=False)
    zones = [
        r["Properties"]["AvailabilityZone"]
        for r in result.template("mlp-network")["Resources"].values()
        if r["Type"] == "AWS::EC2::Subnet"
    ]
    assert zones == ["ap-northeast-1a", "ap-northeast-1c"]


def test_existing_network_needs_no_network_stack(tmp_path):
    data = _variant()
    data["network"] = {
        "mode": "existing",
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "security_group_ids": ["sg-0123456789abcdef0"],
    }
    result = synthesize(parse_config(data), tmp_path / "existing")
    assert "mlp-network" not in result.templates
    domain = next(r for r in result.template("mlp-platform")["Resources"].values() if r["Type"] == "AWS::SageMaker::Domain")
    assert domain["Properties"]["VpcId"] == "vpc-0123456789abcdef0"
    assert domain["Properties"]["DefaultUserSettings"]["SecurityGroups"] == ["sg-0123456789abcdef0"]


def test_adding_a_team_adds_a_stack_and_changes_no_other(example, tmp_path):
    data = _variant()
    data["teams"] = copy.deepcopy(data["teams"]) + [{"name": "risk", "cost_center": "CC-4004", "users": ["frank"]}]
    result = synthesize(parse_config(data), tmp_path / "plus-one", policy_gates=False)
    assert set(result.templates) == set(example.templates) | {"mlp-team-risk"}
    for name, template in example.templates.items():
        assert result.templates[name] == template, f"{name} changed when a team was added"


def test_a_new_team_with_reaper_overrides_changes_only_the_reaper_of_the_platform_stack(example, tmp_path):
    """The reaper's per-team settings live in the platform stack: the one documented exception."""
    data = _variant()
    data["teams"] = copy.deepcopy(data["teams"]) + [
        {"name": "risk", "cost_center": "CC-4004", "reaper": {"idle_window_hours": 6}}
    ]
    result = synthesize(parse_config(data), tmp_path / "plus-one-reaper", policy_gates=False)
    for name, template in example.templates.items():
        if name != "mlp-platform":
            assert result.templates[name] == template, f"{name} changed when a team was added"
    before, after = example.template("mlp-platform")["Resources"], result.template("mlp-platform")["Resources"]
    assert set(before) == set(after)
    changed = sorted(logical_id for logical_id in before if before[logical_id] != after[logical_id])
    assert len(changed) == 1 and after[changed[0]]["Type"] == "AWS::Lambda::Function", changed
    assert "risk" in json.dumps(after[changed[0]]["Properties"]["Environment"])


def test_resources_named_by_sagemaker_are_never_deleted_through_the_team_role(example):
    """`pipelines-*` jobs and models carry no team in their names: the team role may not delete them."""
    for team in TEAMS:
        stack = f"mlp-team-{team}"
        for _, logical_id, statement in policy_checks.policy_statements({stack: example.template(stack)}):
            resources = json.dumps(statement.get("Resource"))
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "/pipelines-*" in resources:
                assert not [a for a in actions if a.startswith("sagemaker:Delete")], (stack, logical_id)


def test_templates_are_linted_for_the_regions_they_can_be_deployed_to(example, edge):
    """A stack with an explicit region deploys only there; one without may go to any supported region."""
    pinned = edge("everything switched")
    manifest = json.loads((pinned.outdir / "manifest.json").read_text())
    files = [pinned.outdir / a["properties"]["templateFile"] for a in manifest["artifacts"].values()
             if a["type"] == "aws:cloudformation:stack"]
    assert files and all(deploy_regions(f) == ["ap-southeast-2"] for f in files)
    assert deploy_regions(example.outdir / "mlp-platform.template.json") == list(SUPPORTED_REGIONS)


@pytest.mark.parametrize("name", list(EDGE_CONFIGS))
def test_edge_configs_pass_every_gate(name, edge):
    result = edge(name)
    assert nag_findings(result.outdir)[0] == []
    assert policy_checks.run_all(result.templates) == []
    manifest = json.loads((result.outdir / "manifest.json").read_text())
    files = [result.outdir / a["properties"]["templateFile"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert cfn_lint(files) == []


def test_the_multi_account_example_passes_every_gate_in_its_accounts_region(multi_account):
    assert nag_findings(multi_account.outdir)[0] == []
    assert policy_checks.run_all(multi_account.templates) == []
    manifest = json.loads((multi_account.outdir / "manifest.json").read_text())
    files = [multi_account.outdir / a["properties"]["templateFile"] for a in manifest["artifacts"].values()
             if a["type"] == "aws:cloudformation:stack"]
    assert len(files) == 9
    assert all(deploy_regions(f) == ["eu-west-1"] for f in files)
    assert cfn_lint(files) == []
