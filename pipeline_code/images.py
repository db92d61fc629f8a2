"""Container images the pipeline runs, per region, and the modules that run inside them.

One table (``IMAGES``) names every image and version; ``REGISTRY_ACCOUNTS`` gives the ECR account of each
image in each supported region. The tests check the table against the SageMaker Python SDK's
``image_uris.retrieve`` (the SDK is a test dependency only) and against ``stacks.regions``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerImage:
    """One image: ``placeholder`` is its name in the pipeline definition (``${placeholder}``)."""

    placeholder: str
    sdk_framework: str
    version: str
    repository: str
    tag: str
    purpose: str
    runs_project_code: bool = False
    python: tuple = ()
    libraries: tuple = ()


SKLEARN = ContainerImage(
    placeholder="SklearnImage",
    sdk_framework="sklearn",
    version="1.2-1",
    repository="sagemaker-scikit-learn",
    tag="1.2-1-cpu-py3",
    purpose="split, evaluation, bias and SHAP, experiment recording and Clarify-config processing jobs "
    "(`python3 -m pipeline_code.STEP`; the wheelhouse's libraries installed offline where a step needs them)",
    runs_project_code=True,
    python=(3, 9),
    libraries=(("pandas", "1.1.3"), ("numpy", "1.24.1"), ("scikit-learn", "1.2.1")),
)
XGBOOST = ContainerImage(
    placeholder="XGBoostImage",
    sdk_framework="xgboost",
    version="1.7-1",
    repository="sagemaker-xgboost",
    tag="1.7-1",
    purpose="built-in XGBoost: tuning, training with early stopping, batch transform and registered model",
)
CLARIFY = ContainerImage(
    placeholder="ClarifyImage",
    sdk_framework="clarify",
    version="1.0",
    repository="sagemaker-clarify-processing",
    tag="1.0",
    purpose="Clarify processing job: bias metrics and SHAP (`explainability: clarify` only)",
)
DEBUGGER = ContainerImage(
    placeholder="DebuggerImage",
    sdk_framework="debugger",
    version="latest",
    repository="sagemaker-debugger-rules",
    tag="latest",
    purpose="Debugger rule evaluator (LossNotDecreasing, Overfit; `explainability: clarify` only)",
)

IMAGES = (SKLEARN, XGBOOST, CLARIFY, DEBUGGER)

REGISTRY_ACCOUNTS = {
    "us-east-1": {"sklearn": "683313688378", "xgboost": "683313688378", "clarify": "205585389593", "debugger": "503895931360"},
    "us-east-2": {"sklearn": "257758044811", "xgboost": "257758044811", "clarify": "211330385671", "debugger": "915447279597"},
    "us-west-1": {"sklearn": "746614075791", "xgboost": "746614075791", "clarify": "740489534195", "debugger": "685455198987"},
    "us-west-2": {"sklearn": "246618743249", "xgboost": "246618743249", "clarify": "306415355426", "debugger": "895741380848"},
    "ca-central-1": {"sklearn": "341280168497", "xgboost": "341280168497", "clarify": "675030665977", "debugger": "519511493484"},
    "eu-central-1": {"sklearn": "492215442770", "xgboost": "492215442770", "clarify": "017069133835", "debugger": "482524230118"},
    "eu-north-1": {"sklearn": "662702820516", "xgboost": "662702820516", "clarify": "763603941244", "debugger": "314864569078"},
    "eu-west-1": {"sklearn": "141502667606", "xgboost": "141502667606", "clarify": "131013547314", "debugger": "929884845733"},
    "eu-west-2": {"sklearn": "764974769150", "xgboost": "764974769150", "clarify": "440796970383", "debugger": "250201462417"},
    "eu-west-3": {"sklearn": "659782779980", "xgboost": "659782779980", "clarify": "341593696636", "debugger": "447278800020"},
    "ap-northeast-1": {"sklearn": "354813040037", "xgboost": "354813040037", "clarify": "377024640650", "debugger": "430734990657"},
    "ap-northeast-2": {"sklearn": "366743142698", "xgboost": "366743142698", "clarify": "263625296855", "debugger": "578805364391"},
    "ap-south-1": {"sklearn": "720646828776", "xgboost": "720646828776", "clarify": "452307495513", "debugger": "904829902805"},
    "ap-southeast-1": {"sklearn": "121021644041", "xgboost": "121021644041", "clarify": "834264404009", "debugger": "972752614525"},
    "ap-southeast-2": {"sklearn": "783357654285", "xgboost": "783357654285", "clarify": "007051062584", "debugger": "184798709955"},
    "sa-east-1": {"sklearn": "737474898029", "xgboost": "737474898029", "clarify": "520018980103", "debugger": "818342061345"},
}

CONTAINER_MODULES = ("columns", "features", "problem", "split", "evaluate", "clarify_config", "bias", "explain",
                     "offline_install", "record_run", "plots", "definition", "images", "drift", "baseline", "capture",
                     "monitor", "monitoring_definition")
"""Modules of ``pipeline_code`` that must run in ``SKLEARN`` (they and everything they import)."""

CONTAINER_LIBRARIES = ("numpy", "pandas", "scipy", "sklearn", "smclarify", "shap", "functional", "mlflow",
                       "matplotlib", "boto3")
"""Third-party packages the container modules may import (the image's, and the wheelhouse's)."""


class UnsupportedRegionError(KeyError):
    """Raised for a region the image table does not cover."""


def image_uri(image: ContainerImage, region: str) -> str:
    """Full ECR URI of ``image`` in ``region``."""
    if region not in REGISTRY_ACCOUNTS:
        raise UnsupportedRegionError(f"no image table entry for region {region!r}")
    account = REGISTRY_ACCOUNTS[region][image.sdk_framework]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{image.repository}:{image.tag}"


def region_images(region: str) -> dict:
    """Placeholder name -> image URI for one region (the values the definition's placeholders take)."""
    return {image.placeholder: image_uri(image, region) for image in IMAGES}


def oldest_script_python() -> tuple:
    """The oldest Python among images that run project code: the syntax level the scripts must keep to."""
    return min(image.python for image in IMAGES if image.runs_project_code)


def markdown_table() -> str:
    """The image table as Markdown (docs/pipeline.md embeds it; a test keeps the two equal)."""
    lines = [
        "| placeholder | image (repository:tag) | SDK framework, version | Python and libraries | used for |",
        "| --- | --- | --- | --- | --- |",
    ]
    for image in IMAGES:
        if image.runs_project_code:
            runtime = f"Python {'.'.join(map(str, image.python))}; " + ", ".join(
                f"{name} {version}" for name, version in image.libraries
            )
        else:
            runtime = "no project code"
        lines.append(
            f"| `{image.placeholder}` | `{image.repository}:{image.tag}` | {image.sdk_framework} {image.version} "
            f"| {runtime} | {image.purpose} |"
        )
    return "\n".join(lines)
