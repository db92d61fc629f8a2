"""Checks of a pipeline definition against SageMaker's current API model (botocore's service model).

- step arguments: each step's ``Arguments`` must fit the Create* request shape of its type (minus the job
  name): no unknown fields, every required field, right types and enum values; pipeline expressions
  (Get, Std:Join, Std:JsonGet) stand in for scalars;
- references: every ``Get`` names a declared parameter, a known execution variable, a property file the
  step declares, or a property path that exists in the Describe* response shape of the referenced step
  (output names checked against the outputs the step declares);
- graph: step names unique, references acyclic, no reference into a sibling branch of a condition.
"""

from __future__ import annotations

import re

import botocore.session

from pipeline_code.definition import all_steps, gets

__all__ = ["all_steps", "gets"]  # the definition's walkers, used by the checks below and by the tests

SERVICE = botocore.session.get_session().get_service_model("sagemaker")

REQUEST_SHAPES = {
    "Processing": ("CreateProcessingJobRequest", "ProcessingJobName"),
    "Training": ("CreateTrainingJobRequest", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJobRequest", "HyperParameterTuningJobName"),
    "Transform": ("CreateTransformJobRequest", "TransformJobName"),
    "Model": ("CreateModelInput", "ModelName"),
    "AutoML": ("CreateAutoMLJobRequest", "AutoMLJobName"),
    "RegisterModel": ("CreateModelPackageInput", None),
}
PROPERTY_SHAPES = {
    "Processing": ("DescribeProcessingJobResponse",),
    "Training": ("DescribeTrainingJobResponse",),
    "Tuning": ("DescribeHyperParameterTuningJobResponse", "ListTrainingJobsForHyperParameterTuningJobResponse"),
    "Transform": ("DescribeTransformJobResponse",),
    "Model": ("DescribeModelOutput",),
    "AutoML": ("DescribeAutoMLJobResponse",),
    "RegisterModel": ("DescribeModelPackageOutput",),
}
EXECUTION_VARIABLES = {
    "PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn", "CurrentDateTime", "StartDateTime",
}
FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']+)'\]")


def is_expression(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def _check_shape(value, shape, where: str, problems: list, skip: str | None = None) -> None:
    if is_expression(value):
        return
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object for {shape.name}, got {type(value).__name__}")
            return
        for key in value:
            if key not in shape.members:
                problems.append(f"{where}: {shape.name} has no field {key!r}")
        for key in shape.required_members:
            if key != skip and key not in value:
                problems.append(f"{where}: required field {key!r} of {shape.name} missing")
        for key, item in value.items():
            if key in shape.members:
                _check_shape(item, shape.members[key], f"{where}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check_shape(item, shape.member, f"{where}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check_shape(item, shape.value, f"{where}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
        elif shape.enum and value not in shape.enum and "${" not in value:
            problems.append(f"{where}: {value!r} is not an allowed {shape.name} value")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{where}: expected a number, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected a boolean, got {value!r}")


def argument_problems(definition: dict) -> list:
    problems = []
    for step, _ in all_steps(definition["Steps"]):
        kind = step["Type"]
        if kind in REQUEST_SHAPES:
            shape_name, name_field = REQUEST_SHAPES[kind]
            _check_shape(step["Arguments"], SERVICE.shape_for(shape_name), step["Name"], problems, skip=name_field)
    return problems


def _resolve(shape, tokens: list, step: dict) -> str | None:
    """None if the property path exists in ``shape``; otherwise the reason it does not."""
    for name, index, key in tokens:
        if name:
            if shape.type_name != "structure" or name not in shape.members:
                return f"{shape.name} has no member {name!r}"
            shape = shape.members[name]
        elif index:
            if shape.type_name != "list":
                return f"{shape.name} is not a list"
            shape = shape.member
        else:
            if shape.type_name == "map":
                shape = shape.value
            elif shape.type_name == "list":
                if shape.name == "ProcessingOutputs":
                    declared = [o["OutputName"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
                    if key not in declared:
                        return f"step {step['Name']} declares no output {key!r} (has {declared})"
                shape = shape.member
            else:
                return f"{shape.name} cannot be indexed by {key!r}"
    return None


def reference_problems(definition: dict) -> list:
    problems = []
    steps = {step["Name"]: step for step, _ in all_steps(definition["Steps"])}
    parameters = {p["Name"] for p in definition.get("Parameters", [])}
    for path in gets(definition):
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in parameters:
                problems.append(f"Get {path}: parameter {rest!r} is not declared")
        elif head == "Execution":
            if rest not in EXECUTION_VARIABLES:
                problems.append(f"Get {path}: unknown execution variable")
        elif head == "Steps":
            step_name, _, property_path = rest.partition(".")
            if step_name not in steps:
                problems.append(f"Get {path}: no step named {step_name!r}")
                continue
            step = steps[step_name]
            if property_path.startswith("PropertyFiles."):
                declared = [f["PropertyFileName"] for f in step.get("PropertyFiles", [])]
                if property_path.split(".", 1)[1] not in declared:
                    problems.append(f"Get {path}: step declares property files {declared}")
                continue
            tokens = PATH_TOKEN.findall(property_path)
            if "".join(m.group(0) for m in PATH_TOKEN.finditer(property_path)) != property_path:
                problems.append(f"Get {path}: malformed property path")
                continue
            reasons = [
                _resolve(SERVICE.shape_for(shape), tokens, step) for shape in PROPERTY_SHAPES.get(step["Type"], ())
            ]
            if not reasons or all(reasons):
                problems.append(f"Get {path}: {reasons or 'step type has no properties'}")
        else:
            problems.append(f"Get {path}: unknown root {head!r}")
    return problems


def dependencies(definition: dict) -> dict:
    """Step name -> names of the steps it needs first (references, DependsOn, and a condition's own inputs)."""
    graph = {}
    for step, _ in all_steps(definition["Steps"]):
        own = {k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")}
        needed = {p.split(".")[1] for p in gets(own) if p.startswith("Steps.")}
        needed |= set(step.get("DependsOn", []))
        graph[step["Name"]] = needed
    for step, branch in all_steps(definition["Steps"]):
        if branch:
            graph[step["Name"]].add(branch[-1][0])
    return graph


def graph_problems(definition: dict) -> list:
    problems = []
    listed = all_steps(definition["Steps"])
    names = [step["Name"] for step, _ in listed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate step names {duplicates}")
    branch_of = {step["Name"]: branch for step, branch in listed}
    graph = dependencies(definition)
    for name, needed in graph.items():
        for other in needed:
            if other in branch_of and branch_of[other] != branch_of[name][: len(branch_of[other])]:
                problems.append(f"{name} refers to {other}, which is in a branch {name} is not part of")
    state = {}

    def visit(node: str, trail: list) -> None:
        if state.get(node) == "done":
            return
        if state.get(node) == "active":
            problems.append(f"cycle: {' -> '.join(trail + [node])}")
            return
        state[node] = "active"
        for other in sorted(graph.get(node, ())):
            visit(other, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])
    return problems
