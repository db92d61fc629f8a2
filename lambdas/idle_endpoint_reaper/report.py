"""One run's outcome per endpoint, its structured log lines and its SNS summary."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from idle_endpoint_reaper.restore_record import parameter_name

DELETED = "deleted"
WOULD_DELETE = "would_delete"
KEPT = "kept"
ERROR = "error"
ACTIONS = (DELETED, WOULD_DELETE, KEPT, ERROR)

RESTORE_COMMAND = "python -m tools.restore_endpoint {name}"
# SNS accepts 256 KB per message; the summary stays well below and lists names per reason up to a limit.
MAX_NAMES_PER_REASON = 25
MAX_LISTED_ERRORS = 200
MAX_SUBJECT_LENGTH = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the run did with one managed endpoint, and why."""

    endpoint: str
    team: str | None
    action: str
    reason: str
    dry_run: bool
    endpoint_config: str | None = None
    deregistered_targets: tuple[str, ...] = ()
    monitoring_schedule_deleted: bool = False
    hourly_cost_usd: float | None = None
    """Estimated on-demand cost per hour of an idle endpoint (deleted or would be), when it could be priced."""

    def log(self) -> None:
        """One structured log line (the function logs JSON; these keys become fields)."""
        level = logging.ERROR if self.action == ERROR else logging.INFO
        logger.log(level, "endpoint %s: %s", self.action, self.endpoint, extra={"reaper": asdict(self)})


@dataclass
class RunReport:
    """All outcomes of one run plus run-level errors (a failed listing, a failed summary)."""

    prefix: str
    dry_run_forced: bool
    outcomes: list[Outcome] = field(default_factory=list)
    run_errors: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        outcome.log()

    def by_action(self, action: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == action]

    def counts(self) -> dict[str, int]:
        counted = Counter(o.action for o in self.outcomes)
        return {action: counted.get(action, 0) for action in ACTIONS}

    def as_result(self) -> dict[str, Any]:
        """The handler's return value: counts and the names acted on."""
        return {
            "prefix": self.prefix,
            "counts": self.counts(),
            "deleted": [o.endpoint for o in self.by_action(DELETED)],
            "would_delete": [o.endpoint for o in self.by_action(WOULD_DELETE)],
            "errors": [f"{o.endpoint}: {o.reason}" for o in self.by_action(ERROR)] + self.run_errors,
        }

    def subject(self) -> str:
        counts = self.counts()
        errors = counts[ERROR] + len(self.run_errors)
        text = (
            f"[{self.prefix}] idle endpoint reaper: {counts[DELETED]} deleted, "
            f"{counts[WOULD_DELETE]} would be deleted, {counts[KEPT]} kept, {errors} errors"
        )
        return text[:MAX_SUBJECT_LENGTH]

    def message(self) -> str:
        """The plain-text SNS summary: deleted (with restore commands), errors, kept grouped by reason."""
        counts = self.counts()
        lines = [self.subject(), ""]
        if self.dry_run_forced:
            lines += ["This run was a forced dry run: nothing was deleted.", ""]
        deleted = self.by_action(DELETED)
        lines.append(f"Deleted ({len(deleted)}):")
        for o in deleted:
            lines.append(f"  - {o.endpoint} (team {o.team}, config {o.endpoint_config}): {o.reason}")
            if o.deregistered_targets:
                lines.append(f"      autoscaling targets deregistered: {', '.join(o.deregistered_targets)}")
            if o.monitoring_schedule_deleted:
                lines.append("      monitoring schedule deleted (the restored endpoint gets it back)")
            lines.append(
                f"      restore: {RESTORE_COMMAND.format(name=o.endpoint)} (record {parameter_name(o.endpoint)})"
            )
        would = self.by_action(WOULD_DELETE)
        lines += ["", f"Would be deleted, dry run ({len(would)}):"]
        lines += [f"  - {o.endpoint} (team {o.team}, config {o.endpoint_config}): {o.reason}" for o in would]
        errors = [f"{o.endpoint}: {o.reason}" for o in self.by_action(ERROR)] + self.run_errors
        lines += ["", f"Errors ({len(errors)}):"]
        lines += [f"  - {e}" for e in errors[:MAX_LISTED_ERRORS]]
        if len(errors) > MAX_LISTED_ERRORS:
            lines.append(f"  ... and {len(errors) - MAX_LISTED_ERRORS} more (see the function's log)")
        lines += ["", f"Kept ({counts[KEPT]}), by reason:"]
        for reason, names in _group_kept(self.by_action(KEPT)):
            shown = ", ".join(names[:MAX_NAMES_PER_REASON])
            more = f" and {len(names) - MAX_NAMES_PER_REASON} more" if len(names) > MAX_NAMES_PER_REASON else ""
            lines.append(f"  - {reason} ({len(names)}): {shown}{more}")
        return "\n".join(lines) + "\n"


def _reason_group(reason: str) -> str:
    """Reasons with per-endpoint numbers are grouped by their leading words."""
    for marker in (":", " ("):
        if marker in reason and not reason.startswith("opted out"):
            return reason.split(marker, 1)[0]
    return reason


def _group_kept(kept: list[Outcome]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for o in kept:
        groups.setdefault(_reason_group(o.reason), []).append(o.endpoint)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def publish(sns: Any, topic_arn: str, report: RunReport) -> None:
    """Send the run's one summary message."""
    sns.publish(TopicArn=topic_arn, Subject=report.subject(), Message=report.message())
