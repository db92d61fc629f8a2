"""The reaper's cost estimate of idle endpoints: the Price List request (exact, botocore Stubber: moto has no
Price List API), the on-demand price read from its answer, instance counts from the inventory's Search and
types from the endpoint config, and the estimate on the outcomes of a run (moto SageMaker and CloudWatch)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from idle_endpoint_reaper import inventory, pricing, reaper, report
from idle_endpoint_reaper.inventory import ManagedEndpoint
from moto import mock_aws

from tests.lambdas.test_idle_endpoint_reaper import REGION, config, create_endpoint, hours_from_now, outcome


def price_item(usd: str, unit: str = "Hrs", instance: str = "ml.m5.large") -> str:
    """One ``PriceList`` entry in the Price List API's shape."""
    return json.dumps({
        "product": {"productFamily": "ML Instance", "attributes": {
            "instanceName": instance, "regionCode": REGION, "platoinstancetype": "Hosting",
            "usagetype": f"USE1-Host:{instance}"}},
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": {"SKU.TERM.RATE": {
            "unit": unit, "pricePerUnit": {"USD": usd}, "description": f"${usd} per Hosting {instance} hour"}}}}},
    })


def request(instance: str = "ml.m5.large") -> dict:
    return {"ServiceCode": "AmazonSageMaker", "Filters": pricing.product_filters(REGION, instance), "MaxResults": 100}


def test_the_on_demand_hourly_price_is_read_from_the_price_list():
    assert pricing.on_demand_hourly_usd([price_item("0.1150000000")]) == 0.115
    assert pricing.on_demand_hourly_usd([price_item("0.0000000000")]) is None, "a zero price is no price"
    assert pricing.on_demand_hourly_usd([price_item("3.5", unit="Quantity")]) is None
    assert pricing.on_demand_hourly_usd([]) is None


def test_each_instance_type_is_asked_for_once_with_exactly_the_hosting_filters():
    client = boto3.client("pricing", region_name=pricing.PRICING_REGION)
    stub = Stubber(client)
    stub.add_response("get_products", {"PriceList": [price_item("0.115")], "FormatVersion": "aws_v1"}, request())
    book = pricing.PriceBook(client, REGION)
    with stub:
        assert book.hourly("ml.m5.large") == book.hourly("ml.m5.large") == 0.115
    stub.assert_no_pending_responses()
    assert [f["Field"] for f in pricing.product_filters(REGION, "ml.m5.large")] == [
        "productFamily", "platoinstancetype", "regionCode", "instanceName"]


def managed(name: str, config: str, counts: tuple) -> ManagedEndpoint:
    return ManagedEndpoint(name=name, tags={}, config_name=config, variants=tuple(v for v, _ in counts),
                           shadow_variants=(), serverless=False, status="InService", last_modified_time=None,
                           instance_counts=counts)


def test_an_endpoint_costs_its_instance_variants_at_their_current_counts():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    client = boto3.client("pricing", region_name=pricing.PRICING_REGION)
    sm, stub = Stubber(sagemaker), Stubber(client)
    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": "mlp-fraud-x-config", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c",
        "CreationTime": now,
        "ProductionVariants": [{"VariantName": "Blue", "ModelName": "m", "InstanceType": "ml.m5.large"},
                               {"VariantName": "Green", "ModelName": "m", "InstanceType": "ml.c5.xlarge"},
                               {"VariantName": "Serverless", "ModelName": "m",
                                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}]},
        {"EndpointConfigName": "mlp-fraud-x-config"})
    stub.add_response("get_products", {"PriceList": [price_item("0.115")]}, request("ml.m5.large"))
    stub.add_response("get_products", {"PriceList": [price_item("0.204", instance="ml.c5.xlarge")]},
                      request("ml.c5.xlarge"))
    endpoint = managed("mlp-fraud-x", "mlp-fraud-x-config", (("Blue", 3), ("Green", 1), ("Serverless", 0)))
    with sm, stub:
        cost, why = pricing.endpoint_hourly_cost(sagemaker, pricing.PriceBook(client, REGION), endpoint)
    assert (cost, why) == (pytest.approx(3 * 0.115 + 0.204), None)


def test_the_inventory_carries_each_variants_current_instance_count():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        create_endpoint(sagemaker, "mlp-fraud-two", variants=("Blue", "Green"))
        (found,) = inventory.list_managed_endpoints(sagemaker, "mlp")
    assert found.instance_counts == (("Blue", 1), ("Green", 1))


def test_an_instance_type_without_a_price_leaves_the_estimate_out_and_says_why():
    client = boto3.client("pricing", region_name=pricing.PRICING_REGION)
    stub = Stubber(client)
    stub.add_response("get_products", {"PriceList": []}, request())
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        config_name = create_endpoint(sagemaker, "mlp-fraud-unpriced")
        endpoint = managed("mlp-fraud-unpriced", config_name, (("AllTraffic", 1),))
        with stub:
            cost, why = pricing.endpoint_hourly_cost(sagemaker, pricing.PriceBook(client, REGION), endpoint)
    assert cost is None and why == f"no on-demand hosting price for ml.m5.large in {REGION}"


@pytest.mark.parametrize("dry_run, action", [(True, report.WOULD_DELETE), (False, report.DELETED)])
def test_a_run_reports_the_estimated_hourly_cost_of_each_idle_endpoint(dry_run, action):
    client = boto3.client("pricing", region_name=pricing.PRICING_REGION)
    stub = Stubber(client)
    stub.add_response("get_products", {"PriceList": [price_item("0.115")]}, request())
    with mock_aws():
        made = {name: boto3.client(name, region_name=REGION)
                for name in ("sagemaker", "cloudwatch", "application-autoscaling", "ssm", "scheduler")}
        create_endpoint(made["sagemaker"], "mlp-fraud-idle")
        clients = reaper.Clients(sagemaker=made["sagemaker"], cloudwatch=made["cloudwatch"],
                                 autoscaling=made["application-autoscaling"], ssm=made["ssm"],
                                 scheduler=made["scheduler"], pricing=client, region=REGION)
        with stub:
            run = reaper.reap(clients, config(dry_run=dry_run), hours_from_now(30))
    found = outcome(run, "mlp-fraud-idle")
    assert found.action == action
    count = 1  # create_endpoint's one ml.m5.large
    assert found.hourly_cost_usd == pytest.approx(count * 0.115)
