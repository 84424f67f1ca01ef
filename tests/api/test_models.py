"""/v1/models: what tf.js's tf.io.http sends is stored, listed, read, served back and
deleted; a job starts from a stored model; what trainq cannot train is a 422 and nothing
is stored. The artifacts are written by the real tf.js (tests/parity/tfjs_models.mjs)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.parity.conftest import MODELS_PROGRAM, run_tfjs, tfjs  # noqa: F401 (tfjs: the fixture)
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import StoredModel
from trainq.services.jobs import service as jobs
from trainq.services.settings import Settings
from trainq.services.training import run_job

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]
LAYERS = [{"units": 4, "inputShape": [2], "activation": "tanh"}, {"units": 1}]
COMPILE = {"optimizer": {"name": "adam", "learningRate": 0.01}, "loss": "meanSquaredError", "metrics": ["mae"]}
X = [[0.0, 1.0], [1.0, 0.5], [0.25, -1.0], [-0.5, 0.75]]
Y = [[1.0], [2.0], [-0.5], [0.25]]


def _weights(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(2, 4), (4,), (4, 1), (1,)]
    return [rng.uniform(-0.5, 0.5, shape).astype(np.float32) for shape in shapes]


@pytest.fixture(scope="module")
def saved(tfjs: None) -> dict[str, Any]:  # noqa: F811
    """What tf.io.http sends for: a compiled Dense model, an uncompiled one, a Conv2D model."""
    conv = [
        {"type": "conv2d", "options": {"inputShape": [4, 4, 1], "filters": 2, "kernelSize": 3}},
        {"type": "flatten", "options": {}},
        {"units": 1},
    ]
    weights = [w.tolist() for w in _weights(0)]
    compiled, uncompiled, conv2d = run_tfjs(
        {
            "steps": [
                {"save": {"model": {"layers": LAYERS, "weights": weights}, "compile": COMPILE}},
                {"save": {"model": {"layers": LAYERS, "weights": weights}}},
                {"save": {"model": {"layers": conv}}},
            ]
        },
        MODELS_PROGRAM,
    )["results"]
    return {"compiled": compiled, "uncompiled": uncompiled, "conv2d": conv2d}


def form(artifact: dict[str, Any], weights: bytes | None = None) -> dict[str, Any]:
    """The multipart files, as tf.io.http names them."""
    data = base64.b64decode(artifact["weights"]) if weights is None else weights
    return {
        "model.json": ("model.json", json.dumps(artifact["modelJson"]), "application/json"),
        "model.weights.bin": ("model.weights.bin", data, "application/octet-stream"),
    }


def model_count(factory: Factory) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(StoredModel)).scalar_one()


async def test_a_model_saved_by_tfjs_is_stored_listed_served_and_deleted(
    client: httpx.AsyncClient, saved: dict[str, Any]
) -> None:
    created = await client.post("/v1/models", files=form(saved["compiled"]), params={"name": "tanh"})
    assert created.status_code == 201, created.text
    model = created.json()
    assert model["name"] == "tanh" and model["parameters"] == 2 * 4 + 4 + 4 + 1
    assert [layer["units"] for layer in model["layers"]] == [4, 1]
    assert model["layers"][0]["activation"] == "tanh" and model["layers"][0]["inputShape"] == [2]
    assert model["compile"] == {
        "optimizer": {"name": "adam", "learningRate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
        "loss": "meanSquaredError",
        "metrics": ["mae"],
    }
    listed = (await client.get("/v1/models")).json()
    assert [m["id"] for m in listed["items"]] == [model["id"]] and listed["nextCursor"] is None
    assert (await client.get(model["links"]["self"])).json() == model

    served = await client.get(model["links"]["model.json"])
    weights = await client.get(model["links"]["weights.bin"])
    assert served.json()["weightsManifest"][0]["paths"] == ["weights.bin"]
    assert served.json()["trainingConfig"] == saved["compiled"]["modelJson"]["trainingConfig"]
    # the model's weights as tf.js sent them (its optimizer's state after them is not kept)
    assert base64.b64decode(saved["compiled"]["weights"]).startswith(weights.content)
    assert len(weights.content) == 4 * model["parameters"]

    assert (await client.delete(model["links"]["self"])).status_code == 204
    gone = await client.get(model["links"]["self"])
    assert gone.status_code == 404 and gone.json()["errors"][0]["field"] == "path.model_id"


async def test_a_json_upload_of_the_same_artifact_is_taken_too(
    client: httpx.AsyncClient, saved: dict[str, Any]
) -> None:
    body = {**saved["uncompiled"]["modelJson"], "weightData": saved["uncompiled"]["weights"]}
    created = await client.post("/v1/models", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["compile"] is None


async def test_a_conv2d_model_or_weights_of_the_wrong_length_are_422_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, saved: dict[str, Any]
) -> None:
    conv = await client.post("/v1/models", files=form(saved["conv2d"]))
    data = base64.b64decode(saved["compiled"]["weights"])
    short = await client.post("/v1/models", files=form(saved["compiled"], data[:-8]))
    garbled = await client.post("/v1/models", json={**saved["compiled"]["modelJson"], "weightData": "not base64!"})
    missing = await client.post("/v1/models", files={"model.json": form(saved["compiled"])["model.json"]})

    assert conv.status_code == 422
    assert conv.json()["errors"][0]["field"] == "modelTopology.config.layers[0].class_name"
    assert "'Conv2D' layers are not supported" in conv.json()["detail"]
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "model.weights.bin"
    assert f"holds {len(data) - 8} bytes; the weights manifest describes {len(data)}" in short.json()["detail"]
    assert garbled.status_code == 422 and garbled.json()["errors"][0]["field"] == "weightData"
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "model.weights.bin"
    assert model_count(factory) == 0


async def test_an_optimizer_class_name_that_is_not_a_string_is_a_422_naming_it(
    client: httpx.AsyncClient, factory: Factory, saved: dict[str, Any]
) -> None:
    artifact = json.loads(json.dumps(saved["compiled"]["modelJson"]))
    artifact["trainingConfig"]["optimizer_config"]["class_name"] = ["Adam"]
    refused = await client.post("/v1/models", json={**artifact, "weightData": saved["compiled"]["weights"]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "trainingConfig.optimizer_config.class_name"
    assert model_count(factory) == 0


async def test_a_job_from_a_stored_model_starts_from_its_weights_and_compile(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, saved: dict[str, Any]
) -> None:
    model = (await client.post("/v1/models", files=form(saved["compiled"]))).json()
    job = await client.post(
        "/v1/jobs",
        json={"model": {"from": model["id"]}, "fit": {"epochs": 3, "batchSize": 2}, "data": {"x": X, "y": Y}},
    )
    assert job.status_code == 201, job.text
    spec = (await client.get(f"/v1/jobs/{job.json()['id']}/spec")).json()
    assert spec["compile"] == model["compile"]
    assert [layer["units"] for layer in spec["model"]["layers"]] == [4, 1]
    for got, want in zip(spec["model"]["weights"], _weights(0), strict=True):
        np.testing.assert_array_equal(np.asarray(got, np.float32), want)
    run_job(factory, job.json()["id"], worker="test:1", settings=settings)
    assert (await client.get(f"/v1/jobs/{job.json()['id']}")).json()["status"] == "succeeded"

    # a trained job saved as a model starts the next one
    saved_job = await client.post(f"/v1/jobs/{job.json()['id']}/model", params={"name": "after 3"})
    assert saved_job.status_code == 201 and saved_job.json()["sourceJobId"] == job.json()["id"]
    with factory() as session:
        trained = jobs.final_weights(session, TEST_PRINCIPAL, job.json()["id"])
    served = await client.get(saved_job.json()["links"]["weights.bin"])
    np.testing.assert_array_equal(np.frombuffer(served.content, "<f4"), np.concatenate([w.ravel() for w in trained]))


async def test_a_job_from_an_uncompiled_or_unknown_model_names_the_field(
    client: httpx.AsyncClient, saved: dict[str, Any]
) -> None:
    model = (await client.post("/v1/models", files=form(saved["uncompiled"]))).json()
    data = {"x": X, "y": Y}
    uncompiled = await client.post("/v1/jobs", json={"model": {"from": model["id"]}, "data": data})
    unknown = await client.post("/v1/jobs", json={"model": {"from": "no-such-model"}, "compile": COMPILE, "data": data})
    both = await client.post("/v1/jobs", json={"model": {"from": model["id"], "layers": LAYERS}, "data": data})
    compiled_here = await client.post(
        "/v1/jobs", json={"model": {"from": model["id"]}, "compile": COMPILE, "data": data}
    )

    assert uncompiled.status_code == 422 and uncompiled.json()["errors"][0]["field"] == "compile"
    assert "saved without a trainingConfig" in uncompiled.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "model.from"
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "model.layers"
    assert compiled_here.status_code == 201, compiled_here.text
