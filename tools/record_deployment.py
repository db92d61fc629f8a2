"""Record the settings fixed by a successful deploy (``python -m tools.record_deployment CONFIG``).

`make deploy` runs this after `cdk deploy` succeeds; commit the lock file with the config.
"""

from __future__ import annotations

import argparse

from stacks.config import load_config
from stacks.replacement_guard import write_lock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="config/platform.yaml")
    args = parser.parse_args(argv)
    print(f"recorded fixed settings in {write_lock(load_config(args.config), args.config)}")


if __name__ == "__main__":
    main()
