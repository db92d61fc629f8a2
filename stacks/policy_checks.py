"""Security gates over synthesized CloudFormation templates, shared by the tests and `make synth`.

Each check takes ``{stack name: template dict}`` and returns a list of problems (empty when clean).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Templates = dict[str, dict[str, Any]]


def _resources(templates: Templates, resource_type: str | None = None) -> Iterator[tuple[str, str, dict]]:
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource_type is None or resource.get("Type") == resource_type:
                yield stack, logical_id, resource


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def policy_statements(templates: Templates) -> Iterator[tuple[str, str, dict]]:
    """Every IAM statement of every role, policy and managed policy (not resource policies)."""
    for stack, logical_id, resource in _resources(templates):
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props.get("PolicyDocument", {}))
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        for document in documents:
            for statement in _as_list(document.get("Statement", [])):
                yield stack, logical_id, statement


def no_aws_managed_full_access(templates: Templates) -> list[str]:
    problems = []
    for stack, logical_id, resource in _resources(templates, "AWS::IAM::Role"):
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            text = str(arn)
            if "FullAccess" in text or "AdministratorAccess" in text:
                problems.append(f"{stack}/{logical_id}: AWS-managed broad policy {text}")
    return problems


def _grants_pass_role(actions: list) -> bool:
    return any(a in ("*", "iam:*", "iam:PassRole", "iam:Pass*") for a in actions)


def pass_role_is_scoped(templates: Templates) -> list[str]:
    """iam:PassRole only on explicit role ARNs, with an iam:PassedToService condition."""
    problems = []
    for stack, logical_id, statement in policy_statements(templates):
        if statement.get("Effect") != "Allow" or not _grants_pass_role(_as_list(statement.get("Action", []))):
            continue
        for resource in _as_list(statement.get("Resource", [])):
            if isinstance(resource, str) and "*" in resource:
                problems.append(f"{stack}/{logical_id}: iam:PassRole on wildcard resource {resource!r}")
        condition = statement.get("Condition", {})
        if not any("iam:PassedToService" in keys for keys in condition.values()):
            problems.append(f"{stack}/{logical_id}: iam:PassRole without an iam:PassedToService condition")
    return problems


def buckets_are_locked_down(templates: Templates) -> list[str]:
    """Every bucket: all public access blocked, encrypted, and a policy that denies non-TLS requests."""
    problems = []
    for stack, template in templates.items():
        resources = template.get("Resources", {})
        tls_denied = set()
        for resource in resources.values():
            if resource["Type"] != "AWS::S3::BucketPolicy":
                continue
            props = resource["Properties"]
            for statement in _as_list(props["PolicyDocument"].get("Statement", [])):
                secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
                if statement.get("Effect") == "Deny" and str(secure).lower() == "false":
                    tls_denied.add(props["Bucket"].get("Ref") if isinstance(props["Bucket"], dict) else props["Bucket"])
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::S3::Bucket":
                continue
            props = resource.get("Properties", {})
            block = props.get("PublicAccessBlockConfiguration", {})
            flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
            if not all(block.get(f) is True for f in flags):
                problems.append(f"{stack}/{logical_id}: public access not fully blocked")
            if not props.get("BucketEncryption"):
                problems.append(f"{stack}/{logical_id}: no default encryption")
            if logical_id not in tls_denied:
                problems.append(f"{stack}/{logical_id}: no policy denying requests without TLS")
    return problems


def data_is_retained(templates: Templates) -> list[str]:
    """Buckets, registry groups, MLflow Apps (experiment history) and KMS keys survive stack deletion and replacement."""
    problems = []
    for kind in ("AWS::S3::Bucket", "AWS::SageMaker::ModelPackageGroup", "AWS::SageMaker::MlflowApp", "AWS::KMS::Key"):
        for stack, logical_id, resource in _resources(templates, kind):
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if resource.get(policy) != "Retain":
                    problems.append(f"{stack}/{logical_id} ({kind}): {policy} is {resource.get(policy)!r}, not Retain")
    return problems


ALL_CHECKS = (no_aws_managed_full_access, pass_role_is_scoped, buckets_are_locked_down, data_is_retained)


def run_all(templates: Templates) -> list[str]:
    return [problem for check in ALL_CHECKS for problem in check(templates)]
