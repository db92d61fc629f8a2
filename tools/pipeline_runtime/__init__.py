"""Local execution of a deployed pipeline definition: a moto S3 server, AWS's transfer rules, stand-ins."""

from tools.pipeline_runtime.executor import RunResult, StepRecord, run_pipeline
from tools.pipeline_runtime.report import collect
from tools.pipeline_runtime.s3 import LocalS3

__all__ = ["LocalS3", "RunResult", "StepRecord", "collect", "run_pipeline"]
