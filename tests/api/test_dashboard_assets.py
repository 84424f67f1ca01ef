"""The dashboard's files come from the API itself (no CDN), under a policy that runs
only them; a job's spec is readable for its page."""

from __future__ import annotations

import copy
import re

import httpx
import pytest

from tests.api.conftest import Broker
from trainq.services.spec import SEED_EXAMPLE

pytestmark = pytest.mark.anyio


async def test_the_page_and_every_asset_it_names_are_served_by_trainq(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text)
    assert "/dashboard/vendor/uplot/uPlot.iife.min.js" in assets and "/dashboard/js/app.js" in assets
    # nothing from another host: the page works on a closed network
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)
    for asset in assets:
        assert (await client.get(asset)).status_code == 200, asset
    # each module the app imports is there too
    modules = re.findall(r'from "\./([\w.]+)"', (await client.get("/dashboard/js/app.js")).text)
    for module in modules:
        assert (await client.get(f"/dashboard/js/{module}")).status_code == 200, module
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]


async def test_a_jobs_spec_is_read_back_as_submitted_and_an_unknown_job_is_404(
    client: httpx.AsyncClient, broker: Broker
) -> None:
    document = copy.deepcopy(SEED_EXAMPLE)
    job = (await client.post("/v1/jobs", json={**document, "name": "spec"})).json()
    spec = (await client.get(f"/v1/jobs/{job['id']}/spec")).json()
    assert spec["data"] == document["data"]
    assert spec["fit"]["epochs"] == document["fit"]["epochs"]
    assert spec["model"]["layers"][0]["units"] == 1
    missing = await client.get("/v1/jobs/nope/spec")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "path.job_id"
