"""CDK stacks, constructs and the validated platform configuration.

Importing this package puts the project's Node.js (``node_modules/.bin``, which ``npm ci`` installs) first on
PATH when it is installed, before anything imports aws_cdk: the jsii runtime behind aws_cdk starts ``node``
from PATH, and every entry point (``python -m tools...``, ``app.py`` outside ``npx cdk``) then runs on the
Node.js LTS that ``make`` and ``npx cdk`` use, not on whatever the system has.
"""

import os as _os
from pathlib import Path as _Path

PROJECT_NODE_BIN = _Path(__file__).resolve().parents[1] / "node_modules" / ".bin"

if (PROJECT_NODE_BIN / "node").exists():
    _path = _os.environ.get("PATH", "").split(_os.pathsep)
    if not _path or _path[0] != str(PROJECT_NODE_BIN):
        _os.environ["PATH"] = _os.pathsep.join([str(PROJECT_NODE_BIN), *_path])
