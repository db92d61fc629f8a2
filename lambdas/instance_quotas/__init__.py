"""Custom resource that raises SageMaker instance quotas through Service Quotas (never lowers them)."""
