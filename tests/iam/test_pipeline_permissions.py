"""The roles of each team allow every request its pipeline and its endpoints make (issue 9).

The requests are derived from the synthesized templates by ``tools.iam.pipeline_needs``: the
``AWS::SageMaker::Pipeline`` definition run with representative values (every branch), and the deploy
Lambda's environment for the endpoints. Each is evaluated against the identity policies of the role that
makes it, joined with the bucket policy (S3) or the key policy (KMS) of its resource. A failure lists
every unmet request: why it is made, action, resource, role and the evaluator's explanation.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from lambdas.common.naming import MONITORING_PIPELINE_SUFFIX
from pipeline_code.definition import all_steps
from stacks.config import load_config
from tests.conftest import EDGE_CONFIGS, EXAMPLE_CONFIG
from tools.iam import pipeline_needs as pn
from tools.iam.template import World

EXAMPLE = load_config(EXAMPLE_CONFIG)
TEAM_STACKS = [f"{EXAMPLE.prefix}-team-{team.name}" for team in EXAMPLE.teams]
EDGE = "everything switched"  # tests/stacks/test_policy_gates.py: explicit account and region
EDGE_ACCOUNT, EDGE_REGION = "210987654321", "ap-southeast-2"


@pytest.fixture(scope="module")
def world(example) -> World:
    return World(example.templates, generated_names="concrete")


@pytest.fixture(scope="module")
def edge_world(edge) -> World:
    config = EDGE_CONFIGS[EDGE]
    assert (config["account"], config["region"]) == (EDGE_ACCOUNT, EDGE_REGION)
    return World(edge(EDGE).templates, account=EDGE_ACCOUNT, region=EDGE_REGION, generated_names="concrete")


def stack_pipeline_needs(world: World, stack: str) -> list[pn.Need]:
    return [need for p in pn.pipelines_of(world, stack) for need in pn.pipeline_needs(world, stack, p.logical_id)]


def assert_all_allowed(world: World, needs: list[pn.Need], what: str, **kwargs) -> None:
    outcomes = pn.check(world, needs, **kwargs)
    denied = pn.unmet(outcomes)
    assert not denied, (
        f"{what}: {len(denied)} of {len(outcomes)} requests are not allowed:\n{pn.unmet_report(outcomes)}"
    )


def execution_role(world: World, stack: str) -> str:
    (pipeline, *_) = pn.pipelines_of(world, stack, "experiment")
    return pipeline.role_arn


# --- the example platform ---------------------------------------------------------------------------------


def test_every_team_stack_is_checked(example):
    assert set(TEAM_STACKS) <= set(example.templates)
    assert TEAM_STACKS


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_pipeline_execution_role_allows_every_request_of_the_pipeline(world, stack):
    needs = stack_pipeline_needs(world, stack)
    assert needs, f"{stack} has no pipeline requests to check"
    assert_all_allowed(world, needs, f"{stack} pipeline (role {execution_role(world, stack)})")


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_model_execution_role_allows_what_the_endpoints_need(world, stack):
    needs = pn.model_execution_needs(world, stack)
    assert needs, f"{stack} has no endpoint requests to check"
    role = pn.deploy_settings(world, stack).model_execution_role_arn
    assert_all_allowed(world, needs, f"{stack} endpoints (role {role})")


# --- an environment with explicit account and region ----------------------------------------------------------


@pytest.mark.parametrize("team", ["alpha", "beta"])
@pytest.mark.parametrize("role", ["pipeline", "model"])
def test_edge_config_roles_allow_their_requests(edge_world, team, role):
    stack = f"edge-team-{team}"
    if role == "pipeline":
        needs = stack_pipeline_needs(edge_world, stack)
    else:
        needs = pn.model_execution_needs(edge_world, stack)
    if team == "beta":  # a team without use cases has no pipeline and no endpoint
        assert needs == []
        return
    assert needs
    assert all(EDGE_REGION in n.request.resource or n.request.resource == "*" or ":s3:::" in n.request.resource
               or ":iam::" in n.request.resource for n in needs)
    assert_all_allowed(edge_world, needs, f"{stack} {role}")


# --- what the derivation yields -------------------------------------------------------------------------------


def _by_action(needs: list[pn.Need]) -> dict[str, list[pn.Need]]:
    found: dict[str, list[pn.Need]] = {}
    for need in needs:
        found.setdefault(need.request.action, []).append(need)
    return found


def test_derivation_covers_each_step_type_with_the_steps_tags(world):
    stack = TEAM_STACKS[0]
    team = EXAMPLE.teams[0].name
    (pipeline,) = pn.pipelines_of(world, stack, "experiment")
    needs = pn.pipeline_needs(world, stack, pipeline.logical_id)
    actions = _by_action(needs)
    for action in ("sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob",
                   "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateAutoMLJob",
                   "sagemaker:DescribeAutoMLJob", "sagemaker:CreateModel",
                   "sagemaker:CreateTransformJob", "sagemaker:CreateModelPackage", "iam:PassRole"):
        assert action in actions, f"no {action} derived"
    for action in ("sagemaker:CreateEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:DeleteEndpointConfig"):
        assert action not in actions, f"{action}: the default (open) explanations need no shadow endpoint"
    assert {n.request.resource for n in actions["sagemaker:ListCandidatesForAutoMLJob"]} == {"*"}
    listing = actions["sagemaker:ListCandidatesForAutoMLJob"]
    assert {w.split(" ", 1)[0] for n in listing for w in [n.why, *n.also]} >= {
        "AutoMLTrain", "AutoMLRecordExperiment"}, "the recording step lists the candidates too"
    tuning = actions["sagemaker:ListTrainingJobsForHyperParameterTuningJob"]
    assert [n.why.split(" ", 1)[0] for n in tuning] == ["XGBoostRecordExperiment"]
    assert tuning[0].request.context_value("aws:ResourceTag/mlops:team") == team
    assert ":hyper-parameter-tuning-job/pipelines-abc123def456-" in tuning[0].request.resource
    history = [n for n in actions["cloudwatch:GetMetricData"]
               if any("XGBoostRecordExperiment" in w for w in [n.why, *n.also])]
    assert [n.request.resource for n in history] == ["*"]
    described = [n for n in actions["sagemaker:DescribeTrainingJob"]
                 if any("XGBoostRecordExperiment" in w for w in [n.why, *n.also])]
    assert described and described[0].request.context_value("aws:ResourceTag/mlops:team") == team
    tracking = actions["sagemaker:CallMlflowAppApi"]
    assert {w.split(" ", 1)[0] for n in tracking for w in [n.why, *n.also]} == {
        f"{p}{s}" for p in ("AutoML", "XGBoost") for s in ("RecordExperiment", "RecordRegistration")}
    assert len({n.request.resource for n in tracking}) == 1 and ":mlflow-app/" in tracking[0].request.resource
    created = [n for a in ("sagemaker:CreateProcessingJob", "sagemaker:CreateModel") for n in actions[a]]
    assert all("/pipelines-abc123def456-" in n.request.resource for n in created)
    steps = {s["Name"]: s for s, _ in all_steps(pipeline.definition["Steps"])}
    tagged = {name for name, s in steps.items() if s["Arguments"].get("Tags")}
    for need in actions["sagemaker:CreateProcessingJob"] + actions["sagemaker:DescribeProcessingJob"]:
        step = need.why.split(" ", 1)[0]
        if step in tagged:
            key = "aws:RequestTag/mlops:team" if ":Create" in need.request.action else "aws:ResourceTag/mlops:team"
            assert need.request.context_value(key) == team, (need.why, need.request.context)
    for need in actions["iam:PassRole"]:
        assert need.request.context_value("iam:PassedToService") == "sagemaker.amazonaws.com"
    reads = [n.request.resource for n in actions["s3:GetObject"]]
    assert any(r.endswith("/pipeline/code/pipeline_code/*") for r in reads), "S3Prefix inputs are read as <prefix>*"


def test_clarify_shadow_endpoint_is_named_by_the_clarify_config_step(edge_world):
    """The edge config takes the ``explainability: clarify`` option: its Clarify jobs deploy shadow endpoints."""
    world = edge_world
    stack = next(s for s in world.templates if s.endswith("-team-alpha"))
    pipeline = pn.pipelines_of(world, stack, "experiment")[0]
    needs = pn.pipeline_needs(world, stack, pipeline.logical_id)
    actions = _by_action(needs)
    for action in ("sagemaker:CreateEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:DeleteEndpointConfig"):
        assert action in actions, f"no {action} derived for the clarify option"
    steps = {s["Name"]: s for s, _ in all_steps(pipeline.definition["Steps"])}
    apps = [s["Arguments"].get("AppSpecification", {}) for s in steps.values()]
    config_args = [app.get("ContainerArguments", []) for app in apps
                   if pn.CLARIFY_CONFIG_MODULE in (app.get("ContainerEntrypoint") or [])]
    assert config_args
    options = dict(zip(config_args[0][::2], config_args[0][1::2]))
    prefix = options.get("--endpoint-name-prefix", pn.CLARIFY_DEFAULT_ENDPOINT_PREFIX)
    endpoints = {n.request.resource for n in needs if n.request.action == "sagemaker:CreateEndpoint"}
    assert endpoints and all(
        e.split(":", 5)[5].split("/", 1)[1].startswith(prefix.lower()) for e in endpoints
    ), (prefix, endpoints)


def test_resources_follow_the_service_authorization_reference():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:automl-job/pipelines-x"
    assert pn.evaluated_resource("sagemaker:ListCandidatesForAutoMLJob", arn) == "*"
    assert pn.evaluated_resource("ecr:GetAuthorizationToken", "*") == "*"
    quota = "arn:aws:servicequotas:us-east-1:123456789012:sagemaker/L-1"
    assert pn.evaluated_resource("servicequotas:GetServiceQuota", quota) == "*"
    assert pn.evaluated_resource("sagemaker:DescribeAutoMLJobV2", arn) == arn
    assert pn.evaluated_resource("s3:GetObject", "arn:aws:s3:::b/k") == "arn:aws:s3:::b/k"
    with pytest.raises(pn.NeedsError):
        pn.evaluated_resource("sagemaker:CreateProcessingJob", "*")
    with pytest.raises(pn.NeedsError):
        pn.evaluated_resource("sagemaker:CreateProcessingJob", arn)


# --- the check fails when a grant is missing ------------------------------------------------------------------


def _without_action(statements: list[dict], action: str) -> list[dict]:
    result = copy.deepcopy(statements)
    for statement in result:
        actions = statement.get("Action")
        if isinstance(actions, list) and action in actions:
            statement["Action"] = [a for a in actions if a != action]
        elif actions == action:
            statement["Action"] = []
    return result


def test_check_fails_naming_an_action_removed_from_the_execution_role(world):
    stack = TEAM_STACKS[0]
    role = execution_role(world, stack)
    statements = world.role_statements(*pn.role_of_arn(world, role))
    mutated = _without_action(statements, "sagemaker:CreateProcessingJob")
    assert mutated != statements
    with pytest.raises(AssertionError) as failure:
        assert_all_allowed(world, stack_pipeline_needs(world, stack), stack, identity={role: mutated})
    message = str(failure.value)
    created = "sagemaker:CreateProcessingJob on arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-"
    assert created in message
    assert "no statement allows it (implicit deny)" in message
    assert "SplitData (Processing)" in message


def test_check_fails_when_list_candidates_is_granted_only_on_automl_jobs(world):
    """The reference authorizes ListCandidatesForAutoMLJob on `*`: a grant on automl-job ARNs does not do."""
    stack = TEAM_STACKS[0]
    role = execution_role(world, stack)
    statements = _without_action(world.role_statements(*pn.role_of_arn(world, role)),
                                 "sagemaker:ListCandidatesForAutoMLJob")
    statements.append({"Effect": "Allow", "Action": "sagemaker:ListCandidatesForAutoMLJob",
                       "Resource": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/*", "_Policy": "mutation"})
    outcomes = pn.check(world, stack_pipeline_needs(world, stack), identity={role: statements})
    denied = [o.need.request.action for o in pn.unmet(outcomes)]
    assert set(denied) == {"sagemaker:ListCandidatesForAutoMLJob"} and denied, pn.unmet_report(outcomes)


def test_experiment_tracking_needs_trials_that_sagemaker_names(example):
    """With ``PipelineExperimentConfig`` (experiment = pipeline name, trial = execution id), Pipelines creates
    a trial named by the execution id and associates ``<job>-aws-<type>`` components: names without the
    team's prefix, which the team role's prefix-scoped grants do not cover."""
    stack = TEAM_STACKS[0]
    templates = copy.deepcopy(example.templates)
    (logical_id,) = [k for k, r in templates[stack]["Resources"].items() if r["Type"] == "AWS::SageMaker::Pipeline"
                     and not r["Properties"]["PipelineName"].endswith(MONITORING_PIPELINE_SUFFIX)]
    body = templates[stack]["Resources"][logical_id]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text, variables = body["Fn::Sub"]
    definition = json.loads(text)
    definition["PipelineExperimentConfig"] = {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }
    body["Fn::Sub"] = [json.dumps(definition), variables]
    world = World(templates, generated_names="concrete")
    needs = pn.pipeline_needs(world, stack, logical_id)
    actions = _by_action(needs)
    trial = f"arn:aws:sagemaker:us-east-1:123456789012:experiment-trial/{pn.EXECUTION_ID}"
    assert trial in {n.request.resource for n in actions["sagemaker:CreateTrial"]}
    components = {n.request.resource for n in actions["sagemaker:AssociateTrialComponent"]} - {trial}
    kinds = ("-aws-processing-job", "-aws-training-job", "-aws-transform-job")
    assert components and all(c.endswith(kinds) for c in components)
    denied = {(o.need.request.action, o.need.request.resource) for o in pn.unmet(pn.check(world, needs))}
    assert ("sagemaker:CreateTrial", trial) in denied
    assert ("sagemaker:AssociateTrialComponent", trial) in denied


def test_a_dependent_action_the_derivation_does_not_request_is_a_loud_gap(world, monkeypatch):
    """Were the reference to list another dependent action for a step's create, the derivation says so."""
    from tools.iam.reference import action_facts

    def with_extra(action):
        facts = action_facts(action)
        if action == "sagemaker:CreateProcessingJob":
            return dataclasses.replace(facts, dependent_actions=facts.dependent_actions + ("ec2:CreateNetworkInterface",))
        return facts

    monkeypatch.setattr(pn, "action_facts", with_extra)
    stack = next(s for s in world.templates if "-team-" in s)
    with pytest.raises(pn.NeedsError, match=r"\['ec2:CreateNetworkInterface'\] as dependent actions of "
                                            "sagemaker:CreateProcessingJob"):
        stack_pipeline_needs(world, stack)
