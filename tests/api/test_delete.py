"""DELETE /v1/jobs/{id} and DELETE /v1/sweeps/{id} over HTTP: 204 for ended work, 409
naming the job while it is queued or running, 404 after; a deleted job's model is no
longer served from the trained-model cache."""

from __future__ import annotations

import copy

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Broker
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE
from trainq.services.training import run_job

pytestmark = pytest.mark.anyio


async def test_a_queued_job_is_409_until_cancelled_then_deleted_and_gone(
    client: httpx.AsyncClient, broker: Broker
) -> None:
    job = (await client.post("/v1/jobs", json=SEED_EXAMPLE)).json()

    refused = await client.delete(f"/v1/jobs/{job['id']}")
    assert refused.status_code == 409
    cancel = f"POST /v1/jobs/{job['id']}/cancel"
    assert refused.json()["errors"] == [
        {"field": "path.job_id", "message": f"job {job['id']} is queued; cancel it first ({cancel})"}
    ]
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 202

    deleted = await client.delete(f"/v1/jobs/{job['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(f"/v1/jobs/{job['id']}")).status_code == 404
    assert (await client.get(f"/v1/jobs/{job['id']}/history")).status_code == 404
    assert (await client.delete(f"/v1/jobs/{job['id']}")).status_code == 404


async def test_a_deleted_job_no_longer_predicts_from_the_model_cache(
    app: FastAPI, client: httpx.AsyncClient, factory: sessionmaker[Session], settings: Settings
) -> None:
    job = (await client.post("/v1/jobs", json=SEED_EXAMPLE)).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)
    assert (await client.post(f"/v1/jobs/{job['id']}/predict", json={"x": [[1.0]]})).status_code == 200

    assert (await client.delete(f"/v1/jobs/{job['id']}")).status_code == 204

    gone = await client.post(f"/v1/jobs/{job['id']}/predict", json={"x": [[1.0]]})
    assert gone.status_code == 404
    assert job["id"] not in app.state.trained_models


async def test_a_sweep_is_409_while_its_jobs_wait_and_deleted_with_them_once_cancelled(
    client: httpx.AsyncClient,
) -> None:
    body = {"base": copy.deepcopy(SEED_EXAMPLE), "grid": {"fit.epochs": [1, 2]}}
    sweep = (await client.post("/v1/sweeps", json=body)).json()
    job_ids = [entry["job"]["id"] for entry in sweep["jobs"]]

    refused = await client.delete(f"/v1/sweeps/{sweep['id']}")
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "path.sweep_id"
    assert (await client.post(f"/v1/sweeps/{sweep['id']}/cancel")).status_code == 202

    assert (await client.delete(f"/v1/sweeps/{sweep['id']}")).status_code == 204
    assert (await client.get(f"/v1/sweeps/{sweep['id']}")).status_code == 404
    for job_id in job_ids:
        assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 404
