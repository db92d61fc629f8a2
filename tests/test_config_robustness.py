"""The loader stays usable after many bad configs, and instance types are checked against SageMaker's own lists.

SageMaker's valid instance types per usage come from botocore's SageMaker service model (the enums of
ProductionVariantInstanceType, ProcessingInstanceType, TrainingInstanceType, TransformInstanceType and, for
notebook instances, InstanceType), so an instance type that does not exist stops synthesis, not a deploy.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import botocore.session
import pytest
import yaml

from stacks.config import ConfigError, QuotaUsage, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())

_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
SHAPE_OF_USAGE = {
    "endpoint": "ProductionVariantInstanceType",
    "processing": "ProcessingInstanceType",
    "training": "TrainingInstanceType",
    "spot-training": "TrainingInstanceType",
    "transform": "TransformInstanceType",
    "notebook-instance": "InstanceType",
}
TYPES_OF_USAGE = {usage: frozenset(_SAGEMAKER.shape_for(shape).enum) for usage, shape in SHAPE_OF_USAGE.items()}
NONEXISTENT = "ml.c5.huge"

E0 = "teams.0.use_cases.0.endpoint"


def _endpoint_field(value: str) -> dict:
    data = copy.deepcopy(EXAMPLE)
    data["teams"][0]["use_cases"][0]["endpoint"]["instance_type"] = value
    data["quotas"] = [q for q in data["quotas"] if q["usage"] != "endpoint"]  # its fleet sum is not under test
    return data


def _monitoring_field(value: str) -> dict:
    data = copy.deepcopy(EXAMPLE)
    data["teams"][0]["use_cases"][0]["endpoint"]["monitoring"]["instance_type"] = value
    return data


def _quota_field(usage: str):
    def change(value: str) -> dict:
        data = copy.deepcopy(EXAMPLE)
        data["quotas"] = [{"instance_type": value, "usage": usage, "desired": 1}]
        return data

    return change


# (id, config with the instance type set, the field path the message names, the usage whose list applies)
INSTANCE_TYPE_FIELDS = [
    ("endpoint", _endpoint_field, "teams[0].use_cases[0].endpoint.instance_type", "endpoint"),
    ("monitoring", _monitoring_field, "teams[0].use_cases[0].endpoint.monitoring.instance_type", "processing"),
    *((f"quota-{u.value}", _quota_field(u.value), "quotas[0].instance_type", u.value) for u in QuotaUsage),
]
_IDS = [name for name, *_ in INSTANCE_TYPE_FIELDS]


def test_every_quota_usage_has_a_sagemaker_list():
    assert {u.value for u in QuotaUsage} == set(SHAPE_OF_USAGE)
    assert all(TYPES_OF_USAGE.values())


def _refusal(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "platform.yaml")
    return str(caught.value)


@pytest.mark.parametrize(("name", "config_with", "field", "usage"), INSTANCE_TYPE_FIELDS, ids=_IDS)
def test_a_nonexistent_instance_type_is_refused_naming_field_value_and_close_matches(name, config_with, field, usage):
    message = _refusal(config_with(NONEXISTENT))
    (line,) = [line for line in message.splitlines() if field in line]
    assert f"'{NONEXISTENT}'" in line and usage in line, message
    assert "ml.c5." in line, f"no close matches offered: {message}"
    assert len(line) < 500, f"the message lists too much: {line}"


@pytest.mark.parametrize(("name", "config_with", "field", "usage"), INSTANCE_TYPE_FIELDS, ids=_IDS)
def test_an_instance_type_of_another_usage_only_is_refused(name, config_with, field, usage):
    elsewhere = set().union(*(types for other, types in TYPES_OF_USAGE.items() if other != usage))
    other_usage_only = sorted(elsewhere - TYPES_OF_USAGE[usage])
    assert other_usage_only, f"every SageMaker instance type is valid for {usage}"
    wrong = other_usage_only[0]
    message = _refusal(config_with(wrong))
    (line,) = [line for line in message.splitlines() if field in line]
    assert f"'{wrong}'" in line and usage in line, message


def test_a_training_type_that_cannot_serve_is_refused_for_the_endpoint():
    training_only = sorted(TYPES_OF_USAGE["training"] - TYPES_OF_USAGE["endpoint"])
    assert training_only
    message = _refusal(_endpoint_field(training_only[0]))
    assert f"teams[0].use_cases[0].endpoint.instance_type: '{training_only[0]}'" in message, message
    assert "training" in message, f"the message does not say where the type is valid: {message}"


@pytest.mark.parametrize(("name", "config_with", "field", "usage"), INSTANCE_TYPE_FIELDS, ids=_IDS)
def test_a_valid_instance_type_of_the_usage_loads(name, config_with, field, usage):
    for valid in sorted(TYPES_OF_USAGE[usage])[:3]:
        parse_config(config_with(valid), "platform.yaml")


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_still_loads(path):
    assert load_config(path).teams


# Loads many invalid configs with the garbage collector on, collecting the young generations after each load
# (what an allocation-heavy program does at some point), then a valid one.
_MANY_BAD_LOADS = textwrap.dedent(
    """
    import copy, gc, sys, tempfile
    from pathlib import Path

    import yaml

    from stacks.config import ConfigError, load_config

    assert gc.isenabled()
    example = yaml.safe_load(Path("config/platform.yaml").read_text())
    cases = []

    def case(change, named):
        data = copy.deepcopy(example)
        change(data)
        cases.append((data, named))

    case(lambda d: d["network"].update(cidr="10.80.0.0/33"), "network.cidr")
    case(lambda d: d.update(favourite_colour="blue"), "favourite_colour")
    case(lambda d: d["studio"].update(idle_timeout_minutes="120"), "studio.idle_timeout_minutes")
    case(lambda d: d["teams"][1].update(name="Churn-Team"), "teams[1].name")
    case(lambda d: d["quotas"][0].update(desired=0), "quotas[0].desired")
    case(lambda d: d.pop("prefix"), "prefix")
    case(lambda d: d["teams"][0]["use_cases"][0]["endpoint"].update(instance_type="ml.c5.huge"),
         "teams[0].use_cases[0].endpoint.instance_type")
    case(lambda d: d["teams"][2].update(users=["dave", "dave"]), "teams[2].users")

    folder = Path(tempfile.mkdtemp())
    for index in range(200):
        data, named = cases[index % len(cases)]
        path = folder / f"bad-{index}.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            load_config(path)
        except ConfigError as error:
            assert named in str(error), (index, named, str(error))
        else:
            sys.exit(f"load {index} was accepted: {named}")
        gc.collect(1)
    good = folder / "good.yaml"
    good.write_text(yaml.safe_dump(example))
    assert load_config(good).prefix == "mlp"
    """
)


def test_many_invalid_configs_in_one_process_leave_the_loader_usable():
    result = subprocess.run([sys.executable, "-c", _MANY_BAD_LOADS], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_command_the_errors_name_lists_a_usages_instance_types():
    """`python -m stacks.config instance-types <usage>` (named by every instance-type error) prints that usage's
    whole list from the API model, one a line; an unknown usage prints the usage line and exits 2."""
    root = Path(__file__).resolve().parents[1]
    shown = subprocess.run([sys.executable, "-m", "stacks.config", "instance-types", "endpoint"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert shown == sorted(model.shape_for("ProductionVariantInstanceType").enum)
    wrong = subprocess.run([sys.executable, "-m", "stacks.config", "instance-types", "endpoints"], cwd=root,
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "usage: python -m stacks.config instance-types {endpoint," in wrong.stderr
