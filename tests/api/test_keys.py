"""API keys: every /v1 route needs one (the OpenAPI document is walked, so a new route
cannot be forgotten); a wrong, malformed or revoked key is 401 with WWW-Authenticate; the
health checks, the dashboard's files and the API reference stay open; a cross-site form
post cannot cancel a job."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import asgi_client
from trainq.services.db.models import ApiKey, Job
from trainq.services.db.session import session_scope
from trainq.services.spec import SEED_EXAMPLE
from trainq.services.tenants import keys

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]


def v1_operations(document: dict) -> list[tuple[str, str]]:
    """(method, path) of every /v1 operation, path parameters filled in."""
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "some-id", path))
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def assert_refused(response: httpx.Response, why: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"] == [{"field": "header.Authorization", "message": why}], body


def issue(factory: Factory, tenant: str = "alpha", admin: bool = False) -> tuple[str, str]:
    """(key id, key) of a new key."""
    with session_scope(factory) as session:
        row, key = keys.issue(session, tenant, admin=admin)
        return row.id, key


async def test_every_v1_route_answers_401_without_a_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    operations = v1_operations((await client.get("/openapi.json")).json())
    assert len(operations) >= 15 and ("POST", "/v1/jobs/some-id/cancel") in operations
    async with asgi_client(app, headers={}) as anonymous:
        for method, path in operations:
            response = await anonymous.request(method, path, json={})
            assert_refused(response, "an API key is required: send the header Authorization: Bearer <key>")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer tq_000000000000_" + "A" * 43,  # well formed, unknown
        "Bearer tq_nothing",
        "Bearer " + "x" * 300,
        "Bearer tq_\x7f_\x7f",
    ],
)
async def test_a_key_that_is_not_valid_answers_401(app: FastAPI, client: httpx.AsyncClient, authorization: str) -> None:
    async with asgi_client(app, headers={"Authorization": authorization}) as stranger:
        assert_refused(await stranger.get("/v1/jobs"), "the API key is not valid")


async def test_a_key_with_its_secret_changed_answers_401(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    _, key = issue(factory)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    async with asgi_client(app, headers={"Authorization": f"Bearer {forged}"}) as forger:
        assert_refused(await forger.get("/v1/jobs"), "the API key is not valid")


async def test_a_revoked_key_answers_401_and_its_use_is_recorded(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    key_id, key = issue(factory)
    async with asgi_client(app, headers={"Authorization": f"Bearer {key}"}) as holder:
        assert (await holder.get("/v1/jobs")).status_code == 200
        with session_scope(factory) as session:
            row = session.get(ApiKey, key_id)
            assert row is not None and row.last_used_at is not None
            assert row.key_hash != key and key not in repr(row.__dict__)
            keys.revoke(session, key_id)
        assert_refused(await holder.get("/v1/jobs"), "the API key was revoked")


async def test_last_use_is_written_at_most_once_a_minute(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    key_id, key = issue(factory)
    async with asgi_client(app, headers={"Authorization": f"Bearer {key}"}) as holder:
        await holder.get("/v1/jobs")
        with session_scope(factory) as session:
            row = session.get(ApiKey, key_id)
            assert row is not None and row.last_used_at is not None
            first = row.last_used_at
        await holder.get("/v1/jobs")
        with session_scope(factory) as session:
            row = session.get(ApiKey, key_id)
            assert row is not None and row.last_used_at == first
            row.last_used_at = first - keys.LAST_USED_RESOLUTION - timedelta(seconds=1)
        await holder.get("/v1/jobs")
        with session_scope(factory) as session:
            row = session.get(ApiKey, key_id)
            assert row is not None and row.last_used_at is not None and row.last_used_at > first


async def test_health_the_dashboard_and_the_api_reference_need_no_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    async with asgi_client(app, headers={}) as anonymous:
        for path in ("/healthz", "/readyz", "/", "/dashboard/js/app.js", "/docs", "/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200, path


async def test_the_openapi_document_declares_the_bearer_scheme_on_every_v1_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"]["type"] == "http" and schemes["apiKey"]["scheme"].lower() == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = {"apiKey": []} in operation.get("security", [])
            assert secured == path.startswith("/v1/"), (method, path)


async def test_a_cross_site_form_post_cannot_cancel_a_job(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    job = (await client.post("/v1/jobs", json=SEED_EXAMPLE)).json()
    # what a page on another site can make a browser send without asking: a form post,
    # with the browser's cookies for the API's host, and no Authorization header
    async with asgi_client(app, headers={}) as browser:
        response = await browser.post(
            f"/v1/jobs/{job['id']}/cancel",
            content=b"",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "https://evil.example",
                "Cookie": "session=whatever",
            },
        )
    assert response.status_code == 401
    with session_scope(factory) as session:
        stored = session.get(Job, job["id"])
        assert stored is not None and stored.status == "queued"
