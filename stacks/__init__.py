"""CDK stacks, constructs and the validated platform configuration."""
