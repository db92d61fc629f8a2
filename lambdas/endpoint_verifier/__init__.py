"""Checks a team's endpoint after each state change and prunes what its deploys left behind."""
