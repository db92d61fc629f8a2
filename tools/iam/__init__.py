"""Offline IAM proofs: synthesized templates resolved for one account, and a policy evaluator."""
