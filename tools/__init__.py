"""Command-line tools for operating the platform."""
