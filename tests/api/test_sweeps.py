"""Sweeps over the API: one job per point, refused whole for one bad point, ranked, cancelled."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Broker
from trainq.services.db.models import Job, Sweep
from trainq.services.db.session import session_scope
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE

pytestmark = pytest.mark.anyio

Factory = sessionmaker[Session]
GRID = {"compile.optimizer.learningRate": [0.1, 0.01, 0.001], "fit.batchSize": [16, 64]}


def sweep(**fields: Any) -> dict[str, Any]:
    return {"base": copy.deepcopy(SEED_EXAMPLE), **fields}


def count(factory: Factory, table: type) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def finish(factory: Factory, job_id: str, status: str, logs: dict[str, Any] | None) -> None:
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status, latest_logs=logs))


async def test_a_grid_sweep_stores_one_queued_job_per_point_and_sends_each(
    client: httpx.AsyncClient, broker: Broker, factory: Factory
) -> None:
    response = await client.post("/v1/sweeps", json=sweep(name="lr x batch", grid=GRID, device="cpu"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["counts"] == {"queued": 6} and body["metric"] == "val_loss" and body["goal"] == "min"
    points = [entry["point"] for entry in body["jobs"]]
    assert points == [
        {"compile.optimizer.learningRate": lr, "fit.batchSize": batch}
        for lr in (0.1, 0.01, 0.001)
        for batch in (16, 64)
    ]
    assert [entry["index"] for entry in body["jobs"]] == list(range(6))
    assert all(entry["rank"] is None and entry["job"]["sweepId"] == body["id"] for entry in body["jobs"])
    # each job's own spec is the base with its point applied
    for entry in body["jobs"]:
        spec = (await client.get(f"/v1/jobs/{entry['job']['id']}/spec")).json()
        assert spec["compile"]["optimizer"]["learningRate"] == entry["point"]["compile.optimizer.learningRate"]
        assert spec["fit"]["batchSize"] == entry["point"]["fit.batchSize"]
        assert spec["model"]["layers"][0]["units"] == SEED_EXAMPLE["model"]["layers"][0]["units"]
    sent = broker.take_all()
    assert sorted(args[0] for _, args in sent) == sorted(entry["job"]["id"] for entry in body["jobs"])


async def test_a_sweep_with_one_invalid_point_is_refused_whole_naming_the_point_and_field(
    client: httpx.AsyncClient, broker: Broker, factory: Factory
) -> None:
    response = await client.post(
        "/v1/sweeps", json=sweep(grid={"compile.optimizer.learningRate": [0.1, 0.01], "fit.batchSize": [16, 0]})
    )

    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "points[1].fit.batchSize"
    assert "fit.batchSize=0" in error["message"]
    assert (count(factory, Job), count(factory, Sweep)) == (0, 0)
    assert broker.take_all() == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "body"),
        ({"grid": GRID, "random": {"draws": 2, "ranges": {"fit.batchSize": {"values": [1]}}}}, "body"),
        ({"grid": {"fit..batchSize": [1]}}, "grid.fit..batchSize"),
        ({"grid": {"fit.batchSize": []}}, "grid.fit.batchSize"),
        ({"grid": {"model.layers[3].units": [2]}}, "points[0].model.layers[3].units"),
        ({"grid": {"fit.shuffleTwice": [True]}}, "points[0].fit.shuffleTwice"),
        ({"random": {"draws": 2, "ranges": {"fit.epochs": {"low": 5, "high": 1}}}}, "random.ranges.fit.epochs"),
        (
            {"random": {"draws": 2, "ranges": {"compile.optimizer.learningRate": {"low": 0, "high": 1, "log": True}}}},
            "random.ranges.compile.optimizer.learningRate",
        ),
        (
            {"random": {"draws": 2, "ranges": {"fit.batchSize": {"low": 1.2, "high": 1.8, "integer": True}}}},
            "random.ranges.fit.batchSize",
        ),
        (
            {"random": {"draws": 2, "ranges": {"fit.batchSize": {"low": 1, "high": 1e300, "integer": True}}}},
            "random.ranges.fit.batchSize",
        ),
    ],
)
async def test_a_malformed_sweep_is_refused_naming_its_field(
    client: httpx.AsyncClient, factory: Factory, fields: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/sweeps", json=sweep(**fields))

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert count(factory, Job) == 0


async def test_a_sweep_whose_jobs_would_copy_too_much_inline_data_is_413_pointing_to_datasets(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    base = copy.deepcopy(SEED_EXAMPLE)
    rows = settings.max_request_bytes // 2 // 40  # about half the request limit of inline data
    base["data"] = {"x": [[0.123456789]] * rows, "y": [[1.23456789]] * rows}
    response = await client.post("/v1/sweeps", json={"base": base, "grid": {"fit.seed": [1, 2, 3]}})

    assert response.status_code == 413, response.text[:500]
    (error,) = response.json()["errors"]
    assert error["field"] == "base.data" and "datasetId" in error["message"]
    assert count(factory, Job) == count(factory, Sweep) == 0


async def test_random_draws_are_seeded_and_stay_in_their_ranges(client: httpx.AsyncClient) -> None:
    ranges = {
        "compile.optimizer.learningRate": {"low": 0.001, "high": 0.1, "log": True},
        "model.layers[0].units": {"low": 1, "high": 4, "integer": True},
        "fit.batchSize": {"values": [8, 16]},
    }
    base = copy.deepcopy(SEED_EXAMPLE)
    base["model"]["layers"] = [{"units": 2, "inputShape": [1], "activation": "tanh"}, {"units": 1}]
    draws = []
    for _ in range(2):
        response = await client.post(
            "/v1/sweeps", json={"base": base, "random": {"draws": 8, "seed": 5, "ranges": ranges}}
        )
        assert response.status_code == 201, response.text
        draws.append([entry["point"] for entry in response.json()["jobs"]])
    assert draws[0] == draws[1] and len(draws[0]) == 8
    assert all(0.001 <= p["compile.optimizer.learningRate"] <= 0.1 for p in draws[0])
    assert {p["model.layers[0].units"] for p in draws[0]} <= {1, 2, 3, 4}
    assert {p["fit.batchSize"] for p in draws[0]} <= {8, 16}
    other = await client.post("/v1/sweeps", json={"base": base, "random": {"draws": 8, "seed": 6, "ranges": ranges}})
    assert [entry["point"] for entry in other.json()["jobs"]] != draws[0]


async def test_a_sweep_ranks_by_the_final_metric_ties_sharing_a_rank_and_the_unfinished_last(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    created = (await client.post("/v1/sweeps", json=sweep(grid=GRID))).json()
    ids = [entry["job"]["id"] for entry in created["jobs"]]
    finish(factory, ids[0], "succeeded", {"loss": 0.1, "val_loss": 0.5})
    finish(factory, ids[1], "succeeded", {"loss": 0.3, "val_loss": 0.2})
    finish(factory, ids[2], "succeeded", {"loss": 0.2, "val_loss": 0.5})
    finish(factory, ids[3], "failed", {"loss": 0.0, "val_loss": 0.0})  # no final value: failed
    finish(factory, ids[4], "succeeded", {"loss": 0.4, "val_loss": None})  # not finite: stored null
    # ids[5] is still queued

    ranked = (await client.get(created["links"]["self"])).json()["jobs"]
    assert [(entry["job"]["id"], entry["rank"], entry["value"]) for entry in ranked] == [
        (ids[1], 1, 0.2),
        (ids[0], 2, 0.5),
        (ids[2], 2, 0.5),
        (ids[3], None, None),
        (ids[4], None, None),
        (ids[5], None, None),
    ]
    by_loss = (await client.get(created["links"]["self"], params={"metric": "loss", "goal": "max"})).json()
    assert [(entry["job"]["id"], entry["rank"]) for entry in by_loss["jobs"][:4]] == [
        (ids[4], 1),
        (ids[1], 2),
        (ids[2], 3),
        (ids[0], 4),
    ]
    assert by_loss["metric"] == "loss" and by_loss["goal"] == "max"


async def test_cancelling_a_sweep_cancels_its_queued_jobs_and_flags_its_running_ones(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    created = (await client.post("/v1/sweeps", json=sweep(grid={"fit.batchSize": [8, 16, 32]}))).json()
    running, queued, done = (entry["job"]["id"] for entry in created["jobs"])
    finish(factory, running, "running", None)
    finish(factory, done, "succeeded", {"val_loss": 1.0})
    single = (await client.post("/v1/jobs", json=copy.deepcopy(SEED_EXAMPLE))).json()

    response = await client.post(created["links"]["cancel"])

    assert response.status_code == 202, response.text
    jobs = {entry["job"]["id"]: entry["job"] for entry in response.json()["jobs"]}
    assert (jobs[queued]["status"], jobs[queued]["cancelRequested"]) == ("cancelled", True)
    assert (jobs[running]["status"], jobs[running]["cancelRequested"]) == ("running", True)
    assert (jobs[done]["status"], jobs[done]["cancelRequested"]) == ("succeeded", False)
    assert (await client.get(f"/v1/jobs/{single['id']}")).json()["status"] == "queued"


async def test_an_unknown_sweep_is_404_naming_the_path(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/v1/sweeps/nope"), await client.post("/v1/sweeps/nope/cancel")):
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "path.sweep_id"


async def test_sweeps_are_listed_newest_first_page_by_page_with_their_counts_and_best_point(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    created = [(await client.post("/v1/sweeps", json=sweep(name=str(i), grid=GRID))).json() for i in range(3)]
    maximising = (
        await client.post("/v1/sweeps", json=sweep(grid={"fit.batchSize": [8, 16]}, metric="loss", goal="max"))
    ).json()
    ids = [entry["job"]["id"] for entry in created[1]["jobs"]]
    finish(factory, ids[0], "succeeded", {"val_loss": 0.5})
    finish(factory, ids[1], "succeeded", {"val_loss": 0.2})
    finish(factory, ids[2], "succeeded", {"val_loss": 0.2})  # as good, a later point: not the best
    finish(factory, ids[3], "failed", {"val_loss": 0.0})  # failed: no final value
    finish(factory, ids[4], "running", {"val_loss": 0.1})  # not final yet
    low, high = (entry["job"]["id"] for entry in maximising["jobs"])
    finish(factory, low, "succeeded", {"loss": 1.0})
    finish(factory, high, "succeeded", {"loss": 3.0})

    seen, cursor = [], None
    while True:
        page = (await client.get("/v1/sweeps", params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["items"]) <= 3
        seen += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert [item["id"] for item in seen] == [maximising["id"]] + [s["id"] for s in created[::-1]]
    listed = {item["id"]: item for item in seen}
    first, middle = listed[created[0]["id"]], listed[created[1]["id"]]
    assert (first["name"], first["points"], first["counts"], first["best"]) == ("0", 6, {"queued": 6}, None)
    assert middle["counts"] == {"succeeded": 3, "failed": 1, "running": 1, "queued": 1}
    assert middle["best"] == {"value": 0.2, "jobId": ids[1], "point": created[1]["jobs"][1]["point"]}
    assert middle["links"]["self"] == f"/v1/sweeps/{middle['id']}" and middle["metric"] == "val_loss"
    assert listed[maximising["id"]]["best"]["jobId"] == high
    # the best of the list is the first of the sweep's own ranking
    ranked = (await client.get(middle["links"]["self"])).json()["jobs"]
    assert ranked[0]["job"]["id"] == middle["best"]["jobId"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "query.limit"), ({"limit": 201}, "query.limit"), ({"cursor": "bogus"}, "query.cursor")],
)
async def test_bad_sweep_list_parameters_name_the_query_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/sweeps", params=params)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_retried_sweep_with_the_same_idempotency_key_answers_the_first_and_stores_no_more(
    client: httpx.AsyncClient, broker: Broker, factory: Factory
) -> None:
    key = {"Idempotency-Key": "sweep-1"}
    drawn = sweep(
        random={"draws": 3, "seed": 5, "ranges": {"compile.optimizer.learningRate": {"low": 0.001, "high": 0.1}}}
    )
    first = await client.post("/v1/sweeps", json=drawn, headers=key)
    sent = broker.take_all()
    again = await client.post("/v1/sweeps", json=drawn, headers=key)
    other = await client.post("/v1/sweeps", json={**drawn, "name": "another"}, headers=key)
    # a single submit's key space is its own: the same key stores a job
    job = await client.post("/v1/jobs", json=copy.deepcopy(SEED_EXAMPLE), headers=key)

    assert (first.status_code, again.status_code, job.status_code) == (201, 200, 201), (first.text, again.text)
    assert again.json() == first.json()
    assert len(sent) == 3 and len(broker.take_all()) == 1
    assert (count(factory, Sweep), count(factory, Job)) == (1, 4)
    assert other.status_code == 409, other.text
    assert [error["field"] for error in other.json()["errors"]] == ["header.Idempotency-Key"]
