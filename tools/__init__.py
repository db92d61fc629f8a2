"""Command-line tools for operating the platform.

Every tool runs on the project's Node.js: importing `stacks` puts it first on PATH before any aws_cdk import.
"""

import stacks  # noqa: F401  (for its PATH setting)
