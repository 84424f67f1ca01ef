"""The jobs API end to end inside one process: real database, real broker, real engine."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Broker
from trainq.services.db.models import Job
from trainq.services.engine import Model
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE, JobSpec
from trainq.services.training import run_job

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]


def seed(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(SEED_EXAMPLE)
    document.update(changes)
    return document


def job_count(factory: Factory) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


async def test_a_submitted_job_is_stored_queued_and_its_id_sent_to_the_broker(
    client: httpx.AsyncClient, broker: Broker
) -> None:
    response = await client.post("/v1/jobs", json=seed(name="line", device="cpu"))

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "queued" and job["name"] == "line" and job["device"] == "cpu"
    assert job["progress"] == {"epoch": 0, "epochs": 20}
    assert (job["attempt"], job["worker"], job["metrics"], job["error"]) == (0, None, None, None)
    assert job["cancelRequested"] is False and job["startedAt"] is None and job["finishedAt"] is None
    assert job["links"]["self"] == f"/v1/jobs/{job['id']}"
    assert job["links"]["cancel"] == f"/v1/jobs/{job['id']}/cancel"
    assert broker.take_all() == [("trainq.run_job", [job["id"]])]
    assert (await client.get(job["links"]["self"])).json() == job


async def test_a_retried_submit_with_the_same_idempotency_key_returns_the_first_job(
    client: httpx.AsyncClient, broker: Broker, factory: Factory
) -> None:
    headers = {"Idempotency-Key": "submit-1"}
    first = await client.post("/v1/jobs", json=seed(), headers=headers)
    again = await client.post("/v1/jobs", json=seed(), headers=headers)
    other = await client.post("/v1/jobs", json=seed(name="another"), headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert job_count(factory) == 1
    assert broker.take_all() == [("trainq.run_job", [first.json()["id"]])]
    assert other.status_code == 409
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_inline_data_is_stored_as_the_numbers_sent_and_a_retry_formatted_otherwise_is_the_same_job(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # parsed straight into arrays (api/inline_body.py), stored as the text it came as
    data = {"x": [[0.1, 2], [1e-3, -0.0], [3, 4.5]], "y": [1, 20, 3], "validationData": {"x": [[1, 2]], "y": [[7]]}}
    document = {**seed(), "model": {"layers": [{"units": 1, "inputShape": [2]}]}, "data": data}
    spaced = json.dumps(document, indent=2).encode()
    compact = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "inline-1"}

    first = await client.post("/v1/jobs", content=spaced, headers=headers)
    again = await client.post("/v1/jobs", content=compact, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert (await client.get(f"/v1/jobs/{first.json()['id']}/spec")).json()["data"] == data
    assert job_count(factory) == 1


def _broken(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(SEED_EXAMPLE)
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


REJECTED = [
    ("unknown loss", _broken("compile.loss", "hinge2"), "compile.loss"),
    ("zero units", _broken("model.layers.0.units", 0), "model.layers[0].units"),
    ("units as text", _broken("model.layers.0.units", "one"), "model.layers[0].units"),
    ("negative epochs", _broken("fit.epochs", -1), "fit.epochs"),
    ("unknown activation", _broken("model.layers.0.activation", "swish2"), "model.layers[0].activation"),
    ("unknown optimizer", _broken("compile.optimizer", {"name": "lbfgs"}), "compile.optimizer"),
    ("ragged rows", _broken("data.x", [[0.1], [0.5, 1], [0.9], [1.3], [1.7]]), "data.x[1]"),
    ("x and y of different lengths", _broken("data.y", [[1.2], [2.0]]), "data.y"),
    ("inputShape not x's width", _broken("model.layers.0.inputShape", [2]), "data.x"),
    ("unknown field", _broken("fit.epoch", 3), "fit.epoch"),
    ("name too long", seed(name="n" * 201), "name"),
    ("unknown device", seed(device="tpu"), "device"),
]


@pytest.mark.parametrize(("document", "field"), [(d, f) for _, d, f in REJECTED], ids=[n for n, _, _ in REJECTED])
async def test_a_rejected_submit_names_the_field_and_stores_nothing(
    client: httpx.AsyncClient, broker: Broker, factory: Factory, document: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/jobs", json=document)

    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [error["field"] for error in body["errors"]], body
    assert isinstance(body["detail"], str) and body["detail"]
    assert job_count(factory) == 0
    assert broker.take_all() == []


async def test_invalid_json_is_a_422_on_the_body(client: httpx.AsyncClient, factory: Factory) -> None:
    response = await client.post("/v1/jobs", content=b'{"model": [', headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body"]
    assert job_count(factory) == 0


async def test_nan_in_the_data_names_its_row_and_column(client: httpx.AsyncClient, factory: Factory) -> None:
    raw = (
        b'{"model": {"layers": [{"units": 1, "inputShape": [1]}]}, "compile": {"optimizer": "sgd", "loss": "mse"},'
        b' "data": {"x": [[1], [NaN]], "y": [[1], [2]]}}'
    )
    response = await client.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data.x[1][0]"
    assert job_count(factory) == 0


async def test_a_body_over_the_limit_is_refused_with_413_before_parsing(
    client: httpx.AsyncClient, settings: Settings, factory: Factory
) -> None:
    rows = [[0.5]] * (settings.max_request_bytes // 4)
    declared = await client.post("/v1/jobs", json=seed(data={"x": rows, "y": rows}))

    async def chunks() -> Any:
        for _ in range(settings.max_request_bytes // 1000 + 2):
            yield b"[" * 1000

    streamed = await client.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"] == [
            {"field": "body", "message": f"is larger than the limit of {settings.max_request_bytes} bytes"}
        ]
    assert job_count(factory) == 0


async def test_unknown_jobs_are_404_on_the_job_id(client: httpx.AsyncClient) -> None:
    for method, path in [("GET", ""), ("GET", "/history"), ("GET", "/weights"), ("POST", "/cancel")]:
        response = await client.request(method, f"/v1/jobs/nope{path}")
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["field"] == "path.job_id"
    response = await client.post("/v1/jobs/nope/evaluate", json={"x": [[1]], "y": [[1]]})
    assert response.status_code == 404


async def test_a_job_without_weights_answers_409(client: httpx.AsyncClient) -> None:
    job = (await client.post("/v1/jobs", json=seed())).json()

    for method, path, body in [
        ("GET", "/weights", None),
        ("POST", "/evaluate", {"x": [[1]], "y": [[1]]}),
        ("POST", "/predict", {"x": [[1]]}),
    ]:
        response = await client.request(method, f"/v1/jobs/{job['id']}{path}", json=body)
        assert response.status_code == 409, path
        assert response.json()["errors"][0]["field"] == "path.job_id"
        assert "no weights" in response.json()["detail"]


async def test_cancelling_a_queued_job_ends_it_and_a_finished_one_is_409(client: httpx.AsyncClient) -> None:
    job = (await client.post("/v1/jobs", json=seed())).json()

    cancelled = await client.post(job["links"]["cancel"])
    again = await client.post(job["links"]["cancel"])

    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelRequested"] is True
    assert cancelled.json()["finishedAt"] is not None
    assert again.status_code == 202  # cancelling a cancelled job changes nothing


async def test_jobs_are_listed_newest_first_page_by_page(client: httpx.AsyncClient) -> None:
    ids = [(await client.post("/v1/jobs", json=seed(name=str(i)))).json()["id"] for i in range(5)]
    await client.post(f"/v1/jobs/{ids[1]}/cancel")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/jobs", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [job["id"] for job in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    cancelled = (await client.get("/v1/jobs", params={"status": "cancelled"})).json()

    assert seen == ids[::-1]
    assert [job["id"] for job in cancelled["items"]] == [ids[1]] and cancelled["nextCursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"cursor": "bogus"}, "query.cursor"),
        ({"status": "done"}, "query.status"),
    ],
)
async def test_bad_list_parameters_name_the_query_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/jobs", params=params)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_trained_job_serves_history_weights_evaluate_and_predict(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    document = seed(
        fit={"epochs": 6, "batchSize": 2, "validationSplit": 0.2, "seed": 7},
        compile={"optimizer": "adam", "loss": "meanSquaredError", "metrics": ["mae"]},
    )
    job = (await client.post("/v1/jobs", json=document)).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)

    finished = (await client.get(job["links"]["self"])).json()
    history = (await client.get(job["links"]["history"], params={"since": 4})).json()
    weights = (await client.get(job["links"]["weights"])).json()
    x_new, y_new = [[2.1], [2.5], [3.0]], [[5.2], [6.0], [7.0]]
    evaluated = await client.post(job["links"]["evaluate"], json={"x": x_new, "y": y_new, "batchSize": 2})
    predicted = await client.post(job["links"]["predict"], json={"x": x_new})

    assert finished["status"] == "succeeded" and finished["progress"] == {"epoch": 6, "epochs": 6}
    assert set(finished["metrics"]) == {"loss", "mae", "val_loss", "val_mae"}
    assert [e["epoch"] for e in history["epochs"]] == [4, 5] and history["jobId"] == job["id"]
    assert history["epochs"][-1]["logs"] == finished["metrics"] and history["epochs"][0]["wallTime"] > 0
    assert [w["shape"] for w in weights["weights"]] == [[1, 1], [1]]
    spec = JobSpec.model_validate(document).to_training_config()
    model = Model.from_weights(
        spec.model, spec.compile, [np.array(w["values"], np.float32) for w in weights["weights"]]
    )
    expected = model.evaluate(np.array(x_new, np.float32), np.array(y_new, np.float32), 2)
    assert evaluated.status_code == 200
    assert evaluated.json() == {"loss": expected["loss"], "metrics": {"mae": expected["mae"]}}
    assert predicted.json()["predictions"] == model.predict(np.array(x_new, np.float32)).tolist()
    assert job["id"] in app.state.trained_models


async def test_evaluate_names_the_request_field_at_fault(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    job = (await client.post("/v1/jobs", json=seed())).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)

    wide = await client.post(job["links"]["evaluate"], json={"x": [[1, 2]], "y": [[1]]})
    short = await client.post(job["links"]["evaluate"], json={"x": [[1], [2]], "y": [[1]]})
    missing = await client.post(job["links"]["predict"], json={})

    assert (wide.status_code, wide.json()["errors"][0]["field"]) == (422, "x")
    assert (short.status_code, short.json()["errors"][0]["field"]) == (422, "y")
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (422, "x")


async def test_a_body_that_is_not_json_is_415_on_the_content_type(client: httpx.AsyncClient, factory: Factory) -> None:
    response = await client.post("/v1/jobs", content=b"model=dense", headers={"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert [e["field"] for e in response.json()["errors"]] == ["header.Content-Type"]
    assert job_count(factory) == 0


async def test_outputs_that_overflow_float32_answer_null_not_500(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    # finite inputs, but kernel 3 times 3e38 overflows: JSON has no infinity to send
    document = seed(
        model={"layers": [{"units": 1, "inputShape": [1]}], "weights": [[[3.0]], [0.0]]},
        fit={"epochs": 1, "shuffle": False},
    )
    document["compile"]["optimizer"] = {"name": "sgd", "learningRate": 1e-30}
    job = (await client.post("/v1/jobs", json=document)).json()
    run_job(factory, job["id"], worker="test:1", settings=settings)

    predicted = await client.post(job["links"]["predict"], json={"x": [[3e38], [1.0]]})
    evaluated = await client.post(job["links"]["evaluate"], json={"x": [[3e38]], "y": [[1.0]]})

    assert predicted.status_code == 200 and predicted.json()["predictions"][0] == [None]
    assert predicted.json()["predictions"][1][0] == pytest.approx(3.0, rel=1e-6)
    assert evaluated.status_code == 200 and evaluated.json()["loss"] is None


async def test_a_method_the_path_does_not_serve_is_405_allowing_every_method_it_does(
    client: httpx.AsyncClient,
) -> None:
    listed = await client.request("OPTIONS", "/v1/jobs")
    one = await client.request("PUT", "/v1/jobs/0123456789abcdef")
    assert (listed.status_code, listed.headers["allow"]) == (405, "GET, POST")
    assert (one.status_code, one.headers["allow"]) == (405, "DELETE, GET")


async def test_a_body_that_is_not_utf8_is_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/jobs", content=b"\xff{", headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"


async def test_explicit_nulls_and_numbers_as_strings_are_refused_as_the_schema_says(client: httpx.AsyncClient) -> None:
    nulled = seed()
    nulled["data"]["validationDatasetId"] = None
    quoted = seed()
    quoted["data"]["y"][0] = ["1.5"]
    for body, field in ((nulled, "data.validationDatasetId"), (quoted, "data.y[0][0]")):
        response = await client.post("/v1/jobs", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
