"""docs/permissions.md is generated from the synthesized policies and stays in sync with them."""

from __future__ import annotations

from tools import permissions_table


def test_permissions_doc_is_generated_from_the_current_policies(example):
    expected = permissions_table.render(example.templates, "mlp-team-fraud")
    assert permissions_table.DOC.read_text() == expected, "run `make schema` to regenerate docs/permissions.md"


def test_every_role_of_the_shown_stacks_is_in_the_doc(example):
    text = permissions_table.DOC.read_text()
    for stack in ("mlp-network", "mlp-platform", "mlp-team-fraud"):
        roles = [k for k, r in example.templates[stack]["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
        assert roles
        for logical_id in roles:
            assert f"`{permissions_table._role_label(None, stack, logical_id)}`" in text, logical_id
