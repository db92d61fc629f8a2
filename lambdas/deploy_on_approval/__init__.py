"""Deploys the newest Approved version of a team's model package group to the group's endpoint."""
