"""Tag keys the platform puts on what it creates, at deploy time and at run time."""

PLATFORM = "mlops:platform"
TEAM = "mlops:team"
COST_CENTER = "mlops:cost-center"
MANAGED_BY = "mlops:managed-by"
MANAGED_BY_VALUE = "sagemaker-mlops-platform"
# On the stacks of a stage account (`stages:` in the config): the stage's name.
STAGE = "mlops:stage"

MODEL_PACKAGE_ARN = "mlops:model-package-arn"
MODEL_PACKAGE_VERSION = "mlops:model-package-version"
INTENDED_ENDPOINT_CONFIG = "mlops:intended-endpoint-config"
# On an autoscaled endpoint: the config's limits ("<min>-<max>") the verifier last brought its target to.
SCALING_LIMITS = "mlops:scaling-limits"

KEEP_ALIVE = "mlops:keep-alive"
KEEP_UNTIL = "mlops:keep-until"
