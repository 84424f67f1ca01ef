"""Tenants: a key of tenant B finds none of tenant A's jobs, datasets, sweeps, evaluations
and models, in lists and in every route (404, as for an id that does not exist), nor can
it train or evaluate on A's dataset or start from A's model; an admin key sees every
tenant's work and may narrow a list to one tenant. Tenant A is the test session's key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import asgi_client
from tests.api.test_jobs import seed
from trainq.services.db.session import session_scope
from trainq.services.settings import Settings
from trainq.services.tenants import keys
from trainq.services.training import run_job

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]
CSV = b"a,b,y\n0.5,1.0,1.0\n1.5,-2.0,0.0\n2.5,3.25,1.0\n-1.0,0.0,0.5\n"
TWO_INPUTS = {"layers": [{"units": 1, "inputShape": [2]}]}


def key_of(factory: Factory, tenant: str, *, admin: bool = False) -> dict[str, str]:
    with session_scope(factory) as session:
        _, key = keys.issue(session, tenant, admin=admin)
    return {"Authorization": f"Bearer {key}"}


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    answer = await response
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else {}


async def tenant_a_work(client: httpx.AsyncClient, factory: Factory, settings: Settings) -> dict[str, str]:
    """One of each of tenant A's: a dataset, a trained job on it, an evaluation, a sweep, a model."""
    dataset = await ok(client.post("/v1/datasets", content=CSV, params={"format": "csv"}), 201)
    job = await ok(client.post("/v1/jobs", json=seed(model=TWO_INPUTS, data={"datasetId": dataset["id"]})), 201)
    run_job(factory, job["id"], worker="test:1", settings=settings)
    evaluation = await ok(client.post(f"/v1/jobs/{job['id']}/evaluations", json={"datasetId": dataset["id"]}), 202)
    sweep = await ok(client.post("/v1/sweeps", json={"base": seed(), "grid": {"fit.batchSize": [2, 4]}}), 201)
    model = await ok(client.post(f"/v1/jobs/{job['id']}/model"), 201)
    return {
        "job": job["id"],
        "dataset": dataset["id"],
        "evaluation": evaluation["id"],
        "sweep": sweep["id"],
        "model": model["id"],
    }


async def test_tenant_b_finds_none_of_tenant_a_s_work_in_any_route(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    a = await tenant_a_work(client, factory, settings)
    job, dataset, evaluation, sweep, model = a["job"], a["dataset"], a["evaluation"], a["sweep"], a["model"]
    async with asgi_client(app, headers=key_of(factory, "tenant-b")) as b:
        for path in ("/v1/jobs", "/v1/datasets", "/v1/sweeps", "/v1/models"):
            assert (await ok(b.get(path)))["items"] == [], path
        x = [[0.5, 1.0]]
        refused = [
            ("GET", f"/v1/jobs/{job}", None),
            ("GET", f"/v1/jobs/{job}/spec", None),
            ("GET", f"/v1/jobs/{job}/history", None),
            ("GET", f"/v1/jobs/{job}/weights", None),
            ("GET", f"/v1/jobs/{job}/model.json", None),
            ("GET", f"/v1/jobs/{job}/weights.bin", None),
            ("GET", f"/v1/jobs/{job}/events", None),
            ("POST", f"/v1/jobs/{job}/evaluate", {"x": x, "y": [[1.0]]}),
            ("POST", f"/v1/jobs/{job}/evaluate", {"datasetId": dataset}),
            ("POST", f"/v1/jobs/{job}/predict", {"x": x}),
            ("POST", f"/v1/jobs/{job}/evaluations", {"datasetId": dataset}),
            ("POST", f"/v1/jobs/{job}/model", None),
            ("POST", f"/v1/jobs/{job}/cancel", None),
            ("DELETE", f"/v1/jobs/{job}", None),
            ("GET", f"/v1/datasets/{dataset}", None),
            ("DELETE", f"/v1/datasets/{dataset}", None),
            ("GET", f"/v1/evaluations/{evaluation}", None),
            ("GET", f"/v1/jobs/{job}/evaluations/{evaluation}", None),
            ("GET", f"/v1/sweeps/{sweep}", None),
            ("POST", f"/v1/sweeps/{sweep}/cancel", None),
            ("DELETE", f"/v1/sweeps/{sweep}", None),
            ("GET", f"/v1/models/{model}", None),
            ("GET", f"/v1/models/{model}/model.json", None),
            ("GET", f"/v1/models/{model}/weights.bin", None),
            ("DELETE", f"/v1/models/{model}", None),
        ]
        for method, path, body in refused:
            answer = await b.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        # a job of B's own on A's dataset, or from A's model: no such dataset, no such model
        on_a = await b.post("/v1/jobs", json=seed(model=TWO_INPUTS, data={"datasetId": dataset}))
        assert on_a.status_code == 422 and on_a.json()["errors"][0]["field"] == "data.datasetId", on_a.text
        in_batch = await b.post("/v1/jobs/batch", json={"jobs": [seed(model=TWO_INPUTS, data={"datasetId": dataset})]})
        assert in_batch.status_code == 422, in_batch.text
        assert in_batch.json()["errors"][0]["field"] == "jobs[0].data.datasetId", in_batch.text
        from_a = await b.post("/v1/jobs", json={"model": {"from": model}, "fit": {"epochs": 1}, "data": seed()["data"]})
        assert from_a.json()["errors"][0]["field"] == "model.from" and from_a.status_code in (404, 422), from_a.text
        # B's own trained job evaluated on A's dataset
        own = await ok(
            b.post(
                "/v1/jobs",
                json=seed(model=TWO_INPUTS, data={"x": [[1, 2], [2, 1], [0, 1], [1, 0]], "y": [[3], [3], [1], [1]]}),
            ),
            201,
        )
        run_job(factory, own["id"], worker="test:1", settings=settings)
        for route in ("evaluate", "evaluations"):
            answer = await b.post(f"/v1/jobs/{own['id']}/{route}", json={"datasetId": dataset})
            assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "datasetId", answer.text
    # nothing of A's was touched
    assert (await ok(client.get(f"/v1/jobs/{job}")))["status"] == "succeeded"
    for path in (f"/v1/datasets/{dataset}", f"/v1/sweeps/{sweep}", f"/v1/evaluations/{evaluation}"):
        await ok(client.get(path))


async def test_an_idempotency_key_or_a_dataset_s_content_of_another_tenant_is_not_shared(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    key = {"Idempotency-Key": "nightly-1"}
    first = await ok(client.post("/v1/jobs", json=seed(), headers=key), 201)
    uploaded = await ok(client.post("/v1/datasets", content=CSV, params={"format": "csv"}), 201)
    async with asgi_client(app, headers=key_of(factory, "tenant-b")) as b:
        other = await ok(b.post("/v1/jobs", json=seed(), headers=key), 201)
        again = await ok(b.post("/v1/datasets", content=CSV, params={"format": "csv"}), 201)
    assert other["id"] != first["id"] and again["id"] != uploaded["id"]


async def test_an_admin_key_sees_every_tenant_and_filters_by_one(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    a_job = await ok(client.post("/v1/jobs", json=seed()), 201)
    async with asgi_client(app, headers=key_of(factory, "tenant-b")) as b:
        b_job = await ok(b.post("/v1/jobs", json=seed()), 201)
        refused = await b.get("/v1/jobs", params={"tenant": "default"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.tenant"
    async with asgi_client(app, headers=key_of(factory, "ops", admin=True)) as admin:
        everyone = {job["id"] for job in (await ok(admin.get("/v1/jobs")))["items"]}
        assert {a_job["id"], b_job["id"]} <= everyone
        only_b = [job["id"] for job in (await ok(admin.get("/v1/jobs", params={"tenant": "tenant-b"})))["items"]]
        assert only_b == [b_job["id"]]
        assert (await ok(admin.get(f"/v1/jobs/{a_job['id']}")))["id"] == a_job["id"]
        await ok(admin.post(f"/v1/jobs/{b_job['id']}/cancel"), 202)
