"""The image table: covers every supported region and agrees with the SageMaker SDK's image_uris."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_code import images
from stacks.regions import SUPPORTED_REGIONS

image_uris = pytest.importorskip("sagemaker.image_uris")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"


def test_table_covers_exactly_the_supported_regions():
    assert set(images.REGISTRY_ACCOUNTS) == set(SUPPORTED_REGIONS)
    for region in SUPPORTED_REGIONS:
        assert set(images.REGISTRY_ACCOUNTS[region]) == {i.sdk_framework for i in images.IMAGES}


@pytest.mark.parametrize("region", SUPPORTED_REGIONS)
@pytest.mark.parametrize("image", images.IMAGES, ids=lambda i: i.placeholder)
def test_uri_agrees_with_the_sdk(region, image):
    kwargs = {"version": image.version} if image.sdk_framework in ("sklearn", "xgboost") else {}
    if image.sdk_framework == "sklearn":
        kwargs["image_scope"] = "training"
    expected = image_uris.retrieve(image.sdk_framework, region=region, **kwargs)
    assert images.image_uri(image, region) == expected


def test_unknown_region_is_refused():
    with pytest.raises(images.UnsupportedRegionError, match="cn-north-1"):
        images.image_uri(images.SKLEARN, "cn-north-1")


def test_region_images_fill_every_image_placeholder():
    assert set(images.region_images("eu-west-1")) == {i.placeholder for i in images.IMAGES}


def test_docs_show_the_current_table():
    assert images.markdown_table() in DOCS.read_text()
