"""Which endpoints the platform manages, with what the decision needs, in few API calls.

Two paginated listings, each about N/100 calls for N endpoints, and no per-endpoint call:

- SageMaker ``Search`` (Resource ``Endpoint``, filtered on the platform's managed-by and platform
  tags) returns each endpoint's tags, endpoint config name and production/shadow variants, including
  whether a variant is serverless and how many instances it runs. That replaces a tag listing plus a DescribeEndpoint (or a
  DescribeEndpointConfig) per endpoint.
- ``ListEndpoints`` (``NameContains`` the platform prefix) returns the authoritative status and
  last-modified time. Search reads an index that can lag behind the endpoint, so a just-updated
  endpoint could still look old and idle there; the grace period is judged on ListEndpoints.

The tags are checked again here, so an endpoint that another platform or nobody manages is never
returned, whatever the server-side filter did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import tags

PAGE_SIZE = 100
IN_SERVICE = "InService"


@dataclass(frozen=True)
class ManagedEndpoint:
    """A platform-managed endpoint as one run sees it.

    ``status`` and ``last_modified_time`` come from ListEndpoints; they are ``None`` when
    ListEndpoints did not return the endpoint (deleted since Search indexed it, or a name outside the
    platform prefix).
    """

    name: str
    tags: dict[str, str]
    config_name: str
    variants: tuple[str, ...]
    shadow_variants: tuple[str, ...]
    serverless: bool
    status: str | None
    last_modified_time: datetime | None
    instance_counts: tuple[tuple[str, int], ...] = ()
    """(variant, current instance count) of the production variants, as Search returned them."""

    @property
    def team(self) -> str | None:
        return self.tags.get(tags.TEAM)

    @property
    def all_variants(self) -> tuple[str, ...]:
        """Production and shadow variants: each can carry its own autoscaling target."""
        return self.variants + self.shadow_variants


def is_managed(endpoint_tags: dict[str, str], prefix: str) -> bool:
    """True only for endpoints this platform (``prefix``) created."""
    return endpoint_tags.get(tags.MANAGED_BY) == tags.MANAGED_BY_VALUE and endpoint_tags.get(tags.PLATFORM) == prefix


def _search_filters(prefix: str) -> dict[str, Any]:
    return {
        "Filters": [
            {"Name": f"Tags.{tags.MANAGED_BY}", "Operator": "Equals", "Value": tags.MANAGED_BY_VALUE},
            {"Name": f"Tags.{tags.PLATFORM}", "Operator": "Equals", "Value": prefix},
        ],
        "Operator": "And",
    }


def _search_endpoints(sagemaker: Any, prefix: str) -> Iterator[dict[str, Any]]:
    paginator = sagemaker.get_paginator("search")
    pages = paginator.paginate(
        Resource="Endpoint",
        SearchExpression=_search_filters(prefix),
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    for page in pages:
        for result in page.get("Results", []):
            endpoint = result.get("Endpoint")
            if endpoint:
                yield endpoint


def _list_endpoint_summaries(sagemaker: Any, prefix: str) -> dict[str, dict[str, Any]]:
    paginator = sagemaker.get_paginator("list_endpoints")
    summaries: dict[str, dict[str, Any]] = {}
    for page in paginator.paginate(NameContains=f"{prefix}-", PaginationConfig={"PageSize": PAGE_SIZE}):
        for summary in page.get("Endpoints", []):
            summaries[summary["EndpointName"]] = summary
    return summaries


def _variant_names(variants: list[dict[str, Any]] | None) -> tuple[str, ...]:
    return tuple(v["VariantName"] for v in variants or [] if v.get("VariantName"))


def _instance_counts(variants: list[dict[str, Any]] | None) -> tuple[tuple[str, int], ...]:
    return tuple((v["VariantName"], int(v.get("CurrentInstanceCount") or 0)) for v in variants or []
                 if v.get("VariantName"))


def _is_serverless(variants: list[dict[str, Any]] | None) -> bool:
    return any(v.get("CurrentServerlessConfig") or v.get("DesiredServerlessConfig") for v in variants or [])


def list_managed_endpoints(sagemaker: Any, prefix: str) -> list[ManagedEndpoint]:
    """Every endpoint carrying this platform's managed tags, sorted by name."""
    summaries = _list_endpoint_summaries(sagemaker, prefix)
    found: dict[str, ManagedEndpoint] = {}
    for record in _search_endpoints(sagemaker, prefix):
        endpoint_tags = {t["Key"]: t["Value"] for t in record.get("Tags", [])}
        name = record["EndpointName"]
        if not is_managed(endpoint_tags, prefix):
            continue
        summary = summaries.get(name)
        found[name] = ManagedEndpoint(
            name=name,
            tags=endpoint_tags,
            config_name=record.get("EndpointConfigName", ""),
            variants=_variant_names(record.get("ProductionVariants")),
            shadow_variants=_variant_names(record.get("ShadowProductionVariants")),
            serverless=_is_serverless(record.get("ProductionVariants")),
            status=summary["EndpointStatus"] if summary else None,
            last_modified_time=summary["LastModifiedTime"] if summary else None,
            instance_counts=_instance_counts(record.get("ProductionVariants")),
        )
    return [found[name] for name in sorted(found)]
