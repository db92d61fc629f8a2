"""What the reaper writes before it deletes an endpoint, so that one command can bring it back.

The record is an SSM String parameter named after the endpoint alone
(``/mlops/reaped-endpoints/<endpoint name>``), so the restore command needs nothing but the endpoint
name. Its value is JSON: the endpoint config the endpoint served, the endpoint's tags, its team and
the autoscaling targets that were deregistered. The record is written before any destructive step and
removed by a successful restore.

Standard library only: this module is imported by the Lambda and by ``tools/restore_endpoint.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PARAMETER_PATH = "/mlops/reaped-endpoints/"
# Standard-tier SSM parameters hold at most 4 KB.
MAX_VALUE_BYTES = 4096
PLATFORM_TAG_PREFIX = "mlops:"
RECORD_VERSION = 1


def parameter_name(endpoint_name: str) -> str:
    """The SSM parameter that holds the restore record of ``endpoint_name``."""
    return f"{PARAMETER_PATH}{endpoint_name}"


@dataclass(frozen=True)
class ScalableTargetRecord:
    """An autoscaling target that was deregistered before the delete (its policies are gone with it)."""

    resource_id: str
    min_capacity: int
    max_capacity: int


@dataclass(frozen=True)
class RestoreRecord:
    """Everything the restore command needs to recreate a deleted endpoint."""

    endpoint_name: str
    endpoint_config_name: str
    deleted_at: str
    team: str | None
    tags: dict[str, str]
    scalable_targets: tuple[ScalableTargetRecord, ...] = field(default=())

    def to_json(self) -> str:
        """Compact JSON that fits a standard SSM parameter.

        When all tags do not fit, only the platform's own ``mlops:`` tags are kept (they carry
        ownership); a record that still does not fit raises ``ValueError``.
        """
        for tags in (self.tags, _platform_tags(self.tags)):
            text = json.dumps(self._as_dict(tags), separators=(",", ":"), sort_keys=True)
            if len(text.encode("utf-8")) <= MAX_VALUE_BYTES:
                return text
        raise ValueError(
            f"restore record of {self.endpoint_name!r} exceeds {MAX_VALUE_BYTES} bytes even with only platform tags"
        )

    def _as_dict(self, tags: dict[str, str]) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": self.endpoint_config_name,
            "deleted_at": self.deleted_at,
            "team": self.team,
            "tags": tags,
            "scalable_targets": [
                {"resource_id": t.resource_id, "min_capacity": t.min_capacity, "max_capacity": t.max_capacity}
                for t in self.scalable_targets
            ],
        }

    @classmethod
    def from_json(cls, text: str) -> RestoreRecord:
        """Parse a record written by `to_json`; raises ``ValueError`` on anything else."""
        try:
            data = json.loads(text)
            return cls(
                endpoint_name=str(data["endpoint_name"]),
                endpoint_config_name=str(data["endpoint_config_name"]),
                deleted_at=str(data["deleted_at"]),
                team=data.get("team"),
                tags={str(k): str(v) for k, v in data.get("tags", {}).items()},
                scalable_targets=tuple(
                    ScalableTargetRecord(
                        resource_id=str(t["resource_id"]),
                        min_capacity=int(t["min_capacity"]),
                        max_capacity=int(t["max_capacity"]),
                    )
                    for t in data.get("scalable_targets", [])
                ),
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a restore record: {exc}") from None


def _platform_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith(PLATFORM_TAG_PREFIX)}
