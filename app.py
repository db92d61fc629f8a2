#!/usr/bin/env python3
"""CDK entry point: load and validate the platform config, then build every stack.

Choose the config with ``-c config=PATH`` (default ``config/platform.yaml``). A bad config stops here with
one message naming each bad field, before any construct is built. ``-c teams=a,b`` builds only those teams'
stacks (plus the network and platform stacks, from the whole config), for a command that needs no others.
"""

import sys

import aws_cdk as cdk

from stacks.app_builder import build_platform, selected_teams
from stacks.config import ConfigError, load_config
from stacks.replacement_guard import check_against_lock, missing_lock_warning

DEFAULT_CONFIG = "config/platform.yaml"


def main(app: cdk.App | None = None, path: str | None = None) -> int:
    """Synthesize ``path`` (default: the ``config`` context, then config/platform.yaml) into ``app``."""
    app = app or cdk.App()
    path = path or app.node.try_get_context("config") or DEFAULT_CONFIG
    try:
        config = load_config(path)
        check_against_lock(config, path)
        teams = selected_teams(config, app.node.try_get_context("teams"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warning = missing_lock_warning(path)
    if warning:
        print(warning, file=sys.stderr)
    build_platform(config, app, teams=teams)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
