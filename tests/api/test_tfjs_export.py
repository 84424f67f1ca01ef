"""GET /v1/jobs/{id}/model.json and weights.bin: the trained model in tf.js's format, its
ETag, and the last checkpoint of a job that did not finish. (tf.js itself loads them in
tests/parity/test_tfjs_models.py and, over HTTP, in tests/e2e/test_tfjs.py.)"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api.test_jobs import seed
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import utcnow
from trainq.services.engine import Checkpoint
from trainq.services.jobs import service as jobs
from trainq.services.jobs.service import EpochRecord
from trainq.services.settings import Settings
from trainq.services.training import run_job

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]


async def test_a_trained_job_exports_model_json_and_its_weights_as_float32(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    document = seed(
        model={"layers": [{"units": 3, "inputShape": [1], "activation": "relu"}, {"units": 1}]},
        fit={"epochs": 4, "batchSize": 2, "seed": 7},
    )
    job = (await client.post("/v1/jobs", json=document)).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)

    exported = await client.get(f"/v1/jobs/{job['id']}/model.json")
    weights_bin = await client.get(f"/v1/jobs/{job['id']}/weights.bin")
    weights = (await client.get(f"/v1/jobs/{job['id']}/weights")).json()["weights"]

    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    assert exported.headers["x-trainq-epoch"] == "4"
    model = exported.json()
    assert model["format"] == "layers-model" and model["convertedBy"] is None
    assert [layer["class_name"] for layer in model["modelTopology"]["config"]["layers"]] == ["Dense", "Dense"]
    assert model["weightsManifest"] == [
        {
            "paths": ["weights.bin"],
            "weights": [
                {"name": "dense_Dense1/kernel", "shape": [1, 3], "dtype": "float32"},
                {"name": "dense_Dense1/bias", "shape": [3], "dtype": "float32"},
                {"name": "dense_Dense2/kernel", "shape": [3, 1], "dtype": "float32"},
                {"name": "dense_Dense2/bias", "shape": [1], "dtype": "float32"},
            ],
        }
    ]
    assert model["trainingConfig"] == {
        "loss": "mean_absolute_error",
        "metrics": [],
        "optimizer_config": {"class_name": "SGD", "config": {"learningRate": 0.01}},
    }
    assert model["userDefinedMetadata"]["trainq"] == {
        "jobId": job["id"],
        "status": "succeeded",
        "epoch": 4,
        "final": True,
        "compile": document["compile"] | {"metrics": []},
    }
    assert weights_bin.headers["content-type"] == "application/octet-stream"
    values = np.frombuffer(weights_bin.content, dtype="<f4")
    np.testing.assert_array_equal(values, np.concatenate([np.ravel(w["values"]) for w in weights]).astype(np.float32))


async def test_an_unchanged_model_is_not_sent_again(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    job = (await client.post("/v1/jobs", json=seed(fit={"epochs": 2}))).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)
    for path in ("model.json", "weights.bin"):
        first = await client.get(f"/v1/jobs/{job['id']}/{path}")
        tag = first.headers["etag"]
        again = await client.get(f"/v1/jobs/{job['id']}/{path}", headers={"If-None-Match": tag})
        other = await client.get(f"/v1/jobs/{job['id']}/{path}", headers={"If-None-Match": '"something-else"'})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
        assert other.status_code == 200 and other.content == first.content
        assert first.headers["cache-control"] == "no-cache"


def _checkpoint(epoch: int, weights: list[np.ndarray]) -> bytes:
    state = {"iterations": epoch, "scalars": {}, "slots": {}}
    return Checkpoint(epoch=epoch, weights=weights, optimizer=state, rng={}).to_bytes()


async def test_a_cancelled_job_exports_its_last_checkpoint_and_says_which_epoch(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    job = (await client.post("/v1/jobs", json=seed(fit={"epochs": 10}))).json()
    before = await client.get(f"/v1/jobs/{job['id']}/model.json")
    assert before.status_code == 409 and before.json()["errors"][0]["field"] == "path.job_id"
    kernel, bias = np.array([[1.5]], np.float32), np.array([0.25], np.float32)
    with factory() as session:
        claim = jobs.claim(session, job["id"], worker="w", lease_seconds=60)
        assert claim is not None
        for epoch in range(3):
            jobs.record_epochs(
                session,
                job["id"],
                attempt=claim.attempt,
                epochs=[EpochRecord(epoch, {"loss": 1.0}, 0.1, utcnow())],
                checkpoint=(epoch + 1, _checkpoint(epoch + 1, [kernel * (epoch + 1), bias])),
            )
        session.commit()
    running = await client.get(f"/v1/jobs/{job['id']}/model.json")
    assert running.status_code == 200 and running.headers["x-trainq-epoch"] == "3"
    with factory() as session:
        jobs.request_cancel(session, TEST_PRINCIPAL, job["id"])
        assert jobs.cancelled(session, job["id"], attempt=claim.attempt)
        session.commit()

    exported = await client.get(f"/v1/jobs/{job['id']}/model.json")
    weights_bin = await client.get(f"/v1/jobs/{job['id']}/weights.bin")
    assert exported.headers["x-trainq-epoch"] == weights_bin.headers["x-trainq-epoch"] == "3"
    assert exported.json()["userDefinedMetadata"]["trainq"] | {"compile": None} == {
        "jobId": job["id"],
        "status": "cancelled",
        "epoch": 3,
        "final": False,
        "compile": None,
    }
    assert np.frombuffer(weights_bin.content, "<f4").tolist() == [4.5, 0.25]
    # still 409 on /weights: the final weights of a job that did not finish do not exist
    assert (await client.get(f"/v1/jobs/{job['id']}/weights")).status_code == 409


async def test_the_model_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    for path in ("model.json", "weights.bin"):
        response = await client.get(f"/v1/jobs/no-such-job/{path}")
        assert response.status_code == 404 and response.json()["errors"][0]["field"] == "path.job_id"
