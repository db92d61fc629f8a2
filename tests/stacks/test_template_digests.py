"""The synthesized templates of the example and of every edge config are exactly the committed ones.

A refactor that must not change what is deployed (a construct moved, a helper extracted, a seam for
several accounts) keeps every digest; a change that does alter a template shows up here and is accepted
only by rewriting the file explicitly (``make template-digests``). The normalizer masks only what varies
between two synths of the same source (`tools.template_digests`), and the tests below show it hides
nothing else: one statement, one property or one logical id changed changes the digest.
"""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import EDGE_CONFIGS
from tools.template_digests import DIGESTS_FILE, MASKED_ASSET, MASKED_COMMIT, digest, digests, normalize


@pytest.fixture(scope="module")
def current(example, multi_account, edge) -> dict[str, str]:
    templates = {"example": example.templates, "multi-account": multi_account.templates,
                 **{name: edge(name).templates for name in EDGE_CONFIGS}}
    return digests(templates)


def test_every_template_matches_the_committed_digest(current):
    committed = json.loads(DIGESTS_FILE.read_text())
    changed = sorted(k for k in committed.keys() & current.keys() if committed[k] != current[k])
    assert (changed, sorted(current.keys() - committed.keys()), sorted(committed.keys() - current.keys())) == (
        [], [], []
    ), "templates changed (changed, new, gone); if intended, run `make template-digests` and commit the file"


def test_the_digests_cover_every_stack_of_the_examples_and_of_each_edge_config(current, example, multi_account, edge):
    expected = {f"example/{s}" for s in example.templates} | {
        f"{name}/{s}" for name in EDGE_CONFIGS for s in edge(name).templates
    } | {f"multi-account/{s}" for s in multi_account.templates}
    assert set(current) == expected
    assert any(k.startswith("example/mlp-team-") for k in current)


def _team(example):
    name = next(s for s in example.templates if "-team-" in s)
    return name, example.templates[name]


def _first(template, kind):
    return next(lid for lid, r in template["Resources"].items() if r["Type"] == kind)


def test_one_policy_statement_changed_changes_the_digest(example):
    _, template = _team(example)
    base = digest(template)
    mutated = copy.deepcopy(template)
    policy = mutated["Resources"][_first(mutated, "AWS::IAM::Policy")]["Properties"]["PolicyDocument"]
    statement = policy["Statement"][0]
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    statement["Action"] = actions[:-1] + [actions[-1] + "x"]
    assert digest(mutated) != base
    reordered = copy.deepcopy(template)
    statements = reordered["Resources"][_first(reordered, "AWS::IAM::Policy")]["Properties"]["PolicyDocument"]["Statement"]
    if len(statements) > 1:
        statements[0], statements[1] = statements[1], statements[0]
        assert digest(reordered) != base, "the order of statements is part of the template"


def test_one_property_changed_changes_the_digest(example):
    _, template = _team(example)
    base = digest(template)
    mutated = copy.deepcopy(template)
    bucket = mutated["Resources"][_first(mutated, "AWS::S3::Bucket")]
    bucket["Properties"]["VersioningConfiguration"] = {"Status": "Suspended"}
    assert digest(mutated) != base
    condition = copy.deepcopy(template)
    for resource in condition["Resources"].values():
        for statement in resource.get("Properties", {}).get("PolicyDocument", {}).get("Statement", []):
            if statement.get("Condition"):
                operator = next(iter(statement["Condition"]))
                statement["Condition"][operator + "IfExists"] = statement["Condition"].pop(operator)
                break
        else:
            continue
        break
    assert digest(condition) != base


def test_one_logical_id_changed_changes_the_digest(example):
    _, template = _team(example)
    base = digest(template)
    mutated = copy.deepcopy(template)
    lid = _first(mutated, "AWS::SageMaker::ModelPackageGroup")
    mutated["Resources"][lid + "2"] = mutated["Resources"].pop(lid)
    assert digest(mutated) != base


def test_only_asset_hashes_asset_metadata_and_the_code_commit_are_masked(example):
    _, template = _team(example)
    text = json.dumps(template)
    assert '.zip"' in text and '"CodeCommit"' in text, "the team template has assets and a code commit to mask"
    rebuilt = copy.deepcopy(template)
    function = rebuilt["Resources"][_first(rebuilt, "AWS::Lambda::Function")]
    key = function["Properties"]["Code"]["S3Key"]
    function["Properties"]["Code"]["S3Key"] = "0" * 64 + ".zip"
    function["Metadata"] = {**function.get("Metadata", {}), "aws:asset:path": "asset.other", "aws:asset:property": "Code"}
    rebuilt_text = json.dumps(rebuilt).replace(
        json.dumps(next(iter(_code_commits(template)))), json.dumps("0123abcd-modified"))
    rebuilt = json.loads(rebuilt_text)
    assert key != "0" * 64 + ".zip"
    assert digest(rebuilt) == digest(template)
    normalized = json.dumps(normalize(template))
    assert MASKED_ASSET in normalized and MASKED_COMMIT in normalized
    # a hex run that is not an asset key, a 63-character one, and other metadata stay as they are
    kept = {"Resources": {"R": {"Type": "T", "Metadata": {"cdk_nag": 1, "aws:cdk:path": "p"},
                                "Properties": {"S3Key": "a" * 63 + ".zip", "Value": "b" * 64, "Commit": "c"}}}}
    assert normalize(kept) == kept


def _code_commits(template):
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "CodeCommit" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template)
    return found

