"""Custom resource that empties a Studio domain (or some of its user profiles) before CloudFormation deletes it."""
