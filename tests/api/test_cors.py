"""CORS: a page on a listed origin (TRAINQ_CORS_ORIGINS) may call the API with its key; the
preflight of any other origin, and of every origin by default, is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.api.conftest import asgi_client
from tests.conftest import sqlite_settings
from trainq.api.app import create_app

pytestmark = pytest.mark.anyio

LISTED = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


async def test_a_listed_origin_passes_the_preflight_and_reads_answers_errors_included(sqlite_home: Path) -> None:
    app = create_app(sqlite_settings(sqlite_home, TRAINQ_CORS_ORIGINS=f"{LISTED}, http://localhost:5173"))
    async with asgi_client(app) as client:
        preflight = await client.options("/v1/jobs", headers={"Origin": LISTED, **PREFLIGHT})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == LISTED
        assert {"authorization", "content-type"} <= {
            h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
        }
        assert "access-control-allow-credentials" not in preflight.headers
        listed = await client.get("/v1/jobs", headers={"Origin": LISTED})
        assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == LISTED
    async with asgi_client(app, headers={}) as anonymous:
        refused = await anonymous.get("/v1/jobs", headers={"Origin": LISTED})
        # the page can read why: its key is missing
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == LISTED


async def test_another_origin_is_refused_its_preflight(sqlite_home: Path) -> None:
    app = create_app(sqlite_settings(sqlite_home, TRAINQ_CORS_ORIGINS=LISTED))
    async with asgi_client(app) as client:
        preflight = await client.options(
            "/v1/jobs/some-id/cancel", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
        read = await client.get("/v1/jobs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in read.headers


async def test_by_default_no_origin_passes_the_preflight(sqlite_home: Path) -> None:
    async with asgi_client(create_app(sqlite_settings(sqlite_home))) as client:
        for origin in (LISTED, "http://127.0.0.1:8000"):
            preflight = await client.options("/v1/jobs", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers


def test_an_origin_with_a_path_is_refused_naming_the_variable(sqlite_home: Path) -> None:
    message = "TRAINQ_CORS_ORIGINS: 'https://app.example.com/' is not an origin"
    with pytest.raises(ValidationError, match=re.escape(message)):
        sqlite_settings(sqlite_home, TRAINQ_CORS_ORIGINS="https://app.example.com/")
