"""Run a use case's deployed pipeline definition here: ``make local-run USE_CASE=<name>``.

1. Synthesize the platform from the config, offline, as ``cdk synth`` does.
2. Take the use case's ``AWS::SageMaker::Pipeline`` from its team's template and resolve it for a stand-in
   account, as CloudFormation would: bucket, roles, key, registry group and the region's images.
3. Start a local S3 (moto's server), upload ``pipeline_code/`` where the stack's code upload puts it and the
   use case's example data (or ``--data-dir``) where the pipeline reads by default.
4. Execute the definition with ``tools.pipeline_runtime``: the project's step scripts run as the processing
   container runs them; only AWS-managed steps (AutoML, tuning, training, transform, Clarify) are stand-ins.
5. Print a summary (steps, times, metrics, where the reports are) and write the problem type's plot. The
   recording steps log the execution's MLflow run to ``<out>/mlflow/mlflow.db`` (open it with
   ``mlflow ui --backend-store-uri sqlite:///<out>/mlflow/mlflow.db``).

CLI: ``python -m tools.local_run --use-case NAME --out DIR [--rows N] [--seed S] [--param Name=Value ...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from pipeline_code import examples, images
from pipeline_code.definition import WHEELHOUSE_PREFIX
from stacks.config import ConfigError, load_config
from stacks.constructs.experiment_pipeline import CODE_KEY_PREFIX
from tools.iam import pipeline_needs
from tools.iam.template import World
from tools.pipeline_runtime import LocalS3, RunResult, collect, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = ROOT / "pipeline_code"
CODE_PREFIX = f"{CODE_KEY_PREFIX}/"  # where the stack's code upload puts pipeline_code/
ACCOUNT = "123456789012"
DEFAULT_REGION = "eu-west-1"
IMAGE_KINDS = {images.SKLEARN.placeholder: "sklearn", images.XGBOOST.placeholder: "xgboost",
               images.CLARIFY.placeholder: "clarify"}


class LocalRunError(ValueError):
    """A use case or option the local run cannot honour."""


def find_use_case(config, name: str):
    """(team, use case) named ``name``; raises naming the use cases that exist."""
    for team in config.teams:
        for use_case in team.use_cases:
            if use_case.name == name:
                return team, use_case
    known = [u.name for t in config.teams for u in t.use_cases]
    raise LocalRunError(f"no use case {name!r} in the config; use one of {', '.join(known) or '(none)'}")


def synthesized_templates(config) -> dict:
    """Stack name -> template of the whole platform (no policy gates: this is not a deploy check)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_platform

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir, context={k: v for k, v in context.items() if k != "config"})
        platform = build_platform(config, app, policy_gates=False)
        assembly = app.synth()
        return {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in platform.stacks}


def deployed_definition(templates: dict, config, team, use_case, region: str) -> tuple:
    """(definition text as CloudFormation would deploy it, bucket name, region images) of the use case."""
    from stacks.app_builder import team_stack_name

    world = World(templates, account=ACCOUNT, region=region, generated_names="concrete")
    stack = team_stack_name(config, team.name)
    group = f"{config.prefix}-{team.name}-{use_case.name}"
    for pipeline in pipeline_needs.pipelines_of(world, stack):
        if pipeline.name == group:
            text = json.dumps(pipeline.definition)
            bucket = world.resolve(stack, {"Ref": next(
                r.logical_id for r in world.resources("AWS::S3::Bucket")
                if r.stack == stack and r.logical_id.startswith("DataBucket"))})
            return text, bucket, images.region_images(region)
    raise LocalRunError(f"stack {stack} has no pipeline named {group}")


def parse_parameters(pairs: list) -> dict:
    values = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise LocalRunError(f"parameter {pair!r} is not Name=Value")
        values[name] = value
    return values


def example_tables(use_case_name: str, rows: int, seed: int) -> dict:
    """File name -> CSV text of the use case's example data."""
    try:
        return examples.tables(use_case_name, rows, seed)
    except KeyError as error:
        raise LocalRunError(
            f"{error.args[0]}; pass the folder of the use case's CSV files: make local-run "
            f"USE_CASE={use_case_name} DATA_DIR=<folder> (python -m tools.local_run: --data-dir <folder>)"
        ) from None


def local_tracking(out: Path) -> dict:
    """The recording steps log to a local MLflow store under ``out`` instead of the team's MLflow App."""
    store = (out / "mlflow").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
            "MLOPS_ARTIFACT_LOCATION": (store / "artifacts").as_uri()}


def execute(text: str, bucket: str, region_images: dict, out: Path, *, tables: dict | None = None,
            data_dir: Path | None = None, parameters: dict | None = None) -> RunResult:
    """Run a resolved definition against a fresh local S3 holding ``bucket``: the pipeline code where the
    stack uploads it, the data (``tables`` or the files of ``data_dir``) under ``InputDataUri``."""
    definition = json.loads(text)
    data_uri = next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == "InputDataUri")
    data_prefix = data_uri.split("/", 3)[3]
    kinds = {IMAGE_KINDS[placeholder]: uri for placeholder, uri in region_images.items() if placeholder in IMAGE_KINDS}
    out.mkdir(parents=True, exist_ok=True)
    with LocalS3(bucket) as s3:
        s3.upload_folder(CODE_DIR, CODE_PREFIX, exclude=("__pycache__", "*.pyc"))
        # The steps run under this interpreter, which has the wheelhouse's libraries already (the offline
        # install under the container's Python is proven by tests/pipeline/test_offline_install.py): the
        # wheelhouse input holds only its pin list here.
        s3.put_text(f"{WHEELHOUSE_PREFIX}/requirements.txt", (CODE_DIR / "container_requirements.txt").read_text())
        if data_dir is not None:
            s3.upload_folder(data_dir, data_prefix)
        for name, body in (tables or {}).items():
            s3.put_text(f"{data_prefix}{name}", body)
        result = run_pipeline(text, s3=s3, images=kinds, parameters=parameters or {}, workdir=out,
                              environment=local_tracking(out))
        collect(result, s3, out)
        result.s3_keys = s3.keys(bucket, "")
        return result


def run_use_case(config, templates: dict, use_case_name: str, out: Path, rows: int = 3000, seed: int = 0,
                 parameters: dict | None = None, data_dir: Path | None = None) -> RunResult:
    """Execute the use case's definition from ``templates`` (the synthesized platform) into ``out``."""
    team, use_case = find_use_case(config, use_case_name)
    text, bucket, region_images = deployed_definition(templates, config, team, use_case,
                                                      config.region or DEFAULT_REGION)
    tables = None if data_dir is not None else example_tables(use_case.name, rows, seed)
    return execute(text, bucket, region_images, out, tables=tables, data_dir=data_dir, parameters=parameters)


def run(config_path: Path, use_case_name: str, out: Path, **options) -> RunResult:
    """Load the config, synthesize the platform and run the use case's definition (options of ``run_use_case``)."""
    config = load_config(config_path)
    find_use_case(config, use_case_name)
    return run_use_case(config, synthesized_templates(config), use_case_name, out, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.local_run", description=__doc__.split("\n")[0])
    parser.add_argument("--use-case", required=True, help="use case whose pipeline runs (a name in the config)")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "platform.yaml",
                        help="platform config (default: config/platform.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: out/local-run/<use case>)")
    parser.add_argument("--rows", type=int, default=3000, help="rows of example data (default: 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the example data (default: 0)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of CSV files to use instead of the example data")
    parser.add_argument("--param", action="append", default=[], metavar="Name=Value",
                        help="pipeline parameter override (repeatable), as for `cli start --param`")
    return parser


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or ROOT / "out" / "local-run" / args.use_case
    try:
        result = run(args.config, args.use_case, out, rows=args.rows, seed=args.seed,
                     parameters=parse_parameters(args.param), data_dir=args.data_dir)
    except (ConfigError, LocalRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0 if result.status == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
