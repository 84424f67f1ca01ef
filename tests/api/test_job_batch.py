"""POST /v1/jobs/batch: many jobs in one request, each checked as alone, all stored or none."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Broker
from tests.conftest import sqlite_settings
from tests.support import keys
from trainq.api.app import create_app
from trainq.services.db.models import Job
from trainq.services.spec import SEED_EXAMPLE

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]


def seed(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(SEED_EXAMPLE)
    document.update(changes)
    return document


def job_count(factory: Factory) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


async def test_a_batch_is_stored_queued_in_order_and_each_job_is_sent(
    client: httpx.AsyncClient, broker: Broker
) -> None:
    specs = [seed(name=f"point {i}", device="cpu" if i % 2 else "auto") for i in range(40)]

    response = await client.post("/v1/jobs/batch", json={"jobs": specs})

    assert response.status_code == 201, response.text
    jobs = response.json()["jobs"]
    assert [job["name"] for job in jobs] == [f"point {i}" for i in range(40)]
    assert all(job["status"] == "queued" and job["progress"] == {"epoch": 0, "epochs": 20} for job in jobs)
    assert [job["device"] for job in jobs[:2]] == ["auto", "cpu"]
    sent = broker.take_all()
    assert sorted(args[0] for _, args in sent) == sorted(job["id"] for job in jobs)
    assert (await client.get(f"/v1/jobs/{jobs[7]['id']}")).json() == jobs[7]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"model": {"layers": [{"units": 0, "inputShape": [1]}]}}, "jobs[3].model.layers[0].units"),
        # the engine's own check (data that does not fit the model), made before storing
        ({"model": {"layers": [{"units": 1, "inputShape": [2]}]}}, "jobs[3].data.x"),
        ({"name": "n" * 201}, "jobs[3].name"),
    ],
    ids=["schema", "engine", "name"],
)
async def test_a_batch_with_one_bad_job_stores_none_and_names_its_place(
    client: httpx.AsyncClient, broker: Broker, factory: Factory, bad: dict[str, Any], field: str
) -> None:
    specs = [seed() for _ in range(6)]
    specs[3].update(bad)

    response = await client.post("/v1/jobs/batch", json={"jobs": specs})

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field], response.json()
    assert job_count(factory) == 0
    assert broker.take_all() == []


async def test_a_batch_holds_1000_jobs_at_most(sqlite_home: Path, factory: Factory, broker: Broker) -> None:
    settings = sqlite_settings(sqlite_home, TRAINQ_MAX_REQUEST_BYTES=16 * 1024 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://t", headers=keys.HEADERS
    ) as client:
        refused = await client.post("/v1/jobs/batch", json={"jobs": [seed()] * 1001})
        empty = await client.post("/v1/jobs/batch", json={"jobs": []})

    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "jobs", refused.text
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "jobs", empty.text
    assert job_count(factory) == 0


async def test_a_retried_batch_with_the_same_idempotency_key_returns_its_jobs_and_sends_none_again(
    client: httpx.AsyncClient, broker: Broker, factory: Factory
) -> None:
    specs = [seed(name=f"point {i}") for i in range(3)]
    key = {"Idempotency-Key": "batch-1"}
    first = await client.post("/v1/jobs/batch", json={"jobs": specs}, headers=key)
    sent = broker.take_all()
    # the same batch, formatted otherwise: the same request
    spaced = json.dumps({"jobs": specs}, indent=2).encode()
    again = await client.post("/v1/jobs/batch", content=spaced, headers={**key, "Content-Type": "application/json"})
    other = await client.post("/v1/jobs/batch", json={"jobs": specs[:2]}, headers=key)
    overlong = await client.post("/v1/jobs/batch", json={"jobs": specs}, headers={"Idempotency-Key": "k" * 256})

    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json() == first.json()
    assert sorted(args[0] for _, args in sent) == sorted(job["id"] for job in first.json()["jobs"])
    assert broker.take_all() == []
    assert job_count(factory) == 3
    for refused, status in ((other, 409), (overlong, 422)):
        assert refused.status_code == status, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["header.Idempotency-Key"], refused.text
