"""Execute a SageMaker pipeline definition here, step by step, against a local S3.

``run_pipeline(text, s3=..., images=..., parameters=..., workdir=...)`` walks the definition's steps in
dependency order (``Get Steps.X`` references and ``DependsOn``); a condition runs the branch it chooses
and marks the other one not run; a ``Fail`` step or a failing step ends the run.

Processing steps whose container entrypoint is ``python3 -m pipeline_code.<module>`` run that module in a
subprocess as the container would: each input is downloaded with S3 semantics to its ``LocalPath`` under a
per-step root that stands for ``/``, the arguments and environment are remapped to that root, and
``PYTHONPATH`` points at the *downloaded* code input, so what runs is what the stack uploaded. Outputs
are uploaded at the end of the step. AWS-managed steps (AutoML, tuning, training, transform, the Clarify
image) run the stand-ins of ``tools.pipeline_runtime.stand_ins``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tools.pipeline_runtime import stand_ins
from tools.pipeline_runtime.expressions import Context, ExpressionError, parameter_values, references
from tools.pipeline_runtime.s3 import LocalS3, TransferError, split_uri

CONTAINER_ROOT = "/opt/ml"


class StepFailed(RuntimeError):
    """A step that failed; the run stops."""


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "NotRun"
    seconds: float = 0.0
    properties: dict = field(default_factory=dict)
    detail: str = ""
    module: str = ""
    arguments: list = field(default_factory=list)


@dataclass
class RunResult:
    status: str
    execution_id: str
    steps: list
    failed_step: str = ""
    reason: str = ""
    registered: list = field(default_factory=list)
    reports: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    s3_keys: list = field(default_factory=list)
    """Every key in the run's bucket when it ended (set by ``tools.local_run.execute``; the local S3 closes after)."""

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)

    def summary(self) -> str:
        lines = [f"pipeline execution {self.execution_id}: {self.status}"]
        for record in self.steps:
            if record.status != "NotRun":
                detail = f"  {record.detail}" if record.detail else ""
                lines.append(f"  {record.name:<26} {record.type:<14} {record.status:<10} {record.seconds:6.1f} s{detail}")
        if self.failed_step:
            lines.append(f"failed at {self.failed_step}: {self.reason}")
        for package in self.registered:
            lines.append(f"registered in {package['ModelPackageGroupName']}: {package['ModelPackageDescription']}")
        if self.metrics:
            lines.append("test metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items()))
        for name, path in sorted(self.reports.items()):
            lines.append(f"  {name}: {path}")
        return "\n".join(lines)


def _all_steps(steps: list) -> list:
    found = []
    for step in steps:
        found.append(step)
        if step["Type"] == "Condition":
            found += _all_steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))
    return found


def _dependencies(step: dict) -> set:
    own = step["Arguments"].get("Conditions", step["Arguments"]) if step["Type"] == "Condition" else step["Arguments"]
    return references(own) | set(step.get("DependsOn", []))


class Execution:
    """One run of a definition."""

    def __init__(self, definition: dict, s3: LocalS3, images: dict, parameters: dict, workdir: Path,
                 execution_id: str, environment: dict | None = None) -> None:
        self.definition = definition
        self.s3 = s3
        self.images = images
        self.workdir = Path(workdir).resolve()  # the remapped paths are used from each step's own folder
        arn = f"arn:aws:sagemaker:local:000000000000:pipeline/local/execution/{execution_id}"
        self.context = Context(parameter_values(definition.get("Parameters", []), parameters), execution_id, arn,
                               lambda uri: json.loads(s3.read_text(uri)))
        self.execution_id = execution_id
        self.records = {s["Name"]: StepRecord(s["Name"], s["Type"]) for s in _all_steps(definition["Steps"])}
        self.models: dict = {}
        self.registered: list = []
        # What the AutoML and tuning jobs' List* calls would answer, for the recording step (MLOPS_LOCAL_JOBS_FILE).
        self.jobs_file = self.workdir / "jobs.json"
        self.jobs: dict = {}
        # A step's own AWS calls (the monitoring job reads data capture, publishes metrics) go to the local server.
        self.environment = {"MLOPS_LOCAL_JOBS_FILE": str(self.jobs_file), **s3.aws_environment(), **(environment or {})}

    def run(self) -> RunResult:
        try:
            self.run_steps(self.definition["Steps"])
        except StepFailed as failure:
            name, reason = failure.args
            return self.result("Failed", name, reason)
        return self.result("Succeeded")

    def result(self, status: str, failed: str = "", reason: str = "") -> RunResult:
        return RunResult(status, self.execution_id, list(self.records.values()), failed, reason, self.registered)

    def run_steps(self, steps: list) -> None:
        """Run ``steps`` in dependency order; the branch a condition chooses joins the same queue, so a step
        in a branch waits for the steps outside it that it refers to, as in SageMaker's graph."""
        pending = list(steps)
        names = {s["Name"] for s in steps}
        while pending:
            ready = [s for s in pending
                     if all(self.records[d].status == "Succeeded" for d in _dependencies(s) & names)]
            if not ready:
                raise StepFailed(pending[0]["Name"], "its dependencies form a cycle or failed")
            for step in ready:
                pending.remove(step)
                branch = self.run_step(step)
                pending += branch
                names |= {s["Name"] for s in branch}

    def run_step(self, step: dict) -> list:
        """Run one step; returns the steps of the branch a condition chose (none for other steps)."""
        record = self.records[step["Name"]]
        started = time.perf_counter()
        try:
            runner = getattr(self, f"step_{step['Type'].lower()}", None)
            if runner is None:
                raise StepFailed(step["Name"], f"step type {step['Type']!r} is not supported")
            record.properties = runner(step, record) or {}
        except StepFailed as failure:
            record.status = "Failed"
            record.detail = str(failure.args[1])[:300]
            raise
        except (ExpressionError, TransferError, stand_ins.StandInError, OSError, ValueError, KeyError) as error:
            record.status = "Failed"
            record.detail = str(error)[:300]
            raise StepFailed(step["Name"], str(error))
        finally:
            record.seconds = time.perf_counter() - started
        if record.status == "NotRun":
            record.status = "Succeeded"
        self.context.steps[step["Name"]] = record.properties
        if step["Type"] == "Condition":
            return list(step["Arguments"]["IfSteps" if record.properties["Outcome"] else "ElseSteps"])
        return []

    def job_name(self, step: str) -> str:
        """The name SageMaker Pipelines gives a step's job: ``pipelines-<execution id>-<step>``."""
        return f"pipelines-{self.execution_id}-{step}"[:63]

    def record_jobs(self, job_name: str, candidates: list) -> None:
        self.jobs[job_name] = candidates
        self.jobs_file.write_text(json.dumps(self.jobs, indent=2, sort_keys=True))

    def step_root(self, name: str) -> Path:
        root = self.workdir / "steps" / name
        root.mkdir(parents=True, exist_ok=True)
        return root

    @staticmethod
    def remap(value, root: Path):
        if isinstance(value, str) and value.startswith(CONTAINER_ROOT):
            return str(root) + value
        return value

    # --- step types -------------------------------------------------------------------------------

    def step_processing(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        root = self.step_root(step["Name"])
        inputs = {}
        for item in arguments.get("ProcessingInputs", []):
            source = item["S3Input"]
            local = Path(self.remap(source["LocalPath"], root))
            self.s3.download_input(source["S3Uri"], local, source.get("S3DataType", "S3Prefix"),
                                   source.get("S3InputMode", "File"))
            inputs[source["LocalPath"]] = local
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            Path(self.remap(output["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
        app = arguments["AppSpecification"]
        entrypoint = app.get("ContainerEntrypoint")
        if entrypoint:
            self.run_module(step["Name"], entrypoint, app.get("ContainerArguments", []),
                            arguments.get("Environment", {}), root, record)
        elif app["ImageUri"] == self.images.get("clarify"):
            self.run_clarify(inputs, outputs, root)
        else:
            raise StepFailed(step["Name"], f"no local runner for image {app['ImageUri']!r} without an entrypoint")
        described = {}
        for output in outputs:
            self.s3.upload_output(Path(self.remap(output["S3Output"]["LocalPath"], root)), output["S3Output"]["S3Uri"])
            described[output["OutputName"]] = {"S3Output": {"S3Uri": output["S3Output"]["S3Uri"]}}
        files = {}
        for property_file in step.get("PropertyFiles", []):
            uri = described[property_file["OutputName"]]["S3Output"]["S3Uri"].rstrip("/")
            files[property_file["PropertyFileName"]] = f"{uri}/{property_file['FilePath']}"
        self.context.property_files[step["Name"]] = files
        return {"ProcessingOutputConfig": {"Outputs": described}}

    def run_module(self, name: str, entrypoint: list, arguments: list, environment: dict, root: Path,
                   record: StepRecord) -> None:
        if entrypoint[:2] != ["python3", "-m"] or not entrypoint[2].startswith("pipeline_code."):
            raise StepFailed(name, f"entrypoint {entrypoint} is not python3 -m pipeline_code.<module>")
        env = {key: str(value) for key, value in os.environ.items() if key not in ("PYTHONPATH",)}
        env.update({key: self.remap(str(value), root) for key, value in environment.items()})
        env.update(self.environment)
        record.module = entrypoint[2]
        record.arguments = [self.remap(str(a), root) for a in arguments]
        command = [sys.executable, "-m", entrypoint[2], *record.arguments]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        (root / "stdout.txt").write_text(done.stdout)
        (root / "stderr.txt").write_text(done.stderr)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise StepFailed(name, f"{entrypoint[2]} exited {done.returncode}: {tail}")
        record.detail = (done.stdout.strip().splitlines() or [""])[-1][:160]

    def run_clarify(self, inputs: dict, outputs: list, root: Path) -> None:
        config = stand_ins.clarify_config_file(inputs["/opt/ml/processing/input/config"])
        dataset = stand_ins.read_clarify_dataset(inputs["/opt/ml/processing/input/data"], config["headers"])
        model_name = config["predictor"]["model_name"]
        if model_name not in self.models:
            raise stand_ins.StandInError(f"the predictor names model {model_name!r}, which no step created")
        model, environment = self.models[model_name]
        analysis = stand_ins.clarify(config, dataset, model, environment)
        target = Path(self.remap(outputs[0]["S3Output"]["LocalPath"], root))
        (target / "analysis.json").write_text(json.dumps(analysis, indent=2, sort_keys=True))

    def _channel_files(self, uri: str, root: Path, name: str) -> list:
        return self.s3.download_input(uri, root / "channels" / name)

    def step_automl(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        root = self.step_root(step["Name"])
        channels = {c["ChannelType"]: c for c in arguments["InputDataConfig"]}
        targets = {c["TargetAttributeName"] for c in channels.values()}
        if set(channels) != {"training", "validation"} or len(targets) != 1:
            raise stand_ins.StandInError(f"AutoML needs training and validation channels with one target, got {channels}")
        files = {kind: self._channel_files(c["DataSource"]["S3DataSource"]["S3Uri"], root, kind)
                 for kind, c in channels.items()}
        model = stand_ins.train_automl(files["training"], files["validation"], targets.pop(), arguments["ProblemType"])
        artifact = stand_ins.pack(model, root / "model")
        uri = f"{arguments['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{step['Name']}/model.tar.gz"
        self.s3.upload_output(artifact.parent, uri.rsplit("/", 1)[0])
        environment = {key: f"local-{key.lower()}" for key in (
            "MODEL_NAME", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "SAGEMAKER_INFERENCE_SUPPORTED",
            "SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")}
        record.detail = f"{arguments['ProblemType']} on {len(model.features)} features"
        job_name = self.job_name(step["Name"])
        self.record_jobs(job_name, [{"name": f"{job_name}-stand-in", "status": "Completed",
                                     "metric": arguments["AutoMLJobObjective"]["MetricName"], "value": None}])
        return {"AutoMLJobName": job_name, "BestCandidate": {"InferenceContainers": [
            {"Image": "local/automl-stand-in", "ModelDataUrl": uri, "Environment": environment}]}}

    def _xgboost_channels(self, job: dict, root: Path) -> dict:
        image = job["AlgorithmSpecification"]["TrainingImage"]
        if image != self.images.get("xgboost"):
            raise stand_ins.StandInError(f"no stand-in for training image {image}")
        channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
        if "train" not in channels:
            raise stand_ins.StandInError(f"the XGBoost job has no train channel, only {sorted(channels)}")
        return {name: self._channel_files(c["DataSource"]["S3DataSource"]["S3Uri"], root, name)
                for name, c in channels.items()}

    def step_tuning(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        config = arguments["HyperParameterTuningJobConfig"]
        job = arguments["TrainingJobDefinition"]
        files = self._xgboost_channels(job, self.step_root(step["Name"]))
        if "validation" not in files:
            raise stand_ins.StandInError("a tuning job needs a validation channel for its objective metric")
        objective = config["HyperParameterTuningJobObjective"]
        best, score, scores = stand_ins.tune_xgboost(
            files["train"], files["validation"], job.get("StaticHyperParameters", {}), config["ParameterRanges"],
            objective, int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]))
        record.detail = f"{len(scores)} candidates, best {objective['MetricName']} {score:.4f}"
        job_name = self.job_name(step["Name"])
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=objective["Type"] == "Maximize")
        self.record_jobs(job_name, [{"name": f"{job_name}-{i + 1:03d}", "status": "Completed",
                                     "metric": objective["MetricName"], "value": scores[i]} for i in order])
        return {"HyperParameterTuningJobName": job_name, "BestTrainingJob": {"TunedHyperParameters": best,
                                    "FinalHyperParameterTuningJobObjectiveMetric": {"Value": score}}}

    def step_training(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        root = self.step_root(step["Name"])
        files = self._xgboost_channels(arguments, root)
        model = stand_ins.train_xgboost(files["train"], {k: str(v) for k, v in arguments["HyperParameters"].items()},
                                        files.get("validation"))
        artifact = stand_ins.pack(model, root / "model")
        base = f"{arguments['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{step['Name']}/output"
        self.s3.upload_output(artifact.parent, base)
        return {"TrainingJobName": self.job_name(step["Name"]),
                "ModelArtifacts": {"S3ModelArtifacts": f"{base}/model.tar.gz"}}

    def step_model(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        container = arguments["PrimaryContainer"]
        root = self.step_root(step["Name"])
        archive = root / "model.tar.gz"
        bucket, key = split_uri(container["ModelDataUrl"])
        self.s3.client.download_file(bucket, key, str(archive))
        name = f"pipelines-{self.execution_id}-{step['Name']}".lower()
        self.models[name] = (stand_ins.unpack(archive), container.get("Environment", {}))
        return {"ModelName": name}

    def step_transform(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        model_name = arguments["ModelName"]
        if model_name not in self.models:
            raise stand_ins.StandInError(f"model {model_name!r} does not exist")
        model, environment = self.models[model_name]
        source = arguments["TransformInput"]["DataSource"]["S3DataSource"]
        root = self.step_root(step["Name"])
        files = self.s3.download_input(source["S3Uri"], root / "input", source.get("S3DataType", "S3Prefix"))
        pairs = [(path, path.relative_to(root / "input").as_posix()) for path in files]
        output = arguments["TransformOutput"]["S3OutputPath"]
        results = root / "output"
        for relative, text in stand_ins.transform(model, environment, pairs).items():
            target = results / f"{relative}.out"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.s3.upload_output(results, output)
        return {"TransformOutput": {"S3OutputPath": output}}

    def step_condition(self, step: dict, record: StepRecord) -> dict:
        """Evaluate the conditions; ``run_step`` then runs the branch they choose."""
        outcome = all(self.context.condition(c) for c in step["Arguments"]["Conditions"])
        record.detail = f"outcome {outcome}"
        return {"Outcome": outcome}

    def step_fail(self, step: dict, record: StepRecord) -> dict:
        message = self.context.value(step["Arguments"].get("ErrorMessage", ""))
        raise StepFailed(step["Name"], message)

    def step_registermodel(self, step: dict, record: StepRecord) -> dict:
        arguments = self.context.value(step["Arguments"])
        for section in ("ModelMetrics", "DriftCheckBaselines"):
            for kind, metric in arguments.get(section, {}).items():
                for part in metric.values():
                    uri = part["S3Uri"]
                    if not self.s3.exists(uri):
                        raise stand_ins.StandInError(f"{section} {kind} points at {uri}, which does not exist")
                    try:
                        json.loads(self.s3.read_text(uri))
                    except json.JSONDecodeError as error:
                        raise stand_ins.StandInError(f"{section} {kind} at {uri} is not JSON: {error}")
        self.registered.append(arguments)
        version = len(self.registered)
        record.detail = f"version {version}, {arguments.get('ModelApprovalStatus')}"
        return {"ModelPackageArn": f"arn:aws:sagemaker:local:000000000000:model-package/"
                                   f"{arguments['ModelPackageGroupName']}/{version}"}


def run_pipeline(definition_text: str, *, s3: LocalS3, images: dict, parameters: dict | None = None,
                 workdir: Path, execution_id: str | None = None, environment: dict | None = None) -> RunResult:
    """Run the definition; ``images`` maps ``sklearn``, ``xgboost`` and ``clarify`` to the URIs it names.
    ``execution_id`` defaults to a fresh 12-character id, as SageMaker gives every execution; ``environment``
    overrides the processing steps' environment (the local MLflow store instead of the team's App)."""
    execution_id = execution_id or uuid.uuid4().hex[:12]
    definition = json.loads(definition_text)
    execution = Execution(definition, s3, images, parameters or {}, Path(workdir), execution_id,
                          environment=environment)
    return execution.run()
