"""The API reference renders with the network cut off: /docs (Swagger UI) and /redoc load
their scripts from the API itself, which serves the copies installed with trainq."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Stack, cut_off_network

pytestmark = pytest.mark.e2e

RENDERED_MS = 20_000


def test_swagger_ui_at_docs_renders_every_route_without_the_internet(stack: Stack, browser: Browser) -> None:
    assert stack.api is not None
    page = browser.new_page()
    refused = cut_off_network(page)
    page.goto(stack.api.base_url + "/docs")

    submit = page.locator(".opblock-post .opblock-summary-path", has_text="/v1/jobs").first
    expect(submit).to_be_visible(timeout=RENDERED_MS)
    expect(page.locator(".opblock-delete .opblock-summary-path", has_text="/v1/jobs/{job_id}")).to_be_visible()
    # the bearer scheme is declared: the page offers to authorize with a key
    expect(page.get_by_role("button", name="Authorize").first).to_be_visible()
    assert refused == []


def test_redoc_at_redoc_renders_the_operations_without_the_internet(stack: Stack, browser: Browser) -> None:
    assert stack.api is not None
    page = browser.new_page()
    refused = cut_off_network(page)
    page.goto(stack.api.base_url + "/redoc")

    expect(page.get_by_role("heading", name="Submit a training job")).to_be_visible(timeout=RENDERED_MS)
    # all ReDoc asks the internet for is the Redocly logo of its "API docs by Redocly"
    # credit, an image the page is whole without
    assert [url for kind, url in refused if kind != "image"] == []
