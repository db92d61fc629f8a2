"""Shared setup of the pipeline tests: the SageMaker SDK (a test oracle only) stays quiet."""

import os

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
