"""checkov over the example platforms: no failed check, every skip used and explained, the gate can fail.

checkov runs once per session, in one process, over the synthesized templates and over copies of their
skipped resources without the skip metadata (to prove that each skipped check would still fail without its
skip).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.checkov_skips import (
    CHECKOV_SKIPS,
    STACK_KINDS,
    matching_resources,
    stack_kind,
)
from tools import synth_report
from tools.synth_report import CheckovError, CheckovResult, run_checkov

# Reasons that say nothing about the resource.
GENERIC_REASON = re.compile(
    r"\b(n/?a|not applicable|false positive|accepted( risk)?|by design|known issue|todo|fixme|tbd|wontfix|"
    r"ignore[d]?|skip(ped)?|not needed|not required|intended)\b[.!]*",
    re.IGNORECASE,
)


@dataclass
class CheckovRun:
    files: dict[str, Path]  # stack name -> synthesized template
    bare: dict[str, Path]  # stack name -> its skipped resources without checkov skip metadata
    results: list[CheckovResult]
    seconds: float

    def of(self, files: dict[str, Path], status: str) -> set[tuple[str, str, str]]:
        stack_of = {path.resolve(): name for name, path in files.items()}
        return {
            (stack_of[r.template], r.resource, r.check_id)
            for r in self.results
            if r.status == status and r.template in stack_of
        }


def _template_files(outdir: Path) -> dict[str, Path]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        name: outdir / artifact["properties"]["templateFile"]
        for name, artifact in sorted(manifest["artifacts"].items())
        if artifact["type"] == "aws:cloudformation:stack"
    }


@pytest.fixture(scope="session")
def checkov_run(example, tmp_path_factory) -> CheckovRun:
    return _checkov_run(example, tmp_path_factory)


@pytest.fixture(scope="session")
def multi_account_checkov_run(multi_account, tmp_path_factory) -> CheckovRun:
    return _checkov_run(multi_account, tmp_path_factory)


def _checkov_run(synthesized, tmp_path_factory) -> CheckovRun:
    files = _template_files(synthesized.outdir)
    bare_dir = tmp_path_factory.mktemp("checkov-without-skips")
    bare = {}
    for name, path in files.items():
        template = json.loads(path.read_text())
        resources = template.get("Resources", {})
        skipped = {k: r for k, r in resources.items() if "checkov" in r.get("Metadata", {})}
        # Resource checks (CKV_AWS_*) read one resource; graph checks (CKV2_*) need the whole template.
        graph = any(s["id"].startswith("CKV2") for r in skipped.values() for s in r["Metadata"]["checkov"]["skip"])
        kept = {k: v for k, v in template.items() if k in ("Parameters", "Conditions", "Mappings")}
        kept["Resources"] = resources if graph else skipped
        for resource in kept["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        bare[name] = bare_dir / path.name
        bare[name].write_text(json.dumps(kept, indent=1))
    start = time.perf_counter()
    results = run_checkov([*files.values(), *bare.values()])
    return CheckovRun(files=files, bare=bare, results=results, seconds=time.perf_counter() - start)


@pytest.mark.parametrize(("run", "stacks"), [("checkov_run", 5), ("multi_account_checkov_run", 9)])
def test_checkov_fails_no_check(request, run, stacks):
    checkov_run = request.getfixturevalue(run)
    failed = sorted(checkov_run.of(checkov_run.files, "failed"))
    assert len(checkov_run.files) == stacks
    assert failed == [], (
        f"{len(failed)} failed checkov checks (stack, logical id, check): {failed} "
        f"(checkov ran {checkov_run.seconds:.1f} s)"
    )


def test_every_skip_is_used(example, checkov_run, multi_account, multi_account_checkov_run):
    """Each entry matches a resource in a stack of each kind it names (in the example platform or the
    multi-account one); checkov skips it there and would fail it."""
    runs = {"example": (example, checkov_run), "multi-account": (multi_account, multi_account_checkov_run)}
    skipped = {(name, *key) for name, (_, run) in runs.items() for key in run.of(run.files, "skipped")}
    failing_without_skips = {(name, *key) for name, (_, run) in runs.items() for key in run.of(run.bare, "failed")}
    used = set()
    for entry in CHECKOV_SKIPS:
        assert entry.stacks and set(entry.stacks) <= set(STACK_KINDS), entry
        for kind in entry.stacks:
            matched = [
                (name, stack.stack_name, stack.resolve(resource.logical_id))
                for name, (synthesized, _) in runs.items()
                for stack in synthesized.platform.stacks
                if stack_kind(stack) == kind
                for resource in matching_resources(stack, entry)
            ]
            assert matched, f"unused checkov skip: no {kind} stack has {entry.path}: {entry}"
            for name, stack_name, logical_id in matched:
                key = (name, stack_name, logical_id, entry.check_id)
                assert key in skipped, f"checkov did not report {key} as skipped: {entry}"
                assert key in failing_without_skips, f"unused checkov skip: {key} passes without it: {entry}"
                used.add(key)
    assert skipped == used, f"skipped by something other than stacks/checkov_skips.py: {skipped - used}"


def test_every_skip_has_a_specific_reason():
    reasons = [entry.reason for entry in CHECKOV_SKIPS]
    for entry in CHECKOV_SKIPS:
        assert len(entry.reason) >= 40, f"reason too thin: {entry}"
        remainder = GENERIC_REASON.sub("", entry.reason).strip(" .,;:-")
        assert len(remainder) >= 40, f"generic reason: {entry}"
        assert re.fullmatch(r"CKV2?_AWS_\d+", entry.check_id), entry
    duplicates = {reason for reason in reasons if reasons.count(reason) > 1}
    assert not duplicates, f"one reason reused for several skips (a blanket reason): {duplicates}"
    keys = [(entry.path, entry.check_id, kind) for entry in CHECKOV_SKIPS for kind in entry.stacks]
    assert len(keys) == len(set(keys)), "an entry is listed twice"


def test_skips_are_written_in_the_shape_checkov_reads(example):
    platform = example.platform.platform
    logical_id = platform.resolve(platform.access_log_bucket.node.default_child.logical_id)
    (entry,) = [e for e in CHECKOV_SKIPS if e.path == "AccessLogs/Resource" and e.stacks == ("platform",)]
    metadata = example.template("mlp-platform")["Resources"][logical_id]["Metadata"]
    assert metadata["checkov"] == {"skip": [{"id": "CKV_AWS_18", "comment": entry.reason}]}


def test_synth_report_prints_checkov_counts(example, checkov_run, monkeypatch, capsys):
    """The summary counts checkov's open and acknowledged checks.

    The session's checkov run is reused, and cfn-lint (checked in test_policy_gates) is left out: both slow.
    """

    def session_results(template_files, checkov=None):
        assert sorted(p.resolve() for p in template_files) == sorted(p.resolve() for p in checkov_run.files.values())
        wanted = {p.resolve() for p in template_files}
        return [r for r in checkov_run.results if r.template in wanted]

    monkeypatch.setattr(synth_report, "run_checkov", session_results)
    monkeypatch.setattr(synth_report, "cfn_lint", lambda files: [])
    code = synth_report.main([str(example.outdir)])
    out = capsys.readouterr().out
    failed = checkov_run.of(checkov_run.files, "failed")
    skipped = checkov_run.of(checkov_run.files, "skipped")
    if failed:
        assert code == 1
    header, *rows = out.split("\n\n")[0].splitlines()
    assert header.split()[-2:] == ["checkov", "acknowledged"]
    per_stack = {row.split()[0]: int(row.split()[-1]) for row in rows}
    assert per_stack == {name: sum(1 for s, _, _ in skipped if s == name) for name in checkov_run.files}
    assert f"checkov open findings: {len(failed)}" in out
    for stack, logical_id, check_id in failed:
        # "<construct path> (<logical id>)", or "<stack>/<logical id>" when synthesized without path metadata
        label = rf"{re.escape(stack)}/(\S+ \({logical_id}\)|{logical_id})"
        assert re.search(rf"^  - {label}: {check_id} ", out, re.MULTILINE), out


def test_checkov_gate_can_fail(tmp_path):
    template = tmp_path / "bucket.template.json"
    template.write_text(
        json.dumps(
            {
                "Resources": {
                    "Plain": {"Type": "AWS::S3::Bucket", "Properties": {}},
                    "Skipped": {
                        "Type": "AWS::S3::Bucket",
                        "Properties": {},
                        "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "a test's reason"}]}},
                    },
                }
            }
        )
    )
    results = run_checkov([template])
    failed = {(r.resource, r.check_id) for r in results if r.status == "failed"}
    assert ("Plain", "CKV_AWS_18") in failed  # no access logging
    assert ("Plain", "CKV_AWS_53") in failed  # public ACLs not blocked
    assert ("Skipped", "CKV_AWS_18") not in failed
    skipped = [r for r in results if r.status == "skipped"]
    assert [(r.resource, r.check_id, r.comment) for r in skipped] == [("Skipped", "CKV_AWS_18", "a test's reason")]
    assert all(r.template == template.resolve() for r in results)


def test_missing_checkov_fails_with_one_line(tmp_path, example, monkeypatch, capsys):
    missing = tmp_path / "no-such-checkov"
    with pytest.raises(CheckovError) as error:
        run_checkov([], checkov=missing)
    assert str(missing) in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setattr(synth_report, "CHECKOV", missing)
    assert synth_report.main([str(example.outdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make install" in err
