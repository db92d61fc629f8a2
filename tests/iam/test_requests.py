"""The API call -> IAM requests mapping (tools/iam/requests.py) and the handler-test sufficiency check
(tests/lambdas/conftest.py): representative calls, and proof that the check fails when a grant is gone."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from moto import mock_aws

from tests.lambdas import conftest as sufficiency
from tools.iam.evaluate import evaluate
from tools.iam.requests import MappingError, Observations, iam_action, iam_requests

REGION = "us-east-1"
ACCOUNT = "123456789012"
SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlp-fraud-model-execution"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TAGS = [{"Key": "mlops:team", "Value": "fraud"}, {"Key": "mlops:managed-by", "Value": "sagemaker-mlops-platform"}]


def requests(service, operation, params, **kwargs):
    return iam_requests(service, operation, params, region=REGION, account=ACCOUNT, **kwargs)


def summary(found):
    return [(r.action, r.resource) for r in found]


# --- the mapping --------------------------------------------------------------------------------------


def test_create_model_with_a_role_and_tags_passes_the_role_and_tags_the_model():
    found = requests(
        "sagemaker",
        "CreateModel",
        {"ModelName": "mlp-fraud-fraud-detection-v1", "ExecutionRoleArn": ROLE, "Containers": [], "Tags": TAGS},
    )

    model = f"{SM}:model/mlp-fraud-fraud-detection-v1"
    assert summary(found) == [("sagemaker:CreateModel", model), ("iam:PassRole", ROLE), ("sagemaker:AddTags", model)]
    create, pass_role, add_tags = found
    assert create.context["aws:RequestTag/mlops:team"] == "fraud"
    assert create.context["aws:TagKeys"] == ["mlops:managed-by", "mlops:team"]
    assert pass_role.context == {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert add_tags.context["aws:RequestTag/mlops:managed-by"] == "sagemaker-mlops-platform"
    assert not any(k.startswith("aws:ResourceTag/") for k in create.context), "the new model has no tags yet"


def test_create_endpoint_config_with_a_key_describes_the_key_and_grants_for_sagemaker():
    found = requests(
        "sagemaker",
        "CreateEndpointConfig",
        {"EndpointConfigName": "mlp-fraud-fraud-detection-v1-abc", "ProductionVariants": [], "KmsKeyId": KEY},
    )

    config = f"{SM}:endpoint-config/mlp-fraud-fraud-detection-v1-abc"
    assert summary(found) == [
        ("sagemaker:CreateEndpointConfig", config),
        ("kms:DescribeKey", KEY),
        ("kms:CreateGrant", KEY),
    ]
    assert "kms:GrantIsForAWSResource" not in found[1].context
    assert found[2].context == {"kms:GrantIsForAWSResource": "true"}


def test_a_key_given_by_id_is_read_in_the_callers_account_and_an_alias_is_refused():
    by_id = requests("sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [], "KmsKeyId": "k-1"})
    assert by_id[1].resource == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"
    with pytest.raises(MappingError, match="alias"):
        requests("sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [], "KmsKeyId": "alias/x"})


def test_update_endpoint_is_authorized_on_the_endpoint_and_on_the_new_config():
    found = requests("sagemaker", "UpdateEndpoint", {"EndpointName": "mlp-fraud-fraud-detection", "EndpointConfigName": "cfg-2"})

    assert summary(found) == [
        ("sagemaker:UpdateEndpoint", f"{SM}:endpoint/mlp-fraud-fraud-detection"),
        ("sagemaker:UpdateEndpoint", f"{SM}:endpoint-config/cfg-2"),
    ]


def test_list_model_packages_is_authorized_on_star_even_for_one_group():
    found = requests("sagemaker", "ListModelPackages", {"ModelPackageGroupName": "mlp-fraud-fraud-detection", "MaxResults": 1})
    assert summary(found) == [("sagemaker:ListModelPackages", "*")]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetServiceQuota", {"ServiceCode": "sagemaker", "QuotaCode": "L-0A1B2C3D"}),
        ("RequestServiceQuotaIncrease", {"ServiceCode": "sagemaker", "QuotaCode": "L-0A1B2C3D", "DesiredValue": 4.0}),
    ],
)
def test_service_quota_calls_are_authorized_on_star_with_the_service_code(operation, params):
    [found] = requests("service-quotas", operation, params)
    assert (found.action, found.resource) == (f"servicequotas:{operation}", "*")
    assert found.context == {"servicequotas:service": "sagemaker"}


def test_publish_to_an_encrypted_topic_needs_the_key_too():
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlp-fraud-alerts"
    topic_keys = {f"arn:aws:sns:{REGION}:{ACCOUNT}:*": KEY}

    found = requests("sns", "Publish", {"TopicArn": topic, "Message": "x"}, topic_keys=topic_keys)
    unencrypted = requests("sns", "Publish", {"TopicArn": topic, "Message": "x"}, topic_keys={})

    assert summary(found) == [("sns:Publish", topic), ("kms:GenerateDataKey", KEY), ("kms:Decrypt", KEY)]
    assert summary(unencrypted) == [("sns:Publish", topic)]


def test_cloudwatch_is_signed_as_monitoring_but_authorized_as_cloudwatch():
    assert iam_action("cloudwatch", "GetMetricData") == "cloudwatch:GetMetricData"
    assert summary(requests("cloudwatch", "GetMetricData", {"MetricDataQueries": []})) == [("cloudwatch:GetMetricData", "*")]
    [put] = requests("cloudwatch", "PutMetricData", {"Namespace": "aws/sagemaker/x", "MetricData": []})
    assert put.context == {"cloudwatch:namespace": "aws/sagemaker/x"}


def test_delete_endpoint_carries_the_tags_the_test_showed():
    observed = Observations()
    observed.learn(
        "sagemaker", "CreateEndpoint", {"EndpointName": "mlp-fraud-idle", "EndpointConfigName": "c", "Tags": TAGS}, {},
        region=REGION, account=ACCOUNT,
    )

    [known] = requests("sagemaker", "DeleteEndpoint", {"EndpointName": "mlp-fraud-idle"}, observed=observed)
    [unknown] = requests("sagemaker", "DeleteEndpoint", {"EndpointName": "mlp-other"}, observed=observed)

    assert known.resource == f"{SM}:endpoint/mlp-fraud-idle"
    assert known.context == {"aws:ResourceTag/mlops:team": "fraud", "aws:ResourceTag/mlops:managed-by": "sagemaker-mlops-platform"}
    assert unknown.context == {}


def test_tags_are_learned_from_tag_listings_and_search_results():
    observed = Observations()
    endpoint = f"{SM}:endpoint/mlp-fraud-a"
    observed.learn("sagemaker", "ListTags", {"ResourceArn": endpoint}, {"Tags": TAGS[:1]}, region=REGION, account=ACCOUNT)
    assert observed.tags_of(endpoint) == {"mlops:team": "fraud"}
    search = {"Results": [{"Endpoint": {"EndpointName": "mlp-fraud-a", "EndpointArn": endpoint, "Tags": TAGS}}]}
    observed.learn("sagemaker", "Search", {"Resource": "Endpoint"}, search, region=REGION, account=ACCOUNT)
    assert observed.tags_of(endpoint) == {"mlops:team": "fraud", "mlops:managed-by": "sagemaker-mlops-platform"}


def test_put_parameter_with_tags_also_tags_the_parameter():
    found = requests(
        "ssm", "PutParameter", {"Name": "/mlops/reaped-endpoints/mlp-fraud-idle", "Value": "{}", "Type": "String", "Tags": TAGS}
    )

    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlops/reaped-endpoints/mlp-fraud-idle"
    assert summary(found) == [("ssm:PutParameter", parameter), ("ssm:AddTagsToResource", parameter)]
    assert found[1].context["aws:TagKeys"] == ["mlops:managed-by", "mlops:team"]
    overwrite = requests("ssm", "PutParameter", {"Name": "/mlops/x", "Value": "{}", "Overwrite": True})
    assert summary(overwrite) == [("ssm:PutParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlops/x")]


def test_delete_app_builds_the_app_arn_in_lower_case_with_the_space_name_for_space_apps():
    profile_app = requests(
        "sagemaker", "DeleteApp",
        {"DomainId": "d-abc123", "UserProfileName": "fraud-alice", "AppType": "JupyterServer", "AppName": "default"},
    )
    space_app = requests(
        "sagemaker", "DeleteApp", {"DomainId": "d-abc123", "SpaceName": "alice-lab", "AppType": "JupyterLab", "AppName": "default"}
    )

    assert summary(profile_app) == [("sagemaker:DeleteApp", f"{SM}:app/d-abc123/fraud-alice/jupyterserver/default")]
    assert summary(space_app) == [("sagemaker:DeleteApp", f"{SM}:app/d-abc123/alice-lab/jupyterlab/default")]


def test_deregister_scalable_target_needs_the_target_arn_the_test_saw():
    params = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/mlp-fraud-a/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    with pytest.raises(MappingError, match="DeregisterScalableTarget.*ResourceId"):
        requests("application-autoscaling", "DeregisterScalableTarget", params)

    observed = Observations()
    target = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0123abcd"
    observed.learn(
        "application-autoscaling", "DescribeScalableTargets", {"ServiceNamespace": "sagemaker"},
        {"ScalableTargets": [{**params, "ScalableTargetARN": target}]}, region=REGION, account=ACCOUNT,
    )
    found = requests("application-autoscaling", "DeregisterScalableTarget", params, observed=observed)
    assert summary(found) == [("application-autoscaling:DeregisterScalableTarget", target)]


def test_a_model_package_is_named_by_group_and_version_or_by_its_arn():
    arn = f"{SM}:model-package/mlp-fraud-fraud-detection/3"
    by_name = requests("sagemaker", "DescribeModelPackage", {"ModelPackageName": "mlp-fraud-fraud-detection/3"})
    by_arn = requests("sagemaker", "DescribeModelPackage", {"ModelPackageName": arn})
    assert summary(by_name) == summary(by_arn) == [("sagemaker:DescribeModelPackage", arn)]


def test_tagging_and_describe_stacks_are_authorized_on_the_resource_they_name():
    endpoint = f"{SM}:endpoint/mlp-fraud-a"
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlp-team-fraud/abc"
    assert summary(requests("sagemaker", "ListTags", {"ResourceArn": endpoint})) == [("sagemaker:ListTags", endpoint)]
    assert summary(requests("sagemaker", "AddTags", {"ResourceArn": endpoint, "Tags": TAGS})) == [("sagemaker:AddTags", endpoint)]
    # the reference lists cloudformation:ListStacks (authorized on *) as a dependent action of DescribeStacks
    assert summary(requests("cloudformation", "DescribeStacks", {"StackName": stack})) == [
        ("cloudformation:DescribeStacks", stack), ("cloudformation:ListStacks", "*")]
    assert summary(requests("cloudformation", "DescribeStacks", {})) == [
        ("cloudformation:DescribeStacks", "*"), ("cloudformation:ListStacks", "*")]


def test_a_registration_with_tags_also_tags_the_target_with_the_request_tags_only():
    """RegisterScalableTarget with Tags is also authorized as application-autoscaling:TagResource (a
    dependent action in the reference) on the target, whose request carries the tag keys only."""
    params = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/mlp-fraud-a/variant/AllTraffic",
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 2,
              "Tags": {"mlops:team": "fraud"}}
    target = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/(new-target)"
    register, tag = requests("application-autoscaling", "RegisterScalableTarget", params)
    assert (register.action, register.resource) == ("application-autoscaling:RegisterScalableTarget", target)
    assert (tag.action, tag.resource) == ("application-autoscaling:TagResource", target)
    assert tag.context == {"aws:RequestTag/mlops:team": "fraud", "aws:TagKeys": ["mlops:team"]}
    untagged = {k: v for k, v in params.items() if k != "Tags"}
    assert summary(requests("application-autoscaling", "RegisterScalableTarget", untagged)) == [
        ("application-autoscaling:RegisterScalableTarget", target)]


def test_a_dependent_action_that_is_neither_requested_nor_explained_is_a_gap(monkeypatch):
    from tools.iam import requests as mapping

    monkeypatch.delitem(mapping.DEPENDENT_ACTIONS_NOT_REQUESTED, "budgets:DescribeBudget->billing:GetBillingViewData")
    with pytest.raises(MappingError, match="billing:GetBillingViewData as a dependent action of budgets:ViewBudget"):
        requests("budgets", "DescribeBudget", {"AccountId": ACCOUNT, "BudgetName": "mlp-fraud"})


def test_gaps_are_loud():
    with pytest.raises(MappingError, match="EndpointName"):
        requests("sagemaker", "DescribeEndpoint", {})
    with pytest.raises(MappingError, match="no IAM action sagemaker:NoSuchOperation"):
        requests("sagemaker", "NoSuchOperation", {})
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"  # ACTION_NAMES, proven by the reference


# --- the sufficiency check ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return sufficiency.session_world(tmp_path_factory)


def role_policy_documents(world, construct_path: str):
    """A deep copy of the world's templates, and the policy documents in it of the role of the function at
    `construct_path` (to be changed in place)."""
    checker = sufficiency.Sufficiency(world)
    stack, function = checker.function(construct_path)
    role = world.function_role(stack, function)
    templates = copy.deepcopy(world.templates)
    documents = [
        body["Properties"]["PolicyDocument"] for body in templates[stack]["Resources"].values()
        if body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and {"Ref": role} in body["Properties"].get("Roles", [])
    ]
    return templates, documents


def without_action(world, construct_path: str, action: str):
    """A copy of `world` in which the role of the function at `construct_path` no longer has `action`."""
    templates, documents = role_policy_documents(world, construct_path)
    removed = 0
    for document in documents:
        kept = []
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                removed += 1
                actions = [a for a in actions if a != action]
                if not actions:
                    continue
                statement = {**statement, "Action": actions}
            kept.append(statement)
        document["Statement"] = kept
    assert removed, f"{action} is granted to no statement of {construct_path}'s role"
    return sufficiency.HandlerWorld(
        templates, account=world.account, region=world.region, generated_names=world.generated_names
    )


def deploy_scenario(monkeypatch) -> sufficiency.Recorder:
    """One approval delivered to the deploy handler (moto), recorded as the autouse fixture records it."""
    from botocore.client import BaseClient
    from deploy_on_approval import handler

    recorder = sufficiency.Recorder(account=ACCOUNT)
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder.wrap(BaseClient._make_api_call))
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="mlp-fraud-alerts")["TopicArn"]
        sagemaker.create_model_package_group(ModelPackageGroupName="mlp-fraud-fraud-detection")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="mlp-fraud-fraud-detection",
            InferenceSpecification={
                "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraud:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus="Approved",
        )["ModelPackageArn"]
        settings = deploy_settings(topic)
        body = json.dumps(
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "group": "mlp-fraud-fraud-detection",
                "version": 1,
                "status": "Approved",
                "arn": arn,
            }
        )
        result = handler.process_batch([{"messageId": "m-1", "body": body}], sagemaker, sns, settings)
    assert result == {"batchItemFailures": []}
    return recorder


def deploy_settings(topic_arn: str):
    from deploy_on_approval.settings import DeploySettings

    from stacks.config import Team
    from stacks.constructs.deploy_on_approval import use_cases_environment

    team = Team.model_validate(
        {"name": "fraud", "cost_center": "CC-1001", "use_cases": [{"name": "fraud-detection"}, {"name": "churn"}]}
    )
    return DeploySettings.from_env(
        {
            "PLATFORM_PREFIX": "mlp",
            "TEAM_NAME": "fraud",
            "COST_CENTER": "CC-1001",
            "MODEL_EXECUTION_ROLE_ARN": ROLE,
            "KMS_KEY_ARN": KEY,
            "DATA_CAPTURE_S3_URI": "s3://mlp-fraud-data/data-capture",
            "ALERT_TOPIC_ARN": topic_arn,
            "USE_CASES": use_cases_environment("mlp", team),
        }
    )


def test_only_handler_code_is_attributed(monkeypatch):
    recorder = deploy_scenario(monkeypatch)

    made = [(c.folder, c.operation) for c in recorder.calls]
    assert ("deploy_on_approval", "ListModelPackages") in made and ("deploy_on_approval", "CreateEndpoint") in made
    assert not any(op in ("CreateTopic", "CreateModelPackageGroup", "CreateModelPackage") for _, op in made), made
    assert recorder.observed.tags_of(f"{SM}:endpoint/mlp-fraud-fraud-detection")["mlops:managed-by"] == "sagemaker-mlops-platform"


def test_the_check_passes_the_scenario_and_fails_it_once_a_grant_is_removed(world, monkeypatch):
    deploy_function = sufficiency.FUNCTIONS["deploy_on_approval"]["handler"][0]
    recorder = deploy_scenario(monkeypatch)

    assert sufficiency.Sufficiency(world).failures(recorder.calls) == []

    broken = without_action(world, deploy_function, "sagemaker:ListModelPackages")
    failures = sufficiency.Sufficiency(broken).failures(recorder.calls)
    message = sufficiency.failure_message(failures)

    assert len(failures) == 1, message
    assert "deploy_on_approval made sagemaker.ListModelPackages(" in message
    assert '"ModelPackageGroupName": "mlp-fraud-fraud-detection"' in message
    assert "needing sagemaker:ListModelPackages on *:" in message
    assert "no statement of role mlp-team-fraud/DeployOnApproval/DeployFunctionRole" in message
    assert "allows it (implicit deny)" in message


def with_condition(world, construct_path: str, action: str, condition: dict):
    """A copy of `world` in which every statement of the function's role granting `action` also has `condition`."""
    templates, documents = role_policy_documents(world, construct_path)
    changed = 0
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                changed += 1
                statement["Condition"] = {**statement.get("Condition", {}), **condition}
    assert changed, f"{action} is granted to no statement of {construct_path}'s role"
    return sufficiency.HandlerWorld(
        templates, account=world.account, region=world.region, generated_names=world.generated_names
    )


@pytest.mark.parametrize("key", [
    "servicequotas:service",  # a real key, of another service
    "sagemaker:ResourceTeam",  # a key no service defines
    "sagemaker:ResourceTag/mlops:team",  # a resource key, on an action authorized on * (no resource, no tags)
])
def test_a_condition_on_a_key_the_reference_does_not_list_for_the_action_fails_the_check(world, monkeypatch, key):
    """The request carries only the keys the reference lists for its action: a condition on any other key
    never matches, whatever the call's parameters say, so the check fails the scenario."""
    deploy_function = sufficiency.FUNCTIONS["deploy_on_approval"]["handler"][0]
    recorder = deploy_scenario(monkeypatch)

    wrong = with_condition(world, deploy_function, "sagemaker:ListModelPackages", {"StringEquals": {key: "sagemaker"}})
    failures = sufficiency.Sufficiency(wrong).failures(recorder.calls)

    assert len(failures) == 1, failures
    assert "needing sagemaker:ListModelPackages on *:" in failures[0] and "implicit deny" in failures[0]


def test_the_quota_reads_are_denied_under_the_key_aws_does_not_set_for_them(world):
    """GetServiceQuota carries no servicequotas:service key in AWS's published reference: the quota role
    allows it unconditioned, and the same grant conditioned on the key (as it once was) is denied."""
    function = sufficiency.FUNCTIONS["instance_quotas"]["handler"][0]
    checker = sufficiency.Sufficiency(world)
    stack, name = checker.function(function)
    role = world.role_arn(stack, world.function_role(stack, name))
    [get] = requests("service-quotas", "GetServiceQuota", {"ServiceCode": "sagemaker", "QuotaCode": "L-0A1B2C3D"})
    [raise_quota] = requests("service-quotas", "RequestServiceQuotaIncrease",
                             {"ServiceCode": "sagemaker", "QuotaCode": "L-0A1B2C3D", "DesiredValue": 4.0})
    statements = world.role_statements(stack, world.function_role(stack, name))
    for request in (get, raise_quota):
        request.principal_arn = role
        assert evaluate(statements, request).allowed, request
    conditioned = with_condition(world, function, "servicequotas:GetServiceQuota",
                                 {"StringEquals": {"servicequotas:service": "sagemaker"}})
    assert not evaluate(conditioned.role_statements(stack, world.function_role(stack, name)), get).allowed
    # the same key is listed for RequestServiceQuotaIncrease: there it limits the increase to SageMaker
    other_service = requests("service-quotas", "RequestServiceQuotaIncrease",
                             {"ServiceCode": "ec2", "QuotaCode": "L-1216C47A", "DesiredValue": 4.0})[0]
    assert not evaluate(statements, other_service).allowed


def test_an_extra_request_names_why_the_call_needs_it(world, monkeypatch):
    deploy_function = sufficiency.FUNCTIONS["deploy_on_approval"]["handler"][0]
    recorder = deploy_scenario(monkeypatch)

    broken = without_action(world, deploy_function, "iam:PassRole")
    [failure] = sufficiency.Sufficiency(broken).failures(recorder.calls)

    assert failure.startswith("deploy_on_approval made sagemaker.CreateModel(")
    assert f"needing iam:PassRole on {ROLE} (CreateModel passes ExecutionRoleArn to sagemaker.amazonaws.com)" in failure


# --- a registry in another account (tools/iam/requests.py, _cross_account_registry_requests) --------------

REGISTRY_ACCOUNT = "111111111111"
REGISTRY = f"arn:aws:sagemaker:{REGION}:{REGISTRY_ACCOUNT}"
GROUP = "mlp-fraud-fraud-detection"


@pytest.mark.parametrize("group", [GROUP, f"{SM}:model-package-group/{GROUP}"], ids=["name", "own ARN"])
def test_list_model_packages_of_an_own_group_stays_on_star(group):
    found = requests("sagemaker", "ListModelPackages", {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved"})
    assert summary(found) == [("sagemaker:ListModelPackages", "*")]


def test_list_model_packages_of_another_accounts_group_is_requested_on_its_versions_there():
    found = requests("sagemaker", "ListModelPackages",
                     {"ModelPackageGroupName": f"{REGISTRY}:model-package-group/{GROUP}", "MaxResults": 1})
    assert summary(found) == [("sagemaker:ListModelPackages", f"{REGISTRY}:model-package/{GROUP}/*")]
    assert "another account" in found[0].reason
    # another region and partition of the ARN are kept as they are
    china = iam_requests("sagemaker", "ListModelPackages",
                         {"ModelPackageGroupName": f"arn:aws-cn:sagemaker:cn-north-1:{REGISTRY_ACCOUNT}:model-package-group/g"},
                         region="cn-north-1", account=ACCOUNT, partition="aws-cn")
    assert summary(china) == [("sagemaker:ListModelPackages",
                               f"arn:aws-cn:sagemaker:cn-north-1:{REGISTRY_ACCOUNT}:model-package/g/*")]


def _create_model(container: dict, key: str = "Containers") -> dict:
    value = [container] if key == "Containers" else container
    return {"ModelName": "mlp-fraud-fraud-detection-v3", "ExecutionRoleArn": ROLE, key: value}


@pytest.mark.parametrize("key", ["Containers", "PrimaryContainer"])
def test_create_model_from_another_accounts_version_is_also_requested_on_that_version(key):
    version = f"{REGISTRY}:model-package/{GROUP}/3"
    found = requests("sagemaker", "CreateModel", _create_model({"ModelPackageName": version}, key))
    assert summary(found) == [
        ("sagemaker:CreateModel", f"{SM}:model/mlp-fraud-fraud-detection-v3"),
        ("sagemaker:CreateModel", version),
        ("iam:PassRole", ROLE),
    ]
    assert "another account" in found[1].reason


@pytest.mark.parametrize("container", [
    {"ModelPackageName": f"{SM}:model-package/{GROUP}/3"},  # a version of the caller's own account
    {"ModelPackageName": GROUP},  # by name: the caller's own registry
    {"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/model.tar.gz"},
], ids=["own version", "by name", "no version"])
def test_create_model_from_an_own_version_or_an_image_requests_nothing_more(container):
    found = requests("sagemaker", "CreateModel", _create_model(container))
    assert summary(found) == [("sagemaker:CreateModel", f"{SM}:model/mlp-fraud-fraud-detection-v3"), ("iam:PassRole", ROLE)]


def test_other_calls_naming_another_accounts_registry_are_mapped_as_before():
    version = f"{REGISTRY}:model-package/{GROUP}/3"
    assert summary(requests("sagemaker", "DescribeModelPackage", {"ModelPackageName": version})) == [
        ("sagemaker:DescribeModelPackage", version)]
    group = f"{REGISTRY}:model-package-group/{GROUP}"
    assert summary(requests("sagemaker", "DescribeModelPackageGroup", {"ModelPackageGroupName": group})) == [
        ("sagemaker:DescribeModelPackageGroup", group)]
