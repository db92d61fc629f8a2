"""Reusable constructs; each stack composes them."""
