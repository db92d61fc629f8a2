"""A pipeline execution's state as a progress view: steps done of the steps its path holds, and for each
running step its elapsed time and the latest metric of its job (boto3 clients are arguments).

Counting rule. ``done`` is the started steps that ended (Succeeded, Failed or Stopped). ``total`` is the
steps of the path the execution is on, read from the execution's own definition
(DescribePipelineDefinitionForExecution): every top-level step counts, and a Condition step adds the steps
of the branch it took (its ``Metadata.Condition.Outcome`` in ListPipelineExecutionSteps: ``True`` is
``IfSteps``, ``False`` is ``ElseSteps``), recursively. An undecided condition adds its longer branch, and one
that failed adds none, so ``total`` never grows: it falls as conditions decide, and an execution that stops
early ends with ``done`` below ``total``. Steps that started but are missing from the definition count too.

Metrics of running steps (from the step's ``Metadata`` job ARN):
- training job: the ``validation:<eval_metric>`` metric (or the tuning objective the job was given). With a
  CloudWatch client, its series in ``/aws/sagemaker/TrainingJobs`` (dimension ``TrainingJobName``, 1-minute
  averages of the values the algorithm logs each boosting round) gives the latest and best value; without
  one, or if CloudWatch refuses, DescribeTrainingJob's ``FinalMetricDataList`` (the latest value);
- tuning job: completed / maximum training jobs, running and stopped ones, and the best objective so far;
- AutoML job: its secondary status and the best candidate's objective so far (DescribeAutoMLJobV2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

TERMINAL_STEP_STATES = ("Succeeded", "Failed", "Stopped")
RUNNING_STEP_STATES = ("Starting", "Executing", "Stopping")
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
METRIC_PERIOD_SECONDS = 60
# XGBoost metrics where higher is better (the sagemaker-xgboost container's XGB_MAXIMIZE_METRICS).
MAXIMIZED_METRICS = frozenset({
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision",
    "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class StepView:
    """One started step: status, start and end times, failure reason and (while it runs) its job's progress."""

    name: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""
    detail: str = ""

    def elapsed(self, now: datetime) -> str:
        """``12m05s`` from start to end (or to ``now`` while running); empty before it starts."""
        if not self.start:
            return ""
        seconds = max(0, int(((self.end or now) - self.start).total_seconds()))
        return f"{seconds // 60}m{seconds % 60:02d}s"

    @property
    def note(self) -> str:
        return self.reason or self.detail


@dataclass(frozen=True)
class ProgressView:
    """The execution's status, steps done of the path's total, and every started step, oldest first."""

    status: str
    done: int
    total: int
    steps: tuple

    @property
    def summary(self) -> str:
        return f"[{self.status}] {self.done}/{self.total} steps finished"


def definition_steps(client, execution_arn: str) -> list:
    """The top-level steps of the definition the execution runs."""
    response = client.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution_arn)
    return json.loads(response["PipelineDefinition"]).get("Steps", [])


def execution_steps(client, execution_arn: str) -> list:
    """ListPipelineExecutionSteps summaries of every step started so far, oldest first."""
    steps = []
    paginator = client.get_paginator("list_pipeline_execution_steps")
    for page in paginator.paginate(PipelineExecutionArn=execution_arn, SortOrder="Ascending"):
        steps += page["PipelineExecutionSteps"]
    return steps


def path_total(steps: list, started: dict) -> int:
    """Steps of ``steps`` on the execution's path (see the module's counting rule); ``started`` maps step name
    to its ListPipelineExecutionSteps summary."""
    total = 0
    for step in steps:
        total += 1
        if step.get("Type") != "Condition":
            continue
        arguments = step.get("Arguments", {})
        branches = {"True": arguments.get("IfSteps", []), "False": arguments.get("ElseSteps", [])}
        summary = started.get(step["Name"], {})
        outcome = summary.get("Metadata", {}).get("Condition", {}).get("Outcome")
        if outcome in branches:
            total += path_total(branches[outcome], started)
        elif summary.get("StepStatus") not in TERMINAL_STEP_STATES:
            total += max(path_total(branch, started) for branch in branches.values())
    return total


def _job_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _number(value) -> str:
    return f"{value:.4g}"


def _better(name: str, a: float, b: float) -> float:
    return max(a, b) if name.split(":", 1)[-1] in MAXIMIZED_METRICS else min(a, b)


def training_metric_name(job: dict) -> str | None:
    """The validation metric a training job is judged by: its tuning objective, else ``validation:`` and
    the last of its ``eval_metric`` values, else the first validation metric it reported."""
    hyperparameters = job.get("HyperParameters", {})
    objective = hyperparameters.get("_tuning_objective_metric", "").strip('"')
    if objective:
        return objective
    eval_metric = hyperparameters.get("eval_metric", "").strip('"')
    if eval_metric:
        return f"validation:{eval_metric.split(',')[-1].strip()}"
    names = [m["MetricName"] for m in job.get("FinalMetricDataList", []) if m["MetricName"].startswith("validation:")]
    return names[0] if names else None


def metric_series(cloudwatch, job_name: str, metric: str, start: datetime, now: datetime) -> list:
    """1-minute averages of a training job's metric in CloudWatch, oldest first."""
    values = []
    paginator = cloudwatch.get_paginator("get_metric_data")
    pages = paginator.paginate(
        MetricDataQueries=[{
            "Id": "metric",
            "MetricStat": {
                "Metric": {
                    "Namespace": TRAINING_METRICS_NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "TrainingJobName", "Value": job_name}],
                },
                "Period": METRIC_PERIOD_SECONDS,
                "Stat": "Average",
            },
            "ReturnData": True,
        }],
        StartTime=start,
        EndTime=now + timedelta(seconds=METRIC_PERIOD_SECONDS),
        ScanBy="TimestampAscending",
    )
    for page in pages:
        for result in page["MetricDataResults"]:
            values += result.get("Values", [])
    return values


def training_detail(client, cloudwatch, arn: str, now: datetime) -> str:
    """``Training validation:auc=0.8812 best=0.8840`` for a training job."""
    from botocore.exceptions import ClientError

    name = _job_name(arn)
    job = client.describe_training_job(TrainingJobName=name)
    parts = [job.get("SecondaryStatus", job.get("TrainingJobStatus", ""))]
    metric = training_metric_name(job)
    series = []
    if cloudwatch is not None and metric:
        try:
            series = metric_series(cloudwatch, name, metric, job.get("TrainingStartTime") or job["CreationTime"], now)
        except ClientError:
            series = []
    final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    if series:
        best = series[0]
        for value in series[1:]:
            best = _better(metric, best, value)
        parts.append(f"{metric}={_number(series[-1])} best={_number(best)}")
    elif metric in final:
        parts.append(f"{metric}={_number(final[metric])}")
    return " ".join(p for p in parts if p)


def tuning_detail(client, arn: str) -> str:
    """``7/20 jobs done, 2 running, 3 stopped, best validation:auc=0.91`` for a tuning job."""
    job = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=_job_name(arn))
    counters = job.get("TrainingJobStatusCounters", {})
    limit = job.get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {}).get("MaxNumberOfTrainingJobs")
    text = f"{counters.get('Completed', 0)}/{limit if limit is not None else '?'} jobs done, " \
           f"{counters.get('InProgress', 0)} running, {counters.get('Stopped', 0)} stopped"
    best = job.get("BestTrainingJob", {}).get("FinalHyperParameterTuningJobObjectiveMetric")
    if best:
        text += f", best {best['MetricName']}={_number(best['Value'])}"
    return text


def automl_detail(client, arn: str) -> str:
    """``TrainingModels best F1=0.87`` for an AutoML job."""
    job = client.describe_auto_ml_job_v2(AutoMLJobName=_job_name(arn))
    text = job.get("AutoMLJobSecondaryStatus", job.get("AutoMLJobStatus", ""))
    best = job.get("BestCandidate", {}).get("FinalAutoMLJobObjectiveMetric")
    if best:
        text += f" best {best['MetricName']}={_number(best['Value'])}"
    return text


def job_detail(client, cloudwatch, step: dict, now: datetime) -> str:
    """The progress of the job a running step runs, or ``""`` for steps without one."""
    metadata = step.get("Metadata", {})
    if "TrainingJob" in metadata:
        return training_detail(client, cloudwatch, metadata["TrainingJob"]["Arn"], now)
    if "TuningJob" in metadata:
        return tuning_detail(client, metadata["TuningJob"]["Arn"])
    if "AutoMLJob" in metadata:
        return automl_detail(client, metadata["AutoMLJob"]["Arn"])
    return ""


def read_progress(client, execution_arn: str, definition: list, cloudwatch=None, now=utc_now) -> ProgressView:
    """The execution's progress now: status, done/total steps, and each started step with its job's metric."""
    status = client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"]
    summaries = execution_steps(client, execution_arn)
    moment = now()
    views = []
    for step in summaries:
        step_status = step.get("StepStatus", "Unknown")
        detail = job_detail(client, cloudwatch, step, moment) if step_status in RUNNING_STEP_STATES else ""
        views.append(StepView(step["StepName"], step_status, step.get("StartTime"), step.get("EndTime"),
                              step.get("FailureReason", ""), detail))
    started = {step["StepName"]: step for step in summaries}
    known = set(_names(definition))
    total = path_total(definition, started) + sum(1 for name in started if name not in known)
    done = sum(1 for view in views if view.status in TERMINAL_STEP_STATES)
    return ProgressView(status, done, max(total, done), tuple(views))


def _names(steps: list):
    for step in steps:
        yield step["Name"]
        arguments = step.get("Arguments", {}) if step.get("Type") == "Condition" else {}
        yield from _names(arguments.get("IfSteps", []))
        yield from _names(arguments.get("ElseSteps", []))


def step_line(view: StepView, now: datetime) -> str:
    """``<step> <status> <elapsed> - <reason or job progress>``: the plain format, one line per change."""
    note = f" - {view.note}" if view.note else ""
    return f"{view.name:<28} {view.status:<10} {view.elapsed(now):>8}{note}"


class PlainProgress:
    """Plain text for pipes and files: a step line when a step's status or job progress changes, and the
    summary line when the execution's status or counts change (no escape codes, no carriage returns)."""

    def __init__(self, out, now=utc_now):
        self.out, self.now = out, now
        self.seen: dict = {}
        self.last_summary = None

    def show(self, view: ProgressView) -> None:
        moment = self.now()
        for step in view.steps:
            if self.seen.get(step.name) != (step.status, step.note):
                self.seen[step.name] = (step.status, step.note)
                self.out.write(step_line(step, moment) + "\n")
        if view.summary != self.last_summary:
            self.last_summary = view.summary
            self.out.write(view.summary + "\n")
        self.out.flush()

    def close(self, view: ProgressView | None) -> None:
        """Nothing to undo: the last line written is already the summary naming the final status."""


class LiveTable:
    """The rich renderable of a view: a bar of steps done, then one row per started step, with the running
    steps' elapsed time computed each time it is drawn."""

    def __init__(self, view: ProgressView, now=utc_now):
        self.view, self.now = view, now

    def __rich__(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        moment = self.now()
        colours = {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Executing": "cyan"}
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("step", "status", "elapsed", "progress"):
            table.add_column(column, justify="right" if column == "elapsed" else "left")
        for step in self.view.steps:
            table.add_row(step.name, Text(step.status, style=colours.get(step.status, "")), step.elapsed(moment),
                          step.note)
        header = Table.grid(padding=(0, 1))
        header.add_row(Text(self.view.summary, style="bold"),
                       ProgressBar(total=max(self.view.total, 1), completed=self.view.done, width=30))
        return Group(header, table)


class RichProgress:
    """A ``rich.live.Live`` table on a terminal; the final summary line stays printed below it."""

    def __init__(self, console, now=utc_now, auto_refresh: bool = True):
        from rich.live import Live

        self.console, self.now = console, now
        self.live = Live(console=console, auto_refresh=auto_refresh, refresh_per_second=1, transient=False)
        self.live.start()

    def show(self, view: ProgressView) -> None:
        self.live.update(LiveTable(view, self.now), refresh=True)

    def close(self, view: ProgressView | None) -> None:
        self.live.stop()
        if view is not None:
            self.console.print(view.summary, markup=False, highlight=False)
