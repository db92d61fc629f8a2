"""The estimated on-demand cost per hour of an idle endpoint, from the AWS Price List API.

Per production variant: its current instance count (the inventory's Search) times the on-demand hourly price of
its instance type (DescribeEndpointConfig) for real-time hosting in the endpoint's region: ``GetProducts`` of
``AmazonSageMaker`` with ``productFamily`` ``ML Instance``, ``platoinstancetype`` ``Hosting``, the
``regionCode`` and the ``instanceName``. Serverless variants bill per request and are left out. The estimate
is for reporting only: any failure gives ``None`` (and its reason), never a different decision.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SERVICE_CODE = "AmazonSageMaker"
PRICING_REGION = "us-east-1"
"""The Price List API is served from us-east-1 (and ap-south-1); it prices every region."""


def product_filters(region: str, instance_type: str) -> list:
    return [
        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"},
        {"Type": "TERM_MATCH", "Field": "platoinstancetype", "Value": "Hosting"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
    ]


def on_demand_hourly_usd(price_list: list) -> float | None:
    """The lowest positive on-demand USD price per hour among the products (``PriceList`` JSON strings)."""
    found = []
    for item in price_list:
        product = json.loads(item) if isinstance(item, str) else item
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                unit = str(dimension.get("unit", "")).lower()
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if unit in ("hrs", "hour", "hours") and usd not in (None, ""):
                    value = float(usd)
                    if value > 0:
                        found.append(value)
    return min(found) if found else None


class PriceBook:
    """Hourly prices by instance type, each asked for once per run."""

    def __init__(self, pricing: Any, region: str) -> None:
        self.pricing, self.region = pricing, region
        self.prices: dict[str, float | None] = {}

    def hourly(self, instance_type: str) -> float | None:
        if instance_type not in self.prices:
            response = self.pricing.get_products(ServiceCode=SERVICE_CODE,
                                                 Filters=product_filters(self.region, instance_type), MaxResults=100)
            self.prices[instance_type] = on_demand_hourly_usd(response.get("PriceList", []))
        return self.prices[instance_type]


def endpoint_hourly_cost(sagemaker: Any, book: PriceBook, endpoint: Any) -> tuple:
    """(USD per hour or None, why None) of a `ManagedEndpoint`: its instance variants at their current counts
    (from the inventory's Search), each at its instance type's price (one DescribeEndpointConfig)."""
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint.config_name)
        types = {v["VariantName"]: v.get("InstanceType") for v in config.get("ProductionVariants", [])}
        total = 0.0
        for variant, count in endpoint.instance_counts:
            instance_type = types.get(variant)
            if not instance_type:
                continue  # serverless: billed per request
            price = book.hourly(instance_type)
            if price is None:
                return None, f"no on-demand hosting price for {instance_type} in {book.region}"
            total += price * count
        return round(total, 4), None
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        return None, f"cost not estimated: {exc}"
