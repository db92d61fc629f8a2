"""Step bootstrap: install what the image lacks from the wheelhouse, with no network, then run a module.

``python3 -m pipeline_code.offline_install --wheelhouse DIR pipeline_code.<module> [module arguments...]``

- The pins are ``container_requirements.txt`` beside this file (it ships with the code): one
  ``name==version`` per requirement, hashes allowed.
- Only distributions not installed already are installed (names compared normalised), with
  ``pip install --no-index --no-deps --find-links DIR``: pip cannot reach an index, and nothing the image
  has (numpy, pandas, scikit-learn, scipy) is replaced. Where everything is there already (the local runner's
  interpreter), nothing is installed.
- A wheel missing from the wheelhouse fails the step before pip runs, naming the requirement.
- The wheels are built for the image's CPython 3.9 (``WHEEL_PYTHON``). Under another Python (the local
  pipeline runner's) nothing is installed: its environment brings the libraries itself, and the pins of
  backports it does not need (``exceptiongroup`` on 3.11) would not apply.
- Then the module runs as ``__main__`` with the module arguments; its exit code is the step's.

Standard library only, Python 3.9 syntax: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import runpy
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "container_requirements.txt"
WHEEL_PYTHON = (3, 9)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")


class WheelhouseError(RuntimeError):
    """Raised when the wheelhouse cannot provide a pinned requirement."""


def normalised(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = REQUIREMENTS) -> list:
    """(name, version) of every pin in a requirements file; continuation lines and comments are skipped."""
    pins = []
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins.append((match.group(1), match.group(2)))
    return pins


def installed_names() -> set:
    return {normalised(d.metadata["Name"]) for d in importlib.metadata.distributions() if d.metadata["Name"]}


def missing_pins(pins: list, installed: set) -> list:
    return [(name, version) for name, version in pins if normalised(name) not in installed]


def wheel_for(wheelhouse: Path, name: str, version: str) -> Path:
    """The wheel of ``name==version`` in ``wheelhouse``; raises naming the requirement when there is none."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for path in sorted(wheelhouse.glob("*.whl")):
        parts = path.name.split("-")
        if len(parts) >= 2 and re.sub(r"[-_.]+", "_", parts[0]).lower() == stem and parts[1] == version:
            return path
    raise WheelhouseError(f"the wheelhouse {wheelhouse} has no wheel of {name}=={version}; "
                          "rebuild it with `make wheelhouse` and redeploy")


def install(wheelhouse: Path, pins: list, run=subprocess.run) -> list:
    """Install ``pins`` from ``wheelhouse`` only; returns the wheels installed."""
    wheels = [wheel_for(wheelhouse, name, version) for name, version in pins]
    if wheels:
        run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(wheelhouse),
             "--quiet", "--disable-pip-version-check", *map(str, wheels)], check=True)
    return wheels


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.offline_install", description=__doc__.splitlines()[0])
    parser.add_argument("--wheelhouse", type=Path, required=True, help="folder of wheels")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS, help="pins (default: the shipped file)")
    parser.add_argument("module", help="pipeline_code.<module> to run")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the module's arguments")
    return parser.parse_args(argv)


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    if not args.module.startswith("pipeline_code."):
        print(f"offline_install: {args.module!r} is not a pipeline_code module", file=sys.stderr)
        return 2
    missing = missing_pins(read_pins(args.requirements), installed_names())
    if tuple(sys.version_info[:2]) != WHEEL_PYTHON:
        names = ", ".join(name for name, _ in missing) or "none"
        print(f"offline_install: Python {sys.version_info[0]}.{sys.version_info[1]} is not the wheelhouse's "
              f"{WHEEL_PYTHON[0]}.{WHEEL_PYTHON[1]}: nothing installed (not installed here: {names})", flush=True)
        missing = []
    try:
        wheels = install(args.wheelhouse, missing)
    except (WheelhouseError, subprocess.CalledProcessError) as error:
        print(f"offline_install: {error}", file=sys.stderr)
        return 1
    print(f"offline_install: {len(wheels)} wheel(s) installed from {args.wheelhouse}", flush=True)
    sys.argv = [args.module, *args.arguments]
    try:
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
