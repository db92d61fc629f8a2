"""The name builder at its edges: names exactly at SageMaker's length limit, one past it, invalid
characters, parts that clean away to nothing, and the smallest length that still fits a hash.

SageMaker's rule, written out here from its API reference (not read from `naming`): a model, endpoint
config, endpoint or model package group name is 1 to 63 characters matching the pattern below.
"""

from __future__ import annotations

import re

import pytest
from common import naming
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

SAGEMAKER_LIMIT = 63
SAGEMAKER_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
HEX_SUFFIX = re.compile(r"-[0-9a-f]{10}")


def is_valid(name: str) -> bool:
    return len(name) <= SAGEMAKER_LIMIT and SAGEMAKER_PATTERN.fullmatch(name) is not None


def test_a_valid_name_of_exactly_63_characters_is_kept_as_written():
    name = naming.sagemaker_name("a" * 30, "b" * 32)

    assert name == "a" * 30 + "-" + "b" * 32
    assert len(name) == 63


def test_one_character_more_gets_shortened_to_63_with_a_hash_of_the_parts():
    name = naming.sagemaker_name("a" * 30, "b" * 33)

    assert len(name) == 63
    assert is_valid(name)
    assert name.startswith("a" * 30 + "-" + "b" * 21)
    assert HEX_SUFFIX.fullmatch(name[-11:])
    assert name != naming.sagemaker_name("a" * 30, "b" * 34), "two long inputs must not share a name"


def test_shortened_names_are_stable_across_releases():
    """A deployed endpoint keeps its name only if the same parts always give the same name: a change of
    the hash (its input, separator or length) would rename, so replace, every long-named resource."""
    assert naming.sagemaker_name("mlp", "fraud", "x" * 60) == "mlp-fraud-" + "x" * 42 + "-b2552265e0"
    assert naming.sagemaker_name("mlp", "fraud_team") == "mlp-fraud-team-593e948e3b"
    assert naming.sagemaker_name("___") == "bda251550b"


def test_names_that_differ_only_in_where_the_invalid_characters_were_stay_apart():
    # Both clean to "a-b"; the hash is of the parts as given, with a separator no part can contain.
    first, second = naming.sagemaker_name("a_", "b"), naming.sagemaker_name("a", "_b")

    assert first.startswith("a-b-") and second.startswith("a-b-")
    assert first != second
    assert naming.sagemaker_name("ab", "c_") != naming.sagemaker_name("a", "bc_")


@pytest.mark.parametrize(
    ("parts", "readable_head"),
    [
        (("mlp", "fraud team"), "mlp-fraud-team"),
        (("mlp", "--fraud--"), "mlp-fraud"),
        (("mlp", "Fraud.Detection"), "mlp-Fraud-Detection"),
        (("mlp", "___", "churn"), "mlp-churn"),
        (("mlp", "ä"), "mlp"),
    ],
)
def test_invalid_characters_become_single_hyphens_and_the_name_gets_a_hash(parts, readable_head):
    name = naming.sagemaker_name(*parts)

    assert is_valid(name), name
    assert name[: -len("-0123456789")] == readable_head
    assert HEX_SUFFIX.fullmatch(name[-11:])


def test_upper_and_lower_case_and_digits_are_kept_as_they_are():
    assert naming.sagemaker_name("MLP", "Fraud9", "v10") == "MLP-Fraud9-v10"


def test_a_name_of_only_invalid_characters_is_its_hash_alone():
    name = naming.sagemaker_name("!!!", "???")

    assert re.fullmatch(r"[0-9a-f]{10}", name)
    assert is_valid(name)


def test_a_long_name_ending_in_a_hyphen_at_the_cut_does_not_get_two_hyphens():
    # The cut at 52 characters falls right after a hyphen: "a"*51 + "-" ...
    name = naming.sagemaker_name("a" * 51, "b" * 20)

    assert name.startswith("a" * 51 + "-") and "--" not in name
    assert len(name) == 62
    assert is_valid(name)


def test_twelve_characters_is_the_shortest_limit_that_fits_a_hash():
    name = naming.sagemaker_name("abcdef", "ghijkl", max_length=12)

    assert len(name) == 12
    assert name.startswith("a-") and is_valid(name)
    assert naming.sagemaker_name("abc", max_length=12) == "abc"
    with pytest.raises(ValueError, match="at least 12, got 11"):
        naming.sagemaker_name("abc", max_length=11)


def test_a_custom_limit_is_honoured_exactly():
    assert naming.sagemaker_name("a" * 20, max_length=20) == "a" * 20
    shortened = naming.sagemaker_name("a" * 21, max_length=20)
    assert len(shortened) == 20 and shortened.startswith("a" * 9 + "-")


def test_no_parts_is_refused():
    with pytest.raises(ValueError, match=r"^sagemaker_name needs at least one part$"):
        naming.sagemaker_name()


def test_integer_parts_are_written_as_digits():
    assert naming.sagemaker_name("mlp", 7) == "mlp-7"


@pytest.mark.parametrize("version", [0, 1, 99999])
def test_model_and_config_names_carry_the_version(version):
    assert naming.model_name("mlp", "fraud", "churn", version) == f"mlp-fraud-churn-v{version}"
    assert naming.endpoint_config_name("mlp", "fraud", "churn", version, "0123abcd") == (
        f"mlp-fraud-churn-v{version}-0123abcd"
    )


def test_group_and_endpoint_share_the_use_case_name_and_the_team_prefix_leads_both():
    assert naming.model_package_group_name("mlp", "fraud", "churn") == "mlp-fraud-churn"
    assert naming.endpoint_name("mlp", "fraud", "churn") == "mlp-fraud-churn"
    assert naming.team_resource_prefix("mlp", "fraud") == "mlp-fraud-"


# Use case names from 40 to 70 characters: with prefix and team, every name crosses 63 somewhere in it.
near_limit = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=40, max_size=70)


@hypothesis_settings(max_examples=150, deadline=None)
@given(near_limit, st.integers(min_value=1, max_value=10**6))
def test_names_around_the_length_limit_are_valid_and_distinct(use_case, version):
    names = [
        naming.endpoint_name("mlp", "fraud", use_case),
        naming.model_name("mlp", "fraud", use_case, version),
        naming.model_name("mlp", "fraud", use_case, version + 1),
        naming.endpoint_config_name("mlp", "fraud", use_case, version, "0123abcd"),
    ]

    for name in names:
        assert is_valid(name), name
    assert len(set(names)) == len(names)


def test_capital_x_at_the_edges_of_parts_and_cuts_is_kept():
    # Only hyphens are trimmed where invalid characters were replaced or where a long name was cut.
    assert naming.sagemaker_name("mlp", "X_ray").startswith("mlp-X-ray-")
    assert naming.sagemaker_name("X" * 70) == "X" * 52 + "-" + naming.sagemaker_name("X" * 70)[-10:]
