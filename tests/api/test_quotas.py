"""Quotas per tenant: past its queued + running jobs, a submit or a sweep is 429 with
Retry-After naming the limit; past its stored dataset bytes, an upload is. Ended jobs free
their place; another tenant's work does not count."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import asgi_client
from tests.api.test_jobs import seed
from tests.api.test_tenants import CSV, key_of
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.session import session_scope
from trainq.services.tenants import quotas

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]


def limit(factory: Factory, *, jobs: int | None = None, dataset_bytes: int | None = None) -> None:
    with session_scope(factory) as session:
        quotas.set_limits(session, TEST_PRINCIPAL.tenant, max_active_jobs=jobs, max_dataset_bytes=dataset_bytes)


def assert_over(answer: httpx.Response, name: str) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) > 0
    body = answer.json()
    assert body["errors"][0]["field"] == f"quota.{name}" and f"({name})" in body["detail"], body


async def test_jobs_past_the_tenant_s_limit_are_429_until_one_ends(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    limit(factory, jobs=2)
    first = (await client.post("/v1/jobs", json=seed())).json()
    assert (await client.post("/v1/jobs", json=seed(), headers={"Idempotency-Key": "k"})).status_code == 201
    assert_over(await client.post("/v1/jobs", json=seed()), "max_active_jobs")
    # a retry of a stored submit is not a new job
    assert (await client.post("/v1/jobs", json=seed(), headers={"Idempotency-Key": "k"})).status_code == 200
    assert_over(
        await client.post("/v1/sweeps", json={"base": seed(), "grid": {"fit.batchSize": [2]}}), "max_active_jobs"
    )
    # another tenant's jobs count against its own limits only
    async with asgi_client(app, headers=key_of(factory, "tenant-b")) as b:
        assert (await b.post("/v1/jobs", json=seed())).status_code == 201
    assert (await client.post(f"/v1/jobs/{first['id']}/cancel")).status_code == 202
    assert (await client.post("/v1/jobs", json=seed())).status_code == 201
    limit(factory, jobs=None)
    assert (
        await client.post("/v1/sweeps", json={"base": seed(), "grid": {"fit.batchSize": [2, 4]}})
    ).status_code == 201


async def test_a_batch_past_the_tenant_s_limit_stores_none_and_says_how_many_fit(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    limit(factory, jobs=3)
    assert (await client.post("/v1/jobs", json=seed())).status_code == 201
    over = await client.post("/v1/jobs/batch", json={"jobs": [seed(), seed(), seed()]})
    assert_over(over, "max_active_jobs")
    assert "leaves room for 2, not 3" in over.json()["detail"]
    assert len((await client.get("/v1/jobs")).json()["items"]) == 1
    fitting = await client.post("/v1/jobs/batch", json={"jobs": [seed(), seed()]})
    assert fitting.status_code == 201, fitting.text
    assert len((await client.get("/v1/jobs")).json()["items"]) == 3


async def test_a_dataset_past_the_tenant_s_stored_bytes_is_429(client: httpx.AsyncClient, factory: Factory) -> None:
    limit(factory, dataset_bytes=len(CSV) + 10)
    assert (await client.post("/v1/datasets", content=CSV, params={"format": "csv"})).status_code == 201
    other = CSV + b"4.0,4.0,4.0\n"
    assert_over(await client.post("/v1/datasets", content=other, params={"format": "csv"}), "max_dataset_bytes")
    # the same content again is the dataset stored before, not more bytes
    assert (await client.post("/v1/datasets", content=CSV, params={"format": "csv"})).status_code == 200
