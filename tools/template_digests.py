"""SHA-256 digests of the synthesized templates, normalized, so a change that should not alter what is
deployed can be proven not to (``python -m tools.template_digests`` rewrites the committed file;
``make template-digests`` runs it).

Normalizing masks only what legitimately varies between two synths of the same source:
- asset hashes in S3 keys (``<64 hex>.zip``: a Lambda's code or an upload's archive, rebuilt on every
  change of the bundled files or the bundling machine);
- ``aws:asset:*`` entries of a resource's ``Metadata`` (the CLI's local asset paths);
- the value of a ``CodeCommit`` key (the git commit of ``pipeline_code/`` that a pipeline records).
Everything else (every logical id, property, policy statement, condition, output) is kept, and keys are
sorted, so the digest changes exactly when the deployed template would.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIGESTS_FILE = ROOT / "tests" / "stacks" / "template_digests.json"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}(?=\.zip\b)")
MASKED_ASSET = "<asset-hash>"
MASKED_COMMIT = "<code-commit>"


def normalize(template: Any) -> Any:
    """`template` with asset hashes, ``aws:asset:*`` metadata and code-commit values masked (a new object)."""

    def walk(node: Any, key: str | None) -> Any:
        if isinstance(node, dict):
            out = {}
            for name, value in node.items():
                if key == "Metadata" and name.startswith("aws:asset:"):
                    continue
                out[name] = MASKED_COMMIT if name == "CodeCommit" and isinstance(value, str) else walk(value, name)
            return out
        if isinstance(node, list):
            return [walk(value, None) for value in node]
        if isinstance(node, str):
            return ASSET_HASH.sub(MASKED_ASSET, node)
        return node

    return walk(template, None)


def digest(template: dict[str, Any]) -> str:
    """SHA-256 of the normalized template as sorted, compact JSON."""
    text = json.dumps(normalize(template), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def digests(named_templates: dict[str, dict[str, dict[str, Any]]]) -> dict[str, str]:
    """``{"<config>/<stack>": digest}`` for templates by config name, then stack name."""
    return {
        f"{config}/{stack}": digest(template)
        for config, templates in sorted(named_templates.items())
        for stack, template in sorted(templates.items())
    }


def synthesized_configs(outdir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The example configs and every edge config of the tests, synthesized as the tests do (gates on)."""
    from stacks.config import load_config, parse_config
    from tests.conftest import EDGE_CONFIGS, EXAMPLE_CONFIG, MULTI_ACCOUNT_CONFIG, synthesize

    configs = {"example": load_config(EXAMPLE_CONFIG), "multi-account": load_config(MULTI_ACCOUNT_CONFIG),
               **{name: parse_config(data) for name, data in EDGE_CONFIGS.items()}}
    return {
        name: synthesize(config, outdir / re.sub(r"\W+", "-", name)).templates for name, config in configs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the committed digests of the synthesized templates.")
    parser.add_argument("--out", type=Path, default=DIGESTS_FILE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as outdir:
        found = digests(synthesized_configs(Path(outdir)))
    args.out.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(found)} template digests to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
